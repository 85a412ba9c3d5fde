package graph

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

func TestEndpointsForEveryCloud(t *testing.T) {
	tests := []struct {
		cloud        Cloud
		graph, login string
	}{
		{CloudPublic, "https://graph.microsoft.com", "https://login.microsoftonline.com/"},
		{"", "https://graph.microsoft.com", "https://login.microsoftonline.com/"},
		{CloudUSGovernment, "https://graph.microsoft.us", "https://login.microsoftonline.us/"},
		{CloudUSGovernmentDoD, "https://dod-graph.microsoft.us", "https://login.microsoftonline.us/"},
		{CloudChina, "https://microsoftgraph.chinacloudapi.cn", "https://login.chinacloudapi.cn/"},
	}
	for _, tt := range tests {
		e, err := EndpointsFor(tt.cloud)
		if err != nil || e.GraphRoot != tt.graph || e.AuthorityHost != tt.login {
			t.Errorf("EndpointsFor(%q) = %+v, %v", tt.cloud, e, err)
		}
		if e.Scope() != tt.graph+"/.default" {
			t.Errorf("Scope() = %q", e.Scope())
		}
	}
	if _, err := EndpointsFor("Mars"); err == nil {
		t.Error("unknown cloud accepted")
	}
}

func TestUserPFXCertificateID(t *testing.T) {
	got := UserPFXCertificateID("1A2b3c4d-0000-1111-2222-333344445555", "ABCDEF0123")
	if want := "1a2b3c4d000011112222333344445555-abcdef0123"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestResolveUserIDEscapesAndCachesCaseInsensitively(t *testing.T) {
	ts := newTestServer(t, scripted())
	c, _, _ := newTestClient(t, ts, nil)
	upn := "bob_fabrikam.com#EXT#@contoso.onmicrosoft.com"
	for _, u := range []string{upn, strings.ToUpper(upn)} {
		if id, err := c.ResolveUserID(context.Background(), u); err != nil || id != "u1" {
			t.Fatalf("ResolveUserID(%q) = %q, %v", u, id, err)
		}
	}
	reqs := ts.seen()
	if len(reqs) != 1 {
		t.Fatalf("server saw %d requests, want 1 (second answer from the cache)", len(reqs))
	}
	if want := "/beta/users/bob_fabrikam.com%23EXT%23@contoso.onmicrosoft.com"; reqs[0].EscapedPath != want {
		t.Errorf("path %q, want %q", reqs[0].EscapedPath, want)
	}
	if reqs[0].RawQuery != "$select=id" {
		t.Errorf("query %q", reqs[0].RawQuery)
	}
}

func TestListUserPFXCertificatesFilterIsEscaped(t *testing.T) {
	ts := newTestServer(t, func(w http.ResponseWriter, _ *http.Request, _ int) { writeJSON(w, 200, `{"value":[]}`) })
	c, _, _ := newTestClient(t, ts, nil)
	ctx := context.Background()
	calls := []struct{ upn, thumbprint, want string }{
		{"O'Brien+x y@Contoso.com", "ABCdef", "tolower(userPrincipalName) eq 'o''brien+x y@contoso.com' and tolower(thumbprint) eq 'abcdef'"},
		{"alice@contoso.com", "", "tolower(userPrincipalName) eq 'alice@contoso.com'"},
		{"", "", ""},
	}
	for _, cl := range calls {
		if _, err := c.ListUserPFXCertificates(ctx, cl.upn, cl.thumbprint); err != nil {
			t.Fatal(err)
		}
	}
	for i, r := range ts.seen() {
		if strings.Contains(r.RawQuery, "+") {
			t.Errorf("raw query %q has '+': Graph would not read it as intended", r.RawQuery)
		}
		q, err := url.ParseQuery(r.RawQuery)
		if err != nil {
			t.Fatal(err)
		}
		if got := q.Get("$filter"); got != calls[i].want {
			t.Errorf("$filter = %q, want %q", got, calls[i].want)
		}
		if r.EscapedPath != "/beta/deviceManagement/userPfxCertificates" {
			t.Errorf("path %q", r.EscapedPath)
		}
	}
}

func TestListFollowsNextLinkAcrossPages(t *testing.T) {
	var ts *testServer
	ts = newTestServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		page := n - 1
		next := ""
		if page < 2 {
			// An opaque, whole-URL nextLink with its own query, as Graph sends it.
			next = fmt.Sprintf(`,"@odata.nextLink":"%s/beta/deviceManagement/userPfxCertificates?$filter=x&$skiptoken=p%d"`, ts.URL, page+1)
		}
		writeJSON(w, 200, fmt.Sprintf(`{"value":[{"id":"a%d"},{"id":"b%d"}]%s}`, page, page, next))
	})
	c, _, _ := newTestClient(t, ts, nil)
	got, err := c.ListUserPFXCertificates(context.Background(), "a@b.c", "")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, g := range got {
		ids = append(ids, g.ID)
	}
	if want := []string{"a0", "b0", "a1", "b1", "a2", "b2"}; !slices.Equal(ids, want) {
		t.Errorf("ids = %v, want %v", ids, want)
	}
	reqs := ts.seen()
	if len(reqs) != 3 || reqs[1].RawQuery != "$filter=x&$skiptoken=p1" || reqs[2].RawQuery != "$filter=x&$skiptoken=p2" {
		t.Errorf("requests = %+v; want the nextLinks verbatim", reqs)
	}
}

