package controller

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/graph"
	"github.com/certops/intune-cert-operator/internal/pfx"
)

// Table tests of the reconcilers' decision functions: what a pass concludes from what it read.

func TestReadyReasonForEveryAction(t *testing.T) {
	tests := []struct{ action, reason, message string }{
		{"Imported", intunev1alpha1.ReasonImported, "Imported as Intune record r1"},
		{"Reimported", intunev1alpha1.ReasonImported, "Reimported as Intune record r1"},
		{"Rotated", intunev1alpha1.ReasonImported, "Rotated as Intune record r1"},
		{"Created", intunev1alpha1.ReasonCreated, "Created Intune record r1"},
		{"Recreated", intunev1alpha1.ReasonCreated, "Recreated Intune record r1"},
		{"Adopted", intunev1alpha1.ReasonAdopted, "Adopted the existing Intune record r1"},
		{"Updated", intunev1alpha1.ReasonUpdated, "Updated Intune record r1"},
		{"", intunev1alpha1.ReasonInSync, "Intune record r1 matches the spec"},
	}
	for _, tt := range tests {
		reason, message := readyReasonFor(tt.action, "r1")
		if reason != tt.reason || message != tt.message {
			t.Errorf("readyReasonFor(%q) = %s %q, want %s %q", tt.action, reason, message, tt.reason, tt.message)
		}
	}
}

func TestSkipUntilResync(t *testing.T) {
	r := &kindReconciler[*intunev1alpha1.ManagedDeviceCertificateState]{resourceDeps: resourceDeps{ResyncPeriod: time.Hour}, kind: deviceStateKind}
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	recent, old := &metav1.Time{Time: now.Add(-10 * time.Minute)}, &metav1.Time{Time: now.Add(-2 * time.Hour)}
	ready := func(status metav1.ConditionStatus, reason string) *intunev1alpha1.ManagedDeviceCertificateState {
		o := &intunev1alpha1.ManagedDeviceCertificateState{}
		o.Status.Conditions = []metav1.Condition{{Type: intunev1alpha1.ConditionReady, Status: status, Reason: reason}}
		return o
	}
	tests := []struct {
		name string
		obj  *intunev1alpha1.ManagedDeviceCertificateState
		last *metav1.Time
		skip bool
	}{
		{"in sync and not due", ready(metav1.ConditionTrue, intunev1alpha1.ReasonInSync), recent, true},
		{"in sync and due", ready(metav1.ConditionTrue, intunev1alpha1.ReasonInSync), old, false},
		{"never synced", ready(metav1.ConditionTrue, intunev1alpha1.ReasonInSync), nil, false},
		{"failing", ready(metav1.ConditionFalse, intunev1alpha1.ReasonGraphError), recent, false},
		{"resumed from suspend", ready(metav1.ConditionTrue, intunev1alpha1.ReasonSuspended), recent, false},
		{"no condition yet", &intunev1alpha1.ManagedDeviceCertificateState{}, recent, false},
	}
	for _, tt := range tests {
		wait, skip := r.skipUntilResync(tt.obj, tt.last, now)
		if skip != tt.skip || (skip && (wait < 50*time.Minute || wait > 56*time.Minute)) {
			t.Errorf("%s: skip %v after %s, want skip %v (about 50m)", tt.name, skip, wait, tt.skip)
		}
	}
}

func TestMatchesDeviceState(t *testing.T) {
	expires := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	want := &graph.ManagedDeviceCertificateState{DevicePlatform: "iOS", CertificateKeyUsage: "keyEncipherment",
		CertificateThumbprint: "abcd", CertificateSerialNumber: "00ff", CertificateKeyLength: 2048,
		CertificateIssuanceState: "issued", CertificateExpirationDateTime: &expires}
	same := *want
	tests := []struct {
		name  string
		edit  func(r *graph.ManagedDeviceCertificateState)
		match bool
	}{
		{"identical", func(*graph.ManagedDeviceCertificateState) {}, true},
		{"enums in PascalCase", func(r *graph.ManagedDeviceCertificateState) {
			r.DevicePlatform, r.CertificateKeyUsage, r.CertificateIssuanceState = "IOS", "KeyEncipherment", "Issued"
		}, true},
		{"thumbprint in upper case, serial without its sign byte", func(r *graph.ManagedDeviceCertificateState) {
			r.CertificateThumbprint, r.CertificateSerialNumber = "ABCD", "FF"
		}, true},
		{"a field the spec leaves unset", func(r *graph.ManagedDeviceCertificateState) { r.UserDisplayName = "someone" }, true},
		{"another platform", func(r *graph.ManagedDeviceCertificateState) { r.DevicePlatform = "android" }, false},
		{"another serial", func(r *graph.ManagedDeviceCertificateState) { r.CertificateSerialNumber = "0100" }, false},
		{"another expiry", func(r *graph.ManagedDeviceCertificateState) {
			e := expires.Add(time.Second)
			r.CertificateExpirationDateTime = &e
		}, false},
		{"no expiry", func(r *graph.ManagedDeviceCertificateState) { r.CertificateExpirationDateTime = nil }, false},
		{"another issuance state", func(r *graph.ManagedDeviceCertificateState) { r.CertificateIssuanceState = "revoked" }, false},
	}
	for _, tt := range tests {
		rec := same
		tt.edit(&rec)
		if got := matchesDeviceState(&rec, want); got != tt.match {
			t.Errorf("%s: match %v, want %v", tt.name, got, tt.match)
		}
	}
}

