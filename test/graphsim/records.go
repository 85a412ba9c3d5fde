package graphsim

import (
	"net/http"
	"sort"
	"strings"
	"time"
)

// UserPFXCertificate is a stored deviceManagement/userPfxCertificates record, with the real secrets
// (Graph reads mask them). JSON names are Graph's.
type UserPFXCertificate struct {
	ID                   string    `json:"id"`
	Thumbprint           string    `json:"thumbprint"`
	IntendedPurpose      string    `json:"intendedPurpose"` // unassigned, smimeEncryption, smimeSigning, vpn, wifi
	UserPrincipalName    string    `json:"userPrincipalName"`
	StartDateTime        time.Time `json:"startDateTime"`
	ExpirationDateTime   time.Time `json:"expirationDateTime"`
	ProviderName         string    `json:"providerName"`
	KeyName              string    `json:"keyName"`
	PaddingScheme        string    `json:"paddingScheme"` // none, pkcs1, oaepSha1, oaepSha256, oaepSha384, oaepSha512
	EncryptedPfxBlob     []byte    `json:"encryptedPfxBlob"`
	EncryptedPfxPassword string    `json:"encryptedPfxPassword"`
	CreatedDateTime      time.Time `json:"createdDateTime"`
	LastModifiedDateTime time.Time `json:"lastModifiedDateTime"`
}

// ManagedDeviceCertificateState is a stored managedDeviceCertificateStates record (seed 004's
// properties) plus where it lives.
type ManagedDeviceCertificateState struct {
	ID                                            string    `json:"id"`
	DevicePlatform                                string    `json:"devicePlatform"`
	CertificateKeyUsage                           string    `json:"certificateKeyUsage"`
	CertificateValidityPeriodUnits                string    `json:"certificateValidityPeriodUnits"`
	CertificateIssuanceState                      string    `json:"certificateIssuanceState"`
	CertificateKeyStorageProvider                 string    `json:"certificateKeyStorageProvider"`
	CertificateSubjectNameFormat                  string    `json:"certificateSubjectNameFormat"`
	CertificateSubjectAlternativeNameFormat       string    `json:"certificateSubjectAlternativeNameFormat"`
	CertificateRevokeStatus                       string    `json:"certificateRevokeStatus"`
	CertificateProfileDisplayName                 string    `json:"certificateProfileDisplayName"`
	DeviceDisplayName                             string    `json:"deviceDisplayName"`
	UserDisplayName                               string    `json:"userDisplayName"`
	CertificateExpirationDateTime                 time.Time `json:"certificateExpirationDateTime"`
	CertificateLastIssuanceStateChangedDateTime   time.Time `json:"certificateLastIssuanceStateChangedDateTime"`
	LastCertificateStateChangeDateTime            time.Time `json:"lastCertificateStateChangeDateTime"`
	CertificateIssuer                             string    `json:"certificateIssuer"`
	CertificateThumbprint                         string    `json:"certificateThumbprint"`
	CertificateSerialNumber                       string    `json:"certificateSerialNumber"`
	CertificateKeyLength                          int32     `json:"certificateKeyLength"`
	CertificateEnhancedKeyUsage                   string    `json:"certificateEnhancedKeyUsage"`
	CertificateValidityPeriod                     int32     `json:"certificateValidityPeriod"`
	CertificateSubjectNameFormatString            string    `json:"certificateSubjectNameFormatString"`
	CertificateSubjectAlternativeNameFormatString string    `json:"certificateSubjectAlternativeNameFormatString"`
	CertificateIssuanceDateTime                   time.Time `json:"certificateIssuanceDateTime"`
	CertificateErrorCode                          int32     `json:"certificateErrorCode"`

	// Not Graph properties: the owning device configuration and its profile type (e.g. iosScep).
	DeviceConfigurationID string `json:"deviceConfigurationId,omitempty"`
	ProfileType           string `json:"profileType,omitempty"`
}

