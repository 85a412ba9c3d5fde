package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// ProfileType is the certificate profile's type, microsoft.graph.{profileType}CertificateProfile: the six of
// Graph's older page (seed 004) and those today's create page adds.
// +kubebuilder:validation:Enum=iosScep;macOSScep;androidScep;windows81SCEP;androidForWorkScep;windowsPhone81SCEP;iosPkcs;iosImportedPFX;macOSPkcs;macOSImportedPFX;androidPkcs;androidImportedPFX;androidForWorkPkcs;androidForWorkImportedPFX;androidWorkProfilePkcs;androidWorkProfileScep;androidDeviceOwnerPkcs;androidDeviceOwnerScep;androidDeviceOwnerImportedPFX;aospDeviceOwnerPkcs;aospDeviceOwnerScep;windows10Pkcs;windows10ImportedPFX;windowsPhone81ImportedPFX
type ProfileType string

// ReachedThrough names a configuration through which Graph reaches a certificate profile.
// +kubebuilder:validation:Enum=WindowsWifiEnterpriseEAP;WindowsPhone81Vpn
type ReachedThrough string

// DevicePlatform as Graph names it.
// +kubebuilder:validation:Enum=android;androidForWork;iOS;macOS;windowsPhone81;windows81AndLater;windows10AndLater;androidWorkProfile;androidAOSP;unknown
type DevicePlatform string

// CertificateKeyUsage as Graph names it.
// +kubebuilder:validation:Enum=keyEncipherment;digitalSignature
type CertificateKeyUsage string

// CertificateIssuanceState is Graph's certificateIssuanceStates.
// +kubebuilder:validation:Enum=unknown;challengeIssued;challengeIssueFailed;requestCreationFailed;requestSubmitFailed;challengeValidationSucceeded;challengeValidationFailed;issueFailed;issuePending;issued;responseProcessingFailed;responsePending;enrollmentSucceeded;enrollmentNotNeeded;revoked;removedFromCollection;renewVerified;installFailed;installed;deleteFailed;deleted;renewalRequested;requested
type CertificateIssuanceState string

// CertificateRevokeStatus is Graph's certificateRevocationStatus.
// +kubebuilder:validation:Enum=none;pending;issued;failed;revoked
type CertificateRevokeStatus string

// KeyStorageProvider is Graph's keyStorageProviderOption.
// +kubebuilder:validation:Enum=useTpmKspOtherwiseUseSoftwareKsp;useTpmKspOtherwiseFail;usePassportForWorkKspOtherwiseFail;useSoftwareKsp
type KeyStorageProvider string

// SubjectNameFormat is Graph's subjectNameFormat.
// +kubebuilder:validation:Enum=commonName;commonNameIncludingEmail;commonNameAsEmail;custom;commonNameAsIMEI;commonNameAsSerialNumber;commonNameAsAadDeviceId;commonNameAsIntuneDeviceId;commonNameAsDurableDeviceId
type SubjectNameFormat string

// SubjectAlternativeNameFormat is Graph's subjectAlternativeNameType.
// +kubebuilder:validation:Enum=none;emailAddress;userPrincipalName;customAzureADAttribute;domainNameService;universalResourceIdentifier
type SubjectAlternativeNameFormat string

// ValidityPeriodUnits is Graph's certificateValidityPeriodScale.
// +kubebuilder:validation:Enum=days;months;years
type ValidityPeriodUnits string

// CertificateSecretReference names the Secret key holding a certificate: PEM or DER, or a PFX with its password.
type CertificateSecretReference struct {
	// name of the Secret, in the same namespace as the resource.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`

	// key of the certificate in the Secret. Defaults to "tls.crt".
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Key string `json:"key,omitempty"`

	// passwordKey is the key of the PFX password in the same Secret, when the certificate is a PFX.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	PasswordKey string `json:"passwordKey,omitempty"`
}

// CertificateFacts are the certificate fields Graph records. Given in the spec they win over the values
// derived from certificateSecretRef.
type CertificateFacts struct {
	// issuer of the certificate.
	// +optional
	Issuer string `json:"issuer,omitempty"`
	// thumbprint: lowercase hex SHA-1.
	// +kubebuilder:validation:Pattern=`^[0-9a-fA-F]{40}$`
	// +optional
	Thumbprint string `json:"thumbprint,omitempty"`
	// serialNumber in hex.
	// +optional
	SerialNumber string `json:"serialNumber,omitempty"`
	// keyLength in bits.
	// +kubebuilder:validation:Minimum=0
	// +optional
	KeyLength int32 `json:"keyLength,omitempty"`
	// enhancedKeyUsage: the extended key usages, comma separated; sent as Graph's certificateEnhancedKeyUsage.
	// +optional
	EnhancedKeyUsage string `json:"enhancedKeyUsage,omitempty"`
	// issuanceDateTime: when the certificate was issued (its notBefore).
	// +optional
	IssuanceDateTime *metav1.Time `json:"issuanceDateTime,omitempty"`
	// expirationDateTime: the certificate's notAfter.
	// +optional
	ExpirationDateTime *metav1.Time `json:"expirationDateTime,omitempty"`
}

