package graphsim_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/certops/intune-cert-operator/test/graphsim"
)

const iosStates = "/beta/deviceManagement/deviceConfigurations/cfg-1/microsoft.graph.iosScepCertificateProfile/managedDeviceCertificateStates"

func TestStateSurvivesARestart(t *testing.T) {
	cfg := baseConfig()
	cfg.StateFile = filepath.Join(t.TempDir(), "state.json")
	first := start(t, cfg)
	token := secretToken(t, first)
	r := call(t, first, token, http.MethodPost, pfxPath, pfxBody(userUPN, thumb(1)))
	expectStatus(t, r, http.StatusCreated)
	pfxID := r.json(t)["id"].(string)
	first.AddDeviceConfiguration(tenantID, "cfg-1", "iosScep")
	r = call(t, first, token, http.MethodPost, iosStates, map[string]any{"deviceDisplayName": "phone"})
	expectStatus(t, r, http.StatusCreated)
	stateID := r.json(t)["id"].(string)
	expectStatus(t, call(t, first, token, http.MethodPost, "/beta/pfxRecryptionRequests", map[string]any{"status": 1}), http.StatusCreated)
	first.PutPfxUserCertificate(tenantID, graphsim.PfxUserCertificate{ID: "5a7c4a1e-0000-4000-8000-000000000003", Status: 4})

	wantPfx, wantStates := first.UserPFXCertificates(tenantID), first.ManagedDeviceCertificateStates(tenantID)
	wantRecryption, wantPfxUser := first.PfxRecryptionRequests(tenantID), first.PfxUserCertificates(tenantID)
	caPEM := first.CAPEM()
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	second := start(t, cfg)
	if !bytes.Equal(second.CAPEM(), caPEM) {
		t.Fatal("the restarted emulator has another CA: clients that trusted it would fail")
	}
	for name, pair := range map[string][2]any{
		"userPfxCertificates":            {wantPfx, second.UserPFXCertificates(tenantID)},
		"managedDeviceCertificateStates": {wantStates, second.ManagedDeviceCertificateStates(tenantID)},
		"pfxRecryptionRequests":          {wantRecryption, second.PfxRecryptionRequests(tenantID)},
		"pfxUserCertificates":            {wantPfxUser, second.PfxUserCertificates(tenantID)},
	} {
		if !reflect.DeepEqual(pair[0], pair[1]) {
			t.Fatalf("%s after restart:\n got %+v\nwant %+v", name, pair[1], pair[0])
		}
	}
	// A token issued before the restart still works, and the device configuration still exists.
	expectStatus(t, call(t, second, token, http.MethodGet, pfxPath+"/"+pfxID, nil), http.StatusOK)
	r = call(t, second, token, http.MethodPost, iosStates, map[string]any{})
	expectStatus(t, r, http.StatusCreated)
	if newID := r.json(t)["id"].(string); newID == stateID || newID == wantRecryption[0].ID {
		t.Fatalf("id %s repeats an id issued before the restart", newID)
	}

	expectStatus(t, call(t, second, token, http.MethodDelete, pfxPath+"/"+pfxID, nil), http.StatusNoContent)
	second.Close()
	third := start(t, cfg)
	if n := len(third.UserPFXCertificates(tenantID)); n != 0 {
		t.Fatalf("deleted record back after restart (%d records)", n)
	}
	if n := len(third.ManagedDeviceCertificateStates(tenantID)); n != 2 {
		t.Fatalf("%d states after the second restart, want 2", n)
	}

	if err := os.WriteFile(cfg.StateFile, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := graphsim.Start(cfg); err == nil {
		t.Fatal("Start accepted a corrupt state file")
	}
}

func admin(t *testing.T, s *graphsim.Server, method, path, body string) reply {
	t.Helper()
	req, err := http.NewRequest(method, s.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, data}
}

func TestAdminSurface(t *testing.T) {
	cfg := baseConfig()
	cfg.Limits = graphsim.Limits{AppRequests: 50}
	s := start(t, cfg)
	token := secretToken(t, s)
	r := call(t, s, token, http.MethodPost, pfxPath, pfxBody(userUPN, thumb(1)))
	expectStatus(t, r, http.StatusCreated)
	pfxID := r.json(t)["id"].(string)

	// Faults set over HTTP, durations as strings.
	expectStatus(t, admin(t, s, http.MethodPost, "/_sim/faults", `{"script":[429],"retryAfter":"2s"}`), http.StatusNoContent)
	r = call(t, s, token, http.MethodGet, pfxPath, nil)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "2" {
		t.Fatalf("scripted fault: %d Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
	var f graphsim.Faults
	if err := json.Unmarshal(admin(t, s, http.MethodGet, "/_sim/faults", "").body, &f); err != nil || f.RetryAfter != 2*time.Second || len(f.Script) != 0 {
		t.Fatalf("faults read back %+v (%v)", f, err)
	}
	expectStatus(t, admin(t, s, http.MethodPost, "/_sim/faults", `{"latency":"1ms","bogus":1}`), http.StatusBadRequest)

	// Records without secrets.
	raw := admin(t, s, http.MethodGet, "/_sim/records", "")
	expectStatus(t, raw, http.StatusOK)
	for _, secretText := range []string{pfxBody(userUPN, thumb(1))["encryptedPfxBlob"].(string), pfxBody(userUPN, thumb(1))["encryptedPfxPassword"].(string)} {
		if bytes.Contains(raw.body, []byte(secretText)) {
			t.Fatalf("records reveal secret material: %s", raw.body)
		}
	}
	var recs graphsim.AdminRecords
	if err := json.Unmarshal(raw.body, &recs); err != nil {
		t.Fatal(err)
	}
	got := recs.Tenants[tenantID].UserPfxCertificates
	if len(got) != 1 || got[0].ID != pfxID || got[0].EncryptedPfxBlobLength != len("pfx bytes") ||
		got[0].EncryptedPfxPasswordLength != len(pfxBody(userUPN, thumb(1))["encryptedPfxPassword"].(string)) {
		t.Fatalf("records %+v", got)
	}

	// Out-of-band edits.
	expectStatus(t, admin(t, s, http.MethodDelete, "/_sim/userPfxCertificates/"+tenantID+"/"+pfxID, ""), http.StatusNoContent)
	expectStatus(t, admin(t, s, http.MethodDelete, "/_sim/userPfxCertificates/"+tenantID+"/"+pfxID, ""), http.StatusNotFound)
	expectStatus(t, call(t, s, token, http.MethodGet, pfxPath+"/"+pfxID, nil), http.StatusNotFound)
	expectStatus(t, admin(t, s, http.MethodPost, "/_sim/deviceConfigurations/"+tenantID, `{"id":"cfg-1","profileType":"iosScep"}`), http.StatusNoContent)
	expectStatus(t, call(t, s, token, http.MethodPost, iosStates, map[string]any{}), http.StatusCreated)
	expectStatus(t, admin(t, s, http.MethodPut, "/_sim/pfxUserCertificates/"+tenantID, `{"id":"5a7c4a1e-0000-4000-8000-000000000004","status":3}`), http.StatusNoContent)
	expectStatus(t, call(t, s, token, http.MethodGet, "/beta/pfxUserCertificates/5a7c4a1e-0000-4000-8000-000000000004", nil), http.StatusOK)
	expectStatus(t, admin(t, s, http.MethodPut, "/_sim/pfxUserCertificates/unknown-tenant", `{"id":"x"}`), http.StatusNotFound)

	// Admin requests are neither journaled nor throttled.
	var journal []graphsim.Entry
	for range 60 {
		if err := json.Unmarshal(admin(t, s, http.MethodGet, "/_sim/journal", "").body, &journal); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range journal {
		if strings.HasPrefix(e.Path, "/_sim/") {
			t.Fatalf("admin request journaled: %+v", e)
		}
	}
	if !reflect.DeepEqual(journal, jsonRoundTrip(t, s.Journal())) {
		t.Fatalf("/_sim/journal differs from Journal()")
	}
	var throttled bool
	for _, e := range journal {
		throttled = throttled || (e.Status == http.StatusTooManyRequests && e.RetryAfter == 2*time.Second)
	}
	if !throttled {
		t.Fatalf("journal lacks the scripted 429: %+v", journal)
	}
	expectStatus(t, admin(t, s, http.MethodDelete, "/_sim/journal", ""), http.StatusNoContent)
	if n := len(s.Journal()); n != 0 {
		t.Fatalf("%d entries after reset", n)
	}
}

func jsonRoundTrip(t *testing.T, entries []graphsim.Entry) []graphsim.Entry {
	data, err := json.Marshal(entries)
	if err != nil {
		t.Fatal(err)
	}
	var out []graphsim.Entry
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	cert, _ := selfSigned(t)
	if err := os.WriteFile(filepath.Join(dir, "app.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "connector.pem"), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		t.Fatal(err)
	}
	yaml := `
pageSize: 5
seed: 42
connectorKeyFile: connector.pem
limits: {window: 30s, appWrites: 7}
faults: {retryAfter: 2s, script: [503]}
tenants:
- id: ` + tenantID + `
  apps:
  - clientId: ` + clientID + `
    clientSecret: ` + secret + `
    certificateFiles: [app.crt]
    federatedSubjects: ["system:serviceaccount:ns:sa"]
  users:
  - {id: ` + userID + `, userPrincipalName: ` + userUPN + `}
  deviceConfigurations:
  - {id: cfg-1, profileType: iosScep}
`
	path := filepath.Join(dir, "graphsim.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := graphsim.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	app := cfg.Tenants[0].Apps[0]
	if cfg.PageSize != 5 || cfg.Seed != 42 || !cfg.ConnectorKey.Equal(key) ||
		cfg.Limits != (graphsim.Limits{Window: 30 * time.Second, AppWrites: 7}) ||
		cfg.Faults.RetryAfter != 2*time.Second || len(cfg.Faults.Script) != 1 ||
		app.ClientSecret != secret || len(app.Certificates) != 1 || !app.Certificates[0].Equal(cert) ||
		cfg.Tenants[0].Users[0].UserPrincipalName != userUPN || cfg.Tenants[0].DeviceConfigurations[0].ProfileType != "iosScep" {
		t.Fatalf("loaded %+v", cfg)
	}

	if err := os.WriteFile(path, []byte("tenants: []\ntypo: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := graphsim.LoadConfig(path); err == nil {
		t.Fatal("an unknown config field was accepted")
	}
}