func TestListRefusesNextLinkToAnotherHost(t *testing.T) {
	other := newTestServer(t, func(w http.ResponseWriter, _ *http.Request, _ int) { writeJSON(w, 200, `{"value":[]}`) })
	ts := newTestServer(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		writeJSON(w, 200, `{"value":[{"id":"a"}],"@odata.nextLink":"`+other.URL+`/beta/deviceManagement/userPfxCertificates?$skiptoken=1"}`)
	})
	c, _, _ := newTestClient(t, ts, nil)
	if _, err := c.ListUserPFXCertificates(context.Background(), "", ""); err == nil || !strings.Contains(err.Error(), "nextLink") {
		t.Fatalf("err = %v, want nextLink refusal", err)
	}
	if n := len(other.seen()); n != 0 {
		t.Errorf("the foreign host got %d requests (and the bearer token)", n)
	}
}

func TestManagedDeviceCertificateStateURLForms(t *testing.T) {
	const cfg, id = "cfg/1 2", "state/9 z"
	const ecfg, eid = "cfg%2F1%202", "state%2F9%20z" // url-path-escaped by hand
	// Every profile type is its own type cast (today's create page lists these, and OData routes a cast for
	// every type with the navigation); seed 004's "identityCertificate" form for androidForWorkScep cannot route.
	type form struct {
		profile CertificateProfile
		path    string
	}
	forms := []form{
		{CertificateProfile{Type: ProfileIOSScep}, "/microsoft.graph.iosScepCertificateProfile"},
		{CertificateProfile{Type: ProfileMacOSScep}, "/microsoft.graph.macOSScepCertificateProfile"},
		{CertificateProfile{Type: ProfileAndroidScep}, "/microsoft.graph.androidScepCertificateProfile"},
		{CertificateProfile{Type: ProfileWindows81SCEP}, "/microsoft.graph.windows81SCEPCertificateProfile"},
		{CertificateProfile{Type: ProfileAndroidForWorkScep}, "/microsoft.graph.androidForWorkScepCertificateProfile"},
		{CertificateProfile{Type: ProfileWindowsPhone81SCEP}, "/microsoft.graph.windowsPhone81SCEPCertificateProfile"},
		{CertificateProfile{Type: ProfileIOSPkcs}, "/microsoft.graph.iosPkcsCertificateProfile"},
		{CertificateProfile{Type: ProfileIOSImportedPFX}, "/microsoft.graph.iosImportedPFXCertificateProfile"},
		{CertificateProfile{Type: ProfileMacOSPkcs}, "/microsoft.graph.macOSPkcsCertificateProfile"},
		{CertificateProfile{Type: ProfileMacOSImportedPFX}, "/microsoft.graph.macOSImportedPFXCertificateProfile"},
		{CertificateProfile{Type: ProfileAndroidPkcs}, "/microsoft.graph.androidPkcsCertificateProfile"},
		{CertificateProfile{Type: ProfileAndroidImportedPFX}, "/microsoft.graph.androidImportedPFXCertificateProfile"},
		{CertificateProfile{Type: ProfileAndroidForWorkPkcs}, "/microsoft.graph.androidForWorkPkcsCertificateProfile"},
		{CertificateProfile{Type: ProfileAndroidForWorkImportedPFX}, "/microsoft.graph.androidForWorkImportedPFXCertificateProfile"},
		{CertificateProfile{Type: ProfileAndroidWorkProfilePkcs}, "/microsoft.graph.androidWorkProfilePkcsCertificateProfile"},
		{CertificateProfile{Type: ProfileAndroidWorkProfileScep}, "/microsoft.graph.androidWorkProfileScepCertificateProfile"},
		{CertificateProfile{Type: ProfileAndroidDeviceOwnerPkcs}, "/microsoft.graph.androidDeviceOwnerPkcsCertificateProfile"},
		{CertificateProfile{Type: ProfileAndroidDeviceOwnerScep}, "/microsoft.graph.androidDeviceOwnerScepCertificateProfile"},
		{CertificateProfile{Type: ProfileAndroidDeviceOwnerImportedPFX}, "/microsoft.graph.androidDeviceOwnerImportedPFXCertificateProfile"},
		{CertificateProfile{Type: ProfileAospDeviceOwnerPkcs}, "/microsoft.graph.aospDeviceOwnerPkcsCertificateProfile"},
		{CertificateProfile{Type: ProfileAospDeviceOwnerScep}, "/microsoft.graph.aospDeviceOwnerScepCertificateProfile"},
		{CertificateProfile{Type: ProfileWindows10Pkcs}, "/microsoft.graph.windows10PkcsCertificateProfile"},
		{CertificateProfile{Type: ProfileWindows10ImportedPFX}, "/microsoft.graph.windows10ImportedPFXCertificateProfile"},
		{CertificateProfile{Type: ProfileWindowsPhone81ImportedPFX}, "/microsoft.graph.windowsPhone81ImportedPFXCertificateProfile"},
		{CertificateProfile{Type: ProfileWindows10Pkcs, Via: ViaWindowsWifiEnterpriseEAP},
			"/microsoft.graph.windowsWifiEnterpriseEAPConfiguration/identityCertificateForClientAuthentication/microsoft.graph.windows10PkcsCertificateProfile"},
		{CertificateProfile{Type: ProfileWindows81SCEP, Via: ViaWindowsWifiEnterpriseEAP},
			"/microsoft.graph.windowsWifiEnterpriseEAPConfiguration/identityCertificateForClientAuthentication/microsoft.graph.windows81SCEPCertificateProfile"},
		{CertificateProfile{Type: ProfileWindows10ImportedPFX, Via: ViaWindowsWifiEnterpriseEAP},
			"/microsoft.graph.windowsWifiEnterpriseEAPConfiguration/identityCertificateForClientAuthentication/microsoft.graph.windows10ImportedPFXCertificateProfile"},
		{CertificateProfile{Type: ProfileWindowsPhone81ImportedPFX, Via: ViaWindowsWifiEnterpriseEAP},
			"/microsoft.graph.windowsWifiEnterpriseEAPConfiguration/identityCertificateForClientAuthentication/microsoft.graph.windowsPhone81ImportedPFXCertificateProfile"},
		{CertificateProfile{Type: ProfileWindowsPhone81SCEP, Via: ViaWindowsPhone81Vpn},
			"/microsoft.graph.windowsPhone81VpnConfiguration/identityCertificate/microsoft.graph.windowsPhone81SCEPCertificateProfile"},
	}
	if own := len(forms) - 5; len(ProfileTypes()) != own {
		t.Fatalf("ProfileTypes() = %v, want the %d types", ProfileTypes(), own)
	}
	for _, f := range forms {
		t.Run(string(f.profile.Type)+"/"+string(f.profile.Via), func(t *testing.T) {
			ts := newTestServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
				switch r.Method {
				case http.MethodDelete:
					w.WriteHeader(http.StatusNoContent)
				case http.MethodPost:
					writeJSON(w, 201, `{"id":"new"}`)
				default:
					writeJSON(w, 200, `{"id":"x","value":[]}`)
				}
			})
			c, _, _ := newTestClient(t, ts, nil)
			ctx := context.Background()
			p := f.profile
			p.DeviceConfigurationID = cfg
			in := &ManagedDeviceCertificateState{DevicePlatform: "iOS"}
			if _, err := c.CreateManagedDeviceCertificateState(ctx, p, in); err != nil {
				t.Fatal(err)
			}
			if _, err := c.ListManagedDeviceCertificateStates(ctx, p); err != nil {
				t.Fatal(err)
			}
			if _, err := c.GetManagedDeviceCertificateState(ctx, p, id); err != nil {
				t.Fatal(err)
			}
			if _, err := c.UpdateManagedDeviceCertificateState(ctx, p, id, in); err != nil {
				t.Fatal(err)
			}
			if err := c.DeleteManagedDeviceCertificateState(ctx, p, id); err != nil {
				t.Fatal(err)
			}
			coll := "/beta/deviceManagement/deviceConfigurations/" + ecfg + f.path + "/managedDeviceCertificateStates"
			want := []string{"POST " + coll, "GET " + coll, "GET " + coll + "/" + eid, "PATCH " + coll + "/" + eid, "DELETE " + coll + "/" + eid}
			var got []string
			for _, r := range ts.seen() {
				got = append(got, r.Method+" "+r.EscapedPath)
			}
			if !slices.Equal(got, want) {
				t.Errorf("requests\n got %q\nwant %q", got, want)
			}
		})
	}
}

