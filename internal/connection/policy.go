package connection

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/graph"
)

// Policy is what the operator's administrator allows namespaced GraphConnections. Whoever may create a
// GraphConnection in one namespace must not be able to make the operator sign in as itself (the pod's
// identity serves every namespace) or send a token or credential to a host of their choosing.
// ClusterGraphConnections are created by cluster administrators and are not restricted.
type Policy struct {
	// AllowNamespacedAmbientCredentials lets GraphConnections use the operator's own identity:
	// ManagedIdentity, Environment, and WorkloadIdentity without serviceAccountName.
	AllowNamespacedAmbientCredentials bool
	// AllowedEndpointHosts are host[:port] entries a GraphConnection's graphEndpoint and authorityHost may
	// name besides its cloud's own hosts. An entry without a port allows the host on port 443 only.
	AllowedEndpointHosts []string
}

// ParseAllowedHosts splits the --allowed-endpoint-hosts flag (comma-separated host[:port]) and checks
// each entry, so a typo stops the operator at start rather than refusing connections later.
func ParseAllowedHosts(flag string) ([]string, error) {
	var hosts []string
	for _, entry := range strings.Split(flag, ",") {
		entry = strings.ToLower(strings.TrimSpace(entry))
		if entry == "" {
			continue
		}
		u, err := url.Parse("https://" + entry)
		if err != nil || u.Host != entry || u.Hostname() == "" {
			return nil, fmt.Errorf("--allowed-endpoint-hosts: %q is not a host[:port]", entry)
		}
		hosts = append(hosts, entry)
	}
	return hosts, nil
}

// check refuses a GraphConnection spec that borrows the operator's identity or names an untrusted host.
// It runs before any Secret is read or any token requested.
func (p Policy) check(spec *intunev1alpha1.GraphConnectionSpec, endpoints graph.Endpoints) error {
	if err := p.checkCredential(spec.Credential); err != nil {
		return err
	}
	trusted := []string{hostOf(endpoints.GraphRoot), hostOf(endpoints.AuthorityHost)}
	for _, setting := range []struct{ field, value string }{
		{"graphEndpoint", spec.GraphEndpoint}, {"authorityHost", spec.AuthorityHost},
	} {
		if setting.value != "" && !p.hostAllowed(setting.value, trusted) {
			return &Error{Reason: intunev1alpha1.ReasonEndpointNotAllowed, Message: fmt.Sprintf(
				"spec.%s names host %q, which is neither a host of cloud %s nor listed in the operator's --allowed-endpoint-hosts; "+
					"no token is requested for it (an administrator may add the host to that flag, or use a ClusterGraphConnection)",
				setting.field, hostOf(setting.value), cloudName(spec.Cloud))}
		}
	}
	return nil
}

func (p Policy) checkCredential(cred intunev1alpha1.GraphCredential) error {
	if p.AllowNamespacedAmbientCredentials {
		return nil
	}
	var borrowed string
	switch credentialType(cred) {
	case intunev1alpha1.CredentialManagedIdentity:
		borrowed = "ManagedIdentity signs in as the identity of the node or host the operator runs on"
	case intunev1alpha1.CredentialEnvironment:
		borrowed = "Environment signs in with the operator pod's AZURE_* variables"
	case intunev1alpha1.CredentialWorkloadIdentity:
		if cred.ServiceAccountName == "" {
			borrowed = "WorkloadIdentity without serviceAccountName signs in with the operator pod's own federated token"
		}
	}
	if borrowed == "" {
		return nil
	}
	return &Error{Reason: intunev1alpha1.ReasonAmbientCredentialsNotAllowed, Message: borrowed +
		", which serves every namespace; on a GraphConnection use ClientSecret, ClientCertificate, or WorkloadIdentity with " +
		"spec.credential.serviceAccountName (a ServiceAccount in this namespace). No sign-in was attempted."}
}

// hostAllowed reports whether raw's host is one of trusted (on the default port) or allowed by the flag.
func (p Policy) hostAllowed(raw string, trusted []string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return false
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if port == "" {
		port = "443"
	}
	for _, t := range trusted {
		if host == t && port == "443" {
			return true
		}
	}
	for _, entry := range p.AllowedEndpointHosts {
		entryHost, entryPort, err := net.SplitHostPort(entry)
		if err != nil { // no port in the entry: the https default only
			entryHost, entryPort = strings.Trim(entry, "[]"), "443"
		}
		if host == entryHost && port == entryPort {
			return true
		}
	}
	return false
}

// hostOf is raw's host[:port] in lower case, or raw itself when it is no URL (for messages only).
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw
	}
	return strings.ToLower(u.Host)
}

func credentialType(cred intunev1alpha1.GraphCredential) intunev1alpha1.CredentialType {
	if cred.Type == "" {
		return intunev1alpha1.CredentialWorkloadIdentity
	}
	return cred.Type
}

func cloudName(c intunev1alpha1.Cloud) string {
	if c == "" {
		return string(graph.CloudPublic)
	}
	return string(c)
}
