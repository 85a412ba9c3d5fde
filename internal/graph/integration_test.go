package graph_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/go-logr/logr/funcr"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/certops/intune-cert-operator/internal/graph"
	"github.com/certops/intune-cert-operator/test/graphsim"
)

const (
	tenantID   = "11111111-2222-3333-4444-555555555555"
	clientID   = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
	secret     = "client-secret-Zq8~never-shown"
	subject    = "system:serviceaccount:intune:operator"
	aliceID    = "0a1b2c3d-0000-4000-8000-00000000a11c"
	aliceUPN   = "alice@contoso.com"
	graphScope = "https://graph.microsoft.com/.default"
)

// fixture is a running emulator with one tenant, one app able to use every credential type, and a user.
type fixture struct {
	sim      *graphsim.Server
	certPEM  []byte // the app's certificate and key, PEM
	keyPEM   []byte
	certFile string
	keyFile  string
}

func start(t *testing.T, mutate func(*graphsim.Config)) *fixture {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "intune-cert-operator test app"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(key)
	f := &fixture{
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
	}
	dir := t.TempDir()
	f.certFile, f.keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(f.certFile, f.certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.keyFile, f.keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := graphsim.Config{
		Tenants: []graphsim.Tenant{{
			ID: tenantID,
			Apps: []graphsim.App{{ClientID: clientID, ClientSecret: secret,
				Certificates: []*x509.Certificate{cert}, FederatedSubjects: []string{subject}}},
			Users: []graphsim.User{{ID: aliceID, UserPrincipalName: aliceUPN, DisplayName: "Alice"}},
		}},
		Limits: graphsim.Limits{Disabled: true},
		Seed:   7,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	sim, err := graphsim.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	f.sim = sim
	return f
}

func (f *fixture) credentialConfig(typ graph.CredentialType) graph.CredentialConfig {
	return graph.CredentialConfig{Type: typ, TenantID: tenantID, ClientID: clientID, AuthorityHost: f.sim.URL(), Transport: f.sim.Client()}
}

func (f *fixture) client(t *testing.T, cred azcore.TokenCredential) *graph.Client {
	t.Helper()
	c, err := graph.New(graph.Options{GraphRoot: f.sim.URL(), Scope: graphScope, Credential: cred, HTTPClient: f.sim.Client()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *fixture) secretClient(t *testing.T) (*graph.Client, azcore.TokenCredential) {
	t.Helper()
	cfg := f.credentialConfig(graph.CredentialClientSecret)
	cfg.ClientSecret = secret
	cred, err := graph.NewCredential(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f.client(t, cred), cred
}

func TestEveryRunnableCredentialTypeSignsIn(t *testing.T) {
	f := start(t, nil)
	pfxPath := filepath.Join(t.TempDir(), "app.pfx")
	// The PFX comes from OpenSSL 3 (AES-256 by default): the form Windows and openssl export today.
	out, err := exec.Command("openssl", "pkcs12", "-export", "-in", f.certFile, "-inkey", f.keyFile,
		"-passout", "pass:pfx-pass", "-out", pfxPath).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl pkcs12 -export: %v\n%s", err, out)
	}
	pfx, _ := os.ReadFile(pfxPath)
	tokenFile := filepath.Join(t.TempDir(), "token")

	tests := []struct {
		name string
		cfg  func() graph.CredentialConfig
	}{
		{"ClientSecret", func() graph.CredentialConfig {
			c := f.credentialConfig(graph.CredentialClientSecret)
			c.ClientSecret = secret
			return c
		}},
		{"ClientCertificate PEM", func() graph.CredentialConfig {
			c := f.credentialConfig(graph.CredentialClientCertificate)
			c.Certificate = append(append([]byte{}, f.certPEM...), f.keyPEM...)
			return c
		}},
		{"ClientCertificate PFX", func() graph.CredentialConfig {
			c := f.credentialConfig(graph.CredentialClientCertificate)
			c.Certificate, c.CertificatePassword = pfx, "pfx-pass"
			return c
		}},
		{"WorkloadIdentity", func() graph.CredentialConfig {
			token, err := f.sim.FederatedToken(tenantID, clientID, subject)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
				t.Fatal(err)
			}
			c := f.credentialConfig(graph.CredentialWorkloadIdentity)
			c.TokenFile = tokenFile
			return c
		}},
		{"Environment", func() graph.CredentialConfig {
			t.Setenv("AZURE_TENANT_ID", tenantID)
			t.Setenv("AZURE_CLIENT_ID", clientID)
			t.Setenv("AZURE_CLIENT_SECRET", secret)
			t.Setenv("AZURE_AUTHORITY_HOST", f.sim.URL())
			return graph.CredentialConfig{Type: graph.CredentialEnvironment, Transport: f.sim.Client()}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cred, err := graph.NewCredential(tt.cfg())
			if err != nil {
				t.Fatalf("NewCredential: %v", err)
			}
			f.sim.ResetJournal()
			id, err := f.client(t, cred).ResolveUserID(context.Background(), "ALICE@contoso.com")
			if err != nil || id != aliceID {
				t.Fatalf("ResolveUserID = %q, %v; want %q", id, err, aliceID)
			}
			j := waitForGraphEntries(t, f.sim, 1)
			if len(j) != 1 || j[0].Status != 200 || j[0].TenantID != tenantID || j[0].ClientID != clientID {
				t.Errorf("journal %+v; want one authenticated Graph call by the app", j)
			}
		})
	}
}

// waitForGraphEntries returns the Graph entries of the journal once it holds at least n. The
// emulator journals a request after its handler returns, which for a dropped connection is after
// the client has already seen the drop.
func waitForGraphEntries(t *testing.T, sim *graphsim.Server, n int) []graphsim.Entry {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		j := graphEntries(sim.Journal())
		if len(j) >= n || time.Now().After(deadline) {
			return j
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// graphEntries keeps the Graph calls of a journal (sign-in requests are journaled too).
func graphEntries(all []graphsim.Entry) []graphsim.Entry {
	var out []graphsim.Entry
	for _, e := range all {
		if strings.HasPrefix(e.Path, "/beta/") {
			out = append(out, e)
		}
	}
	return out
}

func TestWrongSecretFailsWithoutShowingIt(t *testing.T) {
	f := start(t, nil)
	const wrong = "wrong-secret-Kx9~also-never-shown"
	cfg := f.credentialConfig(graph.CredentialClientSecret)
	cfg.ClientSecret = wrong
	cred, err := graph.NewCredential(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.client(t, cred).ResolveUserID(context.Background(), aliceUPN)
	if err == nil {
		t.Fatal("a wrong secret signed in")
	}
	if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), secret) {
		t.Errorf("error shows a secret: %v", err)
	}
	if n := len(graphEntries(f.sim.Journal())); n != 0 {
		t.Errorf("%d Graph calls without a token", n)
	}
}

func TestUserPFXCertificateLifecycle(t *testing.T) {
	f := start(t, nil)
	c, _ := f.secretClient(t)
	ctx := context.Background()
	userID, err := c.ResolveUserID(ctx, aliceUPN)
	if err != nil {
		t.Fatal(err)
	}
	blob := []byte("pfx-bytes-\x00\x01\x02")
	in := &graph.UserPFXCertificate{
		Thumbprint: "abcdef0123456789abcdef0123456789abcdef01", IntendedPurpose: "smimeEncryption", UserPrincipalName: aliceUPN,
		StartDateTime: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), ExpirationDateTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		ProviderName: "Microsoft Software Key Storage Provider", KeyName: "PFXEncryptionKey", PaddingScheme: "oaepSha512",
		EncryptedPfxBlob: blob, EncryptedPfxPassword: "ZW5jcnlwdGVk",
	}
	created, err := c.CreateUserPFXCertificate(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	wantID := graph.UserPFXCertificateID(userID, in.Thumbprint)
	if created.ID != wantID || created.CreatedDateTime.IsZero() {
		t.Errorf("created %+v; want id %q and a creation time", created, wantID)
	}
	if _, err := c.CreateUserPFXCertificate(ctx, in); !graph.IsConflict(err) {
		t.Errorf("second create: %v, want a conflict", err)
	}
	got, err := c.GetUserPFXCertificate(ctx, wantID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.EncryptedPfxBlob, []byte{0}) || got.EncryptedPfxPassword != "" || got.PaddingScheme != "oaepSha512" {
		t.Errorf("read back %+v; want blanked secrets and the enum name", got)
	}
	stored := f.sim.UserPFXCertificates(tenantID)
	if len(stored) != 1 || !bytes.Equal(stored[0].EncryptedPfxBlob, blob) {
		t.Errorf("stored %+v; want the blob as sent", stored)
	}
	// The filter is case-insensitive on both sides.
	list, err := c.ListUserPFXCertificates(ctx, "Alice@Contoso.com", strings.ToUpper(in.Thumbprint))
	if err != nil || len(list) != 1 || list[0].ID != wantID {
		t.Errorf("list = %+v, %v", list, err)
	}
	updated, err := c.UpdateUserPFXCertificate(ctx, wantID, &graph.UserPFXCertificate{KeyName: "OtherKey"})
	if err != nil || updated.KeyName != "OtherKey" {
		t.Errorf("update = %+v, %v", updated, err)
	}
	if err := c.DeleteUserPFXCertificate(ctx, wantID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetUserPFXCertificate(ctx, wantID); !graph.IsNotFound(err) {
		t.Errorf("get after delete: %v, want not found", err)
	}
}

func TestListFollowsPagesOfTheEmulator(t *testing.T) {
	f := start(t, func(c *graphsim.Config) { c.PageSize = 2 })
	c, _ := f.secretClient(t)
	ctx := context.Background()
	want := map[string]bool{}
	for i := range 5 {
		thumb := strings.Repeat(string(rune('a'+i)), 40)
		created, err := c.CreateUserPFXCertificate(ctx, &graph.UserPFXCertificate{Thumbprint: thumb, UserPrincipalName: aliceUPN,
			IntendedPurpose: "smimeSigning", PaddingScheme: "oaepSha256", EncryptedPfxBlob: []byte{1}, EncryptedPfxPassword: "eA=="})
		if err != nil {
			t.Fatal(err)
		}
		want[created.ID] = true
	}
	f.sim.ResetJournal()
	list, err := c.ListUserPFXCertificates(ctx, aliceUPN, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range list {
		delete(want, r.ID)
	}
	if len(list) != 5 || len(want) != 0 {
		t.Errorf("listed %d records, missing %v", len(list), want)
	}
	if j := waitForGraphEntries(t, f.sim, 3); len(j) != 3 || !strings.Contains(j[2].Path, "skiptoken") {
		t.Errorf("journal %+v; want 3 pages", j)
	}
}

func TestManagedDeviceCertificateStatesOnEveryProfileForm(t *testing.T) {
	f := start(t, nil)
	c, _ := f.secretClient(t)
	ctx := context.Background()
	for i, pt := range graph.ProfileTypes() {
		t.Run(string(pt), func(t *testing.T) {
			cfgID := "0000000" + string(rune('0'+i)) + "-aaaa-bbbb-cccc-dddddddddddd"
			p := graph.CertificateProfile{DeviceConfigurationID: cfgID, Type: pt}
			if _, err := c.ListManagedDeviceCertificateStates(ctx, p); !graph.IsNotFound(err) {
				t.Errorf("list under an unknown configuration: %v, want not found", err)
			}
			f.sim.AddDeviceConfiguration(tenantID, cfgID, string(pt))
			expires := time.Date(2027, 3, 4, 5, 6, 7, 0, time.UTC)
			created, err := c.CreateManagedDeviceCertificateState(ctx, p, &graph.ManagedDeviceCertificateState{
				DevicePlatform: "iOS", CertificateKeyUsage: "digitalSignature", DeviceDisplayName: "phone",
				CertificateEnhancedKeyUsage: "clientAuth", CertificateExpirationDateTime: &expires, CertificateKeyLength: 2048,
			})
			if err != nil {
				t.Fatal(err)
			}
			if created.ID == "" || created.CertificateKeyLength != 2048 || created.CertificateExpirationDateTime == nil ||
				!created.CertificateExpirationDateTime.Equal(expires) {
				t.Errorf("created %+v", created)
			}
			list, err := c.ListManagedDeviceCertificateStates(ctx, p)
			if err != nil || len(list) != 1 || list[0].ID != created.ID {
				t.Errorf("list = %+v, %v", list, err)
			}
			if got, err := c.GetManagedDeviceCertificateState(ctx, p, created.ID); err != nil || got.CertificateEnhancedKeyUsage != "clientAuth" {
				t.Errorf("get = %+v, %v", got, err)
			}
			if got, err := c.UpdateManagedDeviceCertificateState(ctx, p, created.ID, &graph.ManagedDeviceCertificateState{DeviceDisplayName: "tablet"}); err != nil || got.DeviceDisplayName != "tablet" {
				t.Errorf("update = %+v, %v", got, err)
			}
			var onServer []string
			for _, s := range f.sim.ManagedDeviceCertificateStates(tenantID) {
				if s.DeviceConfigurationID == cfgID {
					onServer = append(onServer, s.ProfileType)
				}
			}
			if len(onServer) != 1 || onServer[0] != string(pt) {
				t.Errorf("server holds %v under %s, want one %s state", onServer, cfgID, pt)
			}
			if err := c.DeleteManagedDeviceCertificateState(ctx, p, created.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := c.GetManagedDeviceCertificateState(ctx, p, created.ID); !graph.IsNotFound(err) {
				t.Errorf("get after delete: %v", err)
			}
		})
	}
}

func TestPfxRecryptionRequestLifecycle(t *testing.T) {
	f := start(t, nil)
	c, _ := f.secretClient(t)
	ctx := context.Background()
	created, err := c.CreatePfxRecryptionRequest(ctx, &graph.PfxRecryptionRequest{
		TenantID: tenantID, UserID: aliceID, DeviceID: "6de0af45-af45-6de0-45af-e06d45afe06d",
		ProfileID: "6389d896-d896-6389-96d8-896396d88963", Thumbprint: "ab", DeviceKeyThumbprint: "cd", Status: 6, SourceType: 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	if created.ID == "" || created.Status != 6 || created.SourceType != 10 || created.CreatedTime.IsZero() {
		t.Errorf("created %+v", created)
	}
	if got, err := c.GetPfxRecryptionRequest(ctx, created.ID); err != nil || got.DeviceKeyThumbprint != "cd" {
		t.Errorf("get = %+v, %v", got, err)
	}
	if err := c.DeletePfxRecryptionRequest(ctx, created.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetPfxRecryptionRequest(ctx, created.ID); !graph.IsNotFound(err) {
		t.Errorf("get after delete: %v", err)
	}
}

func TestPfxUserCertificateGetAndUpdate(t *testing.T) {
	f := start(t, nil)
	c, _ := f.secretClient(t)
	ctx := context.Background()
	const id = "7b5a9e3c-0000-4000-8000-000000000001"
	if _, err := c.GetPfxUserCertificate(ctx, id); !graph.IsNotFound(err) {
		t.Errorf("get unseeded: %v, want not found", err)
	}
	f.sim.PutPfxUserCertificate(tenantID, graphsim.PfxUserCertificate{ID: id, TenantID: tenantID, UserID: aliceID, UserUpn: aliceUPN, Status: 1})
	got, err := c.GetPfxUserCertificate(ctx, id)
	if err != nil || got.UserUpn != aliceUPN || got.Status == nil || *got.Status != 1 {
		t.Fatalf("get = %+v, %v", got, err)
	}
	zero := int32(0)
	got.Status, got.IntendedPurpose, got.PaddingScheme = &zero, 2, 5
	got.EncryptionKeyName = "PFXEncryptionKey"
	updated, err := c.UpdatePfxUserCertificate(ctx, id, got)
	if err != nil || updated.Status == nil || *updated.Status != 0 || updated.IntendedPurpose != 2 || updated.PaddingScheme != 5 {
		t.Errorf("update = %+v, %v", updated, err)
	}

	// Created by POST, the id Graph assigns; listed; deleted.
	created, err := c.CreatePfxUserCertificate(ctx, &graph.PfxUserCertificate{TenantID: tenantID, UserID: aliceID, Thumbprint: "ab12", UserUpn: aliceUPN})
	if err != nil || created.ID == "" || created.ID == id {
		t.Fatalf("create = %+v, %v", created, err)
	}
	if all, err := c.ListPfxUserCertificates(ctx); err != nil || len(all) != 2 {
		t.Errorf("list = %+v, %v; want both records", all, err)
	}
	if err := c.DeletePfxUserCertificate(ctx, created.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetPfxUserCertificate(ctx, created.ID); !graph.IsNotFound(err) {
		t.Errorf("get after delete: %v", err)
	}
}

// staticToken is a credential with a token Graph will not accept.
type staticToken string

func (s staticToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: string(s), ExpiresOn: time.Now().Add(time.Hour)}, nil
}

func TestErrorsAreClassified(t *testing.T) {
	f := start(t, nil)
	c, _ := f.secretClient(t)
	ctx := context.Background()
	check := func(name string, err error, status int) {
		t.Helper()
		var gerr *graph.Error
		if !errors.As(err, &gerr) || gerr.StatusCode != status || gerr.Code == "" || gerr.RequestID == "" || gerr.ClientRequestID == "" {
			t.Errorf("%s: %#v, want a decoded %d", name, err, status)
			return
		}
		if graph.IsRetryable(err) {
			t.Errorf("%s: %d classified retryable", name, status)
		}
	}
	_, err := c.GetUserPFXCertificate(ctx, "0000-nope")
	check("404", err, 404)
	if !graph.IsNotFound(err) {
		t.Error("404 not IsNotFound")
	}
	_, err = f.client(t, staticToken("not-a-token")).ResolveUserID(ctx, aliceUPN)
	check("401", err, 401)
	_, err = c.CreateUserPFXCertificate(ctx, &graph.UserPFXCertificate{Thumbprint: strings.Repeat("ab", 20), UserPrincipalName: aliceUPN,
		IntendedPurpose: "notAPurpose", PaddingScheme: "oaepSha512", EncryptedPfxBlob: []byte{1}, EncryptedPfxPassword: "eA=="})
	check("400", err, 400)
	in := &graph.UserPFXCertificate{Thumbprint: strings.Repeat("cd", 20), UserPrincipalName: aliceUPN, IntendedPurpose: "smimeSigning",
		PaddingScheme: "oaepSha512", EncryptedPfxBlob: []byte{1}, EncryptedPfxPassword: "eA=="}
	if _, err := c.CreateUserPFXCertificate(ctx, in); err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateUserPFXCertificate(ctx, in)
	check("409", err, 409)
	if !graph.IsConflict(err) {
		t.Error("409 not IsConflict")
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	f := start(t, nil)
	c, _ := f.secretClient(t)
	ctx := context.Background()
	if _, err := c.ListUserPFXCertificates(ctx, aliceUPN, ""); err != nil { // sign in first
		t.Fatal(err)
	}
	f.sim.ResetJournal()
	f.sim.SetFaults(graphsim.Faults{Script: []int{429, 503}, RetryAfter: time.Second})
	if _, err := c.ListUserPFXCertificates(ctx, aliceUPN, ""); err != nil {
		t.Fatal(err)
	}
	j := waitForGraphEntries(t, f.sim, 3)
	if len(j) != 3 || j[0].Status != 429 || j[2].Status != 200 {
		t.Fatalf("journal %+v; want 429, 503, 200", j)
	}
	// Ordering, not speed: no request may arrive inside the window the server asked for.
	for i := 1; i < len(j); i++ {
		if prev := j[i-1]; prev.RetryAfter > 0 && j[i].Time.Before(prev.Time.Add(prev.RetryAfter)) {
			t.Errorf("request %d at %v came inside the %v Retry-After window of the %d at %v",
				i, j[i].Time, prev.RetryAfter, prev.Status, prev.Time)
		}
	}
	if j[0].RetryAfter != time.Second {
		t.Errorf("the 429 asked for %v, want the scripted 1s", j[0].RetryAfter)
	}
}

func TestFailingCallLeaksNothingSecret(t *testing.T) {
	f := start(t, nil)
	c, cred := f.secretClient(t)
	token, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{graphScope}})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	ctx := log.IntoContext(context.Background(),
		funcr.New(func(prefix, args string) { logs.WriteString(prefix + args + "\n") }, funcr.Options{Verbosity: 1}))
	blob := []byte("PFX-BLOB-MARKER-0123456789")
	const password = "ENCRYPTED-PASSWORD-MARKER"
	// An unknown user makes Graph refuse the create.
	_, err = c.CreateUserPFXCertificate(ctx, &graph.UserPFXCertificate{Thumbprint: strings.Repeat("ef", 20), UserPrincipalName: "nobody@contoso.com",
		IntendedPurpose: "smimeEncryption", PaddingScheme: "oaepSha512", EncryptedPfxBlob: blob, EncryptedPfxPassword: password})
	if err == nil {
		t.Fatal("create for an unknown user succeeded")
	}
	if !strings.Contains(logs.String(), "userPfxCertificates.create") {
		t.Fatalf("no request log captured:\n%s", logs.String())
	}
	for name, s := range map[string]string{"client secret": secret, "bearer token": token.Token, "blob": string(blob),
		"blob base64": base64.StdEncoding.EncodeToString(blob), "password": password} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error contains the %s: %v", name, err)
		}
		if strings.Contains(logs.String(), s) {
			t.Errorf("logs contain the %s", name)
		}
	}
}

func TestDroppedCreateIsNotSentAgain(t *testing.T) {
	f := start(t, nil)
	c, _ := f.secretClient(t)
	ctx := context.Background()
	const cfgID = "0000000a-aaaa-bbbb-cccc-dddddddddddd"
	f.sim.AddDeviceConfiguration(tenantID, cfgID, string(graph.ProfileIOSScep))
	p := graph.CertificateProfile{DeviceConfigurationID: cfgID, Type: graph.ProfileIOSScep}
	if _, err := c.ListManagedDeviceCertificateStates(ctx, p); err != nil { // sign in first
		t.Fatal(err)
	}
	f.sim.ResetJournal()
	f.sim.SetFaults(graphsim.Faults{DropRate: 1})
	_, err := c.CreateManagedDeviceCertificateState(ctx, p, &graph.ManagedDeviceCertificateState{DevicePlatform: "iOS"})
	if err == nil || !graph.IsRetryable(err) {
		t.Fatalf("err = %v, want a retryable network error", err)
	}
	// Had the client retried, the earlier attempts would be journaled before the last one.
	if j := waitForGraphEntries(t, f.sim, 1); len(j) != 1 || j[0].Method != http.MethodPost || j[0].Status != 0 {
		t.Errorf("journal %+v; want the one dropped POST and no second one", j)
	}
}

func TestPingNeedsAWorkingCredential(t *testing.T) {
	f := start(t, nil)
	c, _ := f.secretClient(t)
	if err := c.Ping(context.Background()); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if err := f.client(t, staticToken("not-a-token")).Ping(context.Background()); err == nil {
		t.Error("Ping passed with a token Graph refuses")
	}
}

// ManagedIdentity signs in for real through a host's identity endpoint, the form App Service and Container
// Apps provide (IDENTITY_ENDPOINT, IDENTITY_HEADER): the system-assigned identity, a user-assigned one by
// client id, and a refusal that shows no secret. (IMDS, the other form, listens on a fixed link-local
// address this machine cannot serve.)
func TestManagedIdentitySignsInThroughTheIdentityEndpoint(t *testing.T) {
	const (
		systemAssigned = "5a5a5a5a-0000-4000-8000-000000000001"
		userAssigned   = "5a5a5a5a-0000-4000-8000-000000000002"
		// MSAL keeps managed identity tokens for the whole process, so the refusal is tried with an
		// identity no earlier case signed in as.
		refused = "5a5a5a5a-0000-4000-8000-000000000003"
	)
	f := start(t, func(cfg *graphsim.Config) {
		for _, id := range []string{systemAssigned, userAssigned, refused} {
			cfg.Tenants[0].Apps = append(cfg.Tenants[0].Apps, graphsim.App{ClientID: id, ManagedIdentity: true})
		}
	})
	t.Setenv("IDENTITY_ENDPOINT", f.sim.ManagedIdentityEndpoint(tenantID))
	t.Setenv("IDENTITY_HEADER", f.sim.IdentityHeader())

	for _, tt := range []struct{ name, clientID, wantApp string }{
		{"system-assigned", "", systemAssigned},
		{"user-assigned", userAssigned, userAssigned},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cred, err := graph.NewCredential(graph.CredentialConfig{Type: graph.CredentialManagedIdentity, ClientID: tt.clientID, Transport: f.sim.Client()})
			if err != nil {
				t.Fatal(err)
			}
			f.sim.ResetJournal()
			id, err := f.client(t, cred).ResolveUserID(context.Background(), aliceUPN)
			if err != nil || id != aliceID {
				t.Fatalf("ResolveUserID = %q, %v; want %q", id, err, aliceID)
			}
			var signIns int
			for _, e := range f.sim.Journal() {
				if strings.HasPrefix(e.Path, "/"+tenantID+"/msi/token?") && e.Status == http.StatusOK && e.ClientID == tt.wantApp {
					signIns++
				}
			}
			j := waitForGraphEntries(t, f.sim, 1)
			if signIns != 1 || len(j) != 1 || j[0].Status != 200 || j[0].ClientID != tt.wantApp {
				t.Errorf("%d sign-ins, Graph journal %+v; want one sign-in and one Graph call as %s", signIns, j, tt.wantApp)
			}
		})
	}

	t.Run("a wrong identity header", func(t *testing.T) {
		const wrong = "not-the-identity-header"
		t.Setenv("IDENTITY_HEADER", wrong)
		cred, err := graph.NewCredential(graph.CredentialConfig{Type: graph.CredentialManagedIdentity, ClientID: refused, Transport: f.sim.Client()})
		if err != nil {
			t.Fatal(err)
		}
		f.sim.ResetJournal()
		err = f.client(t, cred).Ping(context.Background())
		if err == nil {
			t.Fatal("signed in with a wrong identity header")
		}
		if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), f.sim.IdentityHeader()) {
			t.Errorf("error shows a secret: %v", err)
		}
		if n := len(graphEntries(f.sim.Journal())); n != 0 {
			t.Errorf("%d Graph calls without a token", n)
		}
	})
}
