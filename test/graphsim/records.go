package graphsim

import (
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
	ID                                 string    `json:"id"`
	DevicePlatform                     string    `json:"devicePlatform"`
	CertificateKeyUsage                string    `json:"certificateKeyUsage"`
	CertificateProfileDisplayName      string    `json:"certificateProfileDisplayName"`
	DeviceDisplayName                  string    `json:"deviceDisplayName"`
	UserDisplayName                    string    `json:"userDisplayName"`
	ServerURL                          string    `json:"serverUrl"`
	CertificateExpirationDateTime      time.Time `json:"certificateExpirationDateTime"`
	LastCertificateStateChangeDateTime time.Time `json:"lastCertificateStateChangeDateTime"`
	CertificateIssuer                  string    `json:"certificateIssuer"`
	CertificateThumbprint              string    `json:"certificateThumbprint"`
	CertificateSerialNumber            string    `json:"certificateSerialNumber"`
	CertificateKeyLength               int32     `json:"certificateKeyLength"`
	EnhancedKeyUsage                   string    `json:"enhancedKeyUsage"`

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
	lingering  []lingeringRecord
	configs    map[string]DeviceConfiguration // profile type canonical
	states     map[string]*ManagedDeviceCertificateState
	recryption map[string]*PfxRecryptionRequest
	pfxUser    map[string]*PfxUserCertificate
}

// lingeringRecord is a deleted userPfxCertificate that is still listed (Faults.DeleteLinger).
type lingeringRecord struct {
	rec   UserPFXCertificate
	until time.Time
}

func newTenantState(t Tenant) *tenantState {
	ts := &tenantState{
		cfg:        t,
		userPfx:    map[string]*UserPFXCertificate{},
		configs:    map[string]DeviceConfiguration{},
		states:     map[string]*ManagedDeviceCertificateState{},
		recryption: map[string]*PfxRecryptionRequest{},
		pfxUser:    map[string]*PfxUserCertificate{},
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
	for _, u := range ts.cfg.Users {
		if strings.EqualFold(u.ID, idOrUPN) || strings.EqualFold(u.UserPrincipalName, idOrUPN) {
			return u, true
		}
	}
	return User{}, false
}

func key(id string) string { return strings.ToLower(id) }

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

// PutPfxUserCertificate seeds (or replaces) a record, since Graph has no POST for it. An empty ID
// gets a GUID from the seeded RNG. Unknown tenants are ignored.
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
	s.mu.Lock()
	defer s.mu.Unlock()
	if ts := s.tenant(tenantID); ts != nil {
		ts.addConfig(DeviceConfiguration{ID: id, ProfileType: profileType})
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
