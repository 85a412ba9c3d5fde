package graphsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
)

// The connector's root-level collections (seeds 001 and 002; today's beta resource pages list List, Get,
// Create, Delete and Update for both, and no id property).
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

func recryptionProp(r PfxRecryptionRequest, name string) (string, bool) {
	switch name {
	case "id":
		return r.ID, true
	case "tenantId":
		return r.TenantID, true
	case "userId":
		return r.UserID, true
	case "deviceId":
		return r.DeviceID, true
	case "profileId":
		return r.ProfileID, true
	case "thumbprint":
		return r.Thumbprint, true
	case "deviceKeyThumbprint":
		return r.DeviceKeyThumbprint, true
	}
	return "", false
}

// recryption serves the resource page's methods: List, Get, Create, Delete, Update.
func (c *call) recryption(rest []string) {
	m := c.r.Method
	switch {
	case len(rest) == 0 && m == http.MethodGet:
		c.s.mu.Lock()
		items := listView(c.s, c.t, kindRecryption, c.t.recryption)
		c.s.mu.Unlock()
		if items, ok := filterItems(c, items, recryptionProp); ok {
			list(c, recryptionContext, items)
		}
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
	case len(rest) == 1 && m == http.MethodPatch:
		c.updateRecryption(rest[0])
	case len(rest) == 1 && m == http.MethodDelete:
		c.deleteRecryption(rest[0])
	default:
		c.noRoute()
	}
}

func (c *call) validRecryption(rec *PfxRecryptionRequest) bool {
	return c.validGUIDs(map[string]*string{"tenantId": &rec.TenantID, "userId": &rec.UserID, "deviceId": &rec.DeviceID, "profileId": &rec.ProfileID})
}

// createRecryption stores a new request under a server-generated id. The answer carries that id,
// unless Faults.RecryptionCreateWithoutID (the documented resource has no id property).
func (c *call) createRecryption() {
	var rec PfxRecryptionRequest
	if !c.decode(&rec, recryptionProps, recryptionType) || !c.validRecryption(&rec) {
		return
	}
	now := c.s.now().UTC()
	rec.CreatedTime, rec.LastModifiedTime = now, now
	c.s.mu.Lock()
	rec.ID = c.s.newGUIDLocked()
	rec.ETag = c.s.newETagLocked()
	c.t.recryption[key(rec.ID)] = &rec
	c.s.noteCreated(c.t, kindRecryption, rec.ID)
	err := c.s.saveStateLocked()
	withoutID := c.s.faults.RecryptionCreateWithoutID
	c.s.mu.Unlock()
	if err != nil {
		c.graphError(http.StatusInternalServerError, "InternalServerError", "The record could not be persisted.")
		return
	}
	if withoutID {
		c.entity(http.StatusCreated, recryptionType, recryptionContext, recryptionWithoutID(rec))
		return
	}
	c.entity(http.StatusCreated, recryptionType, recryptionContext, rec)
}

// recryptionWithoutID is a request as the documented resource shows it: no id property.
type recryptionWithoutID PfxRecryptionRequest

func (r recryptionWithoutID) MarshalJSON() ([]byte, error) {
	type plain PfxRecryptionRequest
	return json.Marshal(struct {
		plain
		ID *struct{} `json:"id,omitempty"` // shadows the embedded id: always omitted
	}{plain: plain(r)})
}

// updateRecryption merges the sent properties into the request (the id stays).
func (c *call) updateRecryption(id string) {
	c.s.mu.Lock()
	cur := c.t.recryption[key(id)]
	var rec PfxRecryptionRequest
	if cur != nil {
		rec = *cur
	}
	c.s.mu.Unlock()
	if cur == nil {
		c.notFound("pfxRecryptionRequest", id)
		return
	}
	if !c.decode(&rec, recryptionProps, recryptionType) || !c.validRecryption(&rec) {
		return
	}
	rec.ID, rec.CreatedTime = cur.ID, cur.CreatedTime
	c.s.mu.Lock()
	gone := c.t.recryption[key(id)] == nil
	var err error
	if !gone {
		rec.LastModifiedTime = c.s.now().UTC()
		rec.ETag = c.s.newETagLocked()
		c.t.recryption[key(id)] = &rec
		err = c.s.saveStateLocked()
	}
	c.s.mu.Unlock()
	switch {
	case gone:
		c.notFound("pfxRecryptionRequest", id)
	case err != nil:
		c.graphError(http.StatusInternalServerError, "InternalServerError", "The record could not be persisted.")
	default:
		c.updated(recryptionType, recryptionContext, rec)
	}
}

// masked hides the secrets on reads, as the service does for userPFXCertificate.
func (r PfxUserCertificate) masked() PfxUserCertificate {
	r.EncryptedPfxBlob = "AA=="
	r.EncryptedPfxPassword = ""
	return r
}

