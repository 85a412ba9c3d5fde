package graphsim

import (
	"fmt"
	"net/http"
	"strings"
)

const stateType = "microsoft.graph.managedDeviceCertificateState"

var (
	stateProps = []string{"id", "devicePlatform", "certificateKeyUsage", "certificateProfileDisplayName",
		"deviceDisplayName", "userDisplayName", "serverUrl", "certificateExpirationDateTime",
		"lastCertificateStateChangeDateTime", "certificateIssuer", "certificateThumbprint",
		"certificateSerialNumber", "certificateKeyLength", "enhancedKeyUsage"}
	// devicePlatforms: seed 004's values first (the default is the first), then later Graph additions.
	devicePlatforms = []string{"android", "androidForWork", "iOS", "macOS", "windowsPhone81", "windows81AndLater",
		"windows10AndLater", "androidWorkProfile", "unknown", "androidAOSP"}
	keyUsages = []string{"keyEncipherment", "digitalSignature"}

	profileTypes = []string{"iosScep", "macOSScep", "androidScep", "windows81SCEP", "androidForWorkScep", "windowsPhone81SCEP"}
	// profileRoutes are seed 004's six URL forms: the segments between the configuration id and
	// managedDeviceCertificateStates, and the profile type they address.
	profileRoutes = []struct{ segments, profileType string }{
		{"microsoft.graph.iosScepCertificateProfile", "iosScep"},
		{"microsoft.graph.macOSScepCertificateProfile", "macOSScep"},
		{"microsoft.graph.androidScepCertificateProfile", "androidScep"},
		{"microsoft.graph.windows81SCEPCertificateProfile", "windows81SCEP"},
		{"identityCertificate/microsoft.graph.androidForWorkScepCertificateProfile", "androidForWorkScep"},
		{"microsoft.graph.windowsPhone81VpnConfiguration/identityCertificate/microsoft.graph.windowsPhone81SCEPCertificateProfile", "windowsPhone81SCEP"},
	}
)

// canonicalProfileType accepts "iosScep", "microsoft.graph.iosScepCertificateProfile" and case
// variants; an unknown type is kept as given (and then matches no URL).
func canonicalProfileType(s string) string {
	t := strings.TrimPrefix(s, "microsoft.graph.")
	t = strings.TrimSuffix(t, "CertificateProfile")
	for _, p := range profileTypes {
		if strings.EqualFold(p, t) {
			return p
		}
	}
	return s
}

// view is what Graph shows: the location fields are not properties.
func (r ManagedDeviceCertificateState) view() ManagedDeviceCertificateState {
	r.DeviceConfigurationID, r.ProfileType = "", ""
	return r
}

func stateProp(r ManagedDeviceCertificateState, name string) (string, bool) {
	switch name {
	case "id":
		return r.ID, true
	case "devicePlatform":
		return r.DevicePlatform, true
	case "deviceDisplayName":
		return r.DeviceDisplayName, true
	case "userDisplayName":
		return r.UserDisplayName, true
	case "certificateThumbprint":
		return r.CertificateThumbprint, true
	case "certificateSerialNumber":
		return r.CertificateSerialNumber, true
	}
	return "", false
}

// deviceStates serves {configId}/{profile segments}/managedDeviceCertificateStates[/{id}].
func (c *call) deviceStates(configID string, rest []string) {
	idx := -1
	for i, seg := range rest {
		if strings.EqualFold(seg, "managedDeviceCertificateStates") {
			idx = i
			break
		}
	}
	if idx < 1 || len(rest) > idx+2 {
		c.noRoute()
		return
	}
	profileType := ""
	for _, pr := range profileRoutes {
		if strings.EqualFold(pr.segments, strings.Join(rest[:idx], "/")) {
			profileType = pr.profileType
		}
	}
	if profileType == "" {
		c.noRoute()
		return
	}
	c.s.mu.Lock()
	dc, ok := c.t.configs[key(configID)]
	c.s.mu.Unlock()
	if !ok || dc.ProfileType != profileType {
		c.notFound("deviceConfiguration", configID)
		return
	}
	ctx := fmt.Sprintf("deviceManagement/deviceConfigurations('%s')/%s/managedDeviceCertificateStates", dc.ID, strings.Join(rest[:idx], "/"))
	m := c.r.Method
	switch {
	case len(rest) == idx+1 && m == http.MethodGet:
		c.listStates(dc, ctx)
	case len(rest) == idx+1 && m == http.MethodPost:
		c.createState(dc, ctx)
	case len(rest) == idx+2 && m == http.MethodGet:
		c.getState(dc, ctx, rest[idx+1])
	case len(rest) == idx+2 && m == http.MethodPatch:
		c.updateState(dc, ctx, rest[idx+1])
	case len(rest) == idx+2 && m == http.MethodDelete:
		c.deleteState(dc, rest[idx+1])
	default:
		c.noRoute()
	}
}

