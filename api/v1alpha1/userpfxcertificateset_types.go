package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// AnnotationUserPrincipalName, on a source a UserPfxCertificateSet selects (a Secret or a cert-manager
// Certificate), names the Intune user of its certificate. Without it the user is the certificate's UPN SAN,
// else its email SAN. Changing it replaces the child: a record belongs to one user.
const AnnotationUserPrincipalName = "intune.certops.dev/user-principal-name"

// LabelSet is on every child of a UserPfxCertificateSet: the set's name (truncated and hashed past 63
// characters).
const LabelSet = "intune.certops.dev/set"

// SetSourceKind is what a UserPfxCertificateSet selects.
// +kubebuilder:validation:Enum=Secret;Certificate
type SetSourceKind string

const (
	// SetSourceSecret selects Secrets: kubernetes.io/tls Secrets become tls sources, every other type a pfx
	// source (keys "pfx" and "password").
	SetSourceSecret SetSourceKind = "Secret"
	// SetSourceCertificate selects cert-manager Certificates: each becomes a certificateRef source.
	SetSourceCertificate SetSourceKind = "Certificate"
)

// UserPfxCertificateTemplate is what every child of a set shares: a UserPfxCertificate spec without source
// and user, which come from each selected source.
type UserPfxCertificateTemplate struct {
	// connectionRef names the Graph connection of every child. Defaults to the ClusterGraphConnection
	// "default". Immutable, as on a UserPfxCertificate.
	// +optional
	ConnectionRef *ConnectionReference `json:"connectionRef,omitempty"`

	// intendedPurpose is what Intune deploys the certificates for.
	// +kubebuilder:default=unassigned
	// +optional
	IntendedPurpose IntendedPurpose `json:"intendedPurpose,omitempty"`

	// encryption overrides the connection's pfxEncryption field by field.
	// +optional
	Encryption *PfxEncryption `json:"encryption,omitempty"`

	// deletionPolicy of every child: Delete removes a child's Intune records with it (when its source leaves
	// the selection, or the set is deleted), Orphan leaves them.
	// +kubebuilder:default=Delete
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`

	// suspend stops every Graph call of every child until it is false again.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// retention of every child's superseded and expired records (see UserPfxCertificate).
	// +optional
	Retention *Retention `json:"retention,omitempty"`

	// renewBefore of every child: how long before notAfter its Expiring condition turns True. Default 720h.
	// +optional
	RenewBefore *metav1.Duration `json:"renewBefore,omitempty"`

	// pfxEncoding of the PFX built for kubernetes.io/tls Secrets and Certificates: TripleDES-SHA1 (default)
	// or AES256-SHA256. PFX Secrets are sent as they are.
	// +kubebuilder:default=TripleDES-SHA1
	// +optional
	PfxEncoding PfxEncoding `json:"pfxEncoding,omitempty"`
}

// UserPfxCertificateSetSpec imports the certificates of many users: one UserPfxCertificate per selected source.
// +kubebuilder:validation:XValidation:rule="has(self.template.connectionRef) == has(oldSelf.template.connectionRef) && (!has(self.template.connectionRef) || self.template.connectionRef == oldSelf.template.connectionRef)",message="template.connectionRef is immutable: the children's records live in that tenant; create a new set for another connection"
// +kubebuilder:validation:XValidation:rule="self.sourceKind == oldSelf.sourceKind",message="sourceKind is immutable: create a new set for another kind of source"
type UserPfxCertificateSetSpec struct {
	// selector selects the sources, in the set's namespace, by label. {} selects every source of the kind.
	// +required
	Selector metav1.LabelSelector `json:"selector"`

	// sourceKind is what the selector selects: Secret (PFX or kubernetes.io/tls Secrets) or Certificate
	// (cert-manager Certificates, cert-manager.io/v1). Immutable.
	// +kubebuilder:default=Secret
	// +optional
	SourceKind SetSourceKind `json:"sourceKind,omitempty"`

	// template is the spec every child gets. The user of each comes from its certificate (UPN SAN, else
	// email SAN) or the source's annotation intune.certops.dev/user-principal-name. A change rolls to every
	// child; one that changes nothing Graph holds makes no Graph call.
	// +required
	Template UserPfxCertificateTemplate `json:"template"`
}

// UserPfxCertificateSetStatus counts the children and says whether all are Ready.
type UserPfxCertificateSetStatus struct {
	// selected is how many sources the selector selects (and so how many children the set has).
	// +kubebuilder:default=0
	// +optional
	Selected int32 `json:"selected"`

	// ready is how many children are Ready.
	// +kubebuilder:default=0
	// +optional
	Ready int32 `json:"ready"`

	// failed is how many children are Ready=False for a reason that needs a fix (Argo CD: Degraded).
	// +kubebuilder:default=0
	// +optional
	Failed int32 `json:"failed"`

	CommonStatus `json:",inline"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=upfxset,categories=certops
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Source",type=string,JSONPath=`.spec.sourceKind`
// +kubebuilder:printcolumn:name="Purpose",type=string,JSONPath=`.spec.template.intendedPurpose`
// +kubebuilder:printcolumn:name="Selected",type=integer,JSONPath=`.status.selected`
// +kubebuilder:printcolumn:name="Children Ready",type=integer,JSONPath=`.status.ready`
// +kubebuilder:printcolumn:name="Failed",type=integer,JSONPath=`.status.failed`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// UserPfxCertificateSet imports many users' certificates into Intune: one UserPfxCertificate, owned by the
// set, per Secret or cert-manager Certificate its selector selects. A source leaving the selection removes its
// child, which follows its deletionPolicy and retention.
type UserPfxCertificateSet struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec UserPfxCertificateSetSpec `json:"spec"`
	// +optional
	Status UserPfxCertificateSetStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// UserPfxCertificateSetList is a list of UserPfxCertificateSet.
type UserPfxCertificateSetList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []UserPfxCertificateSet `json:"items"`
}

func init() {
	SchemeBuilder.Register(&UserPfxCertificateSet{}, &UserPfxCertificateSetList{})
}
