package graph

import (
	"fmt"
	"net/url"
	"strings"
)

// Cloud names a Microsoft cloud; it decides the Graph root, the sign-in host and the token scope.
type Cloud string

const (
	CloudPublic          Cloud = "Public"
	CloudUSGovernment    Cloud = "USGovernment"
	CloudUSGovernmentDoD Cloud = "USGovernmentDoD"
	CloudChina           Cloud = "China"
)

// Endpoints are the addresses of one cloud.
type Endpoints struct {
	GraphRoot     string // e.g. https://graph.microsoft.com (no trailing slash, no version)
	AuthorityHost string // e.g. https://login.microsoftonline.com/
}

var cloudEndpoints = map[Cloud]Endpoints{
	CloudPublic:          {GraphRoot: "https://graph.microsoft.com", AuthorityHost: "https://login.microsoftonline.com/"},
	CloudUSGovernment:    {GraphRoot: "https://graph.microsoft.us", AuthorityHost: "https://login.microsoftonline.us/"},
	CloudUSGovernmentDoD: {GraphRoot: "https://dod-graph.microsoft.us", AuthorityHost: "https://login.microsoftonline.us/"},
	CloudChina:           {GraphRoot: "https://microsoftgraph.chinacloudapi.cn", AuthorityHost: "https://login.chinacloudapi.cn/"},
}

// EndpointsFor returns the endpoints of cloud c. The empty cloud is Public, the API's default.
func EndpointsFor(c Cloud) (Endpoints, error) {
	if c == "" {
		c = CloudPublic
	}
	e, ok := cloudEndpoints[c]
	if !ok {
		return Endpoints{}, fmt.Errorf("unknown cloud %q (want Public, USGovernment, USGovernmentDoD or China)", c)
	}
	return e, nil
}

// Scope is the token scope for Graph in this cloud. Tokens are minted for the cloud's Graph
// audience, so callers that override the Graph address (private endpoint, emulator) still use
// the scope of the cloud's own root.
func (e Endpoints) Scope() string {
	return strings.TrimSuffix(e.GraphRoot, "/") + "/.default"
}

// microsoftAuthorityHosts are the sign-in hosts Entra ID's instance discovery knows (MSAL's list).
// Any other host (ADFS-like proxies, emulators) must run with instance discovery disabled, or
// MSAL asks login.microsoftonline.com to validate it and fails.
var microsoftAuthorityHosts = map[string]bool{
	"login.microsoftonline.com":        true,
	"login.windows.net":                true,
	"login.microsoft.com":              true,
	"sts.windows.net":                  true,
	"login.chinacloudapi.cn":           true,
	"login.partner.microsoftonline.cn": true,
	"login.microsoftonline.de":         true,
	"login-us.microsoftonline.com":     true,
	"login.microsoftonline.us":         true,
	"login.usgovcloudapi.net":          true,
}

// parseHTTPSURL checks that raw is an absolute https URL; what names the setting in the error.
func parseHTTPSURL(what, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("invalid %s %q: %w", what, raw, err)
	}
	if u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("%s must be an https URL, got %q", what, raw)
	}
	return u, nil
}
