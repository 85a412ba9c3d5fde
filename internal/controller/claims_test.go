package controller

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/graph"
	"github.com/certops/intune-cert-operator/internal/pfx"
	"github.com/certops/intune-cert-operator/internal/testutil"
)

// Two resources naming one record, in one namespace and in two: the first owns it, the second writes nothing
// and says so, and deleting the second leaves the record alone.
func TestOneOwnerPerRecord(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	alice := h.newUser("alice@contoso.com")
	id := h.recordID("alice@contoso.com", alice)
	h.pfxSecret(h.ns, "alice-pfx", alice, "pw")
	h.pfxSecret(h.ns2, "alice-pfx", alice, "pw")

	owner := h.userPfx("owner", "alice-pfx")
	if err := k8sClient.Create(h.ctx, owner); err != nil {
		t.Fatal(err)
	}
	upfxReady(h, owner, metav1.ConditionTrue, intunev1alpha1.ReasonImported)

	for _, tc := range []struct {
		namespace  string
		namesOwner bool
	}{{h.ns, true}, {h.ns2, false}} {
		mark := h.journalMark()
		second := h.userPfx("second", "alice-pfx")
		second.Namespace = tc.namespace
		if err := k8sClient.Create(h.ctx, second); err != nil {
			t.Fatal(err)
		}
		c := upfxReady(h, second, metav1.ConditionFalse, intunev1alpha1.ReasonRecordClaimed)
		if !strings.Contains(c.Message, id) || strings.Contains(c.Message, `"owner"`) != tc.namesOwner {
			t.Errorf("namespace %s: message %q (names the owner only within its namespace: %v)", tc.namespace, c.Message, tc.namesOwner)
		}
		if n := h.graphWrites(mark); n != 0 {
			t.Fatalf("the second resource wrote to Graph: %v", h.graphCalls(mark))
		}
		h.deleteAndWait(second)
		if n := h.graphWrites(mark); n != 0 {
			t.Fatalf("deleting the second resource wrote to Graph: %v", h.graphCalls(mark))
		}
		if _, ok := h.records(h.tenantID)[id]; !ok {
			t.Fatalf("deleting the second resource (namespace %s) removed the owner's record", tc.namespace)
		}
	}
	if claims := claimsOf(t, owner); len(claims) != 1 || claims[0] != id {
		t.Fatalf("the owner's claims = %v, want [%s]", claims, id)
	}

	// The owner goes with its record, and lets go of the claim.
	h.deleteAndWait(owner)
	if _, ok := h.records(h.tenantID)[id]; ok {
		t.Fatal("the owner's record outlived it (deletionPolicy Delete)")
	}
	if claims := claimsOf(t, owner); len(claims) != 0 {
		t.Fatalf("claims left after the owner went: %v", claims)
	}
}

// Two device states of one certificate under one profile: Graph gives each create a new id, so without
// a claim both would create or adopt the same record.
func TestOneOwnerPerDeviceState(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	profile := h.iosProfile()
	h.tlsSecret("alice-device", h.newUser("alice@contoso.com"))
	first := h.deviceState("first", profile, "alice-device")
	if err := k8sClient.Create(h.ctx, first); err != nil {
		t.Fatal(err)
	}
	mdcsReady(h, first, metav1.ConditionTrue, intunev1alpha1.ReasonCreated)
	second := h.deviceState("second", profile, "alice-device")
	if err := k8sClient.Create(h.ctx, second); err != nil {
		t.Fatal(err)
	}
	mdcsReady(h, second, metav1.ConditionFalse, intunev1alpha1.ReasonRecordClaimed)
	if n := len(h.deviceStates()); n != 1 {
		t.Fatalf("%d device state records, want 1", n)
	}
}

