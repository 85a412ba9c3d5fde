package graphsim

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"sigs.k8s.io/yaml"
)

// FileConfig is the --config file of cmd/graphsim, JSON or YAML. Durations are written like "1.5s".
// Relative file names are relative to the config file.
type FileConfig struct {
	Addr                  string       `json:"addr,omitempty"`
	Audience              string       `json:"audience,omitempty"`
	Tenants               []FileTenant `json:"tenants"`
	PageSize              int          `json:"pageSize,omitempty"`
	ConnectorKeyFile      string       `json:"connectorKeyFile,omitempty"` // PEM RSA private key, PKCS#1 or PKCS#8
	ConnectorProviderName string       `json:"connectorProviderName,omitempty"`
	ConnectorKeyName      string       `json:"connectorKeyName,omitempty"`
	Limits                Limits       `json:"limits,omitempty"`
	Faults                Faults       `json:"faults,omitempty"`
	Seed                  int64        `json:"seed,omitempty"`
	StateFile             string       `json:"stateFile,omitempty"`
	ServerNames           []string     `json:"serverNames,omitempty"`
	// OIDCIssuerCAFile is a PEM bundle trusted, besides the system's roots, when fetching external
	// OIDC issuers' documents (apps' federatedCredentials), e.g. a test kube-apiserver's serving CA.
	OIDCIssuerCAFile string `json:"oidcIssuerCAFile,omitempty"`
}

// FileTenant is a Tenant whose apps name their certificates by file.
type FileTenant struct {
	ID                   string                `json:"id"`
	Apps                 []FileApp             `json:"apps,omitempty"`
	Users                []User                `json:"users,omitempty"`
	DeviceConfigurations []DeviceConfiguration `json:"deviceConfigurations,omitempty"`
}

// FileApp is an App plus the PEM files of its client-assertion certificates.
type FileApp struct {
	App
	CertificateFiles []string `json:"certificateFiles,omitempty"`
}

// LoadConfig reads a FileConfig and resolves its files into a Config.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("graphsim: read config: %w", err)
	}
	var fc FileConfig
	if err := yaml.UnmarshalStrict(data, &fc); err != nil {
		return Config{}, fmt.Errorf("graphsim: parse config %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	rel := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	cfg := Config{
		Addr: fc.Addr, Audience: fc.Audience, PageSize: fc.PageSize, Limits: fc.Limits, Faults: fc.Faults,
		Seed: fc.Seed, StateFile: rel(fc.StateFile), ServerNames: fc.ServerNames,
		ConnectorProviderName: fc.ConnectorProviderName, ConnectorKeyName: fc.ConnectorKeyName,
	}
	if fc.OIDCIssuerCAFile != "" {
		if cfg.OIDCIssuerRoots, err = LoadIssuerRoots(rel(fc.OIDCIssuerCAFile)); err != nil {
			return Config{}, err
		}
	}
	if fc.ConnectorKeyFile != "" {
		if cfg.ConnectorKey, err = readRSAKey(rel(fc.ConnectorKeyFile)); err != nil {
			return Config{}, err
		}
	}
	for _, ft := range fc.Tenants {
		t := Tenant{ID: ft.ID, Users: ft.Users, DeviceConfigurations: ft.DeviceConfigurations}
		for _, fa := range ft.Apps {
			app := fa.App
			for _, f := range fa.CertificateFiles {
				certs, err := readCertificates(rel(f))
				if err != nil {
					return Config{}, err
				}
				app.Certificates = append(app.Certificates, certs...)
			}
			t.Apps = append(t.Apps, app)
		}
		cfg.Tenants = append(cfg.Tenants, t)
	}
	return cfg, nil
}

func readRSAKey(path string) (*rsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("graphsim: read connector key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("graphsim: connector key %s is not PEM", path)
	}
	if block.Type == "RSA PRIVATE KEY" {
		key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("graphsim: parse connector key %s: %w", path, err)
		}
		return key, nil
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("graphsim: parse connector key %s: %w", path, err)
	}
	rsaKey, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("graphsim: connector key %s is not an RSA key", path)
	}
	return rsaKey, nil
}

func readCertificates(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("graphsim: read app certificate: %w", err)
	}
	var certs []*x509.Certificate
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("graphsim: parse app certificate %s: %w", path, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("graphsim: no PEM certificate in %s", path)
	}
	return certs, nil
}

// jsonDuration reads "1.5s" or a number of nanoseconds and writes "1.5s".
type jsonDuration time.Duration

func (d jsonDuration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *jsonDuration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("invalid duration: %w", err)
		}
		*d = jsonDuration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return errors.New(`a duration must be a string like "1.5s" or a number of nanoseconds`)
	}
	*d = jsonDuration(n)
	return nil
}

// strictUnmarshal refuses unknown fields: a misspelt fault or limit must not silently do nothing.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// MarshalJSON writes durations as strings.
func (f Faults) MarshalJSON() ([]byte, error) {
	type plain Faults // no methods: no recursion
	return json.Marshal(struct {
		plain
		Latency       jsonDuration `json:"latency,omitempty"`
		RetryAfter    jsonDuration `json:"retryAfter,omitempty"`
		DeleteLinger  jsonDuration `json:"deleteLinger,omitempty"`
		CreateListLag jsonDuration `json:"createListLag,omitempty"`
		DeleteListLag jsonDuration `json:"deleteListLag,omitempty"`
	}{plain(f), jsonDuration(f.Latency), jsonDuration(f.RetryAfter), jsonDuration(f.DeleteLinger),
		jsonDuration(f.CreateListLag), jsonDuration(f.DeleteListLag)})
}

// UnmarshalJSON accepts durations as strings or nanoseconds.
func (f *Faults) UnmarshalJSON(b []byte) error {
	type plain Faults
	aux := struct {
		*plain
		Latency       jsonDuration `json:"latency"`
		RetryAfter    jsonDuration `json:"retryAfter"`
		DeleteLinger  jsonDuration `json:"deleteLinger"`
		CreateListLag jsonDuration `json:"createListLag"`
		DeleteListLag jsonDuration `json:"deleteListLag"`
	}{(*plain)(f), jsonDuration(f.Latency), jsonDuration(f.RetryAfter), jsonDuration(f.DeleteLinger),
		jsonDuration(f.CreateListLag), jsonDuration(f.DeleteListLag)}
	if err := strictUnmarshal(b, &aux); err != nil {
		return err
	}
	f.Latency, f.RetryAfter, f.DeleteLinger = time.Duration(aux.Latency), time.Duration(aux.RetryAfter), time.Duration(aux.DeleteLinger)
	f.CreateListLag, f.DeleteListLag = time.Duration(aux.CreateListLag), time.Duration(aux.DeleteListLag)
	return nil
}

// MarshalJSON writes the window as a string.
func (l Limits) MarshalJSON() ([]byte, error) {
	type plain Limits
	return json.Marshal(struct {
		plain
		Window jsonDuration `json:"window,omitempty"`
	}{plain(l), jsonDuration(l.Window)})
}

// UnmarshalJSON accepts the window as a string or nanoseconds.
func (l *Limits) UnmarshalJSON(b []byte) error {
	type plain Limits
	aux := struct {
		*plain
		Window jsonDuration `json:"window"`
	}{(*plain)(l), jsonDuration(l.Window)}
	if err := strictUnmarshal(b, &aux); err != nil {
		return err
	}
	l.Window = time.Duration(aux.Window)
	return nil
}
