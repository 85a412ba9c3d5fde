package controller

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/connection"
	"github.com/certops/intune-cert-operator/internal/pfx"
)

// material is a certificate with its key, read from the resource's source, plus a digest of the source
// content that stays the same while the Secret does (a tls source builds a new PFX and password each time).
type material struct {
	*pfx.Material
	digest string
}

// kindConfigMap is the connector key reference's kind that is read live (ConfigMaps are not cached).
const kindConfigMap = "ConfigMap"

// sources opens every reconciler's certificate sources, remembering the outcomes (see sourceCache).
var sources = &sourceReader{
	cache:   newSourceCache(maxCachedSources, maxCachedSourceBytes, maxCachedSourceEntry),
	fromPFX: pfx.FromPFX,
	fromTLS: pfx.FromTLS,
}

// readMaterial reads a CertificateSource live from the API server and opens it, or recalls what opening the
// same content gave before. The certificate's validity is judged against now on every call.
func readMaterial(ctx context.Context, live client.Reader, namespace string, src intunev1alpha1.CertificateSource, now time.Time) (*material, error) {
	return sources.read(ctx, live, namespace, src, now)
}

// sourceReader reads certificate sources; fromPFX and fromTLS open them (tests count the calls).
type sourceReader struct {
	cache   *sourceCache
	fromPFX func(data []byte, password string) (*pfx.Material, error)
	fromTLS func(certPEM, keyPEM []byte, encoding pfx.Encoding) (*pfx.Material, error)
}

func (r *sourceReader) read(ctx context.Context, live client.Reader, namespace string, src intunev1alpha1.CertificateSource, now time.Time) (*material, error) {
	var m *material
	var err error
	switch {
	case src.Pfx != nil:
		m, err = r.readPFX(ctx, live, namespace, src.Pfx)
	case src.TLS != nil:
		m, err = r.readTLS(ctx, live, namespace, src.TLS)
	case src.CertificateRef != nil:
		m, err = r.readCertificateRef(ctx, live, namespace, src.CertificateRef) // certmanager.go
	default:
		return nil, &connection.Error{Reason: intunev1alpha1.ReasonInvalidSpec, Message: "spec.source must set pfx, tls or certificateRef"}
	}
	if err != nil {
		return nil, err
	}
	// Never remembered: a certificate expires while its Secret stays the same.
	if err := pfx.CheckValidity(m.Leaf, now); err != nil {
		return nil, err
	}
	return m, nil
}

func (r *sourceReader) readPFX(ctx context.Context, live client.Reader, namespace string, src *intunev1alpha1.PfxSecretSource) (*material, error) {
	secrets := connection.NewSecretReader(live, namespace)
	data, err := secrets.Key(ctx, src.SecretRef.Name, src.SecretRef.Key, "pfx")
	if err != nil {
		return nil, err
	}
	pwName, pwKey := src.SecretRef.Name, ""
	if ref := src.PasswordSecretRef; ref != nil {
		if ref.Name != "" {
			pwName = ref.Name
		}
		pwKey = ref.Key
	}
	password, err := secrets.Key(ctx, pwName, pwKey, "password")
	if err != nil {
		return nil, err
	}
	content := sourceContent{
		key:         sourceKey("pfx", namespace, src.SecretRef.Name, src.SecretRef.Key, pwName, pwKey),
		digest:      digest(data, password),
		own:         data,
		ownPassword: string(password),
	}
	opened, err := r.cache.open(content, func() (*pfx.Material, error) { return r.fromPFX(data, string(password)) })
	if err != nil {
		return nil, err
	}
	return &material{Material: opened, digest: content.digest}, nil
}

func (r *sourceReader) readTLS(ctx context.Context, live client.Reader, namespace string, src *intunev1alpha1.TLSSecretSource) (*material, error) {
	secret := &corev1.Secret{}
	key := types.NamespacedName{Namespace: namespace, Name: src.SecretRef.Name}
	if err := live.Get(ctx, key, secret); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &connection.Error{Reason: intunev1alpha1.ReasonSecretNotFound,
				Message: fmt.Sprintf("Secret %q does not exist in namespace %q", key.Name, namespace)}
		}
		return nil, fmt.Errorf("failed to read Secret %s: %w", key, err)
	}
	for _, k := range []string{corev1.TLSCertKey, corev1.TLSPrivateKeyKey} {
		if len(secret.Data[k]) == 0 {
			return nil, &connection.Error{Reason: intunev1alpha1.ReasonSecretKeyMissing,
				Message: fmt.Sprintf("Secret %q in namespace %q has no key %q (is it a kubernetes.io/tls Secret?)", key.Name, namespace, k)}
		}
	}
	certPEM, keyPEM := secret.Data[corev1.TLSCertKey], secret.Data[corev1.TLSPrivateKeyKey]
	// The encoding is part of what is pushed: a new one is a new PFX, and a new push.
	encoding := pfx.Encoding(src.PfxEncoding)
	content := sourceContent{key: sourceKey("tls", namespace, key.Name), digest: digest(certPEM, keyPEM, []byte(encoding.OrDefault()))}
	built, err := r.cache.open(content, func() (*pfx.Material, error) { return r.fromTLS(certPEM, keyPEM, encoding) })
	if err != nil {
		return nil, err
	}
	return &material{Material: built, digest: content.digest}, nil
}

