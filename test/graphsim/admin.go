package graphsim

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
)

// The admin surface lets e2e tests and the demo drive a separate graphsim process. It is neither
// journaled nor throttled nor faulted, and has no authentication: it is a local test tool.
//
//	GET    /_sim/journal                          []Entry
//	DELETE /_sim/journal                          reset the journal
//	GET    /_sim/faults                           Faults (Script and ActThenFailScript: what is left of them)
//	POST   /_sim/faults                           Faults (replaces them; both scripts start over)
//	POST   /_sim/faults/actThenFail               []int appended to what is left of ActThenFailScript, the
//	                                              rest unchanged: "the next write acts, then is answered
//	                                              504" is [504]; -1 (DropConnection) closes the connection
//	GET    /_sim/records                          AdminRecords (secrets replaced by their lengths)
//	GET    /_sim/checkFailures                    []string
//	DELETE /_sim/userPfxCertificates/{tenant}/{id}
//	POST   /_sim/deviceConfigurations/{tenant}    DeviceConfiguration
//	PUT    /_sim/pfxUserCertificates/{tenant}     PfxUserCertificate (seeds a record)
//	POST   /_sim/userPfxCertificates/{tenant}     []UserPFXCertificate (seeds records in bulk; seed.go)
//
// Faults (JSON names; durations like "1.5s"; all off by default): latency, errorRate/errorStatus,
// throttleRate/retryAfter, dropRate, script and redirectTo fault a request before any effect;
// actThenFailRate/actThenFailStatus (default 504), actThenDropRate and actThenFailScript let a write
// take effect and then answer an error or close the connection; createListLag and deleteListLag delay
// what lists show after a create or a delete (deleteLinger: the same for userPfxCertificates only);
// patchNoContent answers PATCH 204 without a body; recryptionCreateWithoutId answers
// POST /pfxRecryptionRequests without an id; pascalCaseEnums answers enums as "SmimeEncryption"; seed
// reseeds the random fault choice. See the Faults type for each one's exact meaning.
const adminPrefix = "/_sim/"

func isAdminPath(p string) bool { return strings.HasPrefix(p, adminPrefix) }

// AdminRecords is the body of GET /_sim/records: every tenant's records, by tenant id.
type AdminRecords struct {
	Tenants map[string]AdminTenantRecords `json:"tenants"`
}

// AdminTenantRecords holds one tenant's records without secret material.
type AdminTenantRecords struct {
	UserPfxCertificates            []AdminUserPFXCertificate       `json:"userPfxCertificates"`
	DeviceConfigurations           []DeviceConfiguration           `json:"deviceConfigurations"`
	ManagedDeviceCertificateStates []ManagedDeviceCertificateState `json:"managedDeviceCertificateStates"`
	PfxRecryptionRequests          []PfxRecryptionRequest          `json:"pfxRecryptionRequests"`
	PfxUserCertificates            []AdminPfxUserCertificate       `json:"pfxUserCertificates"`
}

// AdminUserPFXCertificate is a record with the PFX and the password replaced by their lengths in bytes.
type AdminUserPFXCertificate struct {
	UserPFXCertificate
	// These shadow the embedded secrets (and are always omitted).
	EncryptedPfxBlob     *struct{} `json:"encryptedPfxBlob,omitempty"`
	EncryptedPfxPassword *struct{} `json:"encryptedPfxPassword,omitempty"`

	EncryptedPfxBlobLength     int `json:"encryptedPfxBlobLength"`
	EncryptedPfxPasswordLength int `json:"encryptedPfxPasswordLength"`
}

// AdminPfxUserCertificate is like AdminUserPFXCertificate for pfxUserCertificates.
type AdminPfxUserCertificate struct {
	PfxUserCertificate
	EncryptedPfxBlob     *struct{} `json:"encryptedPfxBlob,omitempty"`
	EncryptedPfxPassword *struct{} `json:"encryptedPfxPassword,omitempty"`

	EncryptedPfxBlobLength     int `json:"encryptedPfxBlobLength"`
	EncryptedPfxPasswordLength int `json:"encryptedPfxPasswordLength"`
}

