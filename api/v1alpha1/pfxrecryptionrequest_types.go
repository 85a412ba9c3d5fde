package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// AnnotationConfirmNotCreated, set to "true" on a PfxRecryptionRequest whose Ready reason is CreateOutcomeUnknown,
// says the user checked Intune and found no record of this request: the operator may create it again. The
// operator removes the annotation before that one new attempt, so it never authorizes more than one.
const AnnotationConfirmNotCreated = "intune.certops.dev/confirm-not-created"

// PfxRecryptionRequestSpec is the request to create, once. Graph documents only create, get and delete.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec is immutable: a recryption request is created once; delete it and create a new one"
type PfxRecryptionRequestSpec struct {
	// connectionRef names the Graph connection. Defaults to the ClusterGraphConnection "default".
	// +optional
	ConnectionRef *ConnectionReference `json:"connectionRef,omitempty"`

	// tenantId defaults to the connection's tenant.
	// +kubebuilder:validation:Pattern=`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`
	// +optional
	TenantID string `json:"tenantId,omitempty"`

	// userId is the user's Entra ID object id.
	// +kubebuilder:validation:Pattern=`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`
	// +required
	UserID string `json:"userId"`

	// deviceId is the Intune device id.
	// +kubebuilder:validation:Pattern=`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`
	// +required
	DeviceID string `json:"deviceId"`

	// profileId is the certificate profile id.
	// +kubebuilder:validation:Pattern=`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`
	// +required
	ProfileID string `json:"profileId"`

	// thumbprint of the user's PFX certificate (hex SHA-1).
	// +kubebuilder:validation:Pattern=`^[0-9a-fA-F]{40}$`
	// +optional
	Thumbprint string `json:"thumbprint,omitempty"`

	// deviceKeyThumbprint of the device key to re-encrypt for (hex SHA-1).
	// +kubebuilder:validation:Pattern=`^[0-9a-fA-F]{40}$`
	// +optional
	DeviceKeyThumbprint string `json:"deviceKeyThumbprint,omitempty"`

	// status as Graph defines it (Int32).
	// +optional
	Status int32 `json:"status,omitempty"`

	// sourceType as Graph defines it (Int32).
	// +optional
	SourceType int32 `json:"sourceType,omitempty"`

	// deletionPolicy: Delete removes the Intune record with this resource, Orphan leaves it.
	// +kubebuilder:default=Delete
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`
}

// PfxRecryptionRequestStatus is what Graph answered to the create.
type PfxRecryptionRequestStatus struct {
	// id is the Graph record's id (server generated).
	// +optional
	ID string `json:"id,omitempty"`
	// createdTime as Graph returned it.
	// +optional
	CreatedTime *metav1.Time `json:"createdTime,omitempty"`
	// lastModifiedTime as Graph returned it.
	// +optional
	LastModifiedTime *metav1.Time `json:"lastModifiedTime,omitempty"`
	// eTag as Graph returned it.
	// +optional
	ETag string `json:"eTag,omitempty"`
	// requestStatus is the record's status (Int32) as Graph returned it.
	// +optional
	RequestStatus *int32 `json:"requestStatus,omitempty"`
	// createStartedTime is set just before the create call and cleared once its id is recorded. Seen set on a
	// later reconcile it means the operator stopped mid-create and the outcome cannot be known: the operator
	// never posts twice.
	// +optional
	CreateStartedTime *metav1.Time `json:"createStartedTime,omitempty"`

	CommonStatus `json:",inline"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=pfxrr,categories=certops
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="User",type=string,JSONPath=`.spec.userId`
// +kubebuilder:printcolumn:name="Device",type=string,JSONPath=`.spec.deviceId`
// +kubebuilder:printcolumn:name="ID",type=string,JSONPath=`.status.id`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// PfxRecryptionRequest creates a Graph pfxRecryptionRequest once and deletes it with the resource.
type PfxRecryptionRequest struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec PfxRecryptionRequestSpec `json:"spec"`
	// +optional
	Status PfxRecryptionRequestStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// PfxRecryptionRequestList is a list of PfxRecryptionRequest.
type PfxRecryptionRequestList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PfxRecryptionRequest `json:"items"`
}

func init() {
	SchemeBuilder.Register(&PfxRecryptionRequest{}, &PfxRecryptionRequestList{})
}
