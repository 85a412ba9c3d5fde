// Package v1alpha1 contains the intune.certops.dev/v1alpha1 API: resources that declare certificates
// the operator keeps in Microsoft Intune through Microsoft Graph, and the connections it uses to reach Graph.
// +kubebuilder:object:generate=true
// +groupName=intune.certops.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: "intune.certops.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the kinds of this package with a runtime.Scheme.
	// controller-runtime's Builder is deprecated for its dependencies; kubebuilder's layout still uses it, and
	// this package is imported only by the operator and its tools.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion} //nolint:staticcheck // see above

	// AddToScheme adds the kinds of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
