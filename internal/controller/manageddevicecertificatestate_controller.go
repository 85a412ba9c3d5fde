package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/connection"
	"github.com/certops/intune-cert-operator/internal/graph"
	"github.com/certops/intune-cert-operator/internal/pfx"
)

const kindManagedDeviceCertificateState = "ManagedDeviceCertificateState"

// +kubebuilder:rbac:groups=intune.certops.dev,resources=manageddevicecertificatestates,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=intune.certops.dev,resources=manageddevicecertificatestates/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=intune.certops.dev,resources=manageddevicecertificatestates/finalizers,verbs=update

// ManagedDeviceCertificateStateReconciler keeps a Graph managedDeviceCertificateState equal to its resource.
type ManagedDeviceCertificateStateReconciler struct {
	kindReconciler[*intunev1alpha1.ManagedDeviceCertificateState]
}

var deviceStateKind = resourceKind[*intunev1alpha1.ManagedDeviceCertificateState]{
	name: kindManagedDeviceCertificateState,
	newObject: func() *intunev1alpha1.ManagedDeviceCertificateState {
		return &intunev1alpha1.ManagedDeviceCertificateState{}
	},
	status: func(o *intunev1alpha1.ManagedDeviceCertificateState) (any, *intunev1alpha1.CommonStatus) {
		return &o.Status, &o.Status.CommonStatus
	},
	suspended: func(o *intunev1alpha1.ManagedDeviceCertificateState) bool { return o.Spec.Suspend },
	expiry: func(o *intunev1alpha1.ManagedDeviceCertificateState) *metav1.Time {
		if o.Status.Certificate == nil {
			return nil
		}
		return o.Status.Certificate.ExpirationDateTime
	},
}

// desiredDeviceState is the record as it should be, gathered before any Graph call.
type desiredDeviceState struct {
	conn    *connection.Connection
	profile graph.CertificateProfile
	state   *graph.ManagedDeviceCertificateState
	facts   *intunev1alpha1.CertificateFacts
	// hash identifies the record's content; it holds no secret (certificate facts are public).
	hash string
}

func (r *ManagedDeviceCertificateStateReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return r.run(ctx, req, r.reconcileNormal, r.reconcileDelete)
}

func (r *ManagedDeviceCertificateStateReconciler) reconcileNormal(ctx context.Context, obj *intunev1alpha1.ManagedDeviceCertificateState) (ctrl.Result, error) {
	now := r.Clock.Now()
	want, err := r.desired(ctx, obj)
	if err != nil {
		return r.fail(ctx, obj, err)
	}
	memo := r.Resync.memoOf(obj.UID)
	if obj.Status.ID != "" && obj.Status.SourceHash == want.hash {
		if wait, skip := r.skipUntilResync(obj, memo.lastChecked(obj.Status.LastSyncTime), now); skip {
			return ctrl.Result{RequeueAfter: wait}, nil
		}
	}
	// The drift check from the profile's listing when it shows the record as wanted, else as before.
	record, action := r.listedAsWanted(ctx, obj, want), ""
	if record == nil {
		if record, action, err = r.sync(ctx, obj, want); err != nil {
			return r.fail(ctx, obj, err)
		}
	}

	st := &obj.Status
	st.ID = record.ID
	st.Certificate = want.facts
	st.CertificateKeyUsage = intunev1alpha1.CertificateKeyUsage(want.state.CertificateKeyUsage)
	st.LastCertificateStateChangeDateTime = nil
	if t := record.LastCertificateStateChangeDateTime; t != nil {
		st.LastCertificateStateChangeDateTime = timePtr(*t)
	}
	st.SourceHash = want.hash
	// A check that found Intune as wanted moves lastSyncTime only when it is stale (resync.go); the schedule
	// goes by the check remembered in memory.
	if action != "" || syncTimeStale(st.LastSyncTime, r.ResyncPeriod, now) {
		st.LastSyncTime = &metav1.Time{Time: now}
	}
	r.succeed(ctx, obj, action, record.ID)
	if r.Resync != nil {
		r.Resync.memo.put(obj.UID, memoEntry{checked: now.UnixNano()})
	}
	return ctrl.Result{RequeueAfter: jittered(r.ResyncPeriod)}, nil
}

