package monitoring

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
)

func TestConnectionReadyStatus(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := intunev1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	broken := &intunev1alpha1.GraphConnection{ObjectMeta: metav1.ObjectMeta{Name: "team-a", Namespace: "a"}}
	broken.Status.Conditions = []metav1.Condition{{Type: intunev1alpha1.ConditionReady, Status: metav1.ConditionFalse,
		Reason: intunev1alpha1.ReasonCredentialInvalid, LastTransitionTime: metav1.Now()}}
	fresh := &intunev1alpha1.ClusterGraphConnection{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	reader := fake.NewClientBuilder().WithScheme(scheme).WithObjects(broken, fresh).Build()

	registry := prometheus.NewPedanticRegistry()
	registry.MustRegister(NewConnectionCollector(reader))
	want := `
# HELP intune_connection_ready_status The Ready condition of a GraphConnection or ClusterGraphConnection: 1 for the condition status it has, 0 for the others.
# TYPE intune_connection_ready_status gauge
intune_connection_ready_status{condition="False",kind="ClusterGraphConnection",name="default",namespace=""} 0
intune_connection_ready_status{condition="False",kind="GraphConnection",name="team-a",namespace="a"} 1
intune_connection_ready_status{condition="True",kind="ClusterGraphConnection",name="default",namespace=""} 0
intune_connection_ready_status{condition="True",kind="GraphConnection",name="team-a",namespace="a"} 0
intune_connection_ready_status{condition="Unknown",kind="ClusterGraphConnection",name="default",namespace=""} 1
intune_connection_ready_status{condition="Unknown",kind="GraphConnection",name="team-a",namespace="a"} 0
`
	if err := testutil.GatherAndCompare(registry, strings.NewReader(want), ConnectionReadyName); err != nil {
		t.Error(err)
	}
}
