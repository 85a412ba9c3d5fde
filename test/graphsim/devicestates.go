package graphsim

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

const stateType = "microsoft.graph.managedDeviceCertificateState"

var (
	// stateProps are today's managedDeviceCertificateState properties (the beta resource page); seed 004's
	// serverUrl and enhancedKeyUsage are gone, and a closed type refuses properties it lacks.
	stateProps = []string{"id", "devicePlatform", "certificateKeyUsage", "certificateValidityPeriodUnits",
		"certificateIssuanceState", "certificateKeyStorageProvider", "certificateSubjectNameFormat",
		"certificateSubjectAlternativeNameFormat", "certificateRevokeStatus", "certificateProfileDisplayName",
		"deviceDisplayName", "userDisplayName", "certificateExpirationDateTime",
		"certificateLastIssuanceStateChangedDateTime", "lastCertificateStateChangeDateTime", "certificateIssuer",
		"certificateThumbprint", "certificateSerialNumber", "certificateKeyLength", "certificateEnhancedKeyUsage",
		"certificateValidityPeriod", "certificateSubjectNameFormatString",
		"certificateSubjectAlternativeNameFormatString", "certificateIssuanceDateTime", "certificateErrorCode"}
	// devicePlatforms: seed 004's values first (the default is the first), then later Graph additions.
	devicePlatforms = []string{"android", "androidForWork", "iOS", "macOS", "windowsPhone81", "windows81AndLater",
		"windows10AndLater", "androidWorkProfile", "unknown", "androidAOSP"}
	keyUsages = []string{"keyEncipherment", "digitalSignature"}

	// profileTypes are the certificate profile types whose configurations have managedDeviceCertificateStates:
	// seed 004's six, then those today's create page adds.
	profileTypes = []string{"iosScep", "macOSScep", "androidScep", "windows81SCEP", "androidForWorkScep", "windowsPhone81SCEP",
		"iosPkcs", "iosImportedPFX", "macOSPkcs", "macOSImportedPFX", "androidPkcs", "androidImportedPFX",
		"androidForWorkPkcs", "androidForWorkImportedPFX", "androidWorkProfilePkcs", "androidWorkProfileScep",
		"androidDeviceOwnerPkcs", "androidDeviceOwnerScep", "androidDeviceOwnerImportedPFX", "aospDeviceOwnerPkcs",
		"aospDeviceOwnerScep", "windows10Pkcs", "windows10ImportedPFX", "windowsPhone81ImportedPFX"}
	// nestings are the configurations through which the create page reaches a profile: the configuration's
	// type, its navigation to the profile, and the profile types that nesting lists.
	nestings = []struct{ configType, navigation string }{
		{"windowsWifiEnterpriseEAPConfiguration", "identityCertificateForClientAuthentication"},
		{"windowsPhone81VpnConfiguration", "identityCertificate"},
	}
)

// canonicalProfileType accepts "iosScep", "microsoft.graph.iosScepCertificateProfile" and case
// variants, and the nesting configuration types; an unknown type is kept as given (and then matches
// no URL).
func canonicalProfileType(s string) string {
	t := strings.TrimPrefix(s, "microsoft.graph.")
	for _, n := range nestings {
		if strings.EqualFold(n.configType, t) {
			return n.configType
		}
	}
	t = strings.TrimSuffix(t, "CertificateProfile")
	for _, p := range profileTypes {
		if strings.EqualFold(p, t) {
			return p
		}
	}
	return s
}

// profileCast returns the profile type a segment "microsoft.graph.{type}CertificateProfile" casts to.
func profileCast(seg string) (string, bool) {
	name, ok := strings.CutPrefix(seg, "microsoft.graph.")
	if !ok || !strings.HasSuffix(strings.ToLower(name), "certificateprofile") {
		return "", false
	}
	t := canonicalProfileType(seg)
	return t, contains(profileTypes, t)
}

