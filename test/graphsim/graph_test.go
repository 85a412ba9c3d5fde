package graphsim_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/certops/intune-cert-operator/test/graphsim"
)

var guidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

const pfxPath = "/beta/deviceManagement/userPfxCertificates"

// thumb makes distinct valid-looking thumbprints.
func thumb(i int) string { return fmt.Sprintf("%040x", 0xabc000+i) }

func pfxBody(upn, thumbprint string) map[string]any {
	return map[string]any{
		"@odata.type":          "#microsoft.graph.userPFXCertificate",
		"thumbprint":           thumbprint,
		"intendedPurpose":      "smimeEncryption",
		"userPrincipalName":    upn,
		"startDateTime":        "2026-01-01T00:00:00Z",
		"expirationDateTime":   "2027-01-01T00:00:00Z",
		"providerName":         "Microsoft Software Key Storage Provider",
		"keyName":              "PFXEncryptionKey",
		"paddingScheme":        "oaepSha512",
		"encryptedPfxBlob":     base64.StdEncoding.EncodeToString([]byte("pfx bytes")),
		"encryptedPfxPassword": base64.StdEncoding.EncodeToString([]byte("encrypted password")),
	}
}

func TestUsers(t *testing.T) {
	s := start(t, baseConfig())
	token := secretToken(t, s)

	r := call(t, s, token, http.MethodGet, "/beta/users/"+strings.ToUpper(userUPN)+"?$select=id", nil)
	expectStatus(t, r, http.StatusOK)
	got := r.json(t)
	if got["id"] != userID || got["userPrincipalName"] != nil {
		t.Fatalf("$select=id answered %v", got)
	}
	r = call(t, s, token, http.MethodGet, "/beta/users/"+userID, nil)
	expectStatus(t, r, http.StatusOK)
	if got := r.json(t); got["userPrincipalName"] != userUPN || got["displayName"] != "Alice" {
		t.Fatalf("user by id answered %v", got)
	}
	r = call(t, s, token, http.MethodGet, "/beta/users/nobody@contoso.example?$select=id", nil)
	if r.status != http.StatusNotFound || r.errorCode(t) != "Request_ResourceNotFound" {
		t.Fatalf("unknown user: %d %s", r.status, r.body)
	}
}

func TestUserPfxCertificateLifecycle(t *testing.T) {
	clk := newClock()
	cfg := baseConfig()
	cfg.Now = clk.Now
	s := start(t, cfg)
	token := secretToken(t, s)
	created := clk.Now()

	// The UPN resolves case-insensitively; the id is {userIdWithoutDashes}-{thumbprint}.
	r := call(t, s, token, http.MethodPost, pfxPath, pfxBody(strings.ToLower(userUPN), thumb(1)))
	expectStatus(t, r, http.StatusCreated)
	wantID := strings.ReplaceAll(userID, "-", "") + "-" + thumb(1)
	got := r.json(t)
	if got["id"] != wantID || got["@odata.type"] != "#microsoft.graph.userPFXCertificate" {
		t.Fatalf("created %v, want id %s", got, wantID)
	}
	if got["encryptedPfxBlob"] != "AA==" || got["encryptedPfxPassword"] != "" {
		t.Fatalf("secrets not masked: %v", got)
	}
	if got["createdDateTime"] != created.Format(time.RFC3339Nano) || got["lastModifiedDateTime"] != created.Format(time.RFC3339Nano) {
		t.Fatalf("timestamps %v / %v, want %v", got["createdDateTime"], got["lastModifiedDateTime"], created)
	}
	stored := s.UserPFXCertificates(tenantID)
	if len(stored) != 1 || string(stored[0].EncryptedPfxBlob) != "pfx bytes" || stored[0].IntendedPurpose != "smimeEncryption" {
		t.Fatalf("stored %+v", stored)
	}

	expectStatus(t, call(t, s, token, http.MethodPost, pfxPath, pfxBody(userUPN, thumb(1))), http.StatusConflict)

	r = call(t, s, token, http.MethodGet, pfxPath+"/"+wantID, nil)
	expectStatus(t, r, http.StatusOK)
	if got := r.json(t); got["encryptedPfxBlob"] != "AA==" || got["encryptedPfxPassword"] != "" || got["thumbprint"] != thumb(1) {
		t.Fatalf("read back %v", got)
	}

	clk.Advance(30 * time.Minute)
	r = call(t, s, token, http.MethodPatch, pfxPath+"/"+wantID, map[string]any{"intendedPurpose": "smimeSigning"})
	expectStatus(t, r, http.StatusOK)
	got = r.json(t)
	if got["intendedPurpose"] != "smimeSigning" || got["lastModifiedDateTime"] != clk.Now().Format(time.RFC3339Nano) ||
		got["createdDateTime"] != created.Format(time.RFC3339Nano) {
		t.Fatalf("patched %v", got)
	}
	if st := s.UserPFXCertificates(tenantID)[0]; string(st.EncryptedPfxBlob) != "pfx bytes" || st.IntendedPurpose != "smimeSigning" {
		t.Fatalf("PATCH lost or did not apply fields: %+v", st)
	}

	for name, patch := range map[string]map[string]any{
		"thumbprint is part of the id": {"thumbprint": thumb(2)},
		"unknown property":             {"color": "blue"},
		"bad enum":                     {"intendedPurpose": "email"},
		"wrong @odata.type":            {"@odata.type": "#microsoft.graph.user"},
	} {
		r := call(t, s, token, http.MethodPatch, pfxPath+"/"+wantID, patch)
		if r.status != http.StatusBadRequest || r.errorCode(t) != "BadRequest" {
			t.Fatalf("%s: %d %s", name, r.status, r.body)
		}
	}

	expectStatus(t, call(t, s, token, http.MethodDelete, pfxPath+"/"+wantID, nil), http.StatusNoContent)
	expectStatus(t, call(t, s, token, http.MethodGet, pfxPath+"/"+wantID, nil), http.StatusNotFound)
	expectStatus(t, call(t, s, token, http.MethodDelete, pfxPath+"/"+wantID, nil), http.StatusNotFound)
	expectStatus(t, call(t, s, token, http.MethodPatch, pfxPath+"/"+wantID, map[string]any{"keyName": "k"}), http.StatusNotFound)
}

