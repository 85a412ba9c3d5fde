package graph

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/certops/intune-cert-operator/internal/pfx"
)

// CredentialType selects the azidentity credential.
type CredentialType string

const (
	CredentialWorkloadIdentity  CredentialType = "WorkloadIdentity"
	CredentialClientSecret      CredentialType = "ClientSecret"
	CredentialClientCertificate CredentialType = "ClientCertificate"
	CredentialManagedIdentity   CredentialType = "ManagedIdentity"
	CredentialEnvironment       CredentialType = "Environment"
)

// CredentialConfig says how to obtain Graph tokens. Authentication always goes through azidentity.
type CredentialConfig struct {
	Type     CredentialType
	TenantID string
	ClientID string // ManagedIdentity: optional, selects a user-assigned identity
	// Cloud picks the default sign-in host; "" = Public.
	Cloud Cloud
	// AuthorityHost overrides the cloud's sign-in host; must be https. A host that is not one of
	// Microsoft's disables instance discovery. Environment: "" = $AZURE_AUTHORITY_HOST, else the cloud's.
	AuthorityHost string
	// ClientSecret is used by ClientSecret.
	ClientSecret string
	// Certificate is used by ClientCertificate: PEM (certificate + unencrypted key) or PFX.
	Certificate         []byte
	CertificatePassword string
	// Assertion, when set, gives WorkloadIdentity its client assertion (a service-account token the operator
	// requested) in place of the token file; TenantID and ClientID then never come from the environment.
	Assertion func(ctx context.Context) (string, error)
	// TokenFile is used by WorkloadIdentity: "" = $AZURE_FEDERATED_TOKEN_FILE. TenantID and ClientID
	// fall back to $AZURE_TENANT_ID and $AZURE_CLIENT_ID, which the AKS webhook sets.
	TokenFile string
	// Transport replaces the HTTP transport of the sign-in requests (tests). nil = azcore's default,
	// which trusts the system roots (so SSL_CERT_FILE works).
	Transport policy.Transporter
}

// NewCredential builds the azidentity credential cfg describes. Errors name what is missing or
// wrong, never a secret.
func NewCredential(cfg CredentialConfig) (azcore.TokenCredential, error) {
	host, err := authorityHost(cfg)
	if err != nil {
		return nil, err
	}
	u, err := parseHTTPSURL("authority host", host)
	if err != nil {
		return nil, err
	}
	opts := azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: host}}
	if cfg.Transport != nil {
		opts.Transport = cfg.Transport
	}
	noDiscovery := !microsoftAuthorityHosts[strings.ToLower(u.Hostname())]

	switch cfg.Type {
	case CredentialClientSecret:
		if err := require(cfg.Type, "tenantID", cfg.TenantID, "clientID", cfg.ClientID, "client secret", cfg.ClientSecret); err != nil {
			return nil, err
		}
		return azidentity.NewClientSecretCredential(cfg.TenantID, cfg.ClientID, cfg.ClientSecret,
			&azidentity.ClientSecretCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: noDiscovery})

	case CredentialClientCertificate:
		if err := require(cfg.Type, "tenantID", cfg.TenantID, "clientID", cfg.ClientID, "certificate", string(cfg.Certificate)); err != nil {
			return nil, err
		}
		certs, key, err := parseClientCertificate(cfg.Certificate, cfg.CertificatePassword)
		if err != nil {
			return nil, fmt.Errorf("ClientCertificate credential: %w", err)
		}
		return azidentity.NewClientCertificateCredential(cfg.TenantID, cfg.ClientID, certs, key,
			&azidentity.ClientCertificateCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: noDiscovery})

	case CredentialWorkloadIdentity:
		if cfg.Assertion != nil {
			if err := require(cfg.Type, "tenantID", cfg.TenantID, "clientID", cfg.ClientID); err != nil {
				return nil, err
			}
			return azidentity.NewClientAssertionCredential(cfg.TenantID, cfg.ClientID, cfg.Assertion,
				&azidentity.ClientAssertionCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: noDiscovery})
		}
		tenantID := orEnv(cfg.TenantID, "AZURE_TENANT_ID")
		clientID := orEnv(cfg.ClientID, "AZURE_CLIENT_ID")
		tokenFile := orEnv(cfg.TokenFile, "AZURE_FEDERATED_TOKEN_FILE")
		if err := require(cfg.Type, "tenantID (or AZURE_TENANT_ID)", tenantID, "clientID (or AZURE_CLIENT_ID)", clientID,
			"token file (or AZURE_FEDERATED_TOKEN_FILE)", tokenFile); err != nil {
			return nil, err
		}
		return azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
			ClientOptions: opts, TenantID: tenantID, ClientID: clientID, TokenFilePath: tokenFile,
			DisableInstanceDiscovery: noDiscovery,
		})

	case CredentialManagedIdentity:
		// Managed identity talks to the local identity endpoint (IMDS, App Service, Arc), not to
		// the authority host, so only the transport applies.
		mo := &azidentity.ManagedIdentityCredentialOptions{}
		mo.Transport = opts.Transport
		if cfg.ClientID != "" {
			mo.ID = azidentity.ClientID(cfg.ClientID)
		}
		return azidentity.NewManagedIdentityCredential(mo)

	case CredentialEnvironment:
		return azidentity.NewEnvironmentCredential(&azidentity.EnvironmentCredentialOptions{
			ClientOptions: opts, DisableInstanceDiscovery: noDiscovery,
		})
	}
	return nil, fmt.Errorf("unknown credential type %q (want WorkloadIdentity, ClientSecret, ClientCertificate, ManagedIdentity or Environment)", cfg.Type)
}