// ManagedDeviceCertificateStateSpec declares the certificate state of one device for a certificate profile.
// +kubebuilder:validation:XValidation:rule="self.deviceConfigurationId == oldSelf.deviceConfigurationId && self.profileType == oldSelf.profileType && has(self.reachedThrough) == has(oldSelf.reachedThrough) && (!has(self.reachedThrough) || self.reachedThrough == oldSelf.reachedThrough)",message="deviceConfigurationId, profileType and reachedThrough are immutable: they locate the Intune record"
// +kubebuilder:validation:XValidation:rule="!has(self.reachedThrough) || (self.reachedThrough == 'WindowsWifiEnterpriseEAP' && self.profileType in ['windows10Pkcs', 'windows81SCEP', 'windows10ImportedPFX', 'windowsPhone81ImportedPFX']) || (self.reachedThrough == 'WindowsPhone81Vpn' && self.profileType == 'windowsPhone81SCEP')",message="reachedThrough WindowsWifiEnterpriseEAP takes profileType windows10Pkcs, windows81SCEP, windows10ImportedPFX or windowsPhone81ImportedPFX; WindowsPhone81Vpn takes windowsPhone81SCEP"
// +kubebuilder:validation:XValidation:rule="has(self.connectionRef) == has(oldSelf.connectionRef) && (!has(self.connectionRef) || self.connectionRef == oldSelf.connectionRef)",message="connectionRef is immutable: the record lives in that tenant"
// +kubebuilder:validation:XValidation:rule="has(self.certificateSecretRef) || has(self.certificate)",message="set certificateSecretRef, certificate, or both"
type ManagedDeviceCertificateStateSpec struct {
	// connectionRef names the Graph connection. Defaults to the ClusterGraphConnection "default".
	// +optional
	ConnectionRef *ConnectionReference `json:"connectionRef,omitempty"`

	// deviceConfigurationId is the certificate profile's deviceConfiguration id (with reachedThrough: the
	// Wi-Fi or VPN configuration's id). Immutable.
	// +kubebuilder:validation:Pattern=`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`
	// +required
	DeviceConfigurationID string `json:"deviceConfigurationId"`

	// profileType is the certificate profile's type. The Graph URL is the profile's own type cast,
	// deviceConfigurations/{deviceConfigurationId}/microsoft.graph.{profileType}CertificateProfile/managedDeviceCertificateStates,
	// which the service routes for every type. Immutable.
	// +required
	ProfileType ProfileType `json:"profileType"`

	// reachedThrough selects one of Graph's nested URL forms, which reach the profile through the
	// configuration that uses it: WindowsWifiEnterpriseEAP
	// (.../microsoft.graph.windowsWifiEnterpriseEAPConfiguration/identityCertificateForClientAuthentication/...,
	// for windows10Pkcs, windows81SCEP, windows10ImportedPFX, windowsPhone81ImportedPFX) or WindowsPhone81Vpn
	// (.../microsoft.graph.windowsPhone81VpnConfiguration/identityCertificate/..., for windowsPhone81SCEP).
	// deviceConfigurationId is then that Wi-Fi or VPN configuration's id. Unset (the default and the usual
	// choice): the profile's own id and type cast. Immutable.
	// +optional
	ReachedThrough ReachedThrough `json:"reachedThrough,omitempty"`

	// devicePlatform of the device.
	// +required
	DevicePlatform DevicePlatform `json:"devicePlatform"`

	// certificateKeyUsage. Derived from the certificate when not given (keyEncipherment if the certificate
	// allows it, else digitalSignature).
	// +optional
	CertificateKeyUsage CertificateKeyUsage `json:"certificateKeyUsage,omitempty"`

	// certificateProfileDisplayName is the profile's display name.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	CertificateProfileDisplayName string `json:"certificateProfileDisplayName,omitempty"`

	// deviceDisplayName is the device's display name.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	DeviceDisplayName string `json:"deviceDisplayName,omitempty"`

	// userDisplayName is the user's display name.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	UserDisplayName string `json:"userDisplayName,omitempty"`

	// serverUrl is deprecated and not sent: today's managedDeviceCertificateState has no such property, and
	// Graph refuses properties a type lacks. Kept so stored resources stay valid.
	// +kubebuilder:validation:MaxLength=2048
	// +optional
	ServerURL string `json:"serverUrl,omitempty"`

	// certificateIssuanceState is the issuance state of the device's certificate.
	// +optional
	CertificateIssuanceState CertificateIssuanceState `json:"certificateIssuanceState,omitempty"`

	// certificateLastIssuanceStateChangedDateTime is when the issuance state last changed.
	// +optional
	CertificateLastIssuanceStateChangedDateTime *metav1.Time `json:"certificateLastIssuanceStateChangedDateTime,omitempty"`

	// certificateRevokeStatus is the certificate's revocation status.
	// +optional
	CertificateRevokeStatus CertificateRevokeStatus `json:"certificateRevokeStatus,omitempty"`

	// certificateKeyStorageProvider is where the device keeps the key.
	// +optional
	CertificateKeyStorageProvider KeyStorageProvider `json:"certificateKeyStorageProvider,omitempty"`

	// certificateSubjectNameFormat is the profile's subject name format.
	// +optional
	CertificateSubjectNameFormat SubjectNameFormat `json:"certificateSubjectNameFormat,omitempty"`

	// certificateSubjectNameFormatString is the custom subject name format (with certificateSubjectNameFormat custom).
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	CertificateSubjectNameFormatString string `json:"certificateSubjectNameFormatString,omitempty"`

	// certificateSubjectAlternativeNameFormat is the profile's subject alternative name type.
	// +optional
	CertificateSubjectAlternativeNameFormat SubjectAlternativeNameFormat `json:"certificateSubjectAlternativeNameFormat,omitempty"`

	// certificateSubjectAlternativeNameFormatString is the custom subject alternative name format.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	CertificateSubjectAlternativeNameFormatString string `json:"certificateSubjectAlternativeNameFormatString,omitempty"`

	// certificateValidityPeriod is the profile's validity period, in certificateValidityPeriodUnits.
	// +kubebuilder:validation:Minimum=0
	// +optional
	CertificateValidityPeriod int32 `json:"certificateValidityPeriod,omitempty"`

	// certificateValidityPeriodUnits: days, months or years.
	// +optional
	CertificateValidityPeriodUnits ValidityPeriodUnits `json:"certificateValidityPeriodUnits,omitempty"`

	// certificateErrorCode is the issuance error code, if any.
	// +optional
	CertificateErrorCode int32 `json:"certificateErrorCode,omitempty"`

	// certificateSecretRef names the device's certificate; issuer, thumbprint, serial, key length, EKU and
	// expiry are derived from it.
	// +optional
	CertificateSecretRef *CertificateSecretReference `json:"certificateSecretRef,omitempty"`

	// certificate gives those values explicitly; each one set wins over the derived value.
	// +optional
	Certificate *CertificateFacts `json:"certificate,omitempty"`

	// lastCertificateStateChangeDateTime is the last issuance state change.
	// +optional
	LastCertificateStateChangeDateTime *metav1.Time `json:"lastCertificateStateChangeDateTime,omitempty"`

	// deletionPolicy: Delete removes the Intune record with this resource, Orphan leaves it.
	// +kubebuilder:default=Delete
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`

	// suspend stops every Graph call for this resource until it is false again.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// ManagedDeviceCertificateStateStatus is what was pushed and what Graph answered.
type ManagedDeviceCertificateStateStatus struct {
	// id is the Graph record's id (server generated).
	// +optional
	ID string `json:"id,omitempty"`
	// certificate are the certificate facts that were pushed (stored before a create too: a deletion finds
	// the record of a create whose answer was lost by them).
	// +optional
	Certificate *CertificateFacts `json:"certificate,omitempty"`
	// certificateKeyUsage that was pushed.
	// +optional
	CertificateKeyUsage CertificateKeyUsage `json:"certificateKeyUsage,omitempty"`
	// lastCertificateStateChangeDateTime as Graph returned it.
	// +optional
	LastCertificateStateChangeDateTime *metav1.Time `json:"lastCertificateStateChangeDateTime,omitempty"`
	// sourceHash is a digest of what was pushed, to see changes.
	// +optional
	SourceHash string `json:"sourceHash,omitempty"`
	// createStartedTime is set while a create may have happened without its id being known (Graph assigns
	// it): the record is looked for in lists, which show a new record only after a delay, before any new create
	// and before a deletion lets the resource go.
	// +optional
	CreateStartedTime *metav1.Time `json:"createStartedTime,omitempty"`

	CommonStatus `json:",inline"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=mdcs,categories=certops
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Profile",type=string,JSONPath=`.spec.profileType`
// +kubebuilder:printcolumn:name="Platform",type=string,JSONPath=`.spec.devicePlatform`
// +kubebuilder:printcolumn:name="Device",type=string,JSONPath=`.spec.deviceDisplayName`
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.status.certificate.expirationDateTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// ManagedDeviceCertificateState records a device's certificate state for a certificate profile in Intune
// (Graph managedDeviceCertificateState).
type ManagedDeviceCertificateState struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec ManagedDeviceCertificateStateSpec `json:"spec"`
	// +optional
	Status ManagedDeviceCertificateStateStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// ManagedDeviceCertificateStateList is a list of ManagedDeviceCertificateState.
type ManagedDeviceCertificateStateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ManagedDeviceCertificateState `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ManagedDeviceCertificateState{}, &ManagedDeviceCertificateStateList{})
}
