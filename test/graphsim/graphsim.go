// Package graphsim emulates the parts of Microsoft Entra ID sign-in and Microsoft Graph beta (Intune PFX
// import) that intune-cert-operator talks to. One TLS server is both the "authority host" that azidentity
// signs in against and the Graph root (plus a host's managed identity endpoint); ../shared/INTUNE-FACTS.md
// is the service behaviour it imitates.
package graphsim

import (
	"bytes"
	cryptorand "crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// Config describes the emulated tenants and the service's behaviour.
type Config struct {
	Addr         string          // "" = 127.0.0.1:0
	Audience     string          // token audience Graph calls must carry; default "https://graph.microsoft.com"
	Tenants      []Tenant        //
	PageSize     int             // list page size, default 100; @odata.nextLink is a full https URL with $skiptoken
	ConnectorKey *rsa.PrivateKey // non-nil: connector check on every userPfxCertificate / pfxUserCertificate write
	Limits       Limits          // zero value = Intune's published limits; Limits{Disabled:true} = none
	Faults       Faults          // initial faults; changeable at run time with SetFaults
	Seed         int64           // randomness (fault choice, ids) is deterministic for a seed
	Now          func() time.Time
	StateFile    string // optional: load state at start if present, save after every write

	// ServerNames are extra DNS names or IP addresses for the server certificate, beyond
	// 127.0.0.1, ::1 and localhost (e.g. a host name pods use to reach the emulator).
	ServerNames []string
	// ConnectorProviderName / ConnectorKeyName, when set, must equal a write's providerName /
	// keyName (encryptionKeyName for pfxUserCertificate): the connector looks its key up by them.
	ConnectorProviderName string
	ConnectorKeyName      string
	// OIDCIssuerRoots are the roots trusted when fetching an external OIDC issuer's discovery document
	// and keys (App.FederatedCredentials); nil = the system's. LoadIssuerRoots adds a private CA, such
	// as a test kube-apiserver's, to the system's.
	OIDCIssuerRoots *x509.CertPool
}

// Tenant is one Entra ID tenant with its app registrations, users and Intune device configurations.
type Tenant struct {
	ID    string `json:"id"`
	Apps  []App  `json:"apps,omitempty"`
	Users []User `json:"users,omitempty"`
	// DeviceConfigurations exist from the start (same as calling AddDeviceConfiguration).
	DeviceConfigurations []DeviceConfiguration `json:"deviceConfigurations,omitempty"`
}

// App is an app registration (service principal) able to sign in with client credentials.
type App struct {
	ClientID     string              `json:"clientId"`
	ClientSecret string              `json:"clientSecret,omitempty"` // client-secret flow; "" disables it
	Certificates []*x509.Certificate `json:"-"`                      // client-assertion flow (x5t / x5t#S256 header)
	// FederatedSubjects are subjects accepted from the built-in issuer (FederatedIssuer, FederatedToken).
	FederatedSubjects []string `json:"federatedSubjects,omitempty"`
	// FederatedCredentials are federated identity credentials of any issuer; an external issuer's keys
	// are found by OIDC discovery, as Entra ID finds them.
	FederatedCredentials []FederatedCredential `json:"federatedCredentials,omitempty"`
	// Roles are the application permissions granted; nil means DefaultRoles.
	Roles []string `json:"roles,omitempty"`
	// ManagedIdentity makes the app a managed identity's service principal: it signs in through the
	// host's identity endpoint (ManagedIdentityEndpoint), not with a credential. The tenant's first one
	// is the host's system-assigned identity.
	ManagedIdentity bool `json:"managedIdentity,omitempty"`
}

// DefaultRoles are the application permissions the operator needs (see INTUNE-FACTS).
var DefaultRoles = []string{"DeviceManagementConfiguration.ReadWrite.All", "User.Read.All"}

// User is a directory user.
type User struct {
	ID                string `json:"id"`
	UserPrincipalName string `json:"userPrincipalName"`
	DisplayName       string `json:"displayName,omitempty"`
}

// DeviceConfiguration is an Intune certificate profile that managedDeviceCertificateStates hang off
// (ProfileType e.g. iosScep, windows10Pkcs; the OData type name "microsoft.graph.iosScepCertificateProfile"
// is accepted too), or a configuration that uses one (ProfileType windowsWifiEnterpriseEAPConfiguration
// or windowsPhone81VpnConfiguration, IdentityCertificateID the profile's id), through which the nested
// URL forms reach that profile's states.
type DeviceConfiguration struct {
	ID                    string `json:"id"`
	ProfileType           string `json:"profileType"`
	IdentityCertificateID string `json:"identityCertificateId,omitempty"`
}

// Limits are the throttling token buckets. Zero fields take Intune's published values.
type Limits struct {
	Disabled       bool          `json:"disabled,omitempty"`
	Window         time.Duration `json:"window,omitempty"`         // default 20s
	TenantWrites   int           `json:"tenantWrites,omitempty"`   // default 200
	AppWrites      int           `json:"appWrites,omitempty"`      // default 100
	TenantRequests int           `json:"tenantRequests,omitempty"` // default 2000
	AppRequests    int           `json:"appRequests,omitempty"`    // default 1000
}

// Faults are injected into Graph requests (never into sign-in or the /_sim/ admin surface).
type Faults struct {
	Latency      time.Duration `json:"latency,omitempty"`      // added to every Graph request
	ErrorRate    float64       `json:"errorRate,omitempty"`    // fraction answered ErrorStatus (default 503) before any effect
	ErrorStatus  int           `json:"errorStatus,omitempty"`  //
	ThrottleRate float64       `json:"throttleRate,omitempty"` // fraction answered 429 with Retry-After: RetryAfter
	RetryAfter   time.Duration `json:"retryAfter,omitempty"`   // default 1s
	DropRate     float64       `json:"dropRate,omitempty"`     // fraction of connections closed without a response
	Script       []int         `json:"script,omitempty"`       // statuses answered to the next len(Script) Graph requests
	// DeleteLinger imitates the known service bug: a deleted userPfxCertificate keeps being listed
	// (list only, GET by id is 404) for this long after the 204. It is the older, userPfxCertificates-only
	// form of DeleteListLag (below); the longer of the two applies to them.
	DeleteLinger time.Duration `json:"deleteLinger,omitempty"`
	// RedirectTo is where a 3xx status of Script sends the request: RedirectTo + the request's path and
	// query (a hostile or misconfigured front end; the operator must follow no redirect).
	RedirectTo string `json:"redirectTo,omitempty"`

	// Act-then-fail faults hit writes (POST, PATCH, DELETE on every Intune collection): the write takes
	// effect (the record is created, updated or deleted, and saved), THEN its answer is replaced by a
	// Graph error or the connection is closed without an answer, as when a gateway times out after the
	// service acted. Only answers below 400 are replaced: a write that failed anyway (404, 409, 400...)
	// keeps its own answer. The journal keeps the replaced status in Entry.ActedStatus.
	//
	// ActThenFailRate is the fraction of writes answered ActThenFailStatus (default 504) after acting.
	ActThenFailRate   float64 `json:"actThenFailRate,omitempty"`
	ActThenFailStatus int     `json:"actThenFailStatus,omitempty"`
	// ActThenDropRate is the fraction of writes whose connection is closed after acting.
	ActThenDropRate float64 `json:"actThenDropRate,omitempty"`
	// ActThenFailScript scripts the next writes that act: each write whose answer would be below 400
	// takes the next entry, a status (e.g. 500, 504) that replaces its answer, DropConnection (-1) to
	// close the connection, or 0 to answer normally. Writes answered 400 or above take no entry.
	// Script (before any effect) is consumed first; a write it faults takes no entry either.
	ActThenFailScript []int `json:"actThenFailScript,omitempty"`

	// CreateListLag and DeleteListLag imitate eventual consistency, for every kind: a created record is
	// missing from list answers (GET of the collection, with or without $filter) until CreateListLag has
	// passed, and a deleted one keeps being listed for DeleteListLag after the deletion. GET by id is
	// exact at once: 200 right after the create, 404 right after the delete. Both use Config.Now.
	CreateListLag time.Duration `json:"createListLag,omitempty"`
	DeleteListLag time.Duration `json:"deleteListLag,omitempty"`

	// PatchNoContent answers every successful PATCH 204 with an empty body (common Intune behaviour,
	// although the pages say 200 with the entity).
	PatchNoContent bool `json:"patchNoContent,omitempty"`
	// RecryptionCreateWithoutID answers POST /pfxRecryptionRequests 201 without an id property (the
	// resource page documents none, nor does seed 002's example). The record still has an id for GET,
	// LIST ($filter on userId, deviceId, profileId, thumbprint) and DELETE.
	RecryptionCreateWithoutID bool `json:"recryptionCreateWithoutId,omitempty"`
	// PascalCaseEnums answers enum values (intendedPurpose, paddingScheme, devicePlatform,
	// certificateKeyUsage) with their PascalCase member names ("SmimeEncryption", "OaepSha512"), as
	// Microsoft's import tool writes them. Requests are accepted in either form whatever this says.
	PascalCaseEnums bool `json:"pascalCaseEnums,omitempty"`

	// Seed, when not 0, reseeds the fault RNG (not the id RNG) whenever these faults are set, so that a
	// test ties the random faults to its own seed; 0 keeps the RNG where it is (Config.Seed at start).
	Seed int64 `json:"seed,omitempty"`
}

// DropConnection in Faults.ActThenFailScript closes the connection (after the write acted).
const DropConnection = -1

// Entry is one journaled request. Status 0 means the connection was dropped without an answer.
//
// The credential fields say which kinds of credential a request carried, never their values: a test
// pointing the operator at an emulator posing as an attacker's host asserts from them that nothing was
// handed over, whatever the path (unknown paths are journaled with their 404 like any other request).
type Entry struct {
	Time time.Time `json:"time"` // arrival
	// Answered is when the handler had written the whole answer (net/http sends it as the handler returns),
	// or the connection was closed: a request may wait on graphsim's lock (state saves) between the two.
	Answered   time.Time     `json:"answered,omitempty"`
	Method     string        `json:"method"`
	Path       string        `json:"path"` // path+query as received, credential values in the query REDACTED
	Status     int           `json:"status"`
	TenantID   string        `json:"tenantId,omitempty"`
	ClientID   string        `json:"clientId,omitempty"`
	RetryAfter time.Duration `json:"retryAfter,omitempty"`
	// ActedStatus is the status a write's own answer had when an act-then-fail fault replaced it (the
	// write took effect; Status is then the injected error, or 0 for a dropped connection).
	ActedStatus int `json:"actedStatus,omitempty"`

	Authorization   bool `json:"authorization,omitempty"`   // an Authorization header (bearer token, basic auth...)
	ClientSecret    bool `json:"clientSecret,omitempty"`    // a non-empty client_secret (form, query or basic auth)
	ClientAssertion bool `json:"clientAssertion,omitempty"` // a non-empty client_assertion (form or query)
	IdentityHeader  bool `json:"identityHeader,omitempty"`  // an X-IDENTITY-HEADER (the managed identity endpoint's secret)
	// AssertionIssuer and AssertionSubject are the client assertion's unverified iss and sub claims,
	// e.g. a Kubernetes API server and "system:serviceaccount:<namespace>:<name>". Not secret.
	AssertionIssuer  string `json:"assertionIssuer,omitempty"`
	AssertionSubject string `json:"assertionSubject,omitempty"`
}

// Server is a running emulator.
type Server struct {
	cfg  Config
	now  func() time.Time
	url  string
	ln   net.Listener
	http *http.Server
	keys *keys
	// identityHeader is the secret of the emulated host's identity endpoint (managedidentity.go).
	identityHeader string
	caPool         *x509.CertPool
	signIn         http.Handler
	admin          http.Handler
	issuers        *issuerKeys // external OIDC issuers' keys (federation.go)

	mu            sync.Mutex // guards everything below
	tenants       map[string]*tenantState
	faults        Faults
	script        []int // what is left of faults.Script
	actScript     []int // what is left of faults.ActThenFailScript
	idSrc         *rand.PCG
	faultSrc      *rand.PCG
	idRNG         *rand.Rand
	faultRNG      *rand.Rand
	limiter       *limiter
	journal       []Entry
	checkFailures []string
}

// Start loads the state file (if any), listens and serves until Close.
func Start(cfg Config) (*Server, error) {
	if cfg.Audience == "" {
		cfg.Audience = "https://graph.microsoft.com"
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = 100
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	s := &Server{cfg: cfg, now: cfg.Now, tenants: map[string]*tenantState{}}
	if s.now == nil {
		s.now = time.Now
	}
	s.idSrc = rand.NewPCG(uint64(cfg.Seed), 1)
	s.faultSrc = rand.NewPCG(uint64(cfg.Seed), 2)
	s.idRNG, s.faultRNG = rand.New(s.idSrc), rand.New(s.faultSrc)
	s.limiter = newLimiter(cfg.Limits)
	s.setFaultsLocked(cfg.Faults)
	for _, t := range cfg.Tenants {
		if t.ID == "" || s.tenants[t.ID] != nil {
			return nil, fmt.Errorf("graphsim: tenant id %q is empty or repeated", t.ID)
		}
		for _, app := range t.Apps {
			if err := s.validateFederatedCredentials(t.ID, app); err != nil {
				return nil, err
			}
		}
		s.tenants[t.ID] = newTenantState(t)
	}
	s.issuers = newIssuerKeys(cfg.OIDCIssuerRoots)

	loaded, err := s.loadState()
	if err != nil {
		return nil, err
	}
	if !loaded {
		if s.keys, err = newKeys(); err != nil {
			return nil, err
		}
	}
	s.caPool = x509.NewCertPool()
	s.caPool.AddCert(s.keys.caCert)
	serverCert, err := s.keys.serverCertificate(cfg.ServerNames)
	if err != nil {
		return nil, err
	}

	s.ln, err = net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("graphsim: listen on %s: %w", cfg.Addr, err)
	}
	port := s.ln.Addr().(*net.TCPAddr).Port
	host := s.ln.Addr().(*net.TCPAddr).IP
	if host.IsUnspecified() {
		host = net.IPv4(127, 0, 0, 1)
	}
	s.url = "https://" + net.JoinHostPort(host.String(), fmt.Sprint(port))
	if err := s.saveStateLocked(); err != nil { // a new state file gets the keys at once
		s.ln.Close()
		return nil, err
	}

	s.identityHeader = cryptorand.Text()
	s.signIn, s.admin = s.newSignInMux(), s.newAdminMux()
	s.http = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		// HTTP/1.1 only: DropRate needs to hijack connections, which HTTP/2 cannot.
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{serverCert},
			MinVersion:   tls.VersionTLS12,
			NextProtos:   []string{"http/1.1"},
		},
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	go s.http.ServeTLS(s.ln, "", "") //nolint:errcheck // returns ErrServerClosed on Close
	return s, nil
}