// desired reads the certificate and the connection, and merges the explicit facts over the derived ones.
func (r *ManagedDeviceCertificateStateReconciler) desired(ctx context.Context, obj *intunev1alpha1.ManagedDeviceCertificateState) (*desiredDeviceState, error) {
	spec := &obj.Spec
	facts, derivedUsage, err := r.certificateFacts(ctx, obj)
	if err != nil {
		return nil, err
	}
	if facts.Thumbprint == "" {
		// Graph assigns random ids: the thumbprint is what finds a record created before a crash.
		return nil, &conditionError{reason: intunev1alpha1.ReasonInvalidSpec, terminal: true,
			message: "the certificate's thumbprint is unknown: set spec.certificateSecretRef or spec.certificate.thumbprint"}
	}
	// A device state names no user by UPN: only the namespace and kind rules apply.
	conn, err := r.connectionFor(ctx, obj.Namespace, spec.ConnectionRef, connection.AccessRequest{Kind: kindManagedDeviceCertificateState})
	if err != nil {
		return nil, err
	}
	usage := spec.CertificateKeyUsage
	if usage == "" {
		usage = derivedUsage
	}
	// serverUrl is not sent: today's type has no such property, and Graph refuses unknown properties.
	state := &graph.ManagedDeviceCertificateState{
		DevicePlatform:                                string(spec.DevicePlatform),
		CertificateKeyUsage:                           string(usage),
		CertificateProfileDisplayName:                 spec.CertificateProfileDisplayName,
		DeviceDisplayName:                             spec.DeviceDisplayName,
		UserDisplayName:                               spec.UserDisplayName,
		CertificateIssuer:                             facts.Issuer,
		CertificateThumbprint:                         facts.Thumbprint,
		CertificateSerialNumber:                       facts.SerialNumber,
		CertificateKeyLength:                          facts.KeyLength,
		CertificateEnhancedKeyUsage:                   facts.EnhancedKeyUsage,
		CertificateIssuanceState:                      string(spec.CertificateIssuanceState),
		CertificateRevokeStatus:                       string(spec.CertificateRevokeStatus),
		CertificateKeyStorageProvider:                 string(spec.CertificateKeyStorageProvider),
		CertificateSubjectNameFormat:                  string(spec.CertificateSubjectNameFormat),
		CertificateSubjectNameFormatString:            spec.CertificateSubjectNameFormatString,
		CertificateSubjectAlternativeNameFormat:       string(spec.CertificateSubjectAlternativeNameFormat),
		CertificateSubjectAlternativeNameFormatString: spec.CertificateSubjectAlternativeNameFormatString,
		CertificateValidityPeriod:                     spec.CertificateValidityPeriod,
		CertificateValidityPeriodUnits:                string(spec.CertificateValidityPeriodUnits),
		CertificateErrorCode:                          spec.CertificateErrorCode,
		CertificateExpirationDateTime:                 timeOf(facts.ExpirationDateTime),
		CertificateIssuanceDateTime:                   timeOf(facts.IssuanceDateTime),
		LastCertificateStateChangeDateTime:            timeOf(spec.LastCertificateStateChangeDateTime),
		CertificateLastIssuanceStateChangedDateTime:   timeOf(spec.CertificateLastIssuanceStateChangedDateTime),
	}
	content, err := json.Marshal(state)
	if err != nil {
		return nil, fmt.Errorf("failed to encode the device certificate state: %w", err)
	}
	return &desiredDeviceState{
		conn:    conn,
		profile: certificateProfile(spec),
		state:   state,
		facts:   facts,
		hash:    digest(content, []byte(conn.TenantID)),
	}, nil
}