// A nesting takes only the profile types its URL form lists; the wrong pairing is refused before sending.
func TestManagedDeviceCertificateStateNestingMustFitTheProfileType(t *testing.T) {
	for _, p := range []CertificateProfile{
		{DeviceConfigurationID: "c", Type: ProfileIOSScep, Via: ViaWindowsWifiEnterpriseEAP},
		{DeviceConfigurationID: "c", Type: ProfileWindows10Pkcs, Via: ViaWindowsPhone81Vpn},
		{DeviceConfigurationID: "c", Type: ProfileWindows10Pkcs, Via: "Elsewhere"},
		{DeviceConfigurationID: "c", Type: "blackberryScep"},
	} {
		if _, err := p.statesPath(); err == nil {
			t.Errorf("%+v: accepted", p)
		}
	}
}

func TestInvalidAddressesAreRefusedBeforeSending(t *testing.T) {
	ts := newTestServer(t, scripted())
	c, _, _ := newTestClient(t, ts, nil)
	ctx := context.Background()
	if _, err := c.GetUserPFXCertificate(ctx, ""); err == nil {
		t.Error("empty id accepted: it would address the collection")
	}
	if err := c.DeleteUserPFXCertificate(ctx, ".."); err == nil {
		t.Error(`".." accepted`)
	}
	if _, err := c.ListManagedDeviceCertificateStates(ctx, CertificateProfile{DeviceConfigurationID: "c", Type: "blackberryScep"}); err == nil {
		t.Error("unknown profile type accepted")
	}
	if _, err := c.ListManagedDeviceCertificateStates(ctx, CertificateProfile{Type: ProfileIOSScep}); err == nil {
		t.Error("empty deviceConfigurationId accepted")
	}
	if n := len(ts.seen()); n != 0 {
		t.Errorf("server saw %d requests", n)
	}
}

