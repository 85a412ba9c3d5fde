package v1alpha1

// CertificateReference names a cert-manager Certificate (cert-manager.io/v1) in the resource's own namespace.
// The operator reads the Certificate and its Secret (spec.secretName, a kubernetes.io/tls Secret) and never
// writes either.
type CertificateReference struct {
	// name of the Certificate, in the same namespace as the resource.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`

	// pfxEncoding is how the PFX built from the Certificate's Secret is encrypted: TripleDES-SHA1 (the
	// default, opens on every connector host) or AES256-SHA256 (Windows Server 2019 or later), as for a tls
	// source.
	// +kubebuilder:default=TripleDES-SHA1
	// +optional
	PfxEncoding PfxEncoding `json:"pfxEncoding,omitempty"`
}