func (s *Server) newAdminMux() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("GET /_sim/journal", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, append([]Entry{}, s.Journal()...))
	})
	m.HandleFunc("DELETE /_sim/journal", func(w http.ResponseWriter, r *http.Request) {
		s.ResetJournal()
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("GET /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		f := s.faults
		f.Script = append([]int{}, s.script...) // what is left of it
		s.mu.Unlock()
		f.ActThenFailScript = append([]int{}, s.actScript...)
		writeJSON(w, http.StatusOK, f)
	})
	m.HandleFunc("POST /_sim/faults/actThenFail", func(w http.ResponseWriter, r *http.Request) {
		var next []int
		if !adminDecode(w, r, &next) {
			return
		}
		s.ActThenFailNext(next...)
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("POST /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		var f Faults
		if !adminDecode(w, r, &f) {
			return
		}
		s.SetFaults(f)
		w.WriteHeader(http.StatusNoContent)
	})
	// The secret a host's processes send to its identity endpoint (IDENTITY_HEADER), for a process started
	// as if it ran on that host.
	m.HandleFunc("GET /_sim/identity", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"header": s.IdentityHeader()})
	})
	m.HandleFunc("GET /_sim/records", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.adminRecords())
	})
	m.HandleFunc("GET /_sim/checkFailures", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, append([]string{}, s.CheckFailures()...))
	})
	m.HandleFunc("DELETE /_sim/userPfxCertificates/{tenant}/{id}", func(w http.ResponseWriter, r *http.Request) {
		if !s.DeleteUserPFXCertificate(r.PathValue("tenant"), r.PathValue("id")) {
			adminError(w, http.StatusNotFound, "no such userPfxCertificate")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("POST /_sim/deviceConfigurations/{tenant}", func(w http.ResponseWriter, r *http.Request) {
		var dc DeviceConfiguration
		if !adminDecode(w, r, &dc) || !s.knownTenant(w, r.PathValue("tenant")) {
			return
		}
		s.AddConfiguration(r.PathValue("tenant"), dc)
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("PUT /_sim/pfxUserCertificates/{tenant}", func(w http.ResponseWriter, r *http.Request) {
		var rec PfxUserCertificate
		if !adminDecode(w, r, &rec) || !s.knownTenant(w, r.PathValue("tenant")) {
			return
		}
		s.PutPfxUserCertificate(r.PathValue("tenant"), rec)
		w.WriteHeader(http.StatusNoContent)
	})
	s.addSeedRoutes(m) // seed.go
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		adminError(w, http.StatusNotFound, "unknown admin endpoint")
	})
	return m
}

func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) { s.admin.ServeHTTP(w, r) }

func (s *Server) knownTenant(w http.ResponseWriter, tenantID string) bool {
	if s.tenant(tenantID) == nil {
		adminError(w, http.StatusNotFound, "unknown tenant")
		return false
	}
	return true
}

func (s *Server) adminRecords() AdminRecords {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := AdminRecords{Tenants: map[string]AdminTenantRecords{}}
	for id, ts := range s.tenants {
		recs := ts.records()
		view := AdminTenantRecords{
			UserPfxCertificates:            []AdminUserPFXCertificate{},
			DeviceConfigurations:           append([]DeviceConfiguration{}, recs.DeviceConfigurations...),
			ManagedDeviceCertificateStates: append([]ManagedDeviceCertificateState{}, recs.ManagedDeviceCertificateStates...),
			PfxRecryptionRequests:          append([]PfxRecryptionRequest{}, recs.PfxRecryptionRequests...),
			PfxUserCertificates:            []AdminPfxUserCertificate{},
		}
		for _, r := range recs.UserPfxCertificates {
			a := AdminUserPFXCertificate{EncryptedPfxBlobLength: len(r.EncryptedPfxBlob), EncryptedPfxPasswordLength: len(r.EncryptedPfxPassword)}
			r.EncryptedPfxBlob, r.EncryptedPfxPassword = nil, ""
			a.UserPFXCertificate = r
			view.UserPfxCertificates = append(view.UserPfxCertificates, a)
		}
		for _, r := range recs.PfxUserCertificates {
			blobLen := len(r.EncryptedPfxBlob)
			if blob, err := base64.StdEncoding.DecodeString(r.EncryptedPfxBlob); err == nil {
				blobLen = len(blob)
			}
			a := AdminPfxUserCertificate{EncryptedPfxBlobLength: blobLen, EncryptedPfxPasswordLength: len(r.EncryptedPfxPassword)}
			r.EncryptedPfxBlob, r.EncryptedPfxPassword = "", ""
			a.PfxUserCertificate = r
			view.PfxUserCertificates = append(view.PfxUserCertificates, a)
		}
		out.Tenants[id] = view
	}
	return out
}

func adminDecode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		adminError(w, http.StatusBadRequest, "invalid body: "+err.Error())
		return false
	}
	return true
}

func adminError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
