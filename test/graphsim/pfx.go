package graphsim

import (
	"fmt"
	"net/http"
	"regexp"
)

// The connector's root-level collections, documented only by seeds 001 and 002.
const (
	recryptionType    = "microsoft.graph.pfxRecryptionRequest"
	recryptionContext = "pfxRecryptionRequests"
	pfxUserType       = "microsoft.graph.pfxUserCertificate"
	pfxUserContext    = "pfxUserCertificates"
	zeroGUID          = "00000000-0000-0000-0000-000000000000"
)

var (
	recryptionProps = []string{"id", "tenantId", "userId", "deviceId", "profileId", "thumbprint", "deviceKeyThumbprint",
		"status", "sourceType", "createdTime", "lastModifiedTime", "isDeleted", "eTag"}
	pfxUserProps = []string{"id", "tenantId", "userId", "thumbprint", "userUpn", "encryptedPfxBlob", "encryptedPfxPassword",
		"certStartDate", "certExpirationDate", "providerName", "encryptionKeyName", "paddingScheme", "status",
		"intendedPurpose", "createdTime", "isDeleted", "lastModifiedTime", "eTag"}
	guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

// validGUIDs defaults empty Guid properties to the zero GUID (Guid is not nullable) and checks the rest.
func (c *call) validGUIDs(fields map[string]*string) bool {
	for name, v := range fields {
		if *v == "" {
			*v = zeroGUID
		}
		if !guidRE.MatchString(*v) {
			c.intuneError(http.StatusBadRequest, "BadRequest", fmt.Sprintf("The property '%s' must be a GUID.", name))
			return false
		}
	}
	return true
}

func (s *Server) newETagLocked() string { return `W/"` + s.newGUIDLocked() + `"` }

func (c *call) recryption(rest []string) {
	m := c.r.Method
	switch {
	case len(rest) == 0 && m == http.MethodPost:
		c.createRecryption()
	case len(rest) == 1 && m == http.MethodGet:
		c.s.mu.Lock()
		rec := c.t.recryption[key(rest[0])]
		var out PfxRecryptionRequest
		if rec != nil {
			out = *rec
		}
		c.s.mu.Unlock()
		if rec == nil {
			c.notFound("pfxRecryptionRequest", rest[0])
			return
		}
		c.entity(http.StatusOK, recryptionType, recryptionContext, out)
	case len(rest) == 1 && m == http.MethodDelete:
		c.deleteRecryption(rest[0])
	default:
		c.noRoute()
	}
}

func (c *call) deleteRecryption(id string) {
	c.s.mu.Lock()
	found := c.t.recryption[key(id)] != nil
	var err error
	if found {
		delete(c.t.recryption, key(id))
		err = c.s.saveStateLocked()
	}
	c.s.mu.Unlock()
	switch {
	case !found:
		c.notFound("pfxRecryptionRequest", id)
	case err != nil:
		c.graphError(http.StatusInternalServerError, "InternalServerError", "The deletion could not be persisted.")
	default:
		c.w.WriteHeader(http.StatusNoContent)
	}
}

func (c *call) createRecryption() {
	var rec PfxRecryptionRequest
	if !c.decode(&rec, recryptionProps, recryptionType) ||
		!c.validGUIDs(map[string]*string{"tenantId": &rec.TenantID, "userId": &rec.UserID, "deviceId": &rec.DeviceID, "profileId": &rec.ProfileID}) {
		return
	}
	now := c.s.now().UTC()
	rec.CreatedTime, rec.LastModifiedTime = now, now
	c.s.mu.Lock()
	rec.ID = c.s.newGUIDLocked()
	rec.ETag = c.s.newETagLocked()
	c.t.recryption[key(rec.ID)] = &rec
	err := c.s.saveStateLocked()
	c.s.mu.Unlock()
	if err != nil {
		c.graphError(http.StatusInternalServerError, "InternalServerError", "The record could not be persisted.")
		return
	}
	c.entity(http.StatusCreated, recryptionType, recryptionContext, rec)
}

// masked hides the secrets on reads, as the service does for userPFXCertificate.
func (r PfxUserCertificate) masked() PfxUserCertificate {
	r.EncryptedPfxBlob = "AA=="
	r.EncryptedPfxPassword = ""
	return r
}

func (c *call) pfxUser(rest []string) {
	if len(rest) != 1 || (c.r.Method != http.MethodGet && c.r.Method != http.MethodPatch) {
		c.noRoute()
		return
	}
	id := rest[0]
	c.s.mu.Lock()
	cur := c.t.pfxUser[key(id)]
	var rec PfxUserCertificate
	if cur != nil {
		rec = *cur
	}
	c.s.mu.Unlock()
	if cur == nil {
		c.notFound("pfxUserCertificate", id)
		return
	}
	if c.r.Method == http.MethodGet {
		c.entity(http.StatusOK, pfxUserType, pfxUserContext, rec.masked())
		return
	}
	if !c.decode(&rec, pfxUserProps, pfxUserType) ||
		!c.validGUIDs(map[string]*string{"tenantId": &rec.TenantID, "userId": &rec.UserID}) {
		return
	}
	if rec.PaddingScheme < 0 || int(rec.PaddingScheme) >= len(paddingSchemes) {
		c.intuneError(http.StatusBadRequest, "BadRequest", fmt.Sprintf("paddingScheme %d is not a known padding scheme (0-5).", rec.PaddingScheme))
		return
	}
	rec.ID, rec.CreatedTime = cur.ID, cur.CreatedTime
	if !c.connectorCheck(pfxUserPayload(rec)) {
		return
	}
	c.s.mu.Lock()
	rec.LastModifiedTime = c.s.now().UTC()
	rec.ETag = c.s.newETagLocked()
	c.t.pfxUser[key(id)] = &rec
	err := c.s.saveStateLocked()
	c.s.mu.Unlock()
	if err != nil {
		c.graphError(http.StatusInternalServerError, "InternalServerError", "The record could not be persisted.")
		return
	}
	c.entity(http.StatusOK, pfxUserType, pfxUserContext, rec.masked())
}