func TestWriteBodiesAreGraphJSON(t *testing.T) {
	ts := newTestServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		// Reads answer as Graph does: the secret parts blanked.
		writeJSON(w, 201, `{"id":"u-th","thumbprint":"th","encryptedPfxBlob":"AA==","encryptedPfxPassword":"","createdDateTime":"2024-01-02T03:04:05.123Z","paddingScheme":"oaepSha512"}`)
	})
	c, _, _ := newTestClient(t, ts, nil)
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	blob := []byte{0x30, 0x82, 0xff, 0x00}
	out, err := c.CreateUserPFXCertificate(context.Background(), &UserPFXCertificate{
		Thumbprint: "th", IntendedPurpose: "smimeEncryption", UserPrincipalName: "a@b.c", StartDateTime: start,
		ExpirationDateTime: start.AddDate(1, 0, 0), ProviderName: "p", KeyName: "k", PaddingScheme: "oaepSha512",
		EncryptedPfxBlob: blob, EncryptedPfxPassword: "ZW5j",
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.ID != "u-th" || !bytes.Equal(out.EncryptedPfxBlob, []byte{0}) || out.CreatedDateTime.IsZero() {
		t.Errorf("decoded %+v", out)
	}
	var sent map[string]any
	if err := json.Unmarshal(ts.seen()[0].Body, &sent); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"@odata.type": "#microsoft.graph.userPFXCertificate", "thumbprint": "th", "intendedPurpose": "smimeEncryption",
		"userPrincipalName": "a@b.c", "startDateTime": "2024-01-01T00:00:00Z", "expirationDateTime": "2025-01-01T00:00:00Z",
		"providerName": "p", "keyName": "k", "paddingScheme": "oaepSha512",
		"encryptedPfxBlob": base64.StdEncoding.EncodeToString(blob), "encryptedPfxPassword": "ZW5j",
	}
	if fmt.Sprint(sent) != fmt.Sprint(want) {
		t.Errorf("sent  %v\nwant %v", sent, want)
	}
	if ct := ts.seen()[0].Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
}

