//go:build faults

package faults

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/testutil"
	"github.com/certops/intune-cert-operator/test/graphsim"
	"github.com/certops/intune-cert-operator/test/stack"
)

// namespace holds every resource of a scenario (each scenario has its own cluster).
const namespace = "faults"

// Every extra resource of the other kinds hangs off these (graphsim's device configuration and alice).
var (
	extraRecryptionDevices = []string{"1e4d6f8a-0b1c-4d3e-8f5a-6b7c8d9e0f1b", "3e4d6f8a-0b1c-4d3e-8f5a-6b7c8d9e0f1c"}
	extraPfxUserRecordID   = "8a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6e"
)

// cert is one generated user certificate with what the test expects Intune to hold for it.
type cert struct {
	user       graphsim.User
	certPEM    []byte
	keyPEM     []byte
	pfx        []byte
	thumbprint string
}

// fixtures are generated once per test run and used by every scenario: each scenario starts a fresh
// graphsim, so the same certificates are imported anew.
type fixtures struct {
	password string // protects every generated PFX; random per run so the leak scan cannot match by chance
	users    []graphsim.User
	certs    []*cert // one per user, for the N UserPfxCertificates
	devices  []*cert // certificates of the extra ManagedDeviceCertificateStates
	connect  *cert   // the extra PfxUserCertificate's PFX
}

// newFixtures issues n user certificates (plus a few for the other kinds). One RSA key signs and is
// certified by all of them, each self-signed with its own serial so every thumbprint differs: a 2048-bit
// key per certificate would cost minutes on this machine and change nothing the operator does.
func newFixtures(ctx context.Context, n int) (*fixtures, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 12)
	_, _ = rand.Read(secret)
	fx := &fixtures{password: "Faults-" + hex.EncodeToString(secret)}
	for i := range n {
		fx.users = append(fx.users, graphsim.User{
			ID:                fmt.Sprintf("f0000000-0000-4000-8000-%012x", i+1),
			UserPrincipalName: fmt.Sprintf("user%05d@contoso.com", i),
			DisplayName:       fmt.Sprintf("Faults user %d", i),
		})
	}
	fx.certs = make([]*cert, n)
	fx.devices = make([]*cert, 2)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(2)
	issue := func(into **cert, u graphsim.User) {
		g.Go(func() error {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c, err := issueCert(key, u, fx.password)
			*into = c
			return err
		})
	}
	for i, u := range fx.users {
		issue(&fx.certs[i], u)
	}
	alice := graphsim.User{ID: stack.AliceID, UserPrincipalName: "alice@contoso.com"}
	for i := range fx.devices {
		issue(&fx.devices[i], alice)
	}
	issue(&fx.connect, alice)
	return fx, g.Wait()
}

func issueCert(key *rsa.PrivateKey, u graphsim.User, password string) (*cert, error) {
	now := time.Now()
	c, err := testutil.IssueUserCertificate(key, u.UserPrincipalName, now.Add(-time.Hour), now.AddDate(1, 0, 0))
	if err != nil {
		return nil, fmt.Errorf("issuing a certificate for %s: %w", u.UserPrincipalName, err)
	}
	data, err := c.PFX(password)
	if err != nil {
		return nil, fmt.Errorf("encoding the PFX of %s: %w", u.UserPrincipalName, err)
	}
	return &cert{user: u, certPEM: c.CertPEM(), keyPEM: c.KeyPEM(), pfx: data, thumbprint: c.Thumbprint()}, nil
}

// recordID is the id Intune gives a userPFXCertificate: {userObjectIdWithoutDashes}-{thumbprint}.
func recordID(userID, thumbprint string) string {
	return strings.ReplaceAll(strings.ToLower(userID), "-", "") + "-" + strings.ToLower(thumbprint)
}

