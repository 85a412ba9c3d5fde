package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"runtime"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/testutil"
	"github.com/certops/intune-cert-operator/test/graphsim"
)

const (
	benchNamespace   = "bench"
	latencyNamespace = "bench-latency"
	// unrelatedNamespaces spread the unrelated Secrets as a real cluster would.
	unrelatedNamespaces = 10
	// pfxPassword protects every generated PFX: the benchmark measures the operator, not password variety.
	pfxPassword = "Bench-Pa55word!"
)

// issuer makes user certificates fast (testutil.IssueUserCertificate): one RSA key for all of them.
type issuer struct {
	key *rsa.PrivateKey
	now time.Time
}

func newIssuer() (*issuer, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generating the shared certificate key: %w", err)
	}
	return &issuer{key: key, now: time.Now()}, nil
}

// pfxCert issues a certificate for upn and returns it as a PFX with its thumbprint and the certificate.
func (is *issuer) pfxCert(upn string) (data []byte, thumbprint string, cert *x509.Certificate, err error) {
	c, err := testutil.IssueUserCertificate(is.key, upn, is.now.Add(-time.Hour), is.now.AddDate(1, 0, 0))
	if err != nil {
		return nil, "", nil, fmt.Errorf("issuing a certificate for %s: %w", upn, err)
	}
	if data, err = c.PFX(pfxPassword); err != nil {
		return nil, "", nil, fmt.Errorf("encoding the PFX of %s: %w", upn, err)
	}
	return data, c.Thumbprint(), c.Cert, nil
}

// certificate is one generated UserPfxCertificate with its Secret and user.
type certificate struct {
	name       string // of the UserPfxCertificate and (with a prefix) of its Secret
	user       graphsim.User
	pfx        []byte
	thumbprint string
	// notBefore and notAfter are the certificate's validity, as a record in Intune shows it (-seed).
	notBefore, notAfter time.Time
}

func (c *certificate) secretName() string { return "pfx-" + c.name }

// issueAll makes one certificate per user, on every core.
func (is *issuer) issueAll(ctx context.Context, prefix string, users []graphsim.User) ([]*certificate, error) {
	certs := make([]*certificate, len(users))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, u := range users {
		g.Go(func() error {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			data, thumbprint, cert, err := is.pfxCert(u.UserPrincipalName)
			if err != nil {
				return err
			}
			certs[i] = &certificate{name: fmt.Sprintf("%s-%05d", prefix, i), user: u, pfx: data, thumbprint: thumbprint,
				notBefore: cert.NotBefore, notAfter: cert.NotAfter}
			return nil
		})
	}
	return certs, g.Wait()
}

// users makes n directory users; their ids are valid GUIDs so record ids have Graph's shape, and differ
// between prefixes.
func users(prefix string, n int) []graphsim.User {
	h := fnv.New32a()
	_, _ = h.Write([]byte(prefix))
	out := make([]graphsim.User, n)
	for i := range out {
		out[i] = graphsim.User{
			ID:                fmt.Sprintf("%08x-0000-4000-8000-%012x", h.Sum32(), i+1),
			UserPrincipalName: fmt.Sprintf("%s%05d@contoso.com", prefix, i),
			DisplayName:       fmt.Sprintf("%s %d", prefix, i),
		}
	}
	return out
}

func pfxSecret(namespace string, c *certificate) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: c.secretName(), Namespace: namespace},
		Data: map[string][]byte{"pfx": c.pfx, "password": []byte(pfxPassword)}}
}

// userPfxCertificate leaves userPrincipalName to the operator (from the email SAN), as most users would.
func userPfxCertificate(namespace string, c *certificate) *intunev1alpha1.UserPfxCertificate {
	return &intunev1alpha1.UserPfxCertificate{ObjectMeta: metav1.ObjectMeta{Name: c.name, Namespace: namespace},
		Spec: intunev1alpha1.UserPfxCertificateSpec{
			IntendedPurpose: intunev1alpha1.IntendedPurpose("smimeEncryption"),
			Source: intunev1alpha1.CertificateSource{Pfx: &intunev1alpha1.PfxSecretSource{
				SecretRef: intunev1alpha1.SecretKeyReference{Name: c.secretName(), Key: "pfx"}}},
			// The rotation scenario measures a create and a delete per certificate: not the S/MIME default (Keep).
			Retention: &intunev1alpha1.Retention{Superseded: intunev1alpha1.SupersededDelete},
		}}
}

// createAll creates objects with at most parallel requests in flight.
func createAll[T client.Object](ctx context.Context, c client.Client, what string, parallel int, objs []T) error {
	return forAll(ctx, what, parallel, objs, func(ctx context.Context, obj T) error {
		if err := c.Create(ctx, obj); err != nil {
			return fmt.Errorf("creating %s %s/%s: %w", what, obj.GetNamespace(), obj.GetName(), err)
		}
		return nil
	})
}

// forAll runs do for every item with at most parallel in flight, reporting progress.
func forAll[T any](ctx context.Context, what string, parallel int, items []T, do func(context.Context, T) error) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	p := newProgress(what, len(items))
	defer p.done()
	for _, item := range items {
		g.Go(func() error {
			if err := do(ctx, item); err != nil {
				return err
			}
			p.add(1)
			return nil
		})
	}
	return g.Wait()
}

// unrelatedSecrets are Secrets the operator has no business with, of size bytes each, spread over
// namespaces. They share one random payload: its content does not matter, its size does. With applied,
// each also carries the annotation `kubectl apply` leaves: the whole Secret, data included.
func unrelatedSecrets(n, size int, applied bool) ([]*corev1.Secret, []string, error) {
	payload := make([]byte, size)
	if _, err := rand.Read(payload); err != nil {
		return nil, nil, err
	}
	var namespaces []string
	for i := range min(n, unrelatedNamespaces) {
		namespaces = append(namespaces, fmt.Sprintf("unrelated-%d", i))
	}
	secrets := make([]*corev1.Secret, n)
	for i := range secrets {
		secrets[i] = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("blob-%05d", i), Namespace: namespaces[i%len(namespaces)]},
			Data:       map[string][]byte{"data": payload},
		}
		if applied {
			last, err := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Secret", "data": secrets[i].Data,
				"metadata": map[string]string{"name": secrets[i].Name, "namespace": secrets[i].Namespace}})
			if err != nil {
				return nil, nil, err
			}
			secrets[i].Annotations = map[string]string{"kubectl.kubernetes.io/last-applied-configuration": string(last)}
		}
	}
	return secrets, namespaces, nil
}
