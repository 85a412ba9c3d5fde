package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// IntendedPurpose is the certificate's purpose from Intune's point of view.
// Microsoft documents vpn as not supported in practice.
// +kubebuilder:validation:Enum=unassigned;smimeEncryption;smimeSigning;vpn;wifi
type IntendedPurpose string

// UserPfxCertificateSpec declares one user's certificate with its private key, imported into Intune.
// +kubebuilder:validation:XValidation:rule="has(self.userPrincipalName) == has(oldSelf.userPrincipalName) && (!has(self.userPrincipalName) || self.userPrincipalName == oldSelf.userPrincipalName)",message="userPrincipalName is immutable: it decides the Intune record; create a new resource for another user"
// +kubebuilder:validation:XValidation:rule="has(self.connectionRef) == has(oldSelf.connectionRef) && (!has(self.connectionRef) || self.connectionRef == oldSelf.connectionRef)",message="connectionRef is immutable: the record lives in that tenant; create a new resource for another connection"
type UserPfxCertificateSpec struct {
	// connectionRef names the Graph connection. Defaults to the ClusterGraphConnection "default".
	// +optional
	ConnectionRef *ConnectionReference `json:"connectionRef,omitempty"`

	// userPrincipalName is the Intune user the certificate belongs to. Defaults to the certificate's
	// SAN otherName UPN (1.3.6.1.4.1.311.20.2.3), else its email SAN. Immutable.
	// +kubebuilder:validation:Pattern=`^[^@\s]+@[^@\s]+$`
	// +optional
	UserPrincipalName string `json:"userPrincipalName,omitempty"`

	// intendedPurpose is what Intune deploys the certificate for.
	// +kubebuilder:default=unassigned
	// +optional
	IntendedPurpose IntendedPurpose `json:"intendedPurpose,omitempty"`

	// source is where the certificate and its private key come from: exactly one of pfx or tls.
	// +required
	Source CertificateSource `json:"source"`

	// encryption overrides the connection's pfxEncryption field by field.
	// +optional
	Encryption *PfxEncryption `json:"encryption,omitempty"`

	// deletionPolicy: Delete removes the Intune record with this resource, Orphan leaves it.
	// +kubebuilder:default=Delete
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`

	// suspend stops every Graph call for this resource until it is false again.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// retention says which of this resource's records stay in Intune after a rotation or an expiry.
	// +optional
	Retention *Retention `json:"retention,omitempty"`

	// renewBefore is how long before the certificate's notAfter the Expiring condition turns True and a
	// Warning Event (reason Expiring) is emitted, once per certificate. The operator cannot renew a
	// certificate: renew it where its Secret comes from. Default 720h (30 days).
	// +kubebuilder:default="720h"
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s')",message="renewBefore must be a duration such as 720h or 168h30m"
	// +optional
	RenewBefore *metav1.Duration `json:"renewBefore,omitempty"`
}

// SupersededRetention says what happens to a record a rotation replaced.
// +kubebuilder:validation:Enum=Keep;Delete;KeepUntilExpired
type SupersededRetention string

const (
	// SupersededKeep leaves the previous record in Intune for as long as the resource exists.
	SupersededKeep SupersededRetention = "Keep"
	// SupersededDelete removes the previous record once the new one exists.
	SupersededDelete SupersededRetention = "Delete"
	// SupersededKeepUntilExpired removes the previous record once its certificate expired.
	SupersededKeepUntilExpired SupersededRetention = "KeepUntilExpired"
)

// ExpiredRetention says what happens to the current record once its certificate expired.
// +kubebuilder:validation:Enum=Keep;Delete
type ExpiredRetention string

const (
	// ExpiredKeep leaves the expired record in Intune.
	ExpiredKeep ExpiredRetention = "Keep"
	// ExpiredDelete removes the record from Intune once its certificate expired.
	ExpiredDelete ExpiredRetention = "Delete"
)

// Retention says which of a resource's records stay in Intune. Both fields default by intendedPurpose:
// Keep for smimeEncryption (a user's devices need every earlier encryption certificate, with its key, to
// read mail encrypted to it), Delete for every other purpose (an old or expired Wi-Fi, VPN or signing
// certificate serves no one).
type Retention struct {
	// superseded: what happens to the previous record when the Secret holds a new certificate (a new
	// thumbprint). Keep leaves it in Intune; Delete removes it once the new record exists; KeepUntilExpired
	// removes it once its certificate expired. Kept records are listed in status.history and stay this
	// resource's: deletionPolicy Delete removes them with it, Orphan leaves them.
	// Default: Keep for intendedPurpose smimeEncryption, Delete for every other purpose.
	// +optional
	Superseded SupersededRetention `json:"superseded,omitempty"`

	// expired: whether the current record is removed from Intune once its certificate expired (Delete) or
	// left there (Keep). Either way Ready turns False with reason CertificateExpired, whose message says
	// which, until the Secret holds a renewed certificate.
	// Default: Keep for intendedPurpose smimeEncryption, Delete for every other purpose.
	// +optional
	Expired ExpiredRetention `json:"expired,omitempty"`
}

// SupersededRecord is an earlier record of a resource, kept in Intune after a rotation.
type SupersededRecord struct {
	// id is the Graph record's id.
	// +required
	ID string `json:"id"`

	// thumbprint is the lowercase hex SHA-1 of the record's certificate.
	// +optional
	Thumbprint string `json:"thumbprint,omitempty"`

	// expirationDateTime is the record's certificate's notAfter.
	// +optional
	ExpirationDateTime *metav1.Time `json:"expirationDateTime,omitempty"`
}

// ConditionExpiring is True from spec.renewBefore before the current certificate's notAfter on.
const ConditionExpiring = "Expiring"

// Reasons of the Expiring condition.
const (
	// ReasonRenewalNotDue: the certificate's notAfter is further away than spec.renewBefore.
	ReasonRenewalNotDue = "RenewalNotDue"
	// ReasonRenewalDue: the certificate expires within spec.renewBefore; renew it at its source.
	ReasonRenewalDue = "RenewalDue"
)

// UserPfxCertificateStatus is what the operator last pushed and what Graph answered.
type UserPfxCertificateStatus struct {
	// id is the Graph record's id, {userObjectIdWithoutDashes}-{thumbprint}.
	// +optional
	ID string `json:"id,omitempty"`

	// history lists this resource's superseded records still in Intune (spec.retention.superseded), oldest
	// first. They stay this resource's: deletionPolicy Delete removes them with it.
	// +listType=map
	// +listMapKey=id
	// +optional
	History []SupersededRecord `json:"history,omitempty"`

	// retiredIds is deprecated: earlier records an operator before status.history had still to delete. The
	// next pass moves them into history, where spec.retention.superseded decides their fate.
	// +optional
	RetiredIDs []string `json:"retiredIds,omitempty"`

	// userId is the Entra ID object id of the user.
	// +optional
	UserID string `json:"userId,omitempty"`

	// userPrincipalName is the UPN the record was imported for.
	// +optional
	UserPrincipalName string `json:"userPrincipalName,omitempty"`

	// thumbprint is the lowercase hex SHA-1 of the certificate.
	// +optional
	Thumbprint string `json:"thumbprint,omitempty"`

	// startDateTime is the certificate's notBefore.
	// +optional
	StartDateTime *metav1.Time `json:"startDateTime,omitempty"`

	// expirationDateTime is the certificate's notAfter.
	// +optional
	ExpirationDateTime *metav1.Time `json:"expirationDateTime,omitempty"`

	// createdDateTime is when Intune imported the record, as Graph returned it.
	// +optional
	CreatedDateTime *metav1.Time `json:"createdDateTime,omitempty"`

	// lastModifiedDateTime is when Intune last changed the record, as Graph returned it.
	// +optional
	LastModifiedDateTime *metav1.Time `json:"lastModifiedDateTime,omitempty"`

	// sourceHash is a digest of what was pushed (certificate, purpose, encryption settings), so changes are
	// seen without reading secrets back from Graph (which never returns them).
	// +optional
	SourceHash string `json:"sourceHash,omitempty"`

	// reimportRequested is the last value of the annotation intune.certops.dev/reimport the operator acted on
	// (by pushing the record again): a different value on the resource asks for one more push.
	// +optional
	ReimportRequested string `json:"reimportRequested,omitempty"`

	CommonStatus `json:",inline"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=upfx,categories=certops
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="UPN",type=string,JSONPath=`.status.userPrincipalName`
// +kubebuilder:printcolumn:name="Purpose",type=string,JSONPath=`.spec.intendedPurpose`
// +kubebuilder:printcolumn:name="Thumbprint",type=string,JSONPath=`.status.thumbprint`,priority=1
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.status.expirationDateTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// UserPfxCertificate imports a user's certificate with its private key into Intune (Graph userPFXCertificate),
// keeps it in sync with its Secret and removes it with the resource.
type UserPfxCertificate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec UserPfxCertificateSpec `json:"spec"`
	// +optional
	Status UserPfxCertificateStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// UserPfxCertificateList is a list of UserPfxCertificate.
type UserPfxCertificateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []UserPfxCertificate `json:"items"`
}

func init() {
	SchemeBuilder.Register(&UserPfxCertificate{}, &UserPfxCertificateList{})
}