func pfxUserProp(r PfxUserCertificate, name string) (string, bool) {
	switch name {
	case "id":
		return r.ID, true
	case "tenantId":
		return r.TenantID, true
	case "userId":
		return r.UserID, true
	case "thumbprint":
		return r.Thumbprint, true
	case "userUpn":
		return r.UserUpn, true
	case "providerName":
		return r.ProviderName, true
	case "encryptionKeyName":
		return r.EncryptionKeyName, true
	}
	return "", false
}

// pfxUser serves the resource page's methods: List, Get, Create, Delete, Update.
func (c *call) pfxUser(rest []string) {
	m := c.r.Method
	switch {
	case len(rest) == 0 && m == http.MethodGet:
		c.s.mu.Lock()
		items := listView(c.s, c.t, kindPfxUser, c.t.pfxUser)
		c.s.mu.Unlock()
		items, ok := filterItems(c, items, pfxUserProp)
		if !ok {
			return
		}
		for i := range items {
			items[i] = items[i].masked()
		}
		list(c, pfxUserContext, items)
	case len(rest) == 0 && m == http.MethodPost:
		c.createPfxUser()
	case len(rest) == 1 && m == http.MethodGet:
		c.s.mu.Lock()
		cur := c.t.pfxUser[key(rest[0])]
		var rec PfxUserCertificate
		if cur != nil {
			rec = *cur
		}
		c.s.mu.Unlock()
		if cur == nil {
			c.notFound("pfxUserCertificate", rest[0])
			return
		}
		c.entity(http.StatusOK, pfxUserType, pfxUserContext, rec.masked())
	case len(rest) == 1 && m == http.MethodPatch:
		c.updatePfxUser(rest[0])
	case len(rest) == 1 && m == http.MethodDelete:
		c.deletePfxUser(rest[0])
	default:
		c.noRoute()
	}
}

// validPfxUser defaults and checks what a create or an update would store, then runs the connector check.
func (c *call) validPfxUser(rec *PfxUserCertificate) bool {
	if !c.validGUIDs(map[string]*string{"tenantId": &rec.TenantID, "userId": &rec.UserID}) {
		return false
	}
	if rec.PaddingScheme < 0 || int(rec.PaddingScheme) >= len(paddingSchemes) {
		c.intuneError(http.StatusBadRequest, "BadRequest", fmt.Sprintf("paddingScheme %d is not a known padding scheme (0-5).", rec.PaddingScheme))
		return false
	}
	return c.connectorCheck(pfxUserPayload(*rec))
}

// createPfxUser stores a new record under a server-generated id (the page documents no natural key,
// so a second POST of the same certificate is a second record) and answers 201 with it.
func (c *call) createPfxUser() {
	var rec PfxUserCertificate
	if !c.decode(&rec, pfxUserProps, pfxUserType) {
		return
	}
	rec.ID = "" // the service assigns it, whatever the client sent
	if !c.validPfxUser(&rec) {
		return
	}
	c.s.mu.Lock()
	rec.ID = c.s.newGUIDLocked()
	now := c.s.now().UTC()
	rec.CreatedTime, rec.LastModifiedTime = now, now
	rec.ETag = c.s.newETagLocked()
	c.t.pfxUser[key(rec.ID)] = &rec
	c.s.noteCreated(c.t, kindPfxUser, rec.ID)
	err := c.s.saveStateLocked()
	c.s.mu.Unlock()
	if err != nil {
		c.graphError(http.StatusInternalServerError, "InternalServerError", "The record could not be persisted.")
		return
	}
	c.entity(http.StatusCreated, pfxUserType, pfxUserContext, rec.masked())
}

func (c *call) updatePfxUser(id string) {
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
	if !c.decode(&rec, pfxUserProps, pfxUserType) {
		return
	}
	rec.ID, rec.CreatedTime = cur.ID, cur.CreatedTime
	if !c.validPfxUser(&rec) {
		return
	}
	c.s.mu.Lock()
	gone := c.t.pfxUser[key(id)] == nil
	var err error
	if !gone {
		rec.LastModifiedTime = c.s.now().UTC()
		rec.ETag = c.s.newETagLocked()
		c.t.pfxUser[key(id)] = &rec
		err = c.s.saveStateLocked()
	}
	c.s.mu.Unlock()
	switch {
	case gone:
		c.notFound("pfxUserCertificate", id)
	case err != nil:
		c.graphError(http.StatusInternalServerError, "InternalServerError", "The record could not be persisted.")
	default:
		c.updated(pfxUserType, pfxUserContext, rec.masked())
	}
}

func (c *call) deleteRecryption(id string) {
	deleteRecord(c, c.t.recryption, kindRecryption, "pfxRecryptionRequest", id, nil)
}

func (c *call) deletePfxUser(id string) {
	deleteRecord(c, c.t.pfxUser, kindPfxUser, "pfxUserCertificate", id, nil)
}
