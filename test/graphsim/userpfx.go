package graphsim

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
)

const (
	userPfxType    = "microsoft.graph.userPFXCertificate"
	userPfxContext = "deviceManagement/userPfxCertificates"
)

var (
	userPfxProps = []string{"id", "thumbprint", "intendedPurpose", "userPrincipalName", "startDateTime",
		"expirationDateTime", "providerName", "keyName", "paddingScheme", "encryptedPfxBlob",
		"encryptedPfxPassword", "createdDateTime", "lastModifiedDateTime"}
	intendedPurposes = []string{"unassigned", "smimeEncryption", "smimeSigning", "vpn", "wifi"}
	// paddingSchemes in enum order: the Int32 form used by pfxUserCertificate is the index.
	paddingSchemes = []string{"none", "pkcs1", "oaepSha1", "oaepSha256", "oaepSha384", "oaepSha512"}
	thumbprintRE   = regexp.MustCompile(`^[0-9a-fA-F]{40}$`)
)

// masked is what Graph shows of a record: never the secrets.
func (r UserPFXCertificate) masked() UserPFXCertificate {
	r.EncryptedPfxBlob = []byte{0} // "AA=="
	r.EncryptedPfxPassword = ""
	return r
}

func userPfxProp(r UserPFXCertificate, name string) (string, bool) {
	switch name {
	case "id":
		return r.ID, true
	case "thumbprint":
		return r.Thumbprint, true
	case "userPrincipalName":
		return r.UserPrincipalName, true
	case "intendedPurpose":
		return r.IntendedPurpose, true
	case "providerName":
		return r.ProviderName, true
	case "keyName":
		return r.KeyName, true
	}
	return "", false
}

func (c *call) userPfx(rest []string) {
	m := c.r.Method
	switch {
	case len(rest) == 0 && m == http.MethodGet:
		c.listUserPfx()
	case len(rest) == 0 && m == http.MethodPost:
		c.createUserPfx()
	case len(rest) == 1 && m == http.MethodGet:
		c.getUserPfx(rest[0])
	case len(rest) == 1 && m == http.MethodPatch:
		c.updateUserPfx(rest[0])
	case len(rest) == 1 && m == http.MethodDelete:
		c.deleteUserPfx(rest[0])
	default:
		c.noRoute()
	}
}

func (c *call) listUserPfx() {
	c.s.mu.Lock()
	items := listView(c.s, c.t, kindUserPfx, c.t.userPfx)
	c.s.mu.Unlock()

	items, ok := filterItems(c, items, userPfxProp)
	if !ok {
		return
	}
	for i := range items {
		items[i] = items[i].masked()
	}
	list(c, userPfxContext, items)
}

func (c *call) getUserPfx(id string) {
	c.s.mu.Lock()
	rec := c.t.userPfx[key(id)]
	var out UserPFXCertificate
	if rec != nil {
		out = rec.masked()
	}
	c.s.mu.Unlock()
	if rec == nil {
		c.notFound("userPFXCertificate", id)
		return
	}
	c.entity(http.StatusOK, userPfxType, userPfxContext, out)
}

// createUserPfx stores a new record under the service-assigned id {userIdWithoutDashes}-{thumbprint};
// a second POST of the same user and thumbprint collides (409), it is not an upsert.
func (c *call) createUserPfx() {
	var rec UserPFXCertificate
	if !c.decode(&rec, userPfxProps, userPfxType) || !c.validUserPfx(&rec) {
		return
	}
	var user User
	for _, u := range c.t.cfg.Users {
		if strings.EqualFold(u.UserPrincipalName, rec.UserPrincipalName) {
			user = u
		}
	}
	if user.ID == "" {
		c.intuneError(http.StatusBadRequest, "BadRequest", fmt.Sprintf("User '%s' was not found in the tenant.", rec.UserPrincipalName))
		return
	}
	rec.ID = strings.ReplaceAll(user.ID, "-", "") + "-" + rec.Thumbprint
	if !c.connectorCheck(userPfxPayload(rec)) {
		return
	}
	now := c.s.now().UTC()
	rec.CreatedDateTime, rec.LastModifiedDateTime = now, now

	c.s.mu.Lock()
	exists := c.t.userPfx[key(rec.ID)] != nil
	var err error
	if !exists {
		c.t.userPfx[key(rec.ID)] = &rec
		c.s.noteCreated(c.t, kindUserPfx, rec.ID)
		err = c.s.saveStateLocked()
	}
	c.s.mu.Unlock()
	switch {
	case exists:
		c.intuneError(http.StatusConflict, "Conflict", fmt.Sprintf("A userPFXCertificate with id '%s' already exists.", rec.ID))
	case err != nil:
		c.graphError(http.StatusInternalServerError, "InternalServerError", "The record could not be persisted.")
	default:
		c.entity(http.StatusCreated, userPfxType, userPfxContext, rec.masked())
	}
}

