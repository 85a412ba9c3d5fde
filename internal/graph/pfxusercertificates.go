package graph

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"
)

// PfxUserCertificate is Graph's pfxUserCertificate (seed 001; today's resource page lists List, Get, Create,
// Delete and Update, and no id property). Unlike userPFXCertificate its encryptedPfxBlob is documented as
// a String (and paddingScheme, status and intendedPurpose as Int32), so the blob stays a string here: the
// caller base64-encodes the PFX. Status and IsDeleted are sent only when set: the connector keeps them.
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
	Status               *int32    `json:"status,omitempty"`
	IntendedPurpose      int32     `json:"intendedPurpose"`
	CreatedTime          time.Time `json:"createdTime,omitzero"`
	IsDeleted            *bool     `json:"isDeleted,omitempty"`
	LastModifiedTime     time.Time `json:"lastModifiedTime,omitzero"`
	ETag                 string    `json:"eTag,omitempty"`
}

type pfxUserCertificateBody struct {
	ODataType string `json:"@odata.type"`
	*PfxUserCertificate
}

const pfxUserCertificateType = "#microsoft.graph.pfxUserCertificate"

const pfxUserCertificatesPath = "/pfxUserCertificates"

// CreatePfxUserCertificate POSTs in; Graph assigns the id, and may answer without it (the type lists no id
// property): the caller then finds the record with ListPfxUserCertificates.
func (c *Client) CreatePfxUserCertificate(ctx context.Context, in *PfxUserCertificate) (*PfxUserCertificate, error) {
	const op = "pfxUserCertificates.create"
	if in == nil {
		return nil, errors.New("graph: " + op + ": nil certificate")
	}
	payload := *in
	payload.ID = ""
	out := new(PfxUserCertificate)
	if err := c.do(ctx, call{op: op, method: http.MethodPost, url: c.endpoint(pfxUserCertificatesPath),
		body: pfxUserCertificateBody{pfxUserCertificateType, &payload}, out: out}); err != nil {
		return nil, err
	}
	return out, nil
}

// ListPfxUserCertificates lists every record. The pages document no $filter for this collection, so the
// caller matches the record it looks for.
func (c *Client) ListPfxUserCertificates(ctx context.Context) ([]PfxUserCertificate, error) {
	return listAll[PfxUserCertificate](ctx, c, "pfxUserCertificates.list", c.endpoint(pfxUserCertificatesPath))
}

// DeletePfxUserCertificate deletes record id.
func (c *Client) DeletePfxUserCertificate(ctx context.Context, id string) error {
	const op = "pfxUserCertificates.delete"
	u, err := c.itemURL(op, pfxUserCertificatesPath, id)
	if err != nil {
		return err
	}
	return c.do(ctx, call{op: op, method: http.MethodDelete, url: u})
}

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

// UpdatePfxUserCertificate PATCHes record id with in and returns Graph's answer, nil when it answered 204.
// in.ID is ignored.
func (c *Client) UpdatePfxUserCertificate(ctx context.Context, id string, in *PfxUserCertificate) (*PfxUserCertificate, error) {
	const op = "pfxUserCertificates.update"
	if in == nil {
		return nil, errors.New("graph: " + op + ": nil certificate")
	}
	u, err := c.itemURL(op, pfxUserCertificatesPath, id)
	if err != nil {
		return nil, err
	}
	changes := *in
	changes.ID = ""
	body := pfxUserCertificateBody{pfxUserCertificateType, &changes}
	return patch[PfxUserCertificate](ctx, c, op, u, body)
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