// PfxRecryptionRequest is a stored /pfxRecryptionRequests record (seed 002).
type PfxRecryptionRequest struct {
	ID                  string    `json:"id"`
	TenantID            string    `json:"tenantId"`
	UserID              string    `json:"userId"`
	DeviceID            string    `json:"deviceId"`
	ProfileID           string    `json:"profileId"`
	Thumbprint          string    `json:"thumbprint"`
	DeviceKeyThumbprint string    `json:"deviceKeyThumbprint"`
	Status              int32     `json:"status"`
	SourceType          int32     `json:"sourceType"`
	CreatedTime         time.Time `json:"createdTime"`
	LastModifiedTime    time.Time `json:"lastModifiedTime"`
	IsDeleted           bool      `json:"isDeleted"`
	ETag                string    `json:"eTag"`
}

// PfxUserCertificate is a stored /pfxUserCertificates record (seed 001), with the real secrets.
type PfxUserCertificate struct {
	ID                   string    `json:"id"`
	TenantID             string    `json:"tenantId"`
	UserID               string    `json:"userId"`
	Thumbprint           string    `json:"thumbprint"`
	UserUpn              string    `json:"userUpn"`
	EncryptedPfxBlob     string    `json:"encryptedPfxBlob"` // base64 of the PFX file
	EncryptedPfxPassword string    `json:"encryptedPfxPassword"`
	CertStartDate        time.Time `json:"certStartDate"`
	CertExpirationDate   time.Time `json:"certExpirationDate"`
	ProviderName         string    `json:"providerName"`
	EncryptionKeyName    string    `json:"encryptionKeyName"`
	PaddingScheme        int32     `json:"paddingScheme"` // 0 none (= oaepSha512), 1 pkcs1, 2 oaepSha1, 3 oaepSha256, 4 oaepSha384, 5 oaepSha512
	Status               int32     `json:"status"`
	IntendedPurpose      int32     `json:"intendedPurpose"`
	CreatedTime          time.Time `json:"createdTime"`
	IsDeleted            bool      `json:"isDeleted"`
	LastModifiedTime     time.Time `json:"lastModifiedTime"`
	ETag                 string    `json:"eTag"`
}

// tenantState is one tenant's configuration (fixed at Start) and records (guarded by Server.mu).
// Record maps are keyed by lower-cased id: Graph ids compare case-insensitively.
type tenantState struct {
	cfg        Tenant
	userPfx    map[string]*UserPFXCertificate
	configs    map[string]DeviceConfiguration // profile type canonical
	states     map[string]*ManagedDeviceCertificateState
	recryption map[string]*PfxRecryptionRequest
	pfxUser    map[string]*PfxUserCertificate

	// For list answers only (Faults.CreateListLag, DeleteListLag, DeleteLinger); not in the state file,
	// so a restarted emulator lists exactly what it holds.
	created    map[string]time.Time // kind+"/"+key(id) -> when a Graph POST created it
	tombstones []tombstone          // deleted records, by deletion time
}

// Record kinds, as the list-consistency bookkeeping names them.
const (
	kindUserPfx    = "userPfxCertificates"
	kindStates     = "managedDeviceCertificateStates"
	kindRecryption = "pfxRecryptionRequests"
	kindPfxUser    = "pfxUserCertificates"
)

// tombstone is a deleted record that list answers may still show.
type tombstone struct {
	kind, id string // id lower-cased
	rec      any    // the record as it was (a value of the kind's type)
	at       time.Time
}

// noteCreated records a create for CreateListLag; s.mu must be held.
func (s *Server) noteCreated(ts *tenantState, kind, id string) {
	if s.faults.CreateListLag > 0 {
		ts.created[kind+"/"+key(id)] = s.now()
	}
}

// noteDeleted keeps a tombstone of a deleted record for DeleteListLag; s.mu must be held.
func (s *Server) noteDeleted(ts *tenantState, kind, id string, rec any) {
	delete(ts.created, kind+"/"+key(id))
	if s.deleteListLag(kind) > 0 {
		ts.tombstones = append(ts.tombstones, tombstone{kind: kind, id: key(id), rec: rec, at: s.now()})
	}
}