func (c *call) listStates(dc DeviceConfiguration, ctx string) {
	c.s.mu.Lock()
	var items []ManagedDeviceCertificateState
	for _, r := range sortedValues(c.t.states) {
		if key(r.DeviceConfigurationID) == key(dc.ID) {
			items = append(items, r.view())
		}
	}
	c.s.mu.Unlock()
	if items, ok := filterItems(c, items, stateProp); ok {
		list(c, ctx, items)
	}
}

func (c *call) createState(dc DeviceConfiguration, ctx string) {
	var rec ManagedDeviceCertificateState
	if !c.decode(&rec, stateProps, stateType) || !c.validState(&rec) {
		return
	}
	rec.DeviceConfigurationID, rec.ProfileType = dc.ID, dc.ProfileType
	c.s.mu.Lock()
	rec.ID = c.s.newGUIDLocked() // server-generated, whatever the client sent
	c.t.states[key(rec.ID)] = &rec
	err := c.s.saveStateLocked()
	c.s.mu.Unlock()
	if err != nil {
		c.graphError(http.StatusInternalServerError, "InternalServerError", "The record could not be persisted.")
		return
	}
	c.entity(http.StatusCreated, stateType, ctx, rec.view())
}

// findState returns a copy of record id if it belongs to configuration dc.
func (c *call) findState(dc DeviceConfiguration, id string) (ManagedDeviceCertificateState, bool) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	cur := c.t.states[key(id)]
	if cur == nil || key(cur.DeviceConfigurationID) != key(dc.ID) {
		return ManagedDeviceCertificateState{}, false
	}
	return *cur, true
}

func (c *call) getState(dc DeviceConfiguration, ctx, id string) {
	rec, ok := c.findState(dc, id)
	if !ok {
		c.notFound("managedDeviceCertificateState", id)
		return
	}
	c.entity(http.StatusOK, stateType, ctx, rec.view())
}

func (c *call) updateState(dc DeviceConfiguration, ctx, id string) {
	cur, ok := c.findState(dc, id)
	if !ok {
		c.notFound("managedDeviceCertificateState", id)
		return
	}
	rec := cur
	if !c.decode(&rec, stateProps, stateType) || !c.validState(&rec) {
		return
	}
	rec.ID, rec.DeviceConfigurationID, rec.ProfileType = cur.ID, cur.DeviceConfigurationID, cur.ProfileType
	c.s.mu.Lock()
	gone := c.t.states[key(id)] == nil
	var err error
	if !gone {
		c.t.states[key(id)] = &rec
		err = c.s.saveStateLocked()
	}
	c.s.mu.Unlock()
	switch {
	case gone:
		c.notFound("managedDeviceCertificateState", id)
	case err != nil:
		c.graphError(http.StatusInternalServerError, "InternalServerError", "The record could not be persisted.")
	default:
		c.entity(http.StatusOK, stateType, ctx, rec.view())
	}
}

func (c *call) deleteState(dc DeviceConfiguration, id string) {
	c.s.mu.Lock()
	cur := c.t.states[key(id)]
	found := cur != nil && key(cur.DeviceConfigurationID) == key(dc.ID)
	var err error
	if found {
		delete(c.t.states, key(id))
		err = c.s.saveStateLocked()
	}
	c.s.mu.Unlock()
	switch {
	case !found:
		c.notFound("managedDeviceCertificateState", id)
	case err != nil:
		c.graphError(http.StatusInternalServerError, "InternalServerError", "The deletion could not be persisted.")
	default:
		c.w.WriteHeader(http.StatusNoContent)
	}
}

func (c *call) validState(rec *ManagedDeviceCertificateState) bool {
	if rec.DevicePlatform == "" {
		rec.DevicePlatform = devicePlatforms[0]
	}
	if rec.CertificateKeyUsage == "" {
		rec.CertificateKeyUsage = keyUsages[0]
	}
	switch {
	case !contains(devicePlatforms, rec.DevicePlatform):
		c.intuneError(http.StatusBadRequest, "BadRequest", fmt.Sprintf("'%s' is not a valid devicePlatform.", rec.DevicePlatform))
	case !contains(keyUsages, rec.CertificateKeyUsage):
		c.intuneError(http.StatusBadRequest, "BadRequest", fmt.Sprintf("'%s' is not a valid certificateKeyUsage.", rec.CertificateKeyUsage))
	default:
		return true
	}
	return false
}
