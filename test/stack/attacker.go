package stack

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/certops/intune-cert-operator/test/graphsim"
)

// Attacker is a second graphsim posing as a host that someone who owns one namespace controls. It serves the
// stack's tenant and app ids (with a secret of its own), so a client that trusted it would go all the way to
// presenting its credentials, and its journal records which credentials arrived (never their values). Its CA
// is trusted by the operator from its next start, as a real attacker's host would have a publicly trusted
// certificate: only the operator's own policy keeps credentials away from it.
type Attacker struct {
	URL     string
	CAFile  string
	Process *Process
}

// StartAttacker starts the attacker's graphsim. Restart the operator afterwards so it trusts its CA.
func (s *Stack) StartAttacker(name string) (*Attacker, error) {
	cfg := graphsim.FileConfig{Tenants: []graphsim.FileTenant{{ID: TenantID,
		Apps: []graphsim.FileApp{{App: graphsim.App{ClientID: ClientID, ClientSecret: "attacker-knows-no-secret"}}}}}}
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	configFile := filepath.Join(s.Dir, name+".yaml")
	if err := os.WriteFile(configFile, data, 0o600); err != nil {
		return nil, err
	}
	a := &Attacker{CAFile: filepath.Join(s.Dir, name+"-ca.pem")}
	p, line, err := startProcess(name, filepath.Join(s.Dir, name+".log"), filepath.Join(s.bin, "graphsim"),
		[]string{"--config", configFile, "--ca-file", a.CAFile, "--addr", "127.0.0.1:0"}, nil, "graphsim listening on ")
	if err != nil {
		return nil, err
	}
	a.Process = p
	a.URL = strings.TrimSpace(strings.TrimPrefix(line, "graphsim listening on "))
	s.extraCAFiles = append(s.extraCAFiles, a.CAFile)
	s.attackers = append(s.attackers, a)
	return a, nil
}

// Host is the attacker's host:port, as --allowed-endpoint-hosts would list it.
func (a *Attacker) Host() string { return strings.TrimPrefix(a.URL, "https://") }

// Journal is every request the attacker's host received.
func (a *Attacker) Journal() ([]graphsim.Entry, error) {
	var entries []graphsim.Entry
	err := callSim(a.URL, a.CAFile, http.MethodGet, "journal", nil, &entries)
	return entries, err
}

// trustBundle is the CA file the operator trusts (SSL_CERT_FILE): graphsim's, plus any attacker's.
func (s *Stack) trustBundle() (string, error) {
	if len(s.extraCAFiles) == 0 {
		return s.CAFile, nil
	}
	var bundle bytes.Buffer
	for _, f := range append([]string{s.CAFile}, s.extraCAFiles...) {
		pem, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		bundle.Write(pem)
		bundle.WriteString("\n")
	}
	path := filepath.Join(s.Dir, "operator-trust.pem")
	return path, os.WriteFile(path, bundle.Bytes(), 0o644)
}

// AmbientIdentityEnv is the environment of an operator pod that has identities of its own to lose, each
// of the kind a namespaced connection could try to borrow: a federated token file (workload identity, with
// the token in tokenFile), AZURE_* client-secret variables (Environment) and a host's identity endpoint
// (ManagedIdentity, graphsim's).
func (s *Stack) AmbientIdentityEnv(tokenFile string) ([]string, error) {
	var identity struct {
		Header string `json:"header"`
	}
	if err := s.Sim(http.MethodGet, "identity", nil, &identity); err != nil {
		return nil, err
	}
	return []string{
		"AZURE_TENANT_ID=" + TenantID, "AZURE_CLIENT_ID=" + ClientID, "AZURE_FEDERATED_TOKEN_FILE=" + tokenFile,
		"AZURE_CLIENT_SECRET=" + s.ClientSecret,
		"IDENTITY_ENDPOINT=" + s.GraphsimURL + "/" + TenantID + "/msi/token", "IDENTITY_HEADER=" + identity.Header,
	}, nil
}