func (s *Server) deleteListLag(kind string) time.Duration {
	lag := s.faults.DeleteListLag
	if kind == kindUserPfx {
		lag = max(lag, s.faults.DeleteLinger)
	}
	return lag
}

// listView is what a list of kind shows now, ordered by id: the live records except those created
// less than CreateListLag ago, plus the records deleted less than DeleteListLag ago (unless a record
// with that id lives again). s.mu must be held.
func listView[T any](s *Server, ts *tenantState, kind string, live map[string]*T) []T {
	now := s.now()
	createLag := s.faults.CreateListLag
	deleteLag := s.deleteListLag(kind)
	keys := make([]string, 0, len(live))
	for k := range live {
		if at, ok := ts.created[kind+"/"+k]; ok {
			if createLag > 0 && now.Before(at.Add(createLag)) {
				continue
			}
			delete(ts.created, kind+"/"+k) // settled
		}
		keys = append(keys, k)
	}
	lingering := map[string]T{}
	maxLag := max(s.faults.DeleteListLag, s.faults.DeleteLinger)
	kept := ts.tombstones[:0]
	for _, t := range ts.tombstones {
		if !now.Before(t.at.Add(maxLag)) {
			continue // settled for every kind
		}
		kept = append(kept, t)
		if t.kind != kind || !now.Before(t.at.Add(deleteLag)) || live[t.id] != nil {
			continue
		}
		if rec, ok := t.rec.(T); ok {
			if _, dup := lingering[t.id]; !dup {
				keys = append(keys, t.id)
			}
			lingering[t.id] = rec // the latest deletion of that id
		}
	}
	ts.tombstones = kept
	sort.Strings(keys)
	out := make([]T, 0, len(keys))
	for _, k := range keys {
		if rec := live[k]; rec != nil {
			out = append(out, *rec)
		} else {
			out = append(out, lingering[k])
		}
	}
	return out
}

func newTenantState(t Tenant) *tenantState {
	ts := &tenantState{
		cfg:        t,
		userPfx:    map[string]*UserPFXCertificate{},
		configs:    map[string]DeviceConfiguration{},
		states:     map[string]*ManagedDeviceCertificateState{},
		recryption: map[string]*PfxRecryptionRequest{},
		pfxUser:    map[string]*PfxUserCertificate{},
		created:    map[string]time.Time{},
	}
	for _, dc := range t.DeviceConfigurations {
		ts.addConfig(dc)
	}
	return ts
}

func (ts *tenantState) addConfig(dc DeviceConfiguration) {
	dc.ProfileType = canonicalProfileType(dc.ProfileType)
	ts.configs[key(dc.ID)] = dc
}

func (ts *tenantState) app(clientID string) (App, bool) {
	for _, a := range ts.cfg.Apps {
		if strings.EqualFold(a.ClientID, clientID) {
			return a, true
		}
	}
	return App{}, false
}

// user finds a user by object id or user principal name, case-insensitively.
func (ts *tenantState) user(idOrUPN string) (User, bool) {
	if u, ok := ts.userIndex()[strings.ToLower(idOrUPN)]; ok { // seed.go
		return u, true
	}
	for _, u := range ts.cfg.Users {
		if strings.EqualFold(u.ID, idOrUPN) || strings.EqualFold(u.UserPrincipalName, idOrUPN) {
			return u, true
		}
	}
	return User{}, false
}

func key(id string) string { return strings.ToLower(id) }

// deleteRecord serves a DELETE of record id of one kind: 404 when records holds none (or belongs refuses
// it: a record below another configuration), else it is removed, kept as a tombstone for lagging lists and
// saved, and the answer is 204.
func deleteRecord[T any](c *call, records map[string]*T, kind, what, id string, belongs func(*T) bool) {
	c.s.mu.Lock()
	cur := records[key(id)]
	found := cur != nil && (belongs == nil || belongs(cur))
	var err error
	if found {
		delete(records, key(id))
		c.s.noteDeleted(c.t, kind, id, *cur)
		err = c.s.saveStateLocked()
	}
	c.s.mu.Unlock()
	switch {
	case !found:
		c.notFound(what, id)
	case err != nil:
		c.graphError(http.StatusInternalServerError, "InternalServerError", "The deletion could not be persisted.")
	default:
		c.w.WriteHeader(http.StatusNoContent)
	}
}

