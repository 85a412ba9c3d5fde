package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// PfxUserCertificateSpec keeps an existing Graph pfxUserCertificate record equal to it. Graph documents only
// PATCH for this record: the operator never creates one and never deletes one.
// +kubebuilder:validation:XValidation:rule="self.id == oldSelf.id",message="id is immutable: it names the existing Intune record"
// +kubebuilder:validation:XValidation:rule="has(self.connectionRef) == has(oldSelf.connectionRef) && (!has(self.connectionRef) || self.connectionRef == oldSelf.connectionRef)",message="connectionRef is immutable: the record lives in that tenant"
type PfxUserCertificateSpec struct {
	// connectionRef names the Graph connection. Defaults to the ClusterGraphConnection "default".
	// +optional
	ConnectionRef *ConnectionReference `json:"connectionRef,omitempty"`

	// id is the existing record's key. Immutable.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[^/?#\s]+$`
	// +required
	ID string `json:"id"`

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

	// status as Graph defines it (Int32).
	// +optional
	Status int32 `json:"status,omitempty"`

	// intendedPurpose as Graph defines it for this record (Int32).
	// +optional
	IntendedPurpose int32 `json:"intendedPurpose,omitempty"`

	// isDeleted as Graph defines it.
	// +optional
	IsDeleted bool `json:"isDeleted,omitempty"`

	// suspend stops every Graph call for this resource until it is false again.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// PfxUserCertificateStatus is what was pushed and what Graph answered.
type PfxUserCertificateStatus struct {
	// eTag as Graph returned it.
	// +optional
	ETag string `json:"eTag,omitempty"`
	// createdTime as Graph returned it.
	// +optional
	CreatedTime *metav1.Time `json:"createdTime,omitempty"`
	// lastModifiedTime as Graph returned it.
	// +optional
	LastModifiedTime *metav1.Time `json:"lastModifiedTime,omitempty"`
	// thumbprint of the pushed certificate.
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
// +kubebuilder:printcolumn:name="UPN",type=string,JSONPath=`.spec.userUpn`
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.status.certExpirationDate`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// PfxUserCertificate keeps an existing Graph pfxUserCertificate record equal to its spec.
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