func TestUserPfxCertificateCreateValidation(t *testing.T) {
	s := start(t, baseConfig())
	token := secretToken(t, s)
	edit := func(k string, v any) map[string]any {
		b := pfxBody(userUPN, thumb(1))
		b[k] = v
		return b
	}
	for name, body := range map[string]any{
		"unknown user":        pfxBody("bob@contoso.example", thumb(1)),
		"bad padding":         edit("paddingScheme", "rsa"),
		"short thumbprint":    edit("thumbprint", "abc"),
		"blob not base64":     edit("encryptedPfxBlob", "***"),
		"date not a date":     edit("startDateTime", "yesterday"),
		"not an object":       "[1,2]",
		"property of another": edit("tenantId", "x"),
	} {
		r := call(t, s, token, http.MethodPost, pfxPath, body)
		if r.status != http.StatusBadRequest {
			t.Fatalf("%s: %d %s", name, r.status, r.body)
		}
	}
	if n := len(s.UserPFXCertificates(tenantID)); n != 0 {
		t.Fatalf("%d records stored from invalid requests", n)
	}
}

// collect follows @odata.nextLink from path and returns the page sizes and all ids.
func collect(t *testing.T, s *graphsim.Server, token, path string) ([]int, []string) {
	t.Helper()
	var sizes []int
	var ids []string
	for next := path; next != ""; {
		r := call(t, s, token, http.MethodGet, next, nil)
		expectStatus(t, r, http.StatusOK)
		page := r.json(t)
		values, _ := page["value"].([]any)
		sizes = append(sizes, len(values))
		for _, v := range values {
			ids = append(ids, v.(map[string]any)["id"].(string))
		}
		next, _ = page["@odata.nextLink"].(string)
		if next != "" && !strings.HasPrefix(next, s.URL()+"/beta/") {
			t.Fatalf("nextLink %q is not a full URL of the emulator", next)
		}
	}
	return sizes, ids
}