// authorityHost picks the sign-in host: the explicit override, then (Environment only) the
// environment's, then the cloud's.
func authorityHost(cfg CredentialConfig) (string, error) {
	if cfg.AuthorityHost != "" {
		return cfg.AuthorityHost, nil
	}
	if cfg.Type == CredentialEnvironment {
		if h := os.Getenv("AZURE_AUTHORITY_HOST"); h != "" {
			return h, nil
		}
	}
	e, err := EndpointsFor(cfg.Cloud)
	if err != nil {
		return "", err
	}
	return e.AuthorityHost, nil
}

// require checks name/value pairs and names every empty one. Values are never printed.
func require(t CredentialType, pairs ...string) error {
	var missing []string
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			missing = append(missing, pairs[i])
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s credential: missing %s", t, strings.Join(missing, ", "))
	}
	return nil
}

func orEnv(v, name string) string {
	if v != "" {
		return v
	}
	return os.Getenv(name)
}

// parseClientCertificate reads PEM (certificate(s) and key) or PFX. PFX goes through go-pkcs12
// rather than azidentity.ParseCertificates because azidentity's loader (x/crypto/pkcs12) cannot
// read the AES-encrypted PFX files that OpenSSL 3 and current Windows export by default.
func parseClientCertificate(data []byte, password string) ([]*x509.Certificate, crypto.PrivateKey, error) {
	if bytes.Contains(data, []byte("-----BEGIN")) {
		certs, key, err := azidentity.ParseCertificates(data, nil)
		if err != nil {
			return nil, nil, fmt.Errorf("parse PEM certificate: %w", err)
		}
		if len(certs) == 0 || key == nil {
			return nil, nil, errors.New("PEM needs both a CERTIFICATE and an unencrypted private key")
		}
		return certs, key, nil
	}
	// A connection's client certificate is as hostile as any PFX a namespace owner can store: its key
	// derivations are bounded before go-pkcs12 does them.
	if err := pfx.CheckWorkFactors(data, password); err != nil {
		return nil, nil, err
	}
	key, leaf, chain, err := pkcs12.DecodeChain(data, password)
	if err != nil {
		return nil, nil, fmt.Errorf("parse PFX certificate: %w", err)
	}
	return append([]*x509.Certificate{leaf}, chain...), key, nil
}
