package graph

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"
)

// PfxUserCertificate is Graph's pfxUserCertificate (seed 001). Unlike userPFXCertificate its
// encryptedPfxBlob is documented as a String (and paddingScheme, status and intendedPurpose as
// Int32), so the blob stays a string here: the caller base64-encodes the PFX.
type PfxUserCertificate struct {
	ID                   string    `json:"id,omitempty"`
	TenantID             string    `json:"tenantId,omitempty"`
	UserID               string    `json:"userId,omitempty"`
	Thumbprint           string    `json:"thumbprint,omitempty"`
	UserUpn              string    `json:"userUpn,omitempty"`
	EncryptedPfxBlob     string    `json:"encryptedPfxBlob,omitempty"`
	EncryptedPfxPassword string    `json:"encryptedPfxPassword,omitempty"`
	CertStartDate        time.Time `json:"certStartDate,omitzero"`
	CertExpirationDate   time.Time `json:"certExpirationDate,omitzero"`
	ProviderName         string    `json:"providerName,omitempty"`
	EncryptionKeyName    string    `json:"encryptionKeyName,omitempty"`
	PaddingScheme        int32     `json:"paddingScheme"`
	Status               int32     `json:"status"`
	IntendedPurpose      int32     `json:"intendedPurpose"`
	CreatedTime          time.Time `json:"createdTime,omitzero"`
	IsDeleted            bool      `json:"isDeleted"`
	LastModifiedTime     time.Time `json:"lastModifiedTime,omitzero"`
	ETag                 string    `json:"eTag,omitempty"`
}

const pfxUserCertificatesPath = "/pfxUserCertificates"

// GetPfxUserCertificate reads record id; IsNotFound when absent.
func (c *Client) GetPfxUserCertificate(ctx context.Context, id string) (*PfxUserCertificate, error) {
	const op = "pfxUserCertificates.get"
	u, err := c.itemURL(op, pfxUserCertificatesPath, id)
	if err != nil {
		return nil, err
	}
	out := new(PfxUserCertificate)
	if err := c.do(ctx, call{op: op, method: http.MethodGet, url: u, out: out}); err != nil {
		return nil, err
	}
	return out, nil
}

// UpdatePfxUserCertificate PATCHes record id with in. The Int32 and Boolean fields are always
// sent (0 and false are meaningful values); in.ID is ignored.
func (c *Client) UpdatePfxUserCertificate(ctx context.Context, id string, in *PfxUserCertificate) (*PfxUserCertificate, error) {
	const op = "pfxUserCertificates.update"
	if in == nil {
		return nil, errors.New("graph: " + op + ": nil certificate")
	}
	u, err := c.itemURL(op, pfxUserCertificatesPath, id)
	if err != nil {
		return nil, err
	}
	patch := *in
	patch.ID = ""
	body := struct {
		ODataType string `json:"@odata.type"`
		*PfxUserCertificate
	}{"#microsoft.graph.pfxUserCertificate", &patch}
	out := new(PfxUserCertificate)
	if err := c.do(ctx, call{op: op, method: http.MethodPatch, url: u, body: body, out: out}); err != nil {
		return nil, err
	}
	return out, nil
}

// userPfxIntendedPurposes are the names of Graph's userPfxIntendedPurpose flags, which pfxUserCertificate
// carries as their Int32 value.
var userPfxIntendedPurposes = map[int32]string{1: "unassigned", 2: "smimeEncryption", 4: "smimeSigning", 8: "vpn", 16: "wifi"}

// UserPfxIntendedPurposeName is the name of a pfxUserCertificate's intendedPurpose value, or the number itself
// when it names no single purpose (0, or a combination of flags), which then matches no purpose's name.
func UserPfxIntendedPurposeName(value int32) string {
	if name, ok := userPfxIntendedPurposes[value]; ok {
		return name
	}
	return strconv.Itoa(int(value))
}