// URL is the authority host and the Graph root ("https://127.0.0.1:PORT"; clients add /beta).
func (s *Server) URL() string { return s.url }

// CAPEM is the PEM of the CA that signed the server certificate.
func (s *Server) CAPEM() []byte { return s.keys.caPEM() }

// WriteCAFile writes CAPEM to path (e.g. for SSL_CERT_FILE).
func (s *Server) WriteCAFile(path string) error {
	if err := os.WriteFile(path, s.CAPEM(), 0o644); err != nil {
		return fmt.Errorf("graphsim: write CA file: %w", err)
	}
	return nil
}

// Client returns an http.Client that trusts the emulator's CA.
func (s *Server) Client() *http.Client {
	return &http.Client{
		Timeout: time.Minute,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: s.caPool, MinVersion: tls.VersionTLS12},
		},
	}
}

// Close stops serving at once (open connections are closed). State is already saved after every write.
func (s *Server) Close() error {
	if err := s.http.Close(); err != nil {
		return fmt.Errorf("graphsim: close: %w", err)
	}
	return nil
}

// SetFaults replaces the injected faults (the Script starts over).
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setFaultsLocked(f)
}

func (s *Server) setFaultsLocked(f Faults) {
	if f.ErrorStatus == 0 {
		f.ErrorStatus = http.StatusServiceUnavailable
	}
	if f.RetryAfter <= 0 {
		f.RetryAfter = time.Second
	}
	if f.ActThenFailStatus == 0 {
		f.ActThenFailStatus = http.StatusGatewayTimeout
	}
	if f.Seed != 0 {
		s.faultSrc.Seed(uint64(f.Seed), 2)
	}
	s.faults = f
	s.script = append([]int(nil), f.Script...)
	s.actScript = append([]int(nil), f.ActThenFailScript...)
}

