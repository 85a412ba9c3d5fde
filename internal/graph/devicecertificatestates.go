package graph

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// ProfileType names the certificate profile kind: microsoft.graph.{ProfileType}CertificateProfile.
type ProfileType string

// The six profile types of seed 004 first, then those today's create page adds
// (learn.microsoft.com/graph/api/intune-deviceconfig-manageddevicecertificatestate-create?view=graph-rest-beta).
const (
	ProfileIOSScep            ProfileType = "iosScep"
	ProfileMacOSScep          ProfileType = "macOSScep"
	ProfileAndroidScep        ProfileType = "androidScep"
	ProfileWindows81SCEP      ProfileType = "windows81SCEP"
	ProfileAndroidForWorkScep ProfileType = "androidForWorkScep"
	ProfileWindowsPhone81SCEP ProfileType = "windowsPhone81SCEP"

	ProfileIOSPkcs                       ProfileType = "iosPkcs"
	ProfileIOSImportedPFX                ProfileType = "iosImportedPFX"
	ProfileMacOSPkcs                     ProfileType = "macOSPkcs"
	ProfileMacOSImportedPFX              ProfileType = "macOSImportedPFX"
	ProfileAndroidPkcs                   ProfileType = "androidPkcs"
	ProfileAndroidImportedPFX            ProfileType = "androidImportedPFX"
	ProfileAndroidForWorkPkcs            ProfileType = "androidForWorkPkcs"
	ProfileAndroidForWorkImportedPFX     ProfileType = "androidForWorkImportedPFX"
	ProfileAndroidWorkProfilePkcs        ProfileType = "androidWorkProfilePkcs"
	ProfileAndroidWorkProfileScep        ProfileType = "androidWorkProfileScep"
	ProfileAndroidDeviceOwnerPkcs        ProfileType = "androidDeviceOwnerPkcs"
	ProfileAndroidDeviceOwnerScep        ProfileType = "androidDeviceOwnerScep"
	ProfileAndroidDeviceOwnerImportedPFX ProfileType = "androidDeviceOwnerImportedPFX"
	ProfileAospDeviceOwnerPkcs           ProfileType = "aospDeviceOwnerPkcs"
	ProfileAospDeviceOwnerScep           ProfileType = "aospDeviceOwnerScep"
	ProfileWindows10Pkcs                 ProfileType = "windows10Pkcs"
	ProfileWindows10ImportedPFX          ProfileType = "windows10ImportedPFX"
	ProfileWindowsPhone81ImportedPFX     ProfileType = "windowsPhone81ImportedPFX"
)

// ProfileTypes lists the supported profile types in a stable order.
func ProfileTypes() []ProfileType {
	return []ProfileType{ProfileIOSScep, ProfileMacOSScep, ProfileAndroidScep, ProfileWindows81SCEP,
		ProfileAndroidForWorkScep, ProfileWindowsPhone81SCEP,
		ProfileIOSPkcs, ProfileIOSImportedPFX, ProfileMacOSPkcs, ProfileMacOSImportedPFX, ProfileAndroidPkcs,
		ProfileAndroidImportedPFX, ProfileAndroidForWorkPkcs, ProfileAndroidForWorkImportedPFX,
		ProfileAndroidWorkProfilePkcs, ProfileAndroidWorkProfileScep, ProfileAndroidDeviceOwnerPkcs,
		ProfileAndroidDeviceOwnerScep, ProfileAndroidDeviceOwnerImportedPFX, ProfileAospDeviceOwnerPkcs,
		ProfileAospDeviceOwnerScep, ProfileWindows10Pkcs, ProfileWindows10ImportedPFX, ProfileWindowsPhone81ImportedPFX}
}

// Via names a configuration through which a certificate profile is reached: the nested URL forms of the
// create page, whose {deviceConfigurationId} is that Wi-Fi or VPN configuration's id, not the profile's.
type Via string

const (
	// ViaProfile (the default) is the profile's own type cast: {profileId}/microsoft.graph.{type}CertificateProfile.
	ViaProfile Via = ""
	// ViaWindowsWifiEnterpriseEAP reaches the profile a Windows enterprise Wi-Fi configuration uses for
	// client authentication.
	ViaWindowsWifiEnterpriseEAP Via = "WindowsWifiEnterpriseEAP"
	// ViaWindowsPhone81Vpn reaches the SCEP profile a Windows Phone 8.1 VPN configuration uses.
	ViaWindowsPhone81Vpn Via = "WindowsPhone81Vpn"
)

