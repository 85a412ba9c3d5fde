package graphsim

import (
	"errors"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// identity is who a Graph request acts as, from its bearer token.
type identity struct {
	tenantID, clientID string
	roles              []string
}

func (id identity) hasAny(roles ...string) bool {
	for _, have := range id.roles {
		for _, want := range roles {
			if strings.EqualFold(have, want) {
				return true
			}
		}
	}
	return false
}

// authenticate verifies the bearer token: our signature, not expired, our audience, and issued
// for a configured tenant. The reason is Graph's message when it fails.
func (s *Server) authenticate(authorization string) (identity, string) {
	raw, ok := strings.CutPrefix(authorization, "Bearer ")
	if !ok || strings.TrimSpace(raw) == "" {
		return identity{}, "Access token is empty."
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(strings.TrimSpace(raw), claims,
		func(*jwt.Token) (any, error) { return &s.keys.tokenKey.PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithAudience(s.cfg.Audience),
		jwt.WithExpirationRequired(), jwt.WithTimeFunc(s.now))
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenExpired):
		return identity{}, "Lifetime validation failed, the token is expired."
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return identity{}, "Access token validation failure. Invalid audience."
	default:
		return identity{}, "Access token validation failure."
	}
	id := identity{}
	id.tenantID, _ = claims["tid"].(string)
	id.clientID, _ = claims["appid"].(string)
	if s.tenants[id.tenantID] == nil {
		return identity{}, "Access token validation failure. Invalid tenant."
	}
	if iss, _ := claims["iss"].(string); iss != accessTokenIssuer(id.tenantID) {
		return identity{}, "Access token validation failure. Invalid issuer."
	}
	if roles, ok := claims["roles"].([]any); ok {
		for _, r := range roles {
			if s, ok := r.(string); ok {
				id.roles = append(id.roles, s)
			}
		}
	}
	return id, ""
}
