package graph

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

const testToken = "test-bearer-token-value"

// fakeCredential hands out a fixed token and records the scopes asked for.
type fakeCredential struct {
	calls  atomic.Int32
	mu     sync.Mutex
	scopes []string
}

func (f *fakeCredential) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	f.calls.Add(1)
	f.mu.Lock()
	f.scopes = append(f.scopes, o.Scopes...)
	f.mu.Unlock()
	return azcore.AccessToken{Token: testToken, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// sleepRecorder replaces Client sleeping: it records the waits and returns at once.
type sleepRecorder struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *sleepRecorder) sleep(_ context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waits = append(s.waits, d)
	return nil
}

func (s *sleepRecorder) recorded() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

// recordedRequest is what a test server saw of one request.
type recordedRequest struct {
	Method, EscapedPath, RawQuery string
	Header                        http.Header
	Body                          []byte
}

// testServer is an httptest TLS server that answers with handler and records requests.
type testServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests []recordedRequest
}

func newTestServer(t *testing.T, handler func(w http.ResponseWriter, r *http.Request, n int)) *testServer {
	t.Helper()
	ts := &testServer{}
	ts.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ts.mu.Lock()
		ts.requests = append(ts.requests, recordedRequest{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Clone(), body})
		n := len(ts.requests)
		ts.mu.Unlock()
		handler(w, r, n)
	}))
	t.Cleanup(ts.Close)
	return ts
}

func (ts *testServer) seen() []recordedRequest {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]recordedRequest(nil), ts.requests...)
}

// newTestClient returns a Client for ts with a fake credential and a recording sleeper.
func newTestClient(t *testing.T, ts *testServer, mutate func(*Options)) (*Client, *fakeCredential, *sleepRecorder) {
	t.Helper()
	cred := &fakeCredential{}
	sl := &sleepRecorder{}
	o := Options{
		GraphRoot:  ts.URL,
		Scope:      "https://graph.microsoft.com/.default",
		Credential: cred,
		HTTPClient: ts.Client(),
		Sleep:      sl.sleep,
	}
	if mutate != nil {
		mutate(&o)
	}
	c, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c, cred, sl
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

func graphError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, `{"error":{"code":"`+code+`","message":"`+message+`","innerError":{"request-id":"rid-1","date":"2024-01-01T00:00:00","client-request-id":"cid-1"}}}`)
}
