package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// AccessKind is a resource kind a ClusterGraphConnection may serve.
// +kubebuilder:validation:Enum=UserPfxCertificate;ManagedDeviceCertificateState;PfxUserCertificate;PfxRecryptionRequest
type AccessKind string

// AdoptionPolicy says whether a resource may take over a record that exists in Intune without a claim.
// +kubebuilder:validation:Enum=Allow;Deny
type AdoptionPolicy string

const (
	AdoptionAllow AdoptionPolicy = "Allow"
	AdoptionDeny  AdoptionPolicy = "Deny"
)

// DefaultAccessKinds are the kinds a ClusterGraphConnection serves when access.kinds is empty: the two that
// name their user or device through a certificate. PfxUserCertificate and PfxRecryptionRequest act on any
// user's records by id, so they must be listed.
var DefaultAccessKinds = []AccessKind{"UserPfxCertificate", "ManagedDeviceCertificateState"}

// ConnectionAccess says who may use a ClusterGraphConnection, and for what. Every rule must allow a resource;
// a refused one gets Ready=False AccessDenied and causes no Graph call.
type ConnectionAccess struct {
	// namespaces may use the connection (exact names), in addition to those namespaceSelector selects.
	// +listType=set
	// +kubebuilder:validation:items:MaxLength=63
	// +optional
	Namespaces []string `json:"namespaces,omitempty"`

	// namespaceSelector selects namespaces by label; {} selects every namespace. Unset selects none (only
	// namespaces listed, and the operator's own namespace, may use the connection).
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`

	// kinds may use the connection. Empty: UserPfxCertificate and ManagedDeviceCertificateState.
	// PfxUserCertificate and PfxRecryptionRequest act on any user's records by id, so only when listed.
	// +listType=set
	// +optional
	Kinds []AccessKind `json:"kinds,omitempty"`

	// intendedPurposes a UserPfxCertificate may import with. Empty: all.
	// +listType=set
	// +optional
	IntendedPurposes []IntendedPurpose `json:"intendedPurposes,omitempty"`

	// userPrincipalNameDomains: the record's user principal name must end in @<one of these>
	// (case-insensitive). Empty: any.
	// +listType=set
	// +kubebuilder:validation:items:Pattern=`^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*$`
	// +optional
	UserPrincipalNameDomains []string `json:"userPrincipalNameDomains,omitempty"`

	// requireCertificateMatch: the record's user principal name must equal the certificate's UPN SAN or email
	// SAN, so no one imports a certificate for somebody else. Default true.
	// +kubebuilder:default=true
	// +optional
	RequireCertificateMatch *bool `json:"requireCertificateMatch,omitempty"`

	// trustedIssuers: the certificate must chain to a CA in this bundle (verified with the chain the source
	// carries as intermediates).
	// +optional
	TrustedIssuers *TrustedIssuers `json:"trustedIssuers,omitempty"`

	// adoption: may a resource take over a record that exists in Intune but was not created through this
	// operator (no claim)? Default Allow.
	// +kubebuilder:default=Allow
	// +optional
	Adoption AdoptionPolicy `json:"adoption,omitempty"`
}

// TrustedIssuers names a bundle of PEM CA certificates in the operator's namespace.
type TrustedIssuers struct {
	// caBundleRef is a ConfigMap or Secret key holding PEM CA certificates, in the operator's namespace.
	// +required
	CABundleRef CABundleReference `json:"caBundleRef"`
}

// CABundleReference is a key of a ConfigMap or Secret in the operator's namespace.
type CABundleReference struct {
	// kind of the object holding the bundle: ConfigMap or Secret.
	// +kubebuilder:validation:Enum=Secret;ConfigMap
	// +kubebuilder:default=ConfigMap
	// +optional
	Kind string `json:"kind,omitempty"`

	// name of the object, in the operator's namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`

	// key inside the object (data, or binaryData for a ConfigMap).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Key string `json:"key"`
}

// RequiresCertificateMatch is requireCertificateMatch with its default.
func (a *ConnectionAccess) RequiresCertificateMatch() bool {
	return a.RequireCertificateMatch == nil || *a.RequireCertificateMatch
}
