package graph

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"
)

// UserPFXCertificate is Graph's userPFXCertificate. Reads return EncryptedPfxBlob as a single
// zero byte ("AA==") and EncryptedPfxPassword empty: Graph never gives the secret parts back.
type UserPFXCertificate struct {
	ID                   string    `json:"id,omitempty"`
	Thumbprint           string    `json:"thumbprint,omitempty"`
	IntendedPurpose      string    `json:"intendedPurpose,omitempty"` // unassigned | smimeEncryption | smimeSigning | vpn | wifi
	UserPrincipalName    string    `json:"userPrincipalName,omitempty"`
	StartDateTime        time.Time `json:"startDateTime,omitzero"`
	ExpirationDateTime   time.Time `json:"expirationDateTime,omitzero"`
	ProviderName         string    `json:"providerName,omitempty"`
	KeyName              string    `json:"keyName,omitempty"`
	PaddingScheme        string    `json:"paddingScheme,omitempty"` // none | pkcs1 | oaepSha1 | oaepSha256 | oaepSha384 | oaepSha512
	EncryptedPfxBlob     []byte    `json:"encryptedPfxBlob,omitempty"`
	EncryptedPfxPassword string    `json:"encryptedPfxPassword,omitempty"`
	CreatedDateTime      time.Time `json:"createdDateTime,omitzero"`
	LastModifiedDateTime time.Time `json:"lastModifiedDateTime,omitzero"`
}

type userPFXCertificateBody struct {
	ODataType string `json:"@odata.type"`
	*UserPFXCertificate
}

const (
	userPfxPath = "/deviceManagement/userPfxCertificates"
	userPfxType = "#microsoft.graph.userPFXCertificate"
)

// UserPFXCertificateID is the id Graph assigns: {userObjectIdWithoutDashes}-{thumbprint}, lower case.
func UserPFXCertificateID(userID, thumbprint string) string {
	return strings.ToLower(strings.ReplaceAll(userID, "-", "") + "-" + thumbprint)
}

// CreateUserPFXCertificate POSTs in; Graph assigns the id. A second create of the same
// user+thumbprint is a conflict (IsConflict), not an upsert: update that id instead.
func (c *Client) CreateUserPFXCertificate(ctx context.Context, in *UserPFXCertificate) (*UserPFXCertificate, error) {
	const op = "userPfxCertificates.create"
	if in == nil {
		return nil, errors.New("graph: " + op + ": nil certificate")
	}
	out := new(UserPFXCertificate)
	body := userPFXCertificateBody{userPfxType, in}
	if err := c.do(ctx, call{op: op, method: http.MethodPost, url: c.endpoint(userPfxPath), body: body, out: out}); err != nil {
		return nil, err
	}
	return out, nil
}

// GetUserPFXCertificate reads one record; IsNotFound when absent.
func (c *Client) GetUserPFXCertificate(ctx context.Context, id string) (*UserPFXCertificate, error) {
	const op = "userPfxCertificates.get"
	u, err := c.itemURL(op, userPfxPath, id)
	if err != nil {
		return nil, err
	}
	out := new(UserPFXCertificate)
	if err := c.do(ctx, call{op: op, method: http.MethodGet, url: u, out: out}); err != nil {
		return nil, err
	}
	return out, nil
}

// ListUserPFXCertificates lists the records of a user, optionally of one thumbprint, with the
// filter Microsoft's import tool uses. Empty upn and thumbprint list every record.
func (c *Client) ListUserPFXCertificates(ctx context.Context, upn, thumbprint string) ([]UserPFXCertificate, error) {
	var terms []string
	if upn != "" {
		terms = append(terms, "tolower(userPrincipalName) eq "+odataString(strings.ToLower(upn)))
	}
	if thumbprint != "" {
		terms = append(terms, "tolower(thumbprint) eq "+odataString(strings.ToLower(thumbprint)))
	}
	u := c.endpoint(userPfxPath)
	if len(terms) > 0 {
		u += "?$filter=" + queryEscape(strings.Join(terms, " and "))
	}
	return listAll[UserPFXCertificate](ctx, c, "userPfxCertificates.list", u)
}

// UpdateUserPFXCertificate PATCHes the non-empty fields of in onto record id and returns
// Graph's answer, nil when it answered 204. in.ID is ignored: the id is in the URL.
func (c *Client) UpdateUserPFXCertificate(ctx context.Context, id string, in *UserPFXCertificate) (*UserPFXCertificate, error) {
	const op = "userPfxCertificates.update"
	if in == nil {
		return nil, errors.New("graph: " + op + ": nil certificate")
	}
	u, err := c.itemURL(op, userPfxPath, id)
	if err != nil {
		return nil, err
	}
	changes := *in
	changes.ID = ""
	return patch[UserPFXCertificate](ctx, c, op, u, userPFXCertificateBody{userPfxType, &changes})
}

// DeleteUserPFXCertificate deletes record id. Graph may keep listing a deleted record for a
// while after the 204 (a known service bug).
func (c *Client) DeleteUserPFXCertificate(ctx context.Context, id string) error {
	const op = "userPfxCertificates.delete"
	u, err := c.itemURL(op, userPfxPath, id)
	if err != nil {
		return err
	}
	return c.do(ctx, call{op: op, method: http.MethodDelete, url: u})
}