// certificateFacts derives the facts from certificateSecretRef, if set, and lets each explicit value of
// spec.certificate win. It also returns the key usage the certificate implies.
func (r *ManagedDeviceCertificateStateReconciler) certificateFacts(ctx context.Context, obj *intunev1alpha1.ManagedDeviceCertificateState) (*intunev1alpha1.CertificateFacts, intunev1alpha1.CertificateKeyUsage, error) {
	facts := &intunev1alpha1.CertificateFacts{}
	usage := intunev1alpha1.CertificateKeyUsage("digitalSignature")
	if ref := obj.Spec.CertificateSecretRef; ref != nil {
		secrets := connection.NewSecretReader(r.Live, obj.Namespace)
		data, err := secrets.Key(ctx, ref.Name, ref.Key, "tls.crt")
		if err != nil {
			return nil, "", err
		}
		var password []byte
		if ref.PasswordKey != "" {
			if password, err = secrets.Key(ctx, ref.Name, ref.PasswordKey, ""); err != nil {
				return nil, "", err
			}
		}
		cert, err := pfx.ParseCertificate(data, string(password))
		if err != nil {
			return nil, "", err
		}
		f := pfx.FactsOf(cert)
		facts = &intunev1alpha1.CertificateFacts{
			Issuer:             f.Issuer,
			Thumbprint:         f.Thumbprint,
			SerialNumber:       f.SerialNumber,
			KeyLength:          int32(f.KeyLength),
			EnhancedKeyUsage:   strings.Join(f.ExtendedKeyUsages, ", "),
			IssuanceDateTime:   timePtr(f.NotBefore),
			ExpirationDateTime: timePtr(f.NotAfter),
		}
		// A certificate without a KeyUsage extension allows every usage (RFC 5280), key encipherment
		// needing an RSA key.
		if slices.Contains(f.KeyUsages, "keyEncipherment") || (len(f.KeyUsages) == 0 && f.KeyAlgorithm == "RSA") {
			usage = "keyEncipherment"
		}
	}
	if explicit := obj.Spec.Certificate; explicit != nil {
		override(&facts.Issuer, explicit.Issuer)
		override(&facts.Thumbprint, strings.ToLower(explicit.Thumbprint))
		override(&facts.SerialNumber, explicit.SerialNumber)
		override(&facts.KeyLength, explicit.KeyLength)
		override(&facts.EnhancedKeyUsage, explicit.EnhancedKeyUsage)
		override(&facts.IssuanceDateTime, explicit.IssuanceDateTime)
		override(&facts.ExpirationDateTime, explicit.ExpirationDateTime)
	}
	return facts, usage, nil
}

// override sets *field to value unless value is the zero value.
func override[V comparable](field *V, value V) {
	var zero V
	if value != zero {
		*field = value
	}
}

// sync makes Graph hold the desired record and says what it did (an Event reason, "" when nothing changed).
// Graph assigns random ids, so the record is found by its certificate before any create (assignedRecord):
// a crash between a create and the status write does not make a second record.
func (r *ManagedDeviceCertificateStateReconciler) sync(ctx context.Context, obj *intunev1alpha1.ManagedDeviceCertificateState, want *desiredDeviceState) (*graph.ManagedDeviceCertificateState, string, error) {
	// Before the first write: one resource per record (Graph assigns the id, so the record is known by its
	// profile and certificate, as adoption finds it).
	recordKey := deviceStateRecordKey(want)
	fresh, err := r.Claims.claim(ctx, obj, kindManagedDeviceCertificateState, want.conn.TenantID, recordKey)
	if err != nil {
		return nil, "", err
	}
	flow := &assignedRecord[graph.ManagedDeviceCertificateState]{
		ext:     &deviceStateRecords{gc: want.conn.Graph, want: want},
		id:      obj.Status.ID,
		mark:    &obj.Status.CreateStartedTime,
		idOf:    func(s *graph.ManagedDeviceCertificateState) string { return s.ID },
		matches: func(s *graph.ManagedDeviceCertificateState) bool { return matchesDeviceState(s, want.state) },
		unseen: func(ctx context.Context, err error) error {
			return r.unclaimUnseen(ctx, obj, want.conn, kindManagedDeviceCertificateState, recordKey, fresh, err)
		},
		adopt: func(ctx context.Context, _ *graph.ManagedDeviceCertificateState) error {
			if fresh && adoptionRefused(want.conn) {
				return r.refuseAdoption(ctx, obj, want.conn, kindManagedDeviceCertificateState, recordKey)
			}
			return nil
		},
		beginCreate: func(ctx context.Context) error {
			obj.Status.Certificate = want.facts // how a deletion finds the record should the id never arrive
			return r.beginCreate(ctx, obj, &obj.Status.CreateStartedTime)
		},
		settling: func(mark *metav1.Time) error { return r.createSettling(mark, r.Clock.Now()) },
	}
	return flow.sync(ctx)
}

// deviceStateRecords is the external client of one resource's managedDeviceCertificateState (external's
// contracts): below a profile that does not exist Graph answers 404, which Find and Create report as
// ProfileNotFound.
type deviceStateRecords struct {
	gc   *graph.Client
	want *desiredDeviceState
}

