package graph

import (
	"strings"
	"testing"
)

func TestNewCredentialNamesWhatIsMissingButNoSecret(t *testing.T) {
	const secret = "s3cr3t-value-never-printed"
	tests := []struct {
		name    string
		cfg     CredentialConfig
		mention []string
	}{
		{"secret without ids", CredentialConfig{Type: CredentialClientSecret, ClientSecret: secret}, []string{"tenantID", "clientID"}},
		{"secret without secret", CredentialConfig{Type: CredentialClientSecret, TenantID: "t", ClientID: "c"}, []string{"client secret"}},
		{"certificate without data", CredentialConfig{Type: CredentialClientCertificate, TenantID: "t", ClientID: "c", CertificatePassword: secret}, []string{"certificate"}},
		{"PEM without key", CredentialConfig{Type: CredentialClientCertificate, TenantID: "t", ClientID: "c",
			Certificate: []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")}, []string{"PEM"}},
		{"PFX with wrong password", CredentialConfig{Type: CredentialClientCertificate, TenantID: "t", ClientID: "c",
			Certificate: []byte{0x30, 0x03, 0x02, 0x01, 0x03}, CertificatePassword: secret}, []string{"PFX"}},
		{"workload identity without token file", CredentialConfig{Type: CredentialWorkloadIdentity, TenantID: "t", ClientID: "c"}, []string{"token file"}},
		{"unknown type", CredentialConfig{Type: "Browser", ClientSecret: secret}, []string{"unknown credential type"}},
		{"http authority", CredentialConfig{Type: CredentialClientSecret, TenantID: "t", ClientID: "c", ClientSecret: secret,
			AuthorityHost: "http://login.example"}, []string{"https"}},
		{"unknown cloud", CredentialConfig{Type: CredentialClientSecret, Cloud: "Mars", ClientSecret: secret}, []string{"Mars"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("AZURE_FEDERATED_TOKEN_FILE", "")
			_, err := NewCredential(tt.cfg)
			if err == nil {
				t.Fatal("want an error")
			}
			for _, m := range tt.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("err %q does not mention %q", err, m)
				}
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("err %q contains the secret", err)
			}
		})
	}
}

func TestEnvironmentCredentialReadsAuthorityHostFromEnvironment(t *testing.T) {
	t.Setenv("AZURE_TENANT_ID", "t")
	t.Setenv("AZURE_CLIENT_ID", "c")
	t.Setenv("AZURE_CLIENT_SECRET", "s")
	t.Setenv("AZURE_AUTHORITY_HOST", "http://plain.example/")
	if _, err := NewCredential(CredentialConfig{Type: CredentialEnvironment}); err == nil || !strings.Contains(err.Error(), "https") {
		t.Errorf("err = %v; want the plain-http AZURE_AUTHORITY_HOST refused", err)
	}
	t.Setenv("AZURE_AUTHORITY_HOST", "https://login.example/")
	if _, err := NewCredential(CredentialConfig{Type: CredentialEnvironment}); err != nil {
		t.Errorf("err = %v", err)
	}
}

func TestManagedIdentityCredentialIsConstructed(t *testing.T) {
	// Construction for both kinds of id; signing in is TestManagedIdentitySignsInThroughTheIdentityEndpoint
	// (IMDS is not reachable here and must not be called).
	for _, clientID := range []string{"", "00000000-0000-0000-0000-000000000001"} {
		cred, err := NewCredential(CredentialConfig{Type: CredentialManagedIdentity, ClientID: clientID})
		if err != nil || cred == nil {
			t.Errorf("ClientID %q: %v", clientID, err)
		}
	}
}