func TestUserPfxCertificateListPagingAndFilters(t *testing.T) {
	cfg := baseConfig()
	cfg.PageSize = 2
	cfg.Tenants[0].Users = append(cfg.Tenants[0].Users, graphsim.User{ID: "b0b00000-0000-0000-0000-000000000001", UserPrincipalName: "bob@contoso.example"})
	s := start(t, cfg)
	token := secretToken(t, s)
	for i := range 5 {
		expectStatus(t, call(t, s, token, http.MethodPost, pfxPath, pfxBody(userUPN, thumb(i))), http.StatusCreated)
	}
	expectStatus(t, call(t, s, token, http.MethodPost, pfxPath, pfxBody("bob@contoso.example", thumb(9))), http.StatusCreated)

	sizes, ids := collect(t, s, token, pfxPath)
	if fmt.Sprint(sizes) != "[2 2 2]" || len(ids) != 6 {
		t.Fatalf("pages %v ids %v", sizes, ids)
	}

	filter := func(f string) string { return pfxPath + "?$filter=" + url.QueryEscape(f) }
	alice := fmt.Sprintf("tolower(userPrincipalName) eq '%s'", strings.ToLower(userUPN))
	sizes, ids = collect(t, s, token, filter(alice))
	if fmt.Sprint(sizes) != "[2 2 1]" {
		t.Fatalf("filtered pages %v", sizes)
	}
	for _, id := range ids {
		if !strings.HasPrefix(id, strings.ReplaceAll(userID, "-", "")) {
			t.Fatalf("filter returned %s", id)
		}
	}

	_, ids = collect(t, s, token, filter(alice+fmt.Sprintf(" and tolower(thumbprint) eq '%s'", thumb(3))))
	if len(ids) != 1 || !strings.HasSuffix(ids[0], thumb(3)) {
		t.Fatalf("upn+thumbprint filter returned %v", ids)
	}
	// tolower() of a value is compared with the literal as written: an upper-case literal never matches.
	_, ids = collect(t, s, token, filter("tolower(userPrincipalName) eq '"+userUPN+"'"))
	if len(ids) != 0 {
		t.Fatalf("mixed-case literal matched %v", ids)
	}
	r := call(t, s, token, http.MethodGet, filter("startswith(userPrincipalName,'a')"), nil)
	expectStatus(t, r, http.StatusBadRequest)
}

func TestDeletedUserPfxCertificateLingersInLists(t *testing.T) {
	clk := newClock()
	cfg := baseConfig()
	cfg.Now = clk.Now
	cfg.Faults.DeleteLinger = time.Minute
	s := start(t, cfg)
	token := secretToken(t, s)
	r := call(t, s, token, http.MethodPost, pfxPath, pfxBody(userUPN, thumb(1)))
	expectStatus(t, r, http.StatusCreated)
	id := r.json(t)["id"].(string)

	expectStatus(t, call(t, s, token, http.MethodDelete, pfxPath+"/"+id, nil), http.StatusNoContent)
	expectStatus(t, call(t, s, token, http.MethodGet, pfxPath+"/"+id, nil), http.StatusNotFound)
	if _, ids := collect(t, s, token, pfxPath); len(ids) != 1 || ids[0] != id {
		t.Fatalf("right after the delete the list shows %v, want the deleted record", ids)
	}
	clk.Advance(time.Minute)
	if _, ids := collect(t, s, token, pfxPath); len(ids) != 0 {
		t.Fatalf("after the linger the list shows %v", ids)
	}
}

// stateForm is one URL form of managedDeviceCertificateStates: the configuration it is rooted at and the
// segments between that configuration's id and the collection.
type stateForm struct{ profileType, segments string }

// stateForms are the forms today's create page lists (every profile's own type cast, and the Windows Wi-Fi
// nesting), seed 004's Windows Phone VPN nesting, and the casts of seed 004's four other types.
func stateForms() []stateForm {
	var forms []stateForm
	for _, t := range []string{"iosScep", "macOSScep", "androidScep", "windows81SCEP", "androidForWorkScep", "windowsPhone81SCEP",
		"iosPkcs", "iosImportedPFX", "macOSPkcs", "macOSImportedPFX", "androidPkcs", "androidImportedPFX",
		"androidForWorkPkcs", "androidForWorkImportedPFX", "androidWorkProfilePkcs", "androidWorkProfileScep",
		"androidDeviceOwnerPkcs", "androidDeviceOwnerScep", "androidDeviceOwnerImportedPFX", "aospDeviceOwnerPkcs",
		"aospDeviceOwnerScep", "windows10Pkcs", "windows10ImportedPFX", "windowsPhone81ImportedPFX"} {
		forms = append(forms, stateForm{t, "microsoft.graph." + t + "CertificateProfile"})
	}
	for _, t := range []string{"windows10Pkcs", "windows81SCEP", "windows10ImportedPFX", "windowsPhone81ImportedPFX"} {
		forms = append(forms, stateForm{t, "microsoft.graph.windowsWifiEnterpriseEAPConfiguration/identityCertificateForClientAuthentication/microsoft.graph." + t + "CertificateProfile"})
	}
	// Seed 004 prints a double slash in its nested forms; Graph collapses it.
	return append(forms, stateForm{"windowsPhone81SCEP",
		"microsoft.graph.windowsPhone81VpnConfiguration/identityCertificate//microsoft.graph.windowsPhone81SCEPCertificateProfile"})
}

