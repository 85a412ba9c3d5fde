package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// RecordClaimSpec names one Intune record and the resource that manages it.
// +kubebuilder:validation:XValidation:rule="self.tenantId == oldSelf.tenantId && self.kind == oldSelf.kind && self.record == oldSelf.record",message="a claim's record is immutable"
type RecordClaimSpec struct {
	// tenantId of the record.
	// +required
	TenantID string `json:"tenantId"`
	// kind of the resource managing the record (the record's kind follows from it).
	// +required
	Kind string `json:"kind"`
	// record is the record's key: its id, or what identifies a record whose id Graph assigns.
	// +required
	Record string `json:"record"`
	// claimant is the resource managing the record.
	// +required
	Claimant ClaimantReference `json:"claimant"`
}

// ClaimantReference identifies one resource, across its re-creations.
type ClaimantReference struct {
	// namespace of the resource.
	Namespace string `json:"namespace"`
	// name of the resource.
	Name string `json:"name"`
	// uid of the resource: a resource re-created under the same name is another claimant.
	UID string `json:"uid"`
}

// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=rclaim
// +kubebuilder:printcolumn:name="Kind",type=string,JSONPath=`.spec.kind`
// +kubebuilder:printcolumn:name="Namespace",type=string,JSONPath=`.spec.claimant.namespace`
// +kubebuilder:printcolumn:name="Claimant",type=string,JSONPath=`.spec.claimant.name`
// +kubebuilder:printcolumn:name="Record",type=string,JSONPath=`.spec.record`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// RecordClaim says which resource manages one Intune record, so that two resources (in any namespaces) never
// manage the same one. The operator creates it before its first write to the record, under a name derived
// from tenant, kind and record, so a second claim on the record cannot be created (as a PersistentVolume binds
// one claim); it deletes it when the resource lets the record go. Written only by the operator: namespace
// owners hold no rights on this cluster-scoped kind, and must not be granted any.
type RecordClaim struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec RecordClaimSpec `json:"spec"`
}

// +kubebuilder:object:root=true

// RecordClaimList is a list of RecordClaim.
type RecordClaimList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RecordClaim `json:"items"`
}

func init() {
	SchemeBuilder.Register(&RecordClaim{}, &RecordClaimList{})
}
