package graph

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// PfxRecryptionRequest is Graph's pfxRecryptionRequest (seed 002): the service documents the
// fields only by type. GUIDs are strings, Int32s int32. Today's resource page lists no id property and
// seed 002's create answer carries none: a create answered without one is found again by listing.
type PfxRecryptionRequest struct {
	ID                  string    `json:"id,omitempty"`
	TenantID            string    `json:"tenantId,omitempty"`
	UserID              string    `json:"userId,omitempty"`
	DeviceID            string    `json:"deviceId,omitempty"`
	ProfileID           string    `json:"profileId,omitempty"`
	Thumbprint          string    `json:"thumbprint,omitempty"`
	DeviceKeyThumbprint string    `json:"deviceKeyThumbprint,omitempty"`
	Status              int32     `json:"status"`
	SourceType          int32     `json:"sourceType"`
	CreatedTime         time.Time `json:"createdTime,omitzero"`
	LastModifiedTime    time.Time `json:"lastModifiedTime,omitzero"`
	IsDeleted           bool      `json:"isDeleted"`
	ETag                string    `json:"eTag,omitempty"`
}

const pfxRecryptionPath = "/pfxRecryptionRequests"

// CreatePfxRecryptionRequest POSTs in; Graph assigns the id.
func (c *Client) CreatePfxRecryptionRequest(ctx context.Context, in *PfxRecryptionRequest) (*PfxRecryptionRequest, error) {
	const op = "pfxRecryptionRequests.create"
	if in == nil {
		return nil, errors.New("graph: " + op + ": nil request")
	}
	body := struct {
		ODataType string `json:"@odata.type"`
		*PfxRecryptionRequest
	}{"#microsoft.graph.pfxRecryptionRequest", in}
	out := new(PfxRecryptionRequest)
	if err := c.do(ctx, call{op: op, method: http.MethodPost, url: c.endpoint(pfxRecryptionPath), body: body, out: out}); err != nil {
		return nil, err
	}
	return out, nil
}

// ListPfxRecryptionRequests lists every request. The pages document no $filter for this collection, so the
// caller matches the request it looks for; listing is how a create answered without an id is found.
func (c *Client) ListPfxRecryptionRequests(ctx context.Context) ([]PfxRecryptionRequest, error) {
	return listAll[PfxRecryptionRequest](ctx, c, "pfxRecryptionRequests.list", c.endpoint(pfxRecryptionPath))
}

// GetPfxRecryptionRequest reads one request; IsNotFound when absent.
func (c *Client) GetPfxRecryptionRequest(ctx context.Context, id string) (*PfxRecryptionRequest, error) {
	const op = "pfxRecryptionRequests.get"
	u, err := c.itemURL(op, pfxRecryptionPath, id)
	if err != nil {
		return nil, err
	}
	out := new(PfxRecryptionRequest)
	if err := c.do(ctx, call{op: op, method: http.MethodGet, url: u, out: out}); err != nil {
		return nil, err
	}
	return out, nil
}

// DeletePfxRecryptionRequest deletes request id.
func (c *Client) DeletePfxRecryptionRequest(ctx context.Context, id string) error {
	const op = "pfxRecryptionRequests.delete"
	u, err := c.itemURL(op, pfxRecryptionPath, id)
	if err != nil {
		return err
	}
	return c.do(ctx, call{op: op, method: http.MethodDelete, url: u})
}
