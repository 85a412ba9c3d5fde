package connection

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/pfx"
)

// AccessRequest is what a resource asks of its connection, gathered before any Graph call.
type AccessRequest struct {
	Kind      intunev1alpha1.AccessKind
	Namespace string
	// IntendedPurpose is the purpose's name ("" for kinds without one).
	IntendedPurpose string
	// UserPrincipalName is the user the record is for ("" for kinds whose records name no user by UPN).
	UserPrincipalName string
	// Certificate is the certificate the record carries, with the chain its source holds (nil for kinds
	// without one).
	Certificate *x509.Certificate
	Chain       []*x509.Certificate
	Now         time.Time
}

// Authorize applies the ClusterGraphConnection's access rules to a request; a GraphConnection serves its own
// namespace only (it cannot be named from another) and has no rules. A refusal is an *Error with reason
// AccessDenied whose message names the rule and the field an administrator would set.
func (p *Provider) Authorize(ctx context.Context, conn *Connection, req AccessRequest) error {
	if conn.Cluster == "" {
		return nil
	}
	access := conn.Access
	if access == nil {
		if req.Namespace == p.OperatorNamespace {
			return nil
		}
		return p.denied(conn, "it has no spec.access, so only the operator's namespace %q may use it; an administrator can "+
			"list namespace %q in spec.access.namespaces or select it with spec.access.namespaceSelector", p.OperatorNamespace, req.Namespace)
	}
	checks := []func(context.Context, *intunev1alpha1.ConnectionAccess, AccessRequest) (string, error){
		p.checkNamespace, checkKind, checkPurpose, checkDomain, checkCertificateMatch, p.checkIssuer,
	}
	for _, check := range checks {
		refusal, err := check(ctx, access, req)
		if err != nil {
			return err
		}
		if refusal != "" {
			return p.denied(conn, "%s", refusal)
		}
	}
	return nil
}

func (p *Provider) denied(conn *Connection, format string, args ...any) error {
	return &Error{Reason: intunev1alpha1.ReasonAccessDenied,
		Message: fmt.Sprintf("ClusterGraphConnection %q refuses this resource: ", conn.Cluster) + fmt.Sprintf(format, args...)}
}

func (p *Provider) checkNamespace(ctx context.Context, a *intunev1alpha1.ConnectionAccess, req AccessRequest) (string, error) {
	if req.Namespace == p.OperatorNamespace || slices.Contains(a.Namespaces, req.Namespace) {
		return "", nil
	}
	refusal := fmt.Sprintf("namespace %q is neither in spec.access.namespaces nor selected by spec.access.namespaceSelector", req.Namespace)
	if a.NamespaceSelector == nil {
		return refusal, nil
	}
	selector, err := metav1.LabelSelectorAsSelector(a.NamespaceSelector)
	if err != nil {
		return fmt.Sprintf("spec.access.namespaceSelector is invalid (%v)", err), nil
	}
	ns := &metav1.PartialObjectMetadata{}
	ns.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	if err := p.Cache.Get(ctx, types.NamespacedName{Name: req.Namespace}, ns); err != nil {
		if apierrors.IsNotFound(err) {
			return refusal, nil
		}
		return "", fmt.Errorf("failed to read namespace %q: %w", req.Namespace, err)
	}
	if selector.Matches(labels.Set(ns.Labels)) {
		return "", nil
	}
	return refusal, nil
}

func checkKind(_ context.Context, a *intunev1alpha1.ConnectionAccess, req AccessRequest) (string, error) {
	kinds := a.Kinds
	if len(kinds) == 0 {
		kinds = intunev1alpha1.DefaultAccessKinds
	}
	if slices.Contains(kinds, req.Kind) {
		return "", nil
	}
	return fmt.Sprintf("kind %s is not in spec.access.kinds (default: UserPfxCertificate, ManagedDeviceCertificateState)", req.Kind), nil
}

func checkPurpose(_ context.Context, a *intunev1alpha1.ConnectionAccess, req AccessRequest) (string, error) {
	if len(a.IntendedPurposes) == 0 || req.IntendedPurpose == "" ||
		slices.Contains(a.IntendedPurposes, intunev1alpha1.IntendedPurpose(req.IntendedPurpose)) {
		return "", nil
	}
	return fmt.Sprintf("intended purpose %s is not in spec.access.intendedPurposes", req.IntendedPurpose), nil
}

