package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// PfxUserCertificateSpec is a Graph pfxUserCertificate record: with id, an existing record kept equal to the
// spec (never created, never deleted); without, a record this resource creates and owns.
// +kubebuilder:validation:XValidation:rule="has(self.id) == has(oldSelf.id) && (!has(self.id) || self.id == oldSelf.id)",message="id is immutable: it names the existing Intune record, or its absence makes this resource create one"
// +kubebuilder:validation:XValidation:rule="has(self.connectionRef) == has(oldSelf.connectionRef) && (!has(self.connectionRef) || self.connectionRef == oldSelf.connectionRef)",message="connectionRef is immutable: the record lives in that tenant"
type PfxUserCertificateSpec struct {
	// connectionRef names the Graph connection. Defaults to the ClusterGraphConnection "default".
	// +optional
	ConnectionRef *ConnectionReference `json:"connectionRef,omitempty"`

	// id is an existing record's key: the resource updates that record and never creates or deletes it.
	// Unset, the resource creates the record (POST /pfxUserCertificates), records the id Graph assigns in
	// status.id, and deletes it per deletionPolicy. Immutable.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[^/?#\s]+$`
	// +optional
	ID string `json:"id,omitempty"`

	// tenantId defaults to the connection's tenant.
	// +kubebuilder:validation:Pattern=`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`
	// +optional
	TenantID string `json:"tenantId,omitempty"`

	// userId is the user's Entra ID object id.
	// +kubebuilder:validation:Pattern=`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`
	// +required
	UserID string `json:"userId"`

	// userUpn is the user's principal name.
	// +kubebuilder:validation:MaxLength=320
	// +optional
	UserUPN string `json:"userUpn,omitempty"`

	// source is where the certificate and its private key come from: exactly one of pfx or tls. The blob,
	// encrypted password, thumbprint and dates are derived from it.
	// +required
	Source CertificateSource `json:"source"`

	// encryption overrides the connection's pfxEncryption field by field; paddingScheme is sent as Graph's Int32.
	// +optional
	Encryption *PfxEncryption `json:"encryption,omitempty"`

	// status as Graph defines it (Int32). Sent only when set: the connector keeps it otherwise.
	// +optional
	Status *int32 `json:"status,omitempty"`

	// intendedPurpose as Graph defines it for this record (Int32).
	// +optional
	IntendedPurpose int32 `json:"intendedPurpose,omitempty"`

	// isDeleted as Graph defines it. Sent only when set: the connector keeps it otherwise.
	// +optional
	IsDeleted *bool `json:"isDeleted,omitempty"`

	// deletionPolicy applies to a record this resource created (no spec.id): Delete removes it with the
	// resource, Orphan leaves it. A record named by spec.id is never deleted.
	// +kubebuilder:default=Delete
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`

	// suspend stops every Graph call for this resource until it is false again.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// PfxUserCertificateStatus is what was pushed and what Graph answered.
type PfxUserCertificateStatus struct {
	// id of the record this resource created (unset when spec.id names an existing record).
	// +optional
	ID string `json:"id,omitempty"`
	// createStartedTime is set while a create may have happened without its id being known (Graph assigns
	// it): the record is looked for in lists, which show a new record only after a delay, before any new create
	// and before a deletion lets the resource go.
	// +optional
	CreateStartedTime *metav1.Time `json:"createStartedTime,omitempty"`
	// eTag as Graph returned it.
	// +optional
	ETag string `json:"eTag,omitempty"`
	// createdTime as Graph returned it.
	// +optional
	CreatedTime *metav1.Time `json:"createdTime,omitempty"`
	// lastModifiedTime as Graph returned it.
	// +optional
	LastModifiedTime *metav1.Time `json:"lastModifiedTime,omitempty"`
	// thumbprint of the pushed certificate (stored before a create too: a deletion finds the record of a
	// create whose answer was lost by it).
	// +optional
	Thumbprint string `json:"thumbprint,omitempty"`
	// certStartDate is the pushed certificate's notBefore.
	// +optional
	CertStartDate *metav1.Time `json:"certStartDate,omitempty"`
	// certExpirationDate is the pushed certificate's notAfter.
	// +optional
	CertExpirationDate *metav1.Time `json:"certExpirationDate,omitempty"`
	// sourceHash is a digest of what was pushed, to see changes without reading secrets back.
	// +optional
	SourceHash string `json:"sourceHash,omitempty"`

	CommonStatus `json:",inline"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=pfxuc,categories=certops
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Record",type=string,JSONPath=`.spec.id`
// +kubebuilder:printcolumn:name="Created",type=string,JSONPath=`.status.id`
// +kubebuilder:printcolumn:name="UPN",type=string,JSONPath=`.spec.userUpn`
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.status.certExpirationDate`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// PfxUserCertificate is a Graph pfxUserCertificate record: an existing one (spec.id) kept equal to the spec,
// or one the resource creates and owns.
type PfxUserCertificate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec PfxUserCertificateSpec `json:"spec"`
	// +optional
	Status PfxUserCertificateStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// PfxUserCertificateList is a list of PfxUserCertificate.
type PfxUserCertificateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PfxUserCertificate `json:"items"`
}

func init() {
	SchemeBuilder.Register(&PfxUserCertificate{}, &PfxUserCertificateList{})
}
