package graphsim

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// appServiceAPIVersion is the version of the identity endpoint App Service and Container Apps expose.
const appServiceAPIVersion = "2019-08-01"

// ManagedIdentityEndpoint is the identity endpoint of a host in the tenant, as App Service and Container
// Apps give it to a process in IDENTITY_ENDPOINT (with IdentityHeader in IDENTITY_HEADER). azidentity's
// ManagedIdentityCredential uses it when both variables are set.
func (s *Server) ManagedIdentityEndpoint(tenantID string) string {
	return s.url + "/" + tenantID + "/msi/token"
}

// IdentityHeader is the secret the host's processes must send in X-IDENTITY-HEADER.
func (s *Server) IdentityHeader() string { return s.identityHeader }

// handleManagedIdentityToken issues a token for the host's managed identity: the system-assigned one (the
// tenant's first app with ManagedIdentity) or, with client_id, a user-assigned one.
func (s *Server) handleManagedIdentityToken(w http.ResponseWriter, r *http.Request) {
	tenantID := r.PathValue("tenant")
	tw := track(w)
	tw.tenantID = tenantID
	fail := func(status int, message string) {
		writeJSON(w, status, map[string]any{"statusCode": status, "message": message})
	}
	ts := s.tenants[tenantID]
	if ts == nil {
		fail(http.StatusNotFound, "No host of this tenant serves this endpoint.")
		return
	}
	// Constant time, and never echo what was sent.
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("X-IDENTITY-HEADER")), []byte(s.identityHeader)) != 1 {
		fail(http.StatusUnauthorized, "The X-IDENTITY-HEADER header is missing or wrong.")
		return
	}
	q := r.URL.Query()
	if v := q.Get("api-version"); v != appServiceAPIVersion {
		fail(http.StatusBadRequest, fmt.Sprintf("api-version %q is not supported; use %s.", v, appServiceAPIVersion))
		return
	}
	if resource := q.Get("resource"); strings.TrimSuffix(resource, "/") != s.cfg.Audience {
		fail(http.StatusBadRequest, fmt.Sprintf("No token can be issued for resource %q.", resource))
		return
	}
	clientID := q.Get("client_id")
	app, ok := ts.managedIdentity(clientID)
	if !ok {
		fail(http.StatusBadRequest, fmt.Sprintf("No managed identity with client id %q is assigned to this host.", clientID))
		return
	}
	tw.clientID = app.ClientID
	token, err := s.accessToken(tenantID, app)
	if err != nil {
		fail(http.StatusInternalServerError, "The token could not be signed.")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": token, "token_type": "Bearer", "resource": s.cfg.Audience, "client_id": app.ClientID,
		"expires_on": strconv.FormatInt(s.now().Add(tokenLifetime).Unix(), 10),
	})
}

// managedIdentity is the system-assigned identity (clientID "") or the user-assigned one with clientID.
func (ts *tenantState) managedIdentity(clientID string) (App, bool) {
	for _, a := range ts.cfg.Apps {
		if a.ManagedIdentity && (clientID == "" || strings.EqualFold(a.ClientID, clientID)) {
			return a, true
		}
	}
	return App{}, false
}