func checkDomain(_ context.Context, a *intunev1alpha1.ConnectionAccess, req AccessRequest) (string, error) {
	if len(a.UserPrincipalNameDomains) == 0 || req.UserPrincipalName == "" {
		return "", nil
	}
	_, domain, _ := strings.Cut(req.UserPrincipalName, "@")
	for _, allowed := range a.UserPrincipalNameDomains {
		if strings.EqualFold(domain, allowed) && strings.Count(req.UserPrincipalName, "@") == 1 {
			return "", nil
		}
	}
	return fmt.Sprintf("user %q is not in a domain of spec.access.userPrincipalNameDomains", req.UserPrincipalName), nil
}

// checkCertificateMatch keeps anyone from importing a certificate, whose key they hold, for somebody else.
func checkCertificateMatch(_ context.Context, a *intunev1alpha1.ConnectionAccess, req AccessRequest) (string, error) {
	if !a.RequiresCertificateMatch() || req.Certificate == nil || req.UserPrincipalName == "" {
		return "", nil
	}
	names := pfx.UserNames(req.Certificate)
	for _, name := range names {
		if strings.EqualFold(name, req.UserPrincipalName) {
			return "", nil
		}
	}
	issuedTo := "no UPN or email SAN"
	if len(names) > 0 {
		issuedTo = "the names " + strings.Join(names, ", ")
	}
	return fmt.Sprintf("the record is for %q but the certificate carries %s (spec.access.requireCertificateMatch)",
		req.UserPrincipalName, issuedTo), nil
}

func (p *Provider) checkIssuer(ctx context.Context, a *intunev1alpha1.ConnectionAccess, req AccessRequest) (string, error) {
	if a.TrustedIssuers == nil || req.Certificate == nil {
		return "", nil
	}
	ref := a.TrustedIssuers.CABundleRef
	roots, refusal, err := p.caBundle(ctx, ref)
	if refusal != "" || err != nil {
		return refusal, err
	}
	intermediates := x509.NewCertPool()
	for _, c := range req.Chain {
		intermediates.AddCert(c)
	}
	_, err = req.Certificate.Verify(x509.VerifyOptions{Roots: roots, Intermediates: intermediates, CurrentTime: req.Now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return fmt.Sprintf("the certificate does not chain to a CA of spec.access.trustedIssuers (%s %s/%s): %v",
			ref.Kind, p.OperatorNamespace, ref.Name, err), nil
	}
	return "", nil
}

// caBundle reads the trusted CAs from the operator's namespace.
func (p *Provider) caBundle(ctx context.Context, ref intunev1alpha1.CABundleReference) (*x509.CertPool, string, error) {
	var data []byte
	where := fmt.Sprintf("%s %q key %q in namespace %q (spec.access.trustedIssuers.caBundleRef)", ref.Kind, ref.Name, ref.Key, p.OperatorNamespace)
	key := types.NamespacedName{Namespace: p.OperatorNamespace, Name: ref.Name}
	switch ref.Kind {
	case "Secret":
		value, err := NewSecretReader(p.Live, p.OperatorNamespace).Key(ctx, ref.Name, ref.Key, "")
		if err != nil {
			return nil, where + ": " + err.Error(), nil
		}
		data = value
	default:
		cm := &corev1.ConfigMap{}
		if err := p.Live.Get(ctx, key, cm); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, where + " does not exist", nil
			}
			return nil, "", fmt.Errorf("failed to read %s: %w", where, err)
		}
		data = []byte(cm.Data[ref.Key])
		if len(data) == 0 {
			data = cm.BinaryData[ref.Key]
		}
	}
	roots := x509.NewCertPool()
	for rest := data; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		if cert, err := x509.ParseCertificate(block.Bytes); err == nil && block.Type == "CERTIFICATE" {
			roots.AddCert(cert)
		}
	}
	if len(roots.Subjects()) == 0 { //nolint:staticcheck // only counts what was added from PEM
		return nil, where + " holds no PEM CA certificate", nil
	}
	return roots, "", nil
}
