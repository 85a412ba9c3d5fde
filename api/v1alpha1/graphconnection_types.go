package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// Cloud is the Microsoft cloud a tenant lives in; it decides the Graph root, the sign-in host and the scope.
// +kubebuilder:validation:Enum=Public;USGovernment;USGovernmentDoD;China
type Cloud string

// CredentialType is how the operator authenticates to Microsoft Entra ID (always through azidentity).
// +kubebuilder:validation:Enum=WorkloadIdentity;ClientSecret;ClientCertificate;ManagedIdentity;Environment
type CredentialType string

const (
	CredentialWorkloadIdentity  CredentialType = "WorkloadIdentity"
	CredentialClientSecret      CredentialType = "ClientSecret"
	CredentialClientCertificate CredentialType = "ClientCertificate"
	CredentialManagedIdentity   CredentialType = "ManagedIdentity"
	CredentialEnvironment       CredentialType = "Environment"
)

// GraphCredential is the application identity used to call Graph.
// +kubebuilder:validation:XValidation:rule="self.type in ['ClientSecret', 'ClientCertificate'] ? has(self.secretRef) : !has(self.secretRef)",message="secretRef is required for ClientSecret and ClientCertificate credentials and not allowed for the others"
// +kubebuilder:validation:XValidation:rule="!has(self.serviceAccountName) || (self.type == 'WorkloadIdentity' && has(self.clientId))",message="serviceAccountName is only for WorkloadIdentity credentials, which then also need clientId"
type GraphCredential struct {
	// type of credential. WorkloadIdentity signs in with a Kubernetes service-account token as client
	// assertion: with serviceAccountName, a token the operator requests for that ServiceAccount; without it,
	// the operator pod's own federated token file (AKS workload identity webhook). ManagedIdentity uses the
	// identity of the node or host the operator runs on; Environment reads the operator pod's AZURE_*
	// variables. On a GraphConnection only ClientSecret, ClientCertificate and WorkloadIdentity with
	// serviceAccountName are accepted (the others borrow the operator's own identity: Ready=False
	// AmbientCredentialsNotAllowed), unless the operator runs with --allow-namespaced-ambient-credentials.
	// +kubebuilder:default=WorkloadIdentity
	// +optional
	Type CredentialType `json:"type,omitempty"`

	// clientId is the application (client) id. Required for ClientSecret, ClientCertificate and
	// WorkloadIdentity with serviceAccountName; otherwise optional: WorkloadIdentity falls back to
	// AZURE_CLIENT_ID, ManagedIdentity to the system-assigned identity.
	// +kubebuilder:validation:Pattern=`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`
	// +optional
	ClientID string `json:"clientId,omitempty"`

	// secretRef names the Secret key holding the client secret (ClientSecret) or the certificate with its
	// private key as PEM or PFX (ClientCertificate). key defaults to "clientSecret" or "tls.pem".
	// +optional
	SecretRef *SecretKeyReference `json:"secretRef,omitempty"`

	// serviceAccountName (WorkloadIdentity only) is a ServiceAccount whose short-lived token, requested by the
	// operator through the TokenRequest API with audience api://AzureADTokenExchange, is the client assertion.
	// It lives in the GraphConnection's namespace, or in the operator's namespace for a ClusterGraphConnection.
	// The app's federated credential must name the cluster's service-account issuer and the subject
	// system:serviceaccount:<namespace>:<serviceAccountName>.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`

	// certificatePasswordSecretRef names the password of a PFX client certificate, in the same Secret by default.
	// +optional
	CertificatePasswordSecretRef *OptionalSecretKeyReference `json:"certificatePasswordSecretRef,omitempty"`
}