// A crash between the claim and the create leaves a claim and no record (the next pass creates), or a claim
// and the record (the next pass adopts it as its own, even under adoption: Deny). Both are set up as the
// crashed pass left them, for a resource held suspended until then.
func TestClaimSurvivesACrashBetweenClaimAndCreate(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	deny := h.accessConnection(&intunev1alpha1.ConnectionAccess{Namespaces: []string{h.ns}, Adoption: intunev1alpha1.AdoptionDeny})
	for _, recordCreated := range []bool{false, true} {
		alice := h.newUser("alice@contoso.com")
		name := map[bool]string{false: "crashed-before-create", true: "crashed-after-create"}[recordCreated]
		h.pfxSecret(h.ns, name, alice, "pw")
		obj := h.userPfx(name, name)
		obj.Spec.ConnectionRef.Name = deny.Name
		obj.Spec.Suspend = true
		if err := k8sClient.Create(h.ctx, obj); err != nil {
			t.Fatal(err)
		}
		id := h.recordID("alice@contoso.com", alice)
		if _, err := (&recordClaims{writer: k8sClient, live: k8sClient}).claim(h.ctx, obj, kindUserPfxCertificate, h.tenantID, id); err != nil {
			t.Fatal(err)
		}
		if recordCreated {
			h.importOutsideTheOperator(alice, "pw")
		}
		mark := h.journalMark()
		h.update(obj, func() {
			obj.Spec.Suspend = false
		})
		if recordCreated {
			upfxReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonAdopted)
			if n := h.graphWrites(mark); n != 0 {
				t.Fatalf("adopting its own record wrote: %v", h.graphCalls(mark))
			}
		} else {
			upfxReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonImported)
			if n := h.graphWrites(mark); n != 1 {
				t.Fatalf("%d writes, want the one create: %v", n, h.graphCalls(mark))
			}
		}
	}
}

// importOutsideTheOperator creates the user's record as another tool (or the pass that crashed) would:
// straight through Graph, with no claim.
func (h *harness) importOutsideTheOperator(u *testutil.UserCertificate, password string) {
	h.t.Helper()
	data, err := u.PFX(password)
	if err != nil {
		h.t.Fatal(err)
	}
	encrypted, err := pfx.EncryptPassword(&h.connectorKey.PublicKey, "oaepSha512", password)
	if err != nil {
		h.t.Fatal(err)
	}
	_, err = h.graphClient().CreateUserPFXCertificate(h.ctx, &graph.UserPFXCertificate{
		Thumbprint: u.Thumbprint(), IntendedPurpose: "smimeEncryption", UserPrincipalName: "alice@contoso.com",
		StartDateTime: u.Cert.NotBefore, ExpirationDateTime: u.Cert.NotAfter,
		ProviderName: "Microsoft Software Key Storage Provider", KeyName: "PFXEncryptionKey", PaddingScheme: "oaepSha512",
		EncryptedPfxBlob: data, EncryptedPfxPassword: encrypted,
	})
	if err != nil {
		h.t.Fatal(err)
	}
}

// Namespace owners cannot forge or remove claims: the built-in admin role of a namespace grants nothing on
// this cluster-scoped kind.
func TestNamespaceAdminsCannotTouchClaims(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	// "admin" aggregates these (kube-controller-manager fills it in, and envtest runs none).
	for _, role := range []string{"system:aggregate-to-admin", "system:aggregate-to-edit", "system:aggregate-to-view"} {
		if err := k8sClient.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: strings.ReplaceAll(role, ":", "-"), Namespace: ns},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "team-admin"}}}); err != nil {
			t.Fatal(err)
		}
	}
	impersonated := rest.CopyConfig(cfg)
	impersonated.Impersonate = rest.ImpersonationConfig{UserName: "team-admin"}
	admin, err := client.New(impersonated, client.Options{Scheme: testutil.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	// The admin does hold its namespace.
	if err := admin.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "mine", Namespace: ns}}); err != nil {
		t.Fatalf("the namespace admin cannot even write its namespace: %v", err)
	}
	forged := &intunev1alpha1.RecordClaim{ObjectMeta: metav1.ObjectMeta{Name: claimName("t", kindUserPfxCertificate, "r")},
		Spec: intunev1alpha1.RecordClaimSpec{TenantID: "t", Kind: kindUserPfxCertificate, Record: "r",
			Claimant: intunev1alpha1.ClaimantReference{Namespace: ns, Name: "x", UID: "y"}}}
	if err := admin.Create(ctx, forged); !apierrors.IsForbidden(err) {
		t.Fatalf("a namespace admin creating a claim: %v, want Forbidden", err)
	}
	if err := k8sClient.Create(ctx, forged); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8sClient.Delete(ctx, forged) })
	if err := admin.Delete(ctx, forged); !apierrors.IsForbidden(err) {
		t.Fatalf("a namespace admin deleting a claim: %v, want Forbidden", err)
	}
}
