package graph

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// ProfileType names the certificate profile kind in the managedDeviceCertificateStates URL.
type ProfileType string

const (
	ProfileIOSScep            ProfileType = "iosScep"
	ProfileMacOSScep          ProfileType = "macOSScep"
	ProfileAndroidScep        ProfileType = "androidScep"
	ProfileWindows81SCEP      ProfileType = "windows81SCEP"
	ProfileAndroidForWorkScep ProfileType = "androidForWorkScep"
	ProfileWindowsPhone81SCEP ProfileType = "windowsPhone81SCEP"
)

// profilePaths are the six URL forms of seed 004, after {deviceConfigurationId}. Two profiles are
// reached through the configuration's identityCertificate navigation; the doc's "//" is a typo.
var profilePaths = map[ProfileType]string{
	ProfileIOSScep:            "/microsoft.graph.iosScepCertificateProfile",
	ProfileMacOSScep:          "/microsoft.graph.macOSScepCertificateProfile",
	ProfileAndroidScep:        "/microsoft.graph.androidScepCertificateProfile",
	ProfileWindows81SCEP:      "/microsoft.graph.windows81SCEPCertificateProfile",
	ProfileAndroidForWorkScep: "/identityCertificate/microsoft.graph.androidForWorkScepCertificateProfile",
	ProfileWindowsPhone81SCEP: "/microsoft.graph.windowsPhone81VpnConfiguration/identityCertificate/microsoft.graph.windowsPhone81SCEPCertificateProfile",
}

// ProfileTypes lists the supported profile types in a stable order.
func ProfileTypes() []ProfileType {
	return []ProfileType{ProfileIOSScep, ProfileMacOSScep, ProfileAndroidScep, ProfileWindows81SCEP,
		ProfileAndroidForWorkScep, ProfileWindowsPhone81SCEP}
}

// CertificateProfile addresses the certificate profile whose device states are managed.
type CertificateProfile struct {
	DeviceConfigurationID string
	Type                  ProfileType
}

// statesPath is the escaped collection path of p's managedDeviceCertificateStates.
func (p CertificateProfile) statesPath() (string, error) {
	form, ok := profilePaths[p.Type]
	if !ok {
		return "", fmt.Errorf("unknown certificate profile type %q", p.Type)
	}
	if p.DeviceConfigurationID == "" || p.DeviceConfigurationID == "." || p.DeviceConfigurationID == ".." {
		return "", fmt.Errorf("invalid deviceConfigurationId %q", p.DeviceConfigurationID)
	}
	return "/deviceManagement/deviceConfigurations/" + url.PathEscape(p.DeviceConfigurationID) + form +
		"/managedDeviceCertificateStates", nil
}

// ManagedDeviceCertificateState is Graph's managedDeviceCertificateState. Graph assigns a random
// id on create.
type ManagedDeviceCertificateState struct {
	ID                                 string     `json:"id,omitempty"`
	DevicePlatform                     string     `json:"devicePlatform,omitempty"`      // android | androidForWork | iOS | macOS | windowsPhone81 | windows81AndLater | windows10AndLater
	CertificateKeyUsage                string     `json:"certificateKeyUsage,omitempty"` // keyEncipherment | digitalSignature
	CertificateProfileDisplayName      string     `json:"certificateProfileDisplayName,omitempty"`
	DeviceDisplayName                  string     `json:"deviceDisplayName,omitempty"`
	UserDisplayName                    string     `json:"userDisplayName,omitempty"`
	ServerURL                          string     `json:"serverUrl,omitempty"`
	CertificateExpirationDateTime      *time.Time `json:"certificateExpirationDateTime,omitempty"`
	LastCertificateStateChangeDateTime *time.Time `json:"lastCertificateStateChangeDateTime,omitempty"`
	CertificateIssuer                  string     `json:"certificateIssuer,omitempty"`
	CertificateThumbprint              string     `json:"certificateThumbprint,omitempty"`
	CertificateSerialNumber            string     `json:"certificateSerialNumber,omitempty"`
	CertificateKeyLength               int32      `json:"certificateKeyLength,omitempty"`
	EnhancedKeyUsage                   string     `json:"enhancedKeyUsage,omitempty"`
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

// UpdateManagedDeviceCertificateState PATCHes the non-empty fields of in onto state id.
func (c *Client) UpdateManagedDeviceCertificateState(ctx context.Context, p CertificateProfile, id string, in *ManagedDeviceCertificateState) (*ManagedDeviceCertificateState, error) {
	const op = "managedDeviceCertificateStates.update"
	if in == nil {
		return nil, errors.New("graph: " + op + ": nil state")
	}
	u, err := c.stateURL(op, p, id)
	if err != nil {
		return nil, err
	}
	patch := *in
	patch.ID = ""
	out := new(ManagedDeviceCertificateState)
	body := managedDeviceCertificateStateBody{managedDeviceCertificateStateType, &patch}
	if err := c.do(ctx, call{op: op, method: http.MethodPatch, url: u, body: body, out: out}); err != nil {
		return nil, err
	}
	return out, nil
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