// updateUserPfx merges the sent properties into the record. The user and thumbprint make up the id,
// so they cannot change (a new certificate is a new record).
func (c *call) updateUserPfx(id string) {
	c.s.mu.Lock()
	cur := c.t.userPfx[key(id)]
	var rec UserPFXCertificate
	if cur != nil {
		rec = *cur
	}
	c.s.mu.Unlock()
	if cur == nil {
		c.notFound("userPFXCertificate", id)
		return
	}
	if !c.decode(&rec, userPfxProps, userPfxType) || !c.validUserPfx(&rec) {
		return
	}
	if !strings.EqualFold(rec.Thumbprint, cur.Thumbprint) || !strings.EqualFold(rec.UserPrincipalName, cur.UserPrincipalName) {
		c.intuneError(http.StatusBadRequest, "BadRequest", "thumbprint and userPrincipalName are part of the id and cannot be changed.")
		return
	}
	rec.ID, rec.CreatedDateTime = cur.ID, cur.CreatedDateTime
	if !c.connectorCheck(userPfxPayload(rec)) {
		return
	}
	rec.LastModifiedDateTime = c.s.now().UTC()

	c.s.mu.Lock()
	gone := c.t.userPfx[key(id)] == nil
	var err error
	if !gone {
		c.t.userPfx[key(id)] = &rec
		err = c.s.saveStateLocked()
	}
	c.s.mu.Unlock()
	switch {
	case gone:
		c.notFound("userPFXCertificate", id)
	case err != nil:
		c.graphError(http.StatusInternalServerError, "InternalServerError", "The record could not be persisted.")
	default:
		c.updated(userPfxType, userPfxContext, rec.masked())
	}
}

func (c *call) deleteUserPfx(id string) {
	deleteRecord(c, c.t.userPfx, kindUserPfx, "userPFXCertificate", id, nil)
}

// validUserPfx applies enum defaults (an OData enum defaults to its first member) and checks values.
func (c *call) validUserPfx(rec *UserPFXCertificate) bool {
	if rec.IntendedPurpose == "" {
		rec.IntendedPurpose = intendedPurposes[0]
	}
	if rec.PaddingScheme == "" {
		rec.PaddingScheme = paddingSchemes[0]
	}
	rec.IntendedPurpose = canonicalEnum(intendedPurposes, rec.IntendedPurpose)
	rec.PaddingScheme = canonicalEnum(paddingSchemes, rec.PaddingScheme)
	var problem string
	switch {
	case !contains(intendedPurposes, rec.IntendedPurpose):
		problem = fmt.Sprintf("'%s' is not a valid userPfxIntendedPurpose.", rec.IntendedPurpose)
	case !contains(paddingSchemes, rec.PaddingScheme):
		problem = fmt.Sprintf("'%s' is not a valid userPfxPaddingScheme.", rec.PaddingScheme)
	case !thumbprintRE.MatchString(rec.Thumbprint):
		problem = "thumbprint must be the 40 hex digits of a SHA-1 thumbprint."
	case rec.UserPrincipalName == "":
		problem = "userPrincipalName is required."
	default:
		return true
	}
	c.intuneError(http.StatusBadRequest, "BadRequest", problem)
	return false
}