func TestManagedDeviceCertificateStatesUnderEveryRoutedURLForm(t *testing.T) {
	cfg := baseConfig()
	cfg.Limits.Disabled = true // 29 forms write more than one app's budget
	s := start(t, cfg)
	token := secretToken(t, s)
	for i, f := range stateForms() {
		t.Run(fmt.Sprintf("%02d-%s", i, f.profileType), func(t *testing.T) {
			cfgID := fmt.Sprintf("c0ff0000-0000-0000-0000-%012d", i)
			base := "/beta/deviceManagement/deviceConfigurations/" + cfgID + "/" + f.segments + "/managedDeviceCertificateStates"
			body := map[string]any{
				"@odata.type": "#microsoft.graph.managedDeviceCertificateState", "devicePlatform": "androidForWork",
				"certificateKeyUsage": "digitalSignature", "deviceDisplayName": "phone", "certificateKeyLength": 2048,
				"certificateExpirationDateTime": "2027-01-01T00:00:00Z", "certificateThumbprint": thumb(i),
				"certificateEnhancedKeyUsage": "clientAuth", "certificateIssuanceState": "issued", "certificateRevokeStatus": "none",
			}
			// Unknown configuration first.
			r := call(t, s, token, http.MethodPost, base+"/", body)
			expectStatus(t, r, http.StatusNotFound)

			profileID := cfgID
			if strings.Contains(f.segments, "/") { // nested: the configuration uses a profile of its own id
				profileID = fmt.Sprintf("b0ff0000-0000-0000-0000-%012d", i)
				nesting := strings.TrimPrefix(strings.SplitN(f.segments, "/", 2)[0], "microsoft.graph.")
				s.AddConfiguration(tenantID, graphsim.DeviceConfiguration{ID: cfgID, ProfileType: nesting, IdentityCertificateID: profileID})
			}
			s.AddDeviceConfiguration(tenantID, profileID, f.profileType)
			r = call(t, s, token, http.MethodPost, base+"/", body)
			expectStatus(t, r, http.StatusCreated)
			id, _ := r.json(t)["id"].(string)
			if !guidRE.MatchString(id) {
				t.Fatalf("id %q is not a GUID", id)
			}
			if got := r.json(t); got["certificateKeyLength"] != float64(2048) || got["deviceConfigurationId"] != nil {
				t.Fatalf("created %v", got)
			}
			if _, ids := collect(t, s, token, base); len(ids) != 1 || ids[0] != id {
				t.Fatalf("list %v", ids)
			}
			r = call(t, s, token, http.MethodPatch, base+"/"+id, map[string]any{"deviceDisplayName": "tablet"})
			expectStatus(t, r, http.StatusOK)
			if got := r.json(t); got["deviceDisplayName"] != "tablet" || got["certificateThumbprint"] != thumb(i) || got["certificateEnhancedKeyUsage"] != "clientAuth" {
				t.Fatalf("patched %v", got)
			}
			var rec *graphsim.ManagedDeviceCertificateState
			for _, st := range s.ManagedDeviceCertificateStates(tenantID) {
				if st.ID == id {
					rec = &st
				}
			}
			// A nested form reaches the profile's own records.
			if rec == nil || rec.DeviceConfigurationID != profileID || rec.ProfileType != f.profileType || rec.DeviceDisplayName != "tablet" {
				t.Fatalf("stored %+v", rec)
			}
			expectStatus(t, call(t, s, token, http.MethodDelete, base+"/"+id, nil), http.StatusNoContent)
			expectStatus(t, call(t, s, token, http.MethodGet, base+"/"+id, nil), http.StatusNotFound)
		})
	}

	s.AddDeviceConfiguration(tenantID, "ios-profile", "iosScep")
	s.AddDeviceConfiguration(tenantID, "afw-profile", "androidForWorkScep")
	root := "/beta/deviceManagement/deviceConfigurations/"
	// A configuration is reachable only through the cast of its own profile type.
	r := call(t, s, token, http.MethodGet, root+"ios-profile/microsoft.graph.macOSScepCertificateProfile/managedDeviceCertificateStates", nil)
	expectStatus(t, r, http.StatusNotFound)
	r = call(t, s, token, http.MethodPost, root+"ios-profile/microsoft.graph.iosScepCertificateProfile/managedDeviceCertificateStates",
		map[string]any{"devicePlatform": "blackberry"})
	expectStatus(t, r, http.StatusBadRequest)
	// Properties today's type lacks are refused, as a closed OData type does.
	for _, gone := range []string{"serverUrl", "enhancedKeyUsage"} {
		r = call(t, s, token, http.MethodPost, root+"ios-profile/microsoft.graph.iosScepCertificateProfile/managedDeviceCertificateStates",
			map[string]any{gone: "x"})
		expectStatus(t, r, http.StatusBadRequest)
	}
	// Seed 004's androidForWork form has no cast after the id: the service cannot route it.
	r = call(t, s, token, http.MethodGet, root+"afw-profile/identityCertificate//microsoft.graph.androidForWorkScepCertificateProfile/managedDeviceCertificateStates", nil)
	expectStatus(t, r, http.StatusBadRequest)
	if msg := r.json(t)["error"].(map[string]any)["message"]; msg != "Resource not found for the segment 'identityCertificate'." {
		t.Errorf("message %q", msg)
	}
	// An unknown cast does not route either.
	r = call(t, s, token, http.MethodGet, root+"ios-profile/microsoft.graph.fooCertificateProfile/managedDeviceCertificateStates", nil)
	expectStatus(t, r, http.StatusBadRequest)
}

