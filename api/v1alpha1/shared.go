package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// GUIDPattern is the form of every Entra ID / Intune identifier typed Guid in Graph.
const GUIDPattern = `^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`

// ConditionReady is the condition every kind reports: True when the resource matches Intune.
const ConditionReady = "Ready"

// Reasons of the Ready condition. Messages beside them say what to fix and never hold secret material.
const (
	ReasonImported           = "Imported"
	ReasonAdopted            = "Adopted"
	ReasonUpdated            = "Updated"
	ReasonInSync             = "InSync"
	ReasonCreated            = "Created"
	ReasonSuspended          = "Suspended"
	ReasonDeleting           = "Deleting"
	ReasonProgressing        = "Progressing"
	ReasonSecretNotFound     = "SecretNotFound"
	ReasonSecretKeyMissing   = "SecretKeyMissing"
	ReasonInvalidSpec        = "InvalidSpec"
	ReasonUserNotFound       = "UserNotFound"
	ReasonRecordNotFound     = "RecordNotFound"
	ReasonProfileNotFound    = "ProfileNotFound"
	ReasonConnectionNotFound = "ConnectionNotFound"
	ReasonConnectionNotReady = "ConnectionNotReady"
	ReasonCredentialInvalid  = "CredentialInvalid"
	// ReasonAmbientCredentialsNotAllowed: a GraphConnection asked for the operator's own identity.
	ReasonAmbientCredentialsNotAllowed = "AmbientCredentialsNotAllowed"
	// ReasonEndpointNotAllowed: a GraphConnection named a Graph or sign-in host the operator does not trust.
	ReasonEndpointNotAllowed = "EndpointNotAllowed"
	// ReasonAccessDenied: the ClusterGraphConnection's access rules do not let this resource use it.
	ReasonAccessDenied = "AccessDenied"
	// ReasonRecordClaimed: another resource manages the Intune record this one names.
	ReasonRecordClaimed = "RecordClaimed"
	ReasonThrottled     = "Throttled"
	ReasonGraphError    = "GraphError"
	// ReasonGraphRejected: Graph refused the request itself (400, 403); sending it again will not help.
	ReasonGraphRejected        = "GraphRejected"
	ReasonCreateOutcomeUnknown = "CreateOutcomeUnknown"
	// ReasonCertificateExpired: the current certificate's notAfter passed; spec.retention.expired says whether
	// its record is still in Intune.
	ReasonCertificateExpired = "CertificateExpired"
	// ReasonCertificateNotIssued: a cert-manager Certificate source is not Ready, or its Secret does not hold
	// the certificate its status describes yet (or cert-manager is not installed): nothing is sent to Graph.
	ReasonCertificateNotIssued = "CertificateNotIssued"
	// ReasonChildrenReady: every UserPfxCertificate of a UserPfxCertificateSet is Ready.
	ReasonChildrenReady = "ChildrenReady"
	// ReasonChildrenNotReady: some children of a UserPfxCertificateSet are still being worked on.
	ReasonChildrenNotReady = "ChildrenNotReady"
	// ReasonChildrenFailed: some children of a UserPfxCertificateSet failed for a reason that needs a fix.
	ReasonChildrenFailed = "ChildrenFailed"
	ReasonConnected      = "Connected"
)

// DeletionPolicy says what happens to the Intune record when the resource is deleted.
// +kubebuilder:validation:Enum=Delete;Orphan
type DeletionPolicy string

const (
	// DeletionPolicyDelete deletes the Intune record with the resource.
	DeletionPolicyDelete DeletionPolicy = "Delete"
	// DeletionPolicyOrphan leaves the Intune record in place.
	DeletionPolicyOrphan DeletionPolicy = "Orphan"
)

// ConnectionReference names the connection to Microsoft Graph a resource uses.
type ConnectionReference struct {
	// kind is GraphConnection (in the resource's own namespace) or ClusterGraphConnection.
	// +kubebuilder:validation:Enum=GraphConnection;ClusterGraphConnection
	// +kubebuilder:default=ClusterGraphConnection
	// +optional
	Kind string `json:"kind,omitempty"`

	// name of the connection.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`
}

// SecretKeyReference names one key of a Secret in the resource's own namespace.
type SecretKeyReference struct {
	// name of the Secret, in the same namespace as the resource.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`

	// key inside the Secret's data. Each field that uses this type documents its default.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Key string `json:"key,omitempty"`
}

// OptionalSecretKeyReference names a key of a Secret whose name may default to another reference's Secret.
type OptionalSecretKeyReference struct {
	// name of the Secret, in the same namespace as the resource. Defaults to the PFX Secret.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Name string `json:"name,omitempty"`

	// key inside the Secret's data. Defaults to "password".
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Key string `json:"key,omitempty"`
}

// LocalSecretReference names a Secret in the resource's own namespace.
type LocalSecretReference struct {
	// name of the Secret, in the same namespace as the resource.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`
}

// PfxSecretSource reads a PKCS#12 (PFX) file and its password from Secrets.
type PfxSecretSource struct {
	// secretRef names the Secret and key holding the PFX, as raw bytes or base64 text. key defaults to "pfx".
	// +required
	SecretRef SecretKeyReference `json:"secretRef"`

	// passwordSecretRef names the Secret and key holding the PFX password (ASCII only, as Intune requires).
	// name defaults to secretRef's Secret, key to "password".
	// +optional
	PasswordSecretRef *OptionalSecretKeyReference `json:"passwordSecretRef,omitempty"`
}

