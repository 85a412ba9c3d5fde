package controller

import (
	"context"
	"fmt"
	"strings"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/graph"
)

// listedAsWanted is the drift check of a device state from its profile's listing, one per connection,
// tenant and profile per resync period (drift_snapshot.go): the record when the listing shows it as the
// resource wants it, else nil, and the pass reads and writes it as before (a GET of the record decides, so
// the service's list lag cannot cause a second create).
func (r *ManagedDeviceCertificateStateReconciler) listedAsWanted(ctx context.Context, obj *intunev1alpha1.ManagedDeviceCertificateState, want *desiredDeviceState) *graph.ManagedDeviceCertificateState {
	st := &obj.Status
	if r.Resync == nil || st.ID == "" || st.SourceHash != want.hash || st.CreateStartedTime != nil {
		return nil
	}
	gc, profile := want.conn.Graph, want.profile
	key := fmt.Sprintf("%s\x00%s\x00%s\x00%s\x00%s", want.conn.Ref, want.conn.TenantID, profile.DeviceConfigurationID, profile.Type, profile.Via)
	listing := r.Resync.deviceStates.get(ctx, key, func(ctx context.Context, add func(string, graph.ManagedDeviceCertificateState)) error {
		states, err := gc.ListManagedDeviceCertificateStates(ctx, profile)
		for _, s := range states {
			add(s.ID, s)
		}
		return err
	})
	if listing == nil {
		return nil
	}
	rec, ok := listing.lookup(st.ID)
	// The key is a hash of the id: the id itself must match too.
	if !ok || !strings.EqualFold(rec.ID, st.ID) || !matchesDeviceState(&rec, want.state) {
		return nil
	}
	return &rec
}