// sortedValues copies a record map's values, ordered by id, so lists and pages are stable.
func sortedValues[T any](m map[string]*T) []T {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]T, 0, len(m))
	for _, k := range keys {
		out = append(out, *m[k])
	}
	return out
}

// tenant returns a configured tenant's state, nil if unknown. The map itself never changes after Start.
func (s *Server) tenant(tenantID string) *tenantState { return s.tenants[tenantID] }

// UserPFXCertificates returns a tenant's stored records, including the real blob and password.
func (s *Server) UserPFXCertificates(tenantID string) []UserPFXCertificate {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ts := s.tenant(tenantID); ts != nil {
		return sortedValues(ts.userPfx)
	}
	return nil
}

// DeleteUserPFXCertificate deletes a record out of band (as an admin in the portal would); false if absent.
func (s *Server) DeleteUserPFXCertificate(tenantID, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := s.tenant(tenantID)
	if ts == nil || ts.userPfx[key(id)] == nil {
		return false
	}
	s.noteDeleted(ts, kindUserPfx, id, *ts.userPfx[key(id)])
	delete(ts.userPfx, key(id))
	_ = s.saveStateLocked() // a failing state file shows on the next Graph write
	return true
}

// ManagedDeviceCertificateStates returns a tenant's records with their DeviceConfigurationID and ProfileType.
func (s *Server) ManagedDeviceCertificateStates(tenantID string) []ManagedDeviceCertificateState {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ts := s.tenant(tenantID); ts != nil {
		return sortedValues(ts.states)
	}
	return nil
}

// PfxRecryptionRequests returns a tenant's records.
func (s *Server) PfxRecryptionRequests(tenantID string) []PfxRecryptionRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ts := s.tenant(tenantID); ts != nil {
		return sortedValues(ts.recryption)
	}
	return nil
}

// PfxUserCertificates returns a tenant's records, including the real blob and password.
func (s *Server) PfxUserCertificates(tenantID string) []PfxUserCertificate {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ts := s.tenant(tenantID); ts != nil {
		return sortedValues(ts.pfxUser)
	}
	return nil
}

// PutPfxUserCertificate seeds (or replaces) a record with a chosen id (Graph's POST assigns one). An
// empty ID gets a GUID from the seeded RNG. Unknown tenants are ignored.
func (s *Server) PutPfxUserCertificate(tenantID string, rec PfxUserCertificate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := s.tenant(tenantID)
	if ts == nil {
		return
	}
	if rec.ID == "" {
		rec.ID = s.newGUIDLocked()
	}
	ts.pfxUser[key(rec.ID)] = &rec
	_ = s.saveStateLocked() // a failing state file shows on the next Graph write
}

// AddDeviceConfiguration creates the Intune certificate profile id (of profileType, e.g. "iosScep")
// under which managedDeviceCertificateStates may be written. Unknown tenants are ignored.
func (s *Server) AddDeviceConfiguration(tenantID, id, profileType string) {
	s.AddConfiguration(tenantID, DeviceConfiguration{ID: id, ProfileType: profileType})
}

// AddConfiguration creates a device configuration: a certificate profile, or a Wi-Fi / VPN configuration
// that uses one. Unknown tenants are ignored.
func (s *Server) AddConfiguration(tenantID string, dc DeviceConfiguration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ts := s.tenant(tenantID); ts != nil {
		ts.addConfig(dc)
		_ = s.saveStateLocked() // a failing state file shows on the next Graph write
	}
}

func (s *Server) newGUIDLocked() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(s.idRNG.Uint32())
	}
	return formatGUID(b)
}