func TestMatchesPfxUserLeavesConnectorFieldsUnlessSet(t *testing.T) {
	one, two, no := int32(1), int32(2), false
	want := graph.PfxUserCertificate{UserID: "u", Thumbprint: "ab", PaddingScheme: 5}
	rec := want
	rec.Status, rec.IsDeleted = &two, &no
	if !matchesPfxUser(&rec, &want) {
		t.Error("status and isDeleted the spec leaves unset must not make a difference")
	}
	want.Status = &one
	if matchesPfxUser(&rec, &want) {
		t.Error("a status the spec sets must match")
	}
	want.Status = &two
	if !matchesPfxUser(&rec, &want) {
		t.Error("same status, no match")
	}
	rec.Status = nil
	if matchesPfxUser(&rec, &want) {
		t.Error("a status the record lacks matched")
	}
}

// The reconcilers' cache refuses the kinds it holds without status; everything else passes through.
func TestStatusStrippedCacheRefusesTheCertificateKinds(t *testing.T) {
	for _, obj := range []runtime.Object{&intunev1alpha1.UserPfxCertificate{}, &intunev1alpha1.ManagedDeviceCertificateStateList{},
		&intunev1alpha1.PfxRecryptionRequest{}, &intunev1alpha1.PfxUserCertificateList{}} {
		if refuseStripped(obj) == nil {
			t.Errorf("%T passed", obj)
		}
	}
	for _, obj := range []runtime.Object{&corev1.Secret{}, &intunev1alpha1.ClusterGraphConnection{}, &intunev1alpha1.UserPfxCertificateSetList{}} {
		if err := refuseStripped(obj); err != nil {
			t.Errorf("%T refused: %v", obj, err)
		}
	}
}

func TestMatchesRecordOfAUserPfxCertificate(t *testing.T) {
	notBefore, notAfter := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	want := &desiredUserPfx{
		material: &material{Material: &pfx.Material{Facts: pfx.Facts{Thumbprint: "abcd", NotBefore: notBefore, NotAfter: notAfter}}},
		encryption: &encryption{providerName: "Microsoft Software Key Storage Provider", keyName: "PFXEncryptionKey",
			padding: pfx.PaddingOAEPSHA512},
		upn: "alice@contoso.com", purpose: "smimeEncryption",
	}
	same := graph.UserPFXCertificate{Thumbprint: "abcd", IntendedPurpose: "smimeEncryption", UserPrincipalName: "alice@contoso.com",
		ProviderName: "Microsoft Software Key Storage Provider", KeyName: "PFXEncryptionKey", PaddingScheme: "oaepSha512",
		StartDateTime: notBefore, ExpirationDateTime: notAfter}
	tests := []struct {
		name  string
		edit  func(r *graph.UserPFXCertificate)
		match bool
	}{
		{"identical", func(*graph.UserPFXCertificate) {}, true},
		{"enums in PascalCase, UPN and thumbprint in other case", func(r *graph.UserPFXCertificate) {
			r.IntendedPurpose, r.PaddingScheme, r.UserPrincipalName, r.Thumbprint = "SmimeEncryption", "OaepSha512", "Alice@Contoso.com", "ABCD"
		}, true},
		{"another purpose", func(r *graph.UserPFXCertificate) { r.IntendedPurpose = "vpn" }, false},
		{"another key name (the connector would fail)", func(r *graph.UserPFXCertificate) { r.KeyName = "OtherKey" }, false},
		{"another provider", func(r *graph.UserPFXCertificate) { r.ProviderName = "Microsoft Platform Crypto Provider" }, false},
		{"another padding", func(r *graph.UserPFXCertificate) { r.PaddingScheme = "oaepSha256" }, false},
		{"another user", func(r *graph.UserPFXCertificate) { r.UserPrincipalName = "bob@contoso.com" }, false},
		{"another validity", func(r *graph.UserPFXCertificate) { r.ExpirationDateTime = notAfter.Add(time.Hour) }, false},
	}
	for _, tt := range tests {
		rec := same
		tt.edit(&rec)
		if got := matchesRecord(&rec, want); got != tt.match {
			t.Errorf("%s: match %v, want %v", tt.name, got, tt.match)
		}
	}
}