// GraphConnectionSpec says which tenant, which cloud and which credential to use.
type GraphConnectionSpec struct {
	// tenantId is the Entra ID tenant (directory) id.
	// +kubebuilder:validation:Pattern=`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`
	// +required
	TenantID string `json:"tenantId"`

	// cloud decides the Graph root, the sign-in host and the token scope.
	// +kubebuilder:default=Public
	// +optional
	Cloud Cloud `json:"cloud,omitempty"`

	// graphEndpoint overrides the Graph root address (a private endpoint or an emulator), e.g.
	// https://graph.example.internal. The token scope stays the cloud's. On a GraphConnection the host must
	// be the cloud's Graph host or listed in the operator's --allowed-endpoint-hosts (else Ready=False
	// EndpointNotAllowed, before any token is requested).
	// +kubebuilder:validation:Pattern=`^https://[^\s]+$`
	// +optional
	GraphEndpoint string `json:"graphEndpoint,omitempty"`

	// authorityHost overrides the sign-in host (https only). A non-Microsoft host disables instance discovery.
	// On a GraphConnection the host must be the cloud's sign-in host or listed in the operator's
	// --allowed-endpoint-hosts (else Ready=False EndpointNotAllowed, before any credential is sent).
	// +kubebuilder:validation:Pattern=`^https://[^\s]+$`
	// +optional
	AuthorityHost string `json:"authorityHost,omitempty"`

	// credential is the application identity.
	// +required
	Credential GraphCredential `json:"credential"`

	// writeRequestsPer20Seconds is the client-side budget of Graph writes. Intune allows 100 per 20 s per
	// tenant and application; the default stays just under it. Every connection of one cloud, tenant and
	// application shares one budget, whose rate only ClusterGraphConnections set (the lowest of theirs, else
	// 95). A GraphConnection's value can only lower the rate of its own resources, never another's.
	// +kubebuilder:default=95
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=200
	// +optional
	WriteRequestsPer20Seconds int32 `json:"writeRequestsPer20Seconds,omitempty"`

	// pfxEncryption is the default connector key for UserPfxCertificate and PfxUserCertificate.
	// +optional
	PfxEncryption *PfxEncryption `json:"pfxEncryption,omitempty"`
}

// ClusterGraphConnectionSpec is a GraphConnectionSpec plus who may use the connection.
type ClusterGraphConnectionSpec struct {
	GraphConnectionSpec `json:",inline"`

	// access says which namespaces may use this connection, for which kinds, purposes and users. Absent:
	// only resources in the operator's own namespace (others get Ready=False AccessDenied).
	// +optional
	Access *ConnectionAccess `json:"access,omitempty"`
}

// GraphConnectionStatus reports whether the credential works.
type GraphConnectionStatus struct {
	CommonStatus `json:",inline"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=gconn,categories=certops
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Tenant",type=string,JSONPath=`.spec.tenantId`
// +kubebuilder:printcolumn:name="Cloud",type=string,JSONPath=`.spec.cloud`
// +kubebuilder:printcolumn:name="Credential",type=string,JSONPath=`.spec.credential.type`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// GraphConnection is a connection to Microsoft Graph for resources in its own namespace. Its Secrets are read
// from its own namespace.
type GraphConnection struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec GraphConnectionSpec `json:"spec"`
	// +optional
	Status GraphConnectionStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// GraphConnectionList is a list of GraphConnection.
type GraphConnectionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []GraphConnection `json:"items"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=cgconn,categories=certops
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Tenant",type=string,JSONPath=`.spec.tenantId`
// +kubebuilder:printcolumn:name="Cloud",type=string,JSONPath=`.spec.cloud`
// +kubebuilder:printcolumn:name="Credential",type=string,JSONPath=`.spec.credential.type`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// ClusterGraphConnection is a connection to Microsoft Graph that spec.access lets namespaces use (without
// access, only the operator's own namespace). Its Secrets are read from the operator's namespace. Resources
// without a connectionRef use the one named "default".
type ClusterGraphConnection struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec ClusterGraphConnectionSpec `json:"spec"`
	// +optional
	Status GraphConnectionStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// ClusterGraphConnectionList is a list of ClusterGraphConnection.
type ClusterGraphConnectionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterGraphConnection `json:"items"`
}

func init() {
	SchemeBuilder.Register(&GraphConnection{}, &GraphConnectionList{}, &ClusterGraphConnection{}, &ClusterGraphConnectionList{})
}