func (d *deviceStateRecords) Get(ctx context.Context, id string) (*graph.ManagedDeviceCertificateState, error) {
	got, err := d.gc.GetManagedDeviceCertificateState(ctx, d.want.profile, id)
	if graph.IsNotFound(err) {
		return nil, nil
	}
	return got, err
}

func (d *deviceStateRecords) Find(ctx context.Context) (*graph.ManagedDeviceCertificateState, error) {
	states, err := d.gc.ListManagedDeviceCertificateStates(ctx, d.want.profile)
	if err != nil {
		return nil, profileError(err, d.want)
	}
	return findDeviceState(states, d.want.state), nil
}

func (d *deviceStateRecords) Create(ctx context.Context) (*graph.ManagedDeviceCertificateState, error) {
	created, err := d.gc.CreateManagedDeviceCertificateState(ctx, d.want.profile, d.want.state)
	return created, profileError(err, d.want)
}

func (d *deviceStateRecords) Update(ctx context.Context, id string) (*graph.ManagedDeviceCertificateState, error) {
	updated, err := d.gc.UpdateManagedDeviceCertificateState(ctx, d.want.profile, id, d.want.state)
	if err == nil && updated == nil { // answered 204: read the record as the service now has it
		updated, err = d.gc.GetManagedDeviceCertificateState(ctx, d.want.profile, id)
	}
	if err != nil {
		return nil, err
	}
	if updated.ID == "" {
		updated.ID = id
	}
	return updated, nil
}

func (d *deviceStateRecords) Delete(ctx context.Context, id string) error {
	// A 404 means the record, or its whole profile, is gone already.
	return ignoreGone(d.gc.DeleteManagedDeviceCertificateState(ctx, d.want.profile, id))
}

// deviceStateRecordKey identifies a device state record the way adoption finds it: profile, certificate
// thumbprint and serial number (without sign byte or separators).
func deviceStateRecordKey(want *desiredDeviceState) string {
	serial := strings.TrimLeft(strings.NewReplacer(":", "", " ", "").Replace(strings.ToLower(want.state.CertificateSerialNumber)), "0")
	return want.profile.DeviceConfigurationID + "/" + strings.ToLower(want.state.CertificateThumbprint) + "/" + serial
}

// profileError names a missing certificate profile: below a profile that does not exist, Graph answers 404.
func profileError(err error, want *desiredDeviceState) error {
	if !graph.IsNotFound(err) {
		return err
	}
	return &conditionError{reason: intunev1alpha1.ReasonProfileNotFound, terminal: true,
		message: fmt.Sprintf("Intune has no %s certificate profile %s in tenant %s: check spec.deviceConfigurationId and spec.profileType",
			want.profile.Type, want.profile.DeviceConfigurationID, want.conn.TenantID)}
}

// findDeviceState returns the record of the same certificate (thumbprint and serial number), if any.
func findDeviceState(states []graph.ManagedDeviceCertificateState, want *graph.ManagedDeviceCertificateState) *graph.ManagedDeviceCertificateState {
	for i := range states {
		if strings.EqualFold(states[i].CertificateThumbprint, want.CertificateThumbprint) &&
			sameSerial(states[i].CertificateSerialNumber, want.CertificateSerialNumber) {
			return &states[i]
		}
	}
	return nil
}

// sameSerial compares hex serial numbers as numbers: tools write them in either case, with or without the
// DER sign byte 00 and separators.
func sameSerial(a, b string) bool {
	normal := func(s string) string {
		s = strings.NewReplacer(":", "", " ", "").Replace(strings.ToLower(s))
		return strings.TrimLeft(s, "0")
	}
	return normal(a) == normal(b)
}