func TestGeneratedIDsFollowTheSeed(t *testing.T) {
	firstID := func(seed int64) string {
		cfg := baseConfig()
		cfg.Seed = seed
		cfg.Tenants[0].DeviceConfigurations = []graphsim.DeviceConfiguration{{ID: "cfg", ProfileType: "microsoft.graph.iosScepCertificateProfile"}}
		s := start(t, cfg)
		r := call(t, s, secretToken(t, s), http.MethodPost,
			"/beta/deviceManagement/deviceConfigurations/cfg/microsoft.graph.iosScepCertificateProfile/managedDeviceCertificateStates", map[string]any{})
		expectStatus(t, r, http.StatusCreated)
		return r.json(t)["id"].(string)
	}
	a, b, c := firstID(1), firstID(1), firstID(2)
	if a != b || a == c {
		t.Fatalf("seed 1 gave %s and %s, seed 2 gave %s", a, b, c)
	}
}

func TestPfxRecryptionRequests(t *testing.T) {
	clk := newClock()
	cfg := baseConfig()
	cfg.Now = clk.Now
	s := start(t, cfg)
	token := secretToken(t, s)
	body := map[string]any{
		"@odata.type": "#microsoft.graph.pfxRecryptionRequest", "tenantId": tenantID, "userId": userID,
		"deviceId": "6de0af45-af45-6de0-45af-e06d45afe06d", "profileId": "6389d896-d896-6389-96d8-896396d88963",
		"thumbprint": thumb(1), "deviceKeyThumbprint": thumb(2), "status": 6, "sourceType": 10,
	}
	r := call(t, s, token, http.MethodPost, "/beta/pfxRecryptionRequests", body)
	expectStatus(t, r, http.StatusCreated)
	got := r.json(t)
	id, _ := got["id"].(string)
	if !guidRE.MatchString(id) || got["eTag"] == "" || got["createdTime"] != clk.Now().Format(time.RFC3339Nano) ||
		got["status"] != float64(6) || got["sourceType"] != float64(10) {
		t.Fatalf("created %v", got)
	}
	r = call(t, s, token, http.MethodGet, "/beta/pfxRecryptionRequests/"+id, nil)
	expectStatus(t, r, http.StatusOK)
	if r.json(t)["deviceKeyThumbprint"] != thumb(2) {
		t.Fatalf("read %s", r.body)
	}
	expectStatus(t, call(t, s, token, http.MethodDelete, "/beta/pfxRecryptionRequests/"+id, nil), http.StatusNoContent)
	expectStatus(t, call(t, s, token, http.MethodGet, "/beta/pfxRecryptionRequests/"+id, nil), http.StatusNotFound)

	body["deviceId"] = "not-a-guid"
	expectStatus(t, call(t, s, token, http.MethodPost, "/beta/pfxRecryptionRequests", body), http.StatusBadRequest)
	expectStatus(t, call(t, s, token, http.MethodPatch, "/beta/pfxRecryptionRequests/"+id, body), http.StatusNotFound)
}