// Int32 zeros that carry meaning are sent; status and isDeleted, which the connector keeps, only when set.
func TestPfxUserCertificateSendsInt32ZeroAndFalse(t *testing.T) {
	ts := newTestServer(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		writeJSON(w, 200, `{"id":"p1","paddingScheme":5,"status":0,"isDeleted":false}`)
	})
	c, _, _ := newTestClient(t, ts, nil)
	sent := func(in *PfxUserCertificate) map[string]any {
		t.Helper()
		out, err := c.UpdatePfxUserCertificate(context.Background(), "p1", in)
		if err != nil || out.PaddingScheme != 5 {
			t.Fatalf("out %+v, err %v", out, err)
		}
		seen := ts.seen()
		var body map[string]any
		_ = json.Unmarshal(seen[len(seen)-1].Body, &body)
		return body
	}
	body := sent(&PfxUserCertificate{ID: "ignored", UserUpn: "a@b.c", PaddingScheme: 5})
	if _, ok := body["intendedPurpose"]; !ok {
		t.Error("intendedPurpose 0 not sent")
	}
	for _, k := range []string{"status", "isDeleted", "id"} {
		if _, ok := body[k]; ok {
			t.Errorf("%s sent although unset", k)
		}
	}
	zero, no := int32(0), false
	body = sent(&PfxUserCertificate{UserUpn: "a@b.c", PaddingScheme: 5, Status: &zero, IsDeleted: &no})
	if body["status"] != float64(0) || body["isDeleted"] != false {
		t.Errorf("set status 0 / isDeleted false not sent: %v", body)
	}
}

func TestErrorDecoding(t *testing.T) {
	// The import service puts a JSON document in message.
	inner := `{"ErrorCode":"InvalidPassword","Message":"The password could not be decrypted","Target":"encryptedPfxPassword"}`
	body, _ := json.Marshal(map[string]any{"error": map[string]any{
		"code": "BadRequest", "message": inner,
		"innerError": map[string]any{"request-id": "rid-body", "date": "2024-01-01T00:00:00", "client-request-id": "cid-body"},
	}})
	tests := []struct {
		name       string
		header     http.Header
		body       []byte
		wantCode   string
		wantMsg    string
		wantReqID  string
		forbidden  string
		statusCode int
	}{
		{"graph error with JSON message", http.Header{"Content-Type": {"application/json"}}, body, "BadRequest", inner, "rid-body", "", 400},
		{"request-id header wins", http.Header{"Request-Id": {"rid-header"}}, body, "BadRequest", inner, "rid-header", "", 400},
		{"proxy HTML page is described, not copied", http.Header{"Content-Type": {"text/html; charset=utf-8"}},
			[]byte("<html>gateway secret-ish page</html>"), "Bad Gateway", "unrecognised error body (36 bytes, text/html)", "", "secret-ish", 502},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := decodeError("userPfxCertificates.create", tt.statusCode, tt.header, tt.body, "cid-sent")
			if e.Code != tt.wantCode || e.Message != tt.wantMsg || e.RequestID != tt.wantReqID || e.ClientRequestID != "cid-sent" {
				t.Errorf("decoded %+v", e)
			}
			s := e.Error()
			for _, part := range []string{"graph: userPfxCertificates.create: ", fmt.Sprint(tt.statusCode), tt.wantCode, tt.wantMsg} {
				if !strings.Contains(s, part) {
					t.Errorf("Error() = %q lacks %q", s, part)
				}
			}
			if tt.forbidden != "" && strings.Contains(s, tt.forbidden) {
				t.Errorf("Error() = %q copies the body", s)
			}
		})
	}
}