// encryption is the connector key a password is encrypted for.
type encryption struct {
	providerName string
	keyName      string
	padding      pfx.Padding
	publicKey    *rsa.PublicKey
	// keyDigest identifies the public key, so a new connector key triggers a new push.
	keyDigest string
}

// resolveEncryption merges the connection's pfxEncryption with the resource's override, field by field,
// and reads the public key. A key named by the resource is read in the resource's namespace, one named by
// the connection in the connection's.
func resolveEncryption(ctx context.Context, live client.Reader, conn *connection.Connection, namespace string, override *intunev1alpha1.PfxEncryption) (*encryption, error) {
	merged, keyNamespace := mergeEncryption(conn, namespace, override)
	enc := &encryption{providerName: merged.ProviderName, keyName: merged.KeyName, padding: pfx.Padding(merged.PaddingScheme)}
	// No guessed default: a wrong key name imports fine and fails later, on the connector, out of sight.
	for _, field := range []struct{ name, value string }{{"providerName", enc.providerName}, {"keyName", enc.keyName}} {
		if field.value == "" {
			return nil, &connection.Error{Reason: intunev1alpha1.ReasonInvalidSpec, Message: fmt.Sprintf(
				"the connector key has no %[1]s: set spec.pfxEncryption.%[1]s on %[2]s or spec.encryption.%[1]s to the name the "+
					"connector key was created with (e.g. Microsoft Software Key Storage Provider / PFXEncryptionKey)", field.name, conn.Ref)}
		}
	}
	if enc.padding == "" {
		enc.padding = pfx.PaddingOAEPSHA512
	}
	// Stored before the API refused them: nothing encrypted with a padding Intune no longer accepts is sent.
	if err := pfx.CheckPadding(enc.padding); err != nil {
		return nil, err
	}
	ref := merged.PublicKeyRef
	if ref == nil {
		return nil, &connection.Error{Reason: intunev1alpha1.ReasonInvalidSpec,
			Message: "no connector public key: set spec.pfxEncryption.publicKeyRef on " + conn.Ref + " or spec.encryption.publicKeyRef"}
	}
	data, err := readPublicKey(ctx, live, keyNamespace, ref)
	if err != nil {
		return nil, err
	}
	pub, err := pfx.ParsePublicKey(data)
	if err != nil {
		return nil, err
	}
	der, _ := x509.MarshalPKIXPublicKey(pub)
	sum := sha256.Sum256(der)
	enc.publicKey, enc.keyDigest = pub, hex.EncodeToString(sum[:8])
	return enc, nil
}

// mergeEncryption is the connection's pfxEncryption with the resource's override, field by field, and the
// namespace of the public key it names (the resource's for its own key, else the connection's).
func mergeEncryption(conn *connection.Connection, namespace string, override *intunev1alpha1.PfxEncryption) (intunev1alpha1.PfxEncryption, string) {
	merged := conn.Encryption
	keyNamespace := conn.SecretNamespace
	if override != nil {
		if override.ProviderName != "" {
			merged.ProviderName = override.ProviderName
		}
		if override.KeyName != "" {
			merged.KeyName = override.KeyName
		}
		if override.PaddingScheme != "" {
			merged.PaddingScheme = override.PaddingScheme
		}
		if override.PublicKeyRef != nil {
			merged.PublicKeyRef = override.PublicKeyRef
			keyNamespace = namespace
		}
	}
	return merged, keyNamespace
}

func readPublicKey(ctx context.Context, live client.Reader, namespace string, ref *intunev1alpha1.PublicKeyReference) ([]byte, error) {
	if ref.Kind != kindConfigMap {
		return connection.ReadSecretKey(ctx, live, namespace, ref.Name, ref.Key, "")
	}
	cm := &corev1.ConfigMap{}
	if err := live.Get(ctx, types.NamespacedName{Namespace: namespace, Name: ref.Name}, cm); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &connection.Error{Reason: intunev1alpha1.ReasonSecretNotFound,
				Message: fmt.Sprintf("ConfigMap %q with the connector public key does not exist in namespace %q", ref.Name, namespace)}
		}
		return nil, fmt.Errorf("failed to read ConfigMap %s/%s: %w", namespace, ref.Name, err)
	}
	if data, ok := cm.BinaryData[ref.Key]; ok {
		return data, nil
	}
	if data, ok := cm.Data[ref.Key]; ok {
		return []byte(data), nil
	}
	return nil, &connection.Error{Reason: intunev1alpha1.ReasonSecretKeyMissing,
		Message: fmt.Sprintf("ConfigMap %q in namespace %q has no key %q", ref.Name, namespace, ref.Key)}
}

// digest is a short SHA-256 over values (each length-prefixed, so their boundaries count): a fingerprint of
// what was pushed that holds no secret itself.
func digest(values ...[]byte) string {
	h := sha256.New()
	for _, v := range values {
		fmt.Fprintf(h, "%d:", len(v))
		h.Write(v)
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}