func TestPfxUserCertificates(t *testing.T) {
	clk := newClock()
	cfg := baseConfig()
	cfg.Now = clk.Now
	s := start(t, cfg)
	token := secretToken(t, s)
	const id = "5a7c4a1e-0000-4000-8000-000000000001"
	path := "/beta/pfxUserCertificates/" + id

	expectStatus(t, call(t, s, token, http.MethodGet, path, nil), http.StatusNotFound)
	expectStatus(t, call(t, s, token, http.MethodPatch, path, map[string]any{"status": 1}), http.StatusNotFound)

	s.PutPfxUserCertificate(tenantID, graphsim.PfxUserCertificate{ID: id, TenantID: tenantID, UserID: userID,
		Thumbprint: thumb(1), UserUpn: userUPN, EncryptedPfxBlob: "cGZ4", EncryptedPfxPassword: "cHc=", PaddingScheme: 5, ETag: "v1"})
	r := call(t, s, token, http.MethodGet, path, nil)
	expectStatus(t, r, http.StatusOK)
	if got := r.json(t); got["paddingScheme"] != float64(5) || got["encryptedPfxPassword"] != "" || got["encryptedPfxBlob"] != "AA==" {
		t.Fatalf("read %v", got)
	}

	clk.Advance(time.Minute)
	r = call(t, s, token, http.MethodPatch, path, map[string]any{"@odata.type": "#microsoft.graph.pfxUserCertificate", "status": 2, "intendedPurpose": 1})
	expectStatus(t, r, http.StatusOK)
	got := r.json(t)
	if got["status"] != float64(2) || got["intendedPurpose"] != float64(1) || got["eTag"] == "v1" ||
		got["lastModifiedTime"] != clk.Now().Format(time.RFC3339Nano) {
		t.Fatalf("patched %v", got)
	}
	if st := s.PfxUserCertificates(tenantID); len(st) != 1 || st[0].EncryptedPfxBlob != "cGZ4" || st[0].Status != 2 {
		t.Fatalf("stored %+v", st)
	}
	for name, patch := range map[string]map[string]any{
		"padding out of range": {"paddingScheme": 9},
		"status not Int32":     {"status": "two"},
		"userId not a GUID":    {"userId": "bob"},
	} {
		if r := call(t, s, token, http.MethodPatch, path, patch); r.status != http.StatusBadRequest {
			t.Fatalf("%s: %d %s", name, r.status, r.body)
		}
	}
}

func TestPermissionsComeFromTheAppRoles(t *testing.T) {
	cfg := baseConfig()
	cfg.Tenants[0].Apps[0].Roles = []string{"DeviceManagementConfiguration.Read.All"}
	s := start(t, cfg)
	token := secretToken(t, s)
	expectStatus(t, call(t, s, token, http.MethodGet, pfxPath, nil), http.StatusOK)
	if r := call(t, s, token, http.MethodPost, pfxPath, pfxBody(userUPN, thumb(1))); r.status != http.StatusForbidden || r.errorCode(t) != "Forbidden" {
		t.Fatalf("write with a read role: %d %s", r.status, r.body)
	}
	if r := call(t, s, token, http.MethodGet, "/beta/users/"+userUPN, nil); r.status != http.StatusForbidden {
		t.Fatalf("user read without User.Read.All: %d %s", r.status, r.body)
	}
}

func TestUnknownRoutesAndErrorEnvelope(t *testing.T) {
	s := start(t, baseConfig())
	token := secretToken(t, s)
	req := call(t, s, token, http.MethodPut, pfxPath, pfxBody(userUPN, thumb(1)))
	expectStatus(t, req, http.StatusBadRequest)
	e := req.json(t)["error"].(map[string]any)
	inner, _ := e["innerError"].(map[string]any)
	if inner["request-id"] == "" || inner["request-id"] != req.header.Get("request-id") || inner["date"] == nil {
		t.Fatalf("error envelope %v (request-id header %q)", e, req.header.Get("request-id"))
	}
	expectStatus(t, call(t, s, token, http.MethodGet, "/beta/deviceManagement/somethingElse", nil), http.StatusBadRequest)

	// Intune's messages are themselves JSON strings.
	r := call(t, s, token, http.MethodGet, pfxPath+"/nope", nil)
	expectStatus(t, r, http.StatusNotFound)
	if msg := r.errorMessage(t); !strings.HasPrefix(msg, "{") || !strings.Contains(msg, "nope") {
		t.Fatalf("message %q", msg)
	}
}