// TLSSecretSource reads a kubernetes.io/tls Secret (tls.crt chain and tls.key), such as cert-manager writes.
// The operator builds a PFX from it with a fresh random password.
type TLSSecretSource struct {
	// secretRef names the kubernetes.io/tls Secret.
	// +required
	SecretRef LocalSecretReference `json:"secretRef"`

	// pfxEncoding is how the PFX built from the Secret is encrypted. TripleDES-SHA1 (the default: 3DES and a
	// SHA-1 MAC, as OpenSSL's -descert) opens on every connector host, Windows Server 2016 and earlier
	// included; AES256-SHA256 (AES-256-CBC, PBKDF2-HMAC-SHA-256, HMAC-SHA-256 MAC) needs Windows Server 2019
	// or later. A pfx source is sent byte for byte, whatever its encoding.
	// +kubebuilder:default=TripleDES-SHA1
	// +optional
	PfxEncoding PfxEncoding `json:"pfxEncoding,omitempty"`
}

// PfxEncoding is the encryption of a PFX the operator builds.
// +kubebuilder:validation:Enum=TripleDES-SHA1;AES256-SHA256
type PfxEncoding string

const (
	PfxEncodingTripleDESSHA1 PfxEncoding = "TripleDES-SHA1"
	PfxEncodingAES256SHA256  PfxEncoding = "AES256-SHA256"
)

// CertificateSource is where a certificate and its private key come from: exactly one of pfx, tls or
// certificateRef.
// +kubebuilder:validation:XValidation:rule="(has(self.pfx) ? 1 : 0) + (has(self.tls) ? 1 : 0) + (has(self.certificateRef) ? 1 : 0) == 1",message="source must set exactly one of pfx or tls or certificateRef"
type CertificateSource struct {
	// pfx reads a PFX file and its password from Secrets.
	// +optional
	Pfx *PfxSecretSource `json:"pfx,omitempty"`

	// tls reads a kubernetes.io/tls Secret (for example one cert-manager manages).
	// +optional
	TLS *TLSSecretSource `json:"tls,omitempty"`

	// certificateRef reads a cert-manager Certificate (cert-manager.io/v1) in the same namespace: its Secret
	// is imported only once the Certificate is Ready and the Secret holds the certificate its status
	// describes; until then Ready is False with reason CertificateNotIssued and Graph is not called.
	// +optional
	CertificateRef *CertificateReference `json:"certificateRef,omitempty"`
}

// PaddingScheme is the RSA padding used to encrypt the PFX password for the Intune connector's key.
// none means the connector's default, oaepSha512. pkcs1 and oaepSha1 are Graph names Intune no longer
// accepts (Microsoft's tool refuses them): refused here too.
// +kubebuilder:validation:Enum=none;pkcs1;oaepSha1;oaepSha256;oaepSha384;oaepSha512
// +kubebuilder:validation:XValidation:rule="self != 'pkcs1' && self != 'oaepSha1'",message="paddingScheme pkcs1 and oaepSha1 are no longer supported by Intune's PFX import: use oaepSha512 (the default), oaepSha384 or oaepSha256"
type PaddingScheme string

// PublicKeyReference names the key holding the connector's RSA public key: PEM (SubjectPublicKeyInfo or
// PKCS#1) or the Windows CNG RSAPUBLICBLOB file Export-IntunePublicKey writes.
type PublicKeyReference struct {
	// kind of the object holding the key: Secret or ConfigMap (binaryData or data).
	// +kubebuilder:validation:Enum=Secret;ConfigMap
	// +kubebuilder:default=Secret
	// +optional
	Kind string `json:"kind,omitempty"`

	// name of the object. A ClusterGraphConnection looks it up in the operator's namespace, every other kind in
	// its own namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`

	// key inside the object.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Key string `json:"key"`
}

// PfxEncryption names the on-premises Intune connector key the PFX password is encrypted for.
// On a resource every field is optional and overrides the connection's value. providerName and keyName have
// no default: one of the two (connection or resource) must set them.
type PfxEncryption struct {
	// providerName is the Windows key storage provider holding the connector key,
	// e.g. "Microsoft Software Key Storage Provider". Required by a resource that uses this key: there is
	// no default, as a wrong name imports fine and fails later on the connector.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	ProviderName string `json:"providerName,omitempty"`

	// keyName is the name of the connector key within the provider, as Export-IntunePublicKey was given it
	// (e.g. "PFXEncryptionKey"). Required by a resource that uses this key: there is no default, as a wrong
	// name imports fine and fails later on the connector.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	KeyName string `json:"keyName,omitempty"`

	// paddingScheme is the RSA padding for the password: none (= oaepSha512, the default), oaepSha256,
	// oaepSha384 or oaepSha512. pkcs1 and oaepSha1 are refused, as Intune no longer accepts them.
	// +optional
	PaddingScheme PaddingScheme `json:"paddingScheme,omitempty"`

	// publicKeyRef names the connector's public key.
	// +optional
	PublicKeyRef *PublicKeyReference `json:"publicKeyRef,omitempty"`
}

// CommonStatus is what every kind reports.
type CommonStatus struct {
	// observedGeneration is the metadata.generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// lastSyncTime is when the resource was last compared with or written to Intune.
	// +optional
	LastSyncTime *metav1.Time `json:"lastSyncTime,omitempty"`

	// conditions: Ready says whether Intune matches the spec, and if not why.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}