// ActThenFailNext appends to what is left of Faults.ActThenFailScript, leaving the other faults as
// they are: ActThenFailNext(504) makes the next write that acts answer 504 after taking effect.
func (s *Server) ActThenFailNext(statuses ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.actScript = append(s.actScript, statuses...)
}

// Journal returns every request so far, in order (admin /_sim/ requests are not journaled).
func (s *Server) Journal() []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Entry(nil), s.journal...)
}

// ResetJournal forgets the journal.
func (s *Server) ResetJournal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.journal = nil
}

// CheckFailures returns the reasons of the connector-check refusals so far (no secrets in them).
func (s *Server) CheckFailures() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.checkFailures...)
}

// ServeHTTP dispatches to the admin surface, Graph or sign-in, and journals everything but admin calls:
// sign-in, the managed identity endpoint, Graph, and unknown paths alike.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if isAdminPath(r.URL.Path) {
		s.serveAdmin(w, r)
		return
	}
	tw := &trackedWriter{ResponseWriter: w}
	entry := Entry{Time: s.now(), Method: r.Method, Path: journalPath(r.URL)}
	notePresentedCredentials(&entry, r) // before the handler consumes the body
	// Deferred so that even a handler that panics leaves its entry (as a dropped connection: net/http
	// aborts the answer).
	returned := false
	defer func() {
		entry.Answered = s.now()
		entry.Status, entry.TenantID, entry.ClientID = tw.status, tw.tenantID, tw.clientID
		entry.RetryAfter = retryAfterOf(tw.Header())
		entry.ActedStatus = tw.actedStatus
		if tw.hijacked || !returned {
			entry.Status = 0
		} else if entry.Status == 0 {
			entry.Status = http.StatusOK
		}
		s.mu.Lock()
		s.journal = append(s.journal, entry)
		s.mu.Unlock()
	}()
	if isGraphPath(r.URL.Path) {
		s.serveGraph(tw, r)
	} else {
		s.serveSignIn(tw, r)
	}
	returned = true
}

// trackedWriter remembers what was sent, and who asked, for the journal. While hold is set it keeps
// the handler's answer (status and body; headers go to the real header map) instead of sending it, so
// that an act-then-fail fault can replace it after the handler acted (faults.go).
type trackedWriter struct {
	http.ResponseWriter
	status             int
	hijacked           bool
	tenantID, clientID string
	actedStatus        int // the held answer's status when a fault replaced it

	hold       bool
	heldStatus int
	heldBody   bytes.Buffer
}

func (w *trackedWriter) WriteHeader(code int) {
	if w.hold {
		if w.heldStatus == 0 {
			w.heldStatus = code
		}
		return
	}
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *trackedWriter) Write(b []byte) (int, error) {
	if w.hold {
		if w.heldStatus == 0 {
			w.heldStatus = http.StatusOK
		}
		return w.heldBody.Write(b)
	}
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// release sends the held answer as it is.
func (w *trackedWriter) release() {
	w.hold = false
	if w.heldStatus == 0 {
		return // the handler wrote nothing: net/http answers 200
	}
	w.WriteHeader(w.heldStatus)
	_, _ = w.Write(w.heldBody.Bytes())
}

// Unwrap lets http.ResponseController reach Hijack on the real writer.
func (w *trackedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
