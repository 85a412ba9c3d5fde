package graphsim_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/certops/intune-cert-operator/test/graphsim"
)

// A seeded record is what a POST of the same fields would have stored: Graph reads it under the id the
// service assigns, the journal and the write budget do not see the seeding, and a POST of it collides.
func TestSeedUserPFXCertificatesStoresRecordsAsAPostWould(t *testing.T) {
	cfg := baseConfig()
	cfg.Limits = graphsim.Limits{AppWrites: 1}
	s := start(t, cfg)
	body := `[{"thumbprint":"` + thumb(1) + `","userPrincipalName":"alice@contoso.example","intendedPurpose":"SmimeEncryption",
		"providerName":"Microsoft Software Key Storage Provider","keyName":"PFXEncryptionKey","paddingScheme":"oaepSha512",
		"startDateTime":"2026-01-01T00:00:00Z","expirationDateTime":"2027-01-01T00:00:00Z"}]`
	r := admin(t, s, http.MethodPost, "/_sim/userPfxCertificates/"+tenantID, body)
	expectStatus(t, r, http.StatusOK)
	if !strings.Contains(string(r.body), `"seeded":1`) {
		t.Fatalf("answer %s", r.body)
	}
	if n := len(s.Journal()); n != 0 {
		t.Fatalf("seeding journaled %d requests", n)
	}
	id := strings.ReplaceAll(userID, "-", "") + "-" + thumb(1)
	token := secretToken(t, s)
	got := call(t, s, token, http.MethodGet, pfxPath+"/"+strings.ToUpper(id), nil)
	expectStatus(t, got, http.StatusOK)
	rec := got.json(t)
	for k, want := range map[string]string{"id": id, "intendedPurpose": "smimeEncryption", "paddingScheme": "oaepSha512",
		"userPrincipalName": "alice@contoso.example", "expirationDateTime": "2027-01-01T00:00:00Z"} {
		if rec[k] != want {
			t.Errorf("%s = %v, want %s", k, rec[k], want)
		}
	}
	// The write budget of 1 was not spent by the seeding: this POST is the first write, and it collides.
	expectStatus(t, call(t, s, token, http.MethodPost, pfxPath, pfxBody(userUPN, thumb(1))), http.StatusConflict)

	// Nothing is stored when one record is refused; unknown tenants are 404.
	bad := `[{"thumbprint":"` + thumb(2) + `","userPrincipalName":"alice@contoso.example"},{"thumbprint":"` + thumb(3) + `","userPrincipalName":"nobody@contoso.example"}]`
	expectStatus(t, admin(t, s, http.MethodPost, "/_sim/userPfxCertificates/"+tenantID, bad), http.StatusBadRequest)
	if n := len(s.UserPFXCertificates(tenantID)); n != 1 {
		t.Fatalf("%d records after a refused seeding, want 1", n)
	}
	expectStatus(t, admin(t, s, http.MethodPost, "/_sim/userPfxCertificates/nope", `[]`), http.StatusNotFound)

	// Users are found by id and by UPN, in any case (an index since seeding made 100,000 users common).
	expectStatus(t, call(t, s, token, http.MethodGet, "/beta/users/"+strings.ToUpper(userID), nil), http.StatusOK)
	expectStatus(t, call(t, s, token, http.MethodGet, "/beta/users/ALICE@contoso.EXAMPLE", nil), http.StatusOK)
	expectStatus(t, call(t, s, token, http.MethodGet, "/beta/users/bob@contoso.example", nil), http.StatusNotFound)
}
