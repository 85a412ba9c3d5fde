package graphsim

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
)

// Seeding stores records as if Graph had created them earlier, without a request: nothing is journaled,
// throttled, faulted or connector-checked. The benchmark uses it to give a run of 100,000 certificates
// the records the operator would have written (an import through Graph's write limit would take hours),
// so the operator adopts them and its memory at that scale can be measured.
//
//	POST /_sim/userPfxCertificates/{tenant}   []UserPFXCertificate, stored as POST would store them
//	                                          (id {userIdWithoutDashes}-{thumbprint} when empty, enum
//	                                          defaults, created and modified now); replaces a record of
//	                                          the same id. Answers {"seeded": n}.

// SeedUserPFXCertificates stores recs in the tenant's userPfxCertificates as a Graph POST would (the id
// from the user named by userPrincipalName when a record has none), replacing records of the same id. The
// blob and password are kept as given (may be empty: Graph never shows them). It fails, storing nothing,
// on an unknown tenant, an unknown user or a record a POST would refuse.
func (s *Server) SeedUserPFXCertificates(tenantID string, recs []UserPFXCertificate) error {
	ts := s.tenant(tenantID)
	if ts == nil {
		return fmt.Errorf("unknown tenant %q", tenantID)
	}
	out := make([]UserPFXCertificate, len(recs))
	for i, rec := range recs {
		if rec.IntendedPurpose == "" {
			rec.IntendedPurpose = intendedPurposes[0]
		}
		if rec.PaddingScheme == "" {
			rec.PaddingScheme = paddingSchemes[0]
		}
		rec.IntendedPurpose = canonicalEnum(intendedPurposes, rec.IntendedPurpose)
		rec.PaddingScheme = canonicalEnum(paddingSchemes, rec.PaddingScheme)
		switch {
		case !contains(intendedPurposes, rec.IntendedPurpose):
			return fmt.Errorf("record %d: %q is not a valid intendedPurpose", i, rec.IntendedPurpose)
		case !contains(paddingSchemes, rec.PaddingScheme):
			return fmt.Errorf("record %d: %q is not a valid paddingScheme", i, rec.PaddingScheme)
		case !thumbprintRE.MatchString(rec.Thumbprint):
			return fmt.Errorf("record %d: thumbprint %q is not 40 hex digits", i, rec.Thumbprint)
		}
		u, ok := ts.user(rec.UserPrincipalName)
		if !ok {
			return fmt.Errorf("record %d: no user %q in tenant %s", i, rec.UserPrincipalName, tenantID)
		}
		if rec.ID == "" {
			rec.ID = strings.ReplaceAll(u.ID, "-", "") + "-" + rec.Thumbprint
		}
		out[i] = rec
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UTC()
	for _, rec := range out {
		if rec.CreatedDateTime.IsZero() {
			rec.CreatedDateTime = now
		}
		if rec.LastModifiedDateTime.IsZero() {
			rec.LastModifiedDateTime = now
		}
		ts.userPfx[key(rec.ID)] = &rec
	}
	return s.saveStateLocked()
}

// addSeedRoutes registers the seeding endpoints on the admin mux.
func (s *Server) addSeedRoutes(m *http.ServeMux) {
	m.HandleFunc("POST /_sim/userPfxCertificates/{tenant}", func(w http.ResponseWriter, r *http.Request) {
		var recs []UserPFXCertificate
		if !adminDecode(w, r, &recs) || !s.knownTenant(w, r.PathValue("tenant")) {
			return
		}
		if err := s.SeedUserPFXCertificates(r.PathValue("tenant"), recs); err != nil {
			adminError(w, http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, map[string]int{"seeded": len(recs)})
	})
}

// userIndexes map each tenant's users by lower-cased id and user principal name, built on first use (a
// tenant's users are fixed at Start): a linear scan per lookup made 100,000 users cost O(n²).
var userIndexes sync.Map // *tenantState -> map[string]User

func (ts *tenantState) userIndex() map[string]User {
	if idx, ok := userIndexes.Load(ts); ok {
		return idx.(map[string]User)
	}
	idx := make(map[string]User, 2*len(ts.cfg.Users))
	// The first of equal names wins, as the scan it replaces found it first.
	for i := len(ts.cfg.Users) - 1; i >= 0; i-- {
		u := ts.cfg.Users[i]
		idx[strings.ToLower(u.UserPrincipalName)] = u
		idx[strings.ToLower(u.ID)] = u
	}
	actual, _ := userIndexes.LoadOrStore(ts, idx)
	return actual.(map[string]User)
}