// routeProfile resolves the segments between the configuration id and managedDeviceCertificateStates the
// way OData routes them: a type cast of the configuration to its own profile type, or a Wi-Fi / VPN
// configuration's cast, its navigation to the profile it uses, and that profile's cast. It answers
// itself (400 for a segment that does not route, 404 for a configuration that is not of the cast
// type) and returns false then.
func (c *call) routeProfile(configID string, segs []string) (DeviceConfiguration, bool) {
	c.s.mu.Lock()
	dc, found := c.t.configs[key(configID)]
	c.s.mu.Unlock()
	unrouted := func(seg string) (DeviceConfiguration, bool) {
		c.graphError(http.StatusBadRequest, "BadRequest", fmt.Sprintf("Resource not found for the segment '%s'.", seg))
		return DeviceConfiguration{}, false
	}
	switch len(segs) {
	case 1: // {id}/microsoft.graph.{type}CertificateProfile
		t, ok := profileCast(segs[0])
		if !ok {
			return unrouted(segs[0])
		}
		if !found || dc.ProfileType != t {
			c.notFound("deviceConfiguration", configID)
			return DeviceConfiguration{}, false
		}
		return dc, true
	case 3: // {id}/microsoft.graph.{nesting}/{navigation}/microsoft.graph.{type}CertificateProfile
		nesting := canonicalProfileType(segs[0])
		i := slices.IndexFunc(nestings, func(n struct{ configType, navigation string }) bool {
			return n.configType == nesting && strings.HasPrefix(segs[0], "microsoft.graph.")
		})
		if i < 0 {
			return unrouted(segs[0])
		}
		if !strings.EqualFold(segs[1], nestings[i].navigation) {
			return unrouted(segs[1])
		}
		t, ok := profileCast(segs[2])
		if !ok {
			return unrouted(segs[2])
		}
		if !found || dc.ProfileType != nesting {
			c.notFound("deviceConfiguration", configID)
			return DeviceConfiguration{}, false
		}
		c.s.mu.Lock()
		profile, ok := c.t.configs[key(dc.IdentityCertificateID)]
		c.s.mu.Unlock()
		if !ok || profile.ProfileType != t {
			c.notFound(nestings[i].navigation, configID)
			return DeviceConfiguration{}, false
		}
		return profile, true
	default:
		if len(segs) > 0 && !strings.HasPrefix(segs[0], "microsoft.graph.") {
			return unrouted(segs[0]) // e.g. seed 004's "{id}/identityCertificate/...": the base type has no such navigation
		}
		c.noRoute()
		return DeviceConfiguration{}, false
	}
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
	dc, ok := c.routeProfile(configID, rest[:idx])
	if !ok {
		return
	}
	ctx := fmt.Sprintf("deviceManagement/deviceConfigurations('%s')/%s/managedDeviceCertificateStates", configID, strings.Join(rest[:idx], "/"))
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
	for _, r := range listView(c.s, c.t, kindStates, c.t.states) {
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
	c.s.noteCreated(c.t, kindStates, rec.ID)
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
		c.updated(stateType, ctx, rec.view())
	}
}

func (c *call) deleteState(dc DeviceConfiguration, id string) {
	deleteRecord(c, c.t.states, kindStates, "managedDeviceCertificateState", id,
		func(r *ManagedDeviceCertificateState) bool { return key(r.DeviceConfigurationID) == key(dc.ID) })
}

func (c *call) validState(rec *ManagedDeviceCertificateState) bool {
	if rec.DevicePlatform == "" {
		rec.DevicePlatform = devicePlatforms[0]
	}
	if rec.CertificateKeyUsage == "" {
		rec.CertificateKeyUsage = keyUsages[0]
	}
	rec.DevicePlatform = canonicalEnum(devicePlatforms, rec.DevicePlatform)
	rec.CertificateKeyUsage = canonicalEnum(keyUsages, rec.CertificateKeyUsage)
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