// matchesDeviceState compares the fields the spec sets. An empty field is not sent (PATCH cannot clear it),
// so it is not compared either: a field removed from the spec keeps its last value in Intune. Enums compare
// without case: the service may answer them in PascalCase.
func matchesDeviceState(rec, want *graph.ManagedDeviceCertificateState) bool {
	same := func(got, wanted string) bool { return wanted == "" || got == wanted }
	sameEnum := func(got, wanted string) bool { return wanted == "" || strings.EqualFold(got, wanted) }
	sameInt := func(got, wanted int32) bool { return wanted == 0 || got == wanted }
	sameTime := func(got, wanted *time.Time) bool { return wanted == nil || (got != nil && got.Equal(*wanted)) }
	return sameEnum(rec.DevicePlatform, want.DevicePlatform) &&
		sameEnum(rec.CertificateKeyUsage, want.CertificateKeyUsage) &&
		same(rec.CertificateProfileDisplayName, want.CertificateProfileDisplayName) &&
		same(rec.DeviceDisplayName, want.DeviceDisplayName) &&
		same(rec.UserDisplayName, want.UserDisplayName) &&
		same(rec.CertificateIssuer, want.CertificateIssuer) &&
		sameEnum(rec.CertificateThumbprint, want.CertificateThumbprint) &&
		(want.CertificateSerialNumber == "" || sameSerial(rec.CertificateSerialNumber, want.CertificateSerialNumber)) &&
		same(rec.CertificateEnhancedKeyUsage, want.CertificateEnhancedKeyUsage) &&
		sameInt(rec.CertificateKeyLength, want.CertificateKeyLength) &&
		sameEnum(rec.CertificateIssuanceState, want.CertificateIssuanceState) &&
		sameEnum(rec.CertificateRevokeStatus, want.CertificateRevokeStatus) &&
		sameEnum(rec.CertificateKeyStorageProvider, want.CertificateKeyStorageProvider) &&
		sameEnum(rec.CertificateSubjectNameFormat, want.CertificateSubjectNameFormat) &&
		same(rec.CertificateSubjectNameFormatString, want.CertificateSubjectNameFormatString) &&
		sameEnum(rec.CertificateSubjectAlternativeNameFormat, want.CertificateSubjectAlternativeNameFormat) &&
		same(rec.CertificateSubjectAlternativeNameFormatString, want.CertificateSubjectAlternativeNameFormatString) &&
		sameInt(rec.CertificateValidityPeriod, want.CertificateValidityPeriod) &&
		sameEnum(rec.CertificateValidityPeriodUnits, want.CertificateValidityPeriodUnits) &&
		sameInt(rec.CertificateErrorCode, want.CertificateErrorCode) &&
		sameTime(rec.CertificateExpirationDateTime, want.CertificateExpirationDateTime) &&
		sameTime(rec.CertificateIssuanceDateTime, want.CertificateIssuanceDateTime) &&
		sameTime(rec.LastCertificateStateChangeDateTime, want.LastCertificateStateChangeDateTime) &&
		sameTime(rec.CertificateLastIssuanceStateChangedDateTime, want.CertificateLastIssuanceStateChangedDateTime)
}

// certificateProfile is the Graph address of a resource's certificate profile.
func certificateProfile(spec *intunev1alpha1.ManagedDeviceCertificateStateSpec) graph.CertificateProfile {
	return graph.CertificateProfile{DeviceConfigurationID: spec.DeviceConfigurationID,
		Type: graph.ProfileType(spec.ProfileType), Via: graph.Via(spec.ReachedThrough)}
}

func (r *ManagedDeviceCertificateStateReconciler) reconcileDelete(ctx context.Context, obj *intunev1alpha1.ManagedDeviceCertificateState) (ctrl.Result, error) {
	r.Resync.forget(obj.UID)
	st := &obj.Status
	return r.finalize(ctx, obj, deletion{
		policy:        obj.Spec.DeletionPolicy,
		connectionRef: obj.Spec.ConnectionRef,
		records:       markedRecords(st.ID, st.CreateStartedTime),
		remove: func(ctx context.Context, conn *connection.Connection) (string, error) {
			want := &desiredDeviceState{conn: conn, profile: certificateProfile(&obj.Spec), state: &graph.ManagedDeviceCertificateState{}}
			if st.CreateStartedTime != nil { // the certificate finds a record whose id never arrived
				facts := st.Certificate
				if facts == nil || facts.Thumbprint == "" { // marked by a version that did not store it
					var err error
					if facts, _, err = r.certificateFacts(ctx, obj); err != nil {
						return "", err
					}
				}
				want.state.CertificateThumbprint, want.state.CertificateSerialNumber = facts.Thumbprint, facts.SerialNumber
			}
			pending, err := removeMarked(ctx, &deviceStateRecords{gc: conn.Graph, want: want},
				func(s *graph.ManagedDeviceCertificateState) string { return s.ID }, st.ID, st.CreateStartedTime, r.CreateSettle, r.Clock.Now())
			if gone := (*conditionError)(nil); errors.As(err, &gone) && gone.reason == intunev1alpha1.ReasonProfileNotFound {
				return "", nil // the profile is gone, and its records with it
			}
			return pending, err
		},
	})
}