// viaSegments are the segments between the configuration id and the profile's type cast, and the profile
// types each nesting documents.
var viaSegments = map[Via]struct {
	segments string
	types    []ProfileType
}{
	ViaWindowsWifiEnterpriseEAP: {"/microsoft.graph.windowsWifiEnterpriseEAPConfiguration/identityCertificateForClientAuthentication",
		[]ProfileType{ProfileWindows10Pkcs, ProfileWindows81SCEP, ProfileWindows10ImportedPFX, ProfileWindowsPhone81ImportedPFX}},
	ViaWindowsPhone81Vpn: {"/microsoft.graph.windowsPhone81VpnConfiguration/identityCertificate",
		[]ProfileType{ProfileWindowsPhone81SCEP}},
}

// CertificateProfile addresses the certificate profile whose device states are managed.
type CertificateProfile struct {
	// DeviceConfigurationID is the profile's id, or with Via set the Wi-Fi or VPN configuration's.
	DeviceConfigurationID string
	Type                  ProfileType
	Via                   Via
}

// statesPath is the escaped collection path of p's managedDeviceCertificateStates. Every profile type is
// addressed by a type cast of the configuration (OData routes a cast for every type with the navigation);
// seed 004's "{id}/identityCertificate/..." form has no cast and the service cannot route it.
func (p CertificateProfile) statesPath() (string, error) {
	if !slices.Contains(ProfileTypes(), p.Type) {
		return "", fmt.Errorf("unknown certificate profile type %q", p.Type)
	}
	prefix := ""
	if p.Via != ViaProfile {
		nesting, ok := viaSegments[p.Via]
		if !ok || !slices.Contains(nesting.types, p.Type) {
			return "", fmt.Errorf("a %s certificate profile cannot be reached through %q", p.Type, p.Via)
		}
		prefix = nesting.segments
	}
	if p.DeviceConfigurationID == "" || p.DeviceConfigurationID == "." || p.DeviceConfigurationID == ".." {
		return "", fmt.Errorf("invalid deviceConfigurationId %q", p.DeviceConfigurationID)
	}
	return "/deviceManagement/deviceConfigurations/" + url.PathEscape(p.DeviceConfigurationID) + prefix +
		"/microsoft.graph." + string(p.Type) + "CertificateProfile/managedDeviceCertificateStates", nil
}

// ManagedDeviceCertificateState is Graph's managedDeviceCertificateState as today's beta schema has it
// (no serverUrl, no enhancedKeyUsage: a closed OData type answers 400 to properties it lacks). Graph
// assigns a random id on create. Enums are strings in camelCase; answers may use PascalCase.
type ManagedDeviceCertificateState struct {
	ID                                            string     `json:"id,omitempty"`
	DevicePlatform                                string     `json:"devicePlatform,omitempty"`
	CertificateKeyUsage                           string     `json:"certificateKeyUsage,omitempty"`
	CertificateValidityPeriodUnits                string     `json:"certificateValidityPeriodUnits,omitempty"`
	CertificateIssuanceState                      string     `json:"certificateIssuanceState,omitempty"`
	CertificateKeyStorageProvider                 string     `json:"certificateKeyStorageProvider,omitempty"`
	CertificateSubjectNameFormat                  string     `json:"certificateSubjectNameFormat,omitempty"`
	CertificateSubjectAlternativeNameFormat       string     `json:"certificateSubjectAlternativeNameFormat,omitempty"`
	CertificateRevokeStatus                       string     `json:"certificateRevokeStatus,omitempty"`
	CertificateProfileDisplayName                 string     `json:"certificateProfileDisplayName,omitempty"`
	DeviceDisplayName                             string     `json:"deviceDisplayName,omitempty"`
	UserDisplayName                               string     `json:"userDisplayName,omitempty"`
	CertificateExpirationDateTime                 *time.Time `json:"certificateExpirationDateTime,omitempty"`
	CertificateLastIssuanceStateChangedDateTime   *time.Time `json:"certificateLastIssuanceStateChangedDateTime,omitempty"`
	LastCertificateStateChangeDateTime            *time.Time `json:"lastCertificateStateChangeDateTime,omitempty"`
	CertificateIssuer                             string     `json:"certificateIssuer,omitempty"`
	CertificateThumbprint                         string     `json:"certificateThumbprint,omitempty"`
	CertificateSerialNumber                       string     `json:"certificateSerialNumber,omitempty"`
	CertificateKeyLength                          int32      `json:"certificateKeyLength,omitempty"`
	CertificateEnhancedKeyUsage                   string     `json:"certificateEnhancedKeyUsage,omitempty"`
	CertificateValidityPeriod                     int32      `json:"certificateValidityPeriod,omitempty"`
	CertificateSubjectNameFormatString            string     `json:"certificateSubjectNameFormatString,omitempty"`
	CertificateSubjectAlternativeNameFormatString string     `json:"certificateSubjectAlternativeNameFormatString,omitempty"`
	CertificateIssuanceDateTime                   *time.Time `json:"certificateIssuanceDateTime,omitempty"`
	CertificateErrorCode                          int32      `json:"certificateErrorCode,omitempty"`
}