func TestFailedCallLeaksNoSecretIntoErrorOrLogs(t *testing.T) {
	const blobMarker, password = "BLOB-MARKER-\x01\x02", "encrypted-password-marker"
	ts := newTestServer(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		graphError(w, 400, "BadRequest", "invalid payload")
	})
	var logs bytes.Buffer
	logger := funcr.New(func(prefix, args string) { logs.WriteString(prefix + args + "\n") }, funcr.Options{Verbosity: 1})
	ctx := log.IntoContext(context.Background(), logger)
	c, _, _ := newTestClient(t, ts, nil)
	_, err := c.CreateUserPFXCertificate(ctx, &UserPFXCertificate{UserPrincipalName: "a@b.c", EncryptedPfxBlob: []byte(blobMarker), EncryptedPfxPassword: password})
	if err == nil {
		t.Fatal("want an error")
	}
	if !strings.Contains(logs.String(), `"operation"="userPfxCertificates.create"`) || !strings.Contains(logs.String(), `"status"=400`) {
		t.Errorf("logs lack the request line:\n%s", logs.String())
	}
	for _, secret := range []string{testToken, password, blobMarker, base64.StdEncoding.EncodeToString([]byte(blobMarker))} {
		if strings.Contains(err.Error(), secret) || strings.Contains(logs.String(), secret) {
			t.Errorf("secret %q leaked: err %q logs %q", secret, err, logs.String())
		}
	}
}

// Intune often answers a PATCH 204 without a body: success, and no record to decode.
func TestPatchAnsweredNoContentIsSuccessWithoutARecord(t *testing.T) {
	ts := newTestServer(t, func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(http.StatusNoContent) })
	c, _, _ := newTestClient(t, ts, nil)
	ctx := context.Background()
	if got, err := c.UpdateUserPFXCertificate(ctx, "u-1", &UserPFXCertificate{Thumbprint: "ab"}); err != nil || got != nil {
		t.Errorf("userPfxCertificate: %+v, %v; want nil, nil", got, err)
	}
	p := CertificateProfile{DeviceConfigurationID: "c", Type: ProfileIOSPkcs}
	if got, err := c.UpdateManagedDeviceCertificateState(ctx, p, "s-1", &ManagedDeviceCertificateState{DeviceDisplayName: "x"}); err != nil || got != nil {
		t.Errorf("managedDeviceCertificateState: %+v, %v; want nil, nil", got, err)
	}
	if got, err := c.UpdatePfxUserCertificate(ctx, "p-1", &PfxUserCertificate{}); err != nil || got != nil {
		t.Errorf("pfxUserCertificate: %+v, %v; want nil, nil", got, err)
	}
}

func TestWriteMayHaveHappened(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"500", &Error{StatusCode: 500}, true},
		{"502", &Error{StatusCode: 502}, true},
		{"504: the gateway gave up, the service may have acted", &Error{StatusCode: 504}, true},
		{"503: not taken", &Error{StatusCode: 503}, false},
		{"429: not taken", &Error{StatusCode: 429}, false},
		{"409", &Error{StatusCode: 409}, false},
		{"400", &Error{StatusCode: 400}, false},
		{"403", &Error{StatusCode: 403}, false},
		{"no answer", &networkError{op: "x", err: io.ErrUnexpectedEOF}, true},
		{"cancelled mid-call", fmt.Errorf("graph: x: %w", context.Canceled), true},
		{"deadline", fmt.Errorf("graph: x: %w", context.DeadlineExceeded), true},
		{"before sending", errors.New("sign-in failed"), false},
	}
	for _, tt := range tests {
		if got := WriteMayHaveHappened(tt.err); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

// A user's principal name never reaches the logs through a request path.
func TestLoggedPathsCarryNoUPN(t *testing.T) {
	for path, want := range map[string]string{
		"/beta/users/alice@contoso.com":                      "/beta/users/{redacted}",
		"/graph/beta/users/bob%40contoso.com":                "/graph/beta/users/{redacted}",
		"/beta/deviceManagement/userPfxCertificates/abc-def": "/beta/deviceManagement/userPfxCertificates/abc-def",
	} {
		if got := loggedPath(path); got != want {
			t.Errorf("loggedPath(%q) = %q, want %q", path, got, want)
		}
	}
}