// importObjects are the Secrets and UserPfxCertificates of the N certificates. Most read a PFX Secret and
// use the ClusterGraphConnection "default"; every tenth reads a kubernetes.io/tls Secret and every tenth
// (another one) uses the namespace's GraphConnection "contoso" from config/samples, so both sources and
// both connection kinds run under the faults.
func (fx *fixtures) importObjects() (secrets []*corev1.Secret, resources []*intunev1alpha1.UserPfxCertificate) {
	for i, c := range fx.certs {
		name := fmt.Sprintf("cert-%05d", i)
		spec := intunev1alpha1.UserPfxCertificateSpec{IntendedPurpose: "smimeEncryption"}
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}}
		if i%10 == 5 {
			secret.Type = corev1.SecretTypeTLS
			secret.Data = map[string][]byte{corev1.TLSCertKey: c.certPEM, corev1.TLSPrivateKeyKey: c.keyPEM}
			spec.Source.TLS = &intunev1alpha1.TLSSecretSource{SecretRef: intunev1alpha1.LocalSecretReference{Name: name}}
		} else {
			secret.Data = map[string][]byte{"pfx": c.pfx, "password": []byte(fx.password)}
			spec.Source.Pfx = &intunev1alpha1.PfxSecretSource{SecretRef: intunev1alpha1.SecretKeyReference{Name: name}}
		}
		if i%10 == 2 {
			spec.ConnectionRef = &intunev1alpha1.ConnectionReference{Kind: "GraphConnection", Name: "contoso"}
		}
		secrets = append(secrets, secret)
		resources = append(resources, &intunev1alpha1.UserPfxCertificate{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}, Spec: spec})
	}
	return secrets, resources
}

// otherKinds are a few more resources of the kinds besides UserPfxCertificate, on top of config/samples'
// one of each: device certificate states, recryption requests and a connector record.
func (fx *fixtures) otherKinds() []client.Object {
	var objs []client.Object
	for i, c := range fx.devices {
		name := fmt.Sprintf("device-%d", i)
		objs = append(objs,
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name + "-cert", Namespace: namespace},
				Data: map[string][]byte{corev1.TLSCertKey: c.certPEM}},
			&intunev1alpha1.ManagedDeviceCertificateState{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
				Spec: intunev1alpha1.ManagedDeviceCertificateStateSpec{
					DeviceConfigurationID: stack.DeviceConfigurationID, ProfileType: "iosScep", DevicePlatform: "iOS",
					DeviceDisplayName:    fmt.Sprintf("Alice's device %d", i),
					CertificateSecretRef: &intunev1alpha1.CertificateSecretReference{Name: name + "-cert"},
				}})
	}
	for i, device := range extraRecryptionDevices {
		objs = append(objs, &intunev1alpha1.PfxRecryptionRequest{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("recrypt-%d", i), Namespace: namespace},
			Spec: intunev1alpha1.PfxRecryptionRequestSpec{UserID: stack.AliceID, DeviceID: device,
				ProfileID: stack.DeviceConfigurationID, Thumbprint: fx.devices[i].thumbprint, SourceType: 1}})
	}
	objs = append(objs,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "connector-record-pfx", Namespace: namespace},
			Data: map[string][]byte{"pfx": fx.connect.pfx, "password": []byte(fx.password)}},
		&intunev1alpha1.PfxUserCertificate{ObjectMeta: metav1.ObjectMeta{Name: "connector-record", Namespace: namespace},
			Spec: intunev1alpha1.PfxUserCertificateSpec{ID: extraPfxUserRecordID, UserID: stack.AliceID, UserUPN: "alice@contoso.com",
				Source: intunev1alpha1.CertificateSource{Pfx: &intunev1alpha1.PfxSecretSource{
					SecretRef: intunev1alpha1.SecretKeyReference{Name: "connector-record-pfx"}}},
				Status: &connectorStatus, IntendedPurpose: 1}})
	return objs
}

// connectorStatus is the extra PfxUserCertificate's status (Graph's Int32).
var connectorStatus int32 = 1

// createAll creates objs with at most parallel requests in flight.
func createAll[T client.Object](ctx context.Context, c client.Client, parallel int, objs []T) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for _, obj := range objs {
		g.Go(func() error {
			if err := c.Create(ctx, obj); err != nil {
				return fmt.Errorf("creating %T %s: %w", obj, obj.GetName(), err)
			}
			return nil
		})
	}
	return g.Wait()
}