type managedDeviceCertificateStateBody struct {
	ODataType string `json:"@odata.type"`
	*ManagedDeviceCertificateState
}

const managedDeviceCertificateStateType = "#microsoft.graph.managedDeviceCertificateState"

// CreateManagedDeviceCertificateState POSTs in below profile p. The id is random: after an
// unanswered create, look for the record with ListManagedDeviceCertificateStates before creating again.
func (c *Client) CreateManagedDeviceCertificateState(ctx context.Context, p CertificateProfile, in *ManagedDeviceCertificateState) (*ManagedDeviceCertificateState, error) {
	const op = "managedDeviceCertificateStates.create"
	if in == nil {
		return nil, errors.New("graph: " + op + ": nil state")
	}
	path, err := p.statesPath()
	if err != nil {
		return nil, fmt.Errorf("graph: %s: %w", op, err)
	}
	out := new(ManagedDeviceCertificateState)
	body := managedDeviceCertificateStateBody{managedDeviceCertificateStateType, in}
	if err := c.do(ctx, call{op: op, method: http.MethodPost, url: c.endpoint(path), body: body, out: out}); err != nil {
		return nil, err
	}
	return out, nil
}

// GetManagedDeviceCertificateState reads one state; IsNotFound when absent.
func (c *Client) GetManagedDeviceCertificateState(ctx context.Context, p CertificateProfile, id string) (*ManagedDeviceCertificateState, error) {
	const op = "managedDeviceCertificateStates.get"
	u, err := c.stateURL(op, p, id)
	if err != nil {
		return nil, err
	}
	out := new(ManagedDeviceCertificateState)
	if err := c.do(ctx, call{op: op, method: http.MethodGet, url: u, out: out}); err != nil {
		return nil, err
	}
	return out, nil
}

// ListManagedDeviceCertificateStates lists every state below profile p.
func (c *Client) ListManagedDeviceCertificateStates(ctx context.Context, p CertificateProfile) ([]ManagedDeviceCertificateState, error) {
	const op = "managedDeviceCertificateStates.list"
	path, err := p.statesPath()
	if err != nil {
		return nil, fmt.Errorf("graph: %s: %w", op, err)
	}
	return listAll[ManagedDeviceCertificateState](ctx, c, op, c.endpoint(path))
}

// UpdateManagedDeviceCertificateState PATCHes the non-empty fields of in onto state id and returns Graph's
// answer, nil when it answered 204.
func (c *Client) UpdateManagedDeviceCertificateState(ctx context.Context, p CertificateProfile, id string, in *ManagedDeviceCertificateState) (*ManagedDeviceCertificateState, error) {
	const op = "managedDeviceCertificateStates.update"
	if in == nil {
		return nil, errors.New("graph: " + op + ": nil state")
	}
	u, err := c.stateURL(op, p, id)
	if err != nil {
		return nil, err
	}
	changes := *in
	changes.ID = ""
	return patch[ManagedDeviceCertificateState](ctx, c, op, u, managedDeviceCertificateStateBody{managedDeviceCertificateStateType, &changes})
}

// DeleteManagedDeviceCertificateState deletes state id below profile p.
func (c *Client) DeleteManagedDeviceCertificateState(ctx context.Context, p CertificateProfile, id string) error {
	const op = "managedDeviceCertificateStates.delete"
	u, err := c.stateURL(op, p, id)
	if err != nil {
		return err
	}
	return c.do(ctx, call{op: op, method: http.MethodDelete, url: u})
}

func (c *Client) stateURL(op string, p CertificateProfile, id string) (string, error) {
	path, err := p.statesPath()
	if err != nil {
		return "", fmt.Errorf("graph: %s: %w", op, err)
	}
	return c.itemURL(op, path, id)
}
