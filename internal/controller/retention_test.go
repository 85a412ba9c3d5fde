package controller

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	testingclock "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/connection"
	"github.com/certops/intune-cert-operator/internal/pfx"
	"github.com/certops/intune-cert-operator/internal/testutil"
)

func TestRetentionDefaultsByPurpose(t *testing.T) {
	for _, tc := range []struct {
		purpose    intunev1alpha1.IntendedPurpose
		retention  *intunev1alpha1.Retention
		superseded intunev1alpha1.SupersededRetention
		expired    intunev1alpha1.ExpiredRetention
	}{
		{"smimeEncryption", nil, "Keep", "Keep"},
		{"smimeSigning", nil, "Delete", "Delete"},
		{"wifi", nil, "Delete", "Delete"},
		{"vpn", nil, "Delete", "Delete"},
		{"", nil, "Delete", "Delete"},
		{"smimeEncryption", &intunev1alpha1.Retention{Superseded: "KeepUntilExpired"}, "KeepUntilExpired", "Keep"},
		{"wifi", &intunev1alpha1.Retention{Expired: "Keep"}, "Delete", "Keep"},
		{"wifi", &intunev1alpha1.Retention{Superseded: "Keep", Expired: "Delete"}, "Keep", "Delete"},
	} {
		got := retentionOf(&intunev1alpha1.UserPfxCertificateSpec{IntendedPurpose: tc.purpose, Retention: tc.retention})
		if got.superseded != tc.superseded || got.expired != tc.expired {
			t.Errorf("%s %+v: got %+v, want superseded %s, expired %s", tc.purpose, tc.retention, got, tc.superseded, tc.expired)
		}
	}
}

func TestNextWakeIsTheNextMomentTimeAloneChangesSomething(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *metav1.Time { return &metav1.Time{Time: now.Add(d)} }
	day := 24 * time.Hour
	history := []intunev1alpha1.SupersededRecord{{ID: "old", ExpirationDateTime: at(2 * time.Hour)}, {ID: "older", ExpirationDateTime: at(-time.Hour)}}
	for _, tc := range []struct {
		name       string
		expiration *metav1.Time
		history    []intunev1alpha1.SupersededRecord
		superseded intunev1alpha1.SupersededRetention
		want       time.Duration
	}{
		{"no certificate yet", nil, nil, "Keep", 0},
		{"the renewBefore window opens first", at(40 * day), nil, "Keep", 10*day + time.Second},
		{"inside the window: the expiry", at(10 * day), nil, "Keep", 10*day + time.Second},
		{"at notAfter the certificate is still valid", at(0), nil, "Keep", time.Second},
		{"expired: nothing ahead", at(-time.Second), nil, "Keep", 0},
		{"a kept record expiring first, KeepUntilExpired", at(40 * day), history, "KeepUntilExpired", 2*time.Hour + time.Second},
		{"a kept record under Keep never wakes", at(40 * day), history, "Keep", 10*day + time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &intunev1alpha1.UserPfxCertificateStatus{ExpirationDateTime: tc.expiration, History: tc.history}
			if got := nextWake(st, 30*day, retention{superseded: tc.superseded}, now); got != tc.want {
				t.Errorf("nextWake = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestSupersededRecordsGoAsRetentionSays(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	live := intunev1alpha1.SupersededRecord{ID: "live", ExpirationDateTime: &metav1.Time{Time: now.Add(time.Hour)}}
	dead := intunev1alpha1.SupersededRecord{ID: "dead", ExpirationDateTime: &metav1.Time{Time: now.Add(-time.Hour)}}
	unknown := intunev1alpha1.SupersededRecord{ID: "from-retiredIds"}
	for policy, want := range map[intunev1alpha1.SupersededRetention][]bool{
		"Keep": {false, false}, "Delete": {true, true}, "KeepUntilExpired": {false, true},
	} {
		r := retention{superseded: policy}
		if got := []bool{r.supersededGoes(live, now), r.supersededGoes(dead, now)}; !slices.Equal(got, want) {
			t.Errorf("%s: live, dead go %v, want %v", policy, got, want)
		}
		if !r.historyDue([]intunev1alpha1.SupersededRecord{live, unknown}, now) {
			t.Errorf("%s: a record of unknown expiry is not read", policy)
		}
	}
	if (retention{superseded: "Keep"}).historyDue([]intunev1alpha1.SupersededRecord{live, dead}, now) {
		t.Error("Keep has work to do on known records")
	}
}

func TestRotationsBuildHistory(t *testing.T) {
	exp := &metav1.Time{Time: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)}
	st := &intunev1alpha1.UserPfxCertificateStatus{ID: "u-aa", Thumbprint: "aa", ExpirationDateTime: exp, RetiredIDs: []string{"u-00", "u-aa"}}
	adoptRetiredIDs(st)
	if st.RetiredIDs != nil || len(st.History) != 1 || st.History[0].ID != "u-00" {
		t.Fatalf("retiredIds into history: %+v", st)
	}
	supersede(st, "u-bb")
	st.ID, st.Thumbprint = "u-bb", "bb"
	supersede(st, "u-bb") // a pass that changed nothing
	if got := []string{st.History[0].ID, st.History[1].ID}; len(st.History) != 2 || got[1] != "u-aa" || st.History[1].Thumbprint != "aa" || !st.History[1].ExpirationDateTime.Equal(exp) {
		t.Fatalf("history after a rotation: %+v", st.History)
	}
	supersede(st, "U-AA") // the earlier certificate came back: current again, not superseded
	if len(st.History) != 2 || st.History[1].ID != "u-bb" || st.History[0].ID != "u-00" {
		t.Fatalf("history after going back: %+v", st.History)
	}
}

func TestExpiringConditionWarnsOncePerCertificate(t *testing.T) {
	notAfter := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	obj := &intunev1alpha1.UserPfxCertificate{}
	obj.Spec.Source.TLS = &intunev1alpha1.TLSSecretSource{SecretRef: intunev1alpha1.LocalSecretReference{Name: "bob-wifi-tls"}}
	obj.Spec.RenewBefore = &metav1.Duration{Duration: 240 * time.Hour}
	if _, due := setExpiring(obj, notAfter); due || len(obj.Status.Conditions) != 0 {
		t.Fatalf("a condition without a certificate: %+v", obj.Status.Conditions)
	}
	obj.Status.Thumbprint, obj.Status.ExpirationDateTime = "aa11", &metav1.Time{Time: notAfter}
	for _, step := range []struct {
		now    time.Time
		status metav1.ConditionStatus
		reason string
		due    bool
	}{
		{notAfter.Add(-241 * time.Hour), "False", "RenewalNotDue", false},
		{notAfter.Add(-240 * time.Hour), "True", "RenewalDue", true},
		{notAfter.Add(-time.Hour), "True", "RenewalDue", false}, // once per certificate
		{notAfter, "True", "RenewalDue", false},
		{notAfter.Add(time.Second), "True", "CertificateExpired", false},
	} {
		c, due := setExpiring(obj, step.now)
		if c.Status != step.status || c.Reason != step.reason || due != step.due {
			t.Errorf("at %s: %s/%s, warn %v; want %s/%s, warn %v", step.now, c.Status, c.Reason, due, step.status, step.reason, step.due)
		}
		if step.status == "True" && !strings.Contains(c.Message, `Secret "bob-wifi-tls"`) {
			t.Errorf("message %q does not say where the certificate comes from", c.Message)
		}
	}
	// A renewal that is due at once is a new certificate: warned again.
	obj.Status.Thumbprint, obj.Status.ExpirationDateTime = "bb22", &metav1.Time{Time: notAfter.Add(48 * time.Hour)}
	if _, due := setExpiring(obj, notAfter.Add(time.Second)); !due {
		t.Error("no warning for a new certificate that is due")
	}
}

// A connection stored before the API refused legacy paddings, or one without a key name, sends nothing:
// the resource says why, and the reason is terminal.
func TestResolveEncryptionRefusesLegacyPaddingAndUnnamedKeys(t *testing.T) {
	k := connectorKey(t)
	live := fake.NewClientBuilder().WithScheme(testutil.Scheme()).WithObjects(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "key", Namespace: "ops"}, Data: map[string][]byte{"public.pem": testutil.PublicKeyPEM(&k.PublicKey)}}).Build()
	named := intunev1alpha1.PfxEncryption{ProviderName: "Microsoft Software Key Storage Provider", KeyName: "PFXEncryptionKey",
		PublicKeyRef: &intunev1alpha1.PublicKeyReference{Kind: "Secret", Name: "key", Key: "public.pem"}}
	for _, tc := range []struct {
		name     string
		conn     func(*intunev1alpha1.PfxEncryption)
		override *intunev1alpha1.PfxEncryption
		reason   string
		says     string
	}{
		{"pkcs1 on the connection", func(e *intunev1alpha1.PfxEncryption) { e.PaddingScheme = "pkcs1" }, nil, "UnsupportedPadding", "oaepSha512"},
		{"oaepSha1 on the resource", nil, &intunev1alpha1.PfxEncryption{PaddingScheme: "oaepSha1"}, "UnsupportedPadding", "oaepSha512"},
		{"no keyName", func(e *intunev1alpha1.PfxEncryption) { e.KeyName = "" }, nil, "InvalidSpec", "spec.pfxEncryption.keyName"},
		{"no providerName", func(e *intunev1alpha1.PfxEncryption) { e.ProviderName = "" }, nil, "InvalidSpec", "spec.pfxEncryption.providerName"},
		{"names from the resource", func(e *intunev1alpha1.PfxEncryption) { e.KeyName, e.ProviderName = "", "" },
			&intunev1alpha1.PfxEncryption{KeyName: "TeamKey", ProviderName: "Microsoft Software Key Storage Provider"}, "", ""},
		{"oaepSha256", func(e *intunev1alpha1.PfxEncryption) { e.PaddingScheme = "oaepSha256" }, nil, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc := named
			if tc.conn != nil {
				tc.conn(&enc)
			}
			conn := &connection.Connection{Ref: `ClusterGraphConnection "default"`, SecretNamespace: "ops", Encryption: enc}
			got, err := resolveEncryption(context.Background(), live, conn, "pki", tc.override)
			if tc.reason == "" {
				if err != nil || got.keyName == "" || got.providerName == "" {
					t.Fatalf("refused: %v (%+v)", err, got)
				}
				return
			}
			f := classify(err)
			if err == nil || f.reason != tc.reason || !f.terminal || !strings.Contains(f.message, tc.says) {
				t.Fatalf("got %+v (%v); want terminal %s saying %q", f, err, tc.reason, tc.says)
			}
		})
	}
	if _, err := pfx.EncryptPassword(&k.PublicKey, pfx.PaddingPKCS1, "pw"); err == nil {
		t.Error("EncryptPassword encrypts with pkcs1")
	}
}

// retentionCase is one resource of the rotation test: its spec, and which of its three certificates Intune
// must hold after two rotations and after its deletion.
type retentionCase struct {
	name      string
	upn       string
	purpose   intunev1alpha1.IntendedPurpose
	retention *intunev1alpha1.Retention
	deletion  intunev1alpha1.DeletionPolicy
	// afterRotations and afterDelete are indexes of the certificates (0, 1: superseded; 2: current).
	afterRotations, afterDelete []int

	certs []*testutil.UserCertificate
	obj   *intunev1alpha1.UserPfxCertificate
}

// Each retention value across two rotations and the resource's deletion. The first certificate of
// KeepUntilExpired expires two hours in (operator time): the record goes when that moment comes, which the
// pass schedules with its requeue.
func TestUserPfxRetentionAcrossTwoRotationsAndDeletion(t *testing.T) {
	start := time.Now().Truncate(time.Second)
	clk := testingclock.NewFakeClock(start)
	h := newHarness(t, harnessOptions{clock: clk, resync: 10000 * time.Hour}) // drift checks later than any expiry here
	cases := []*retentionCase{
		{name: "smime-default", upn: "alice@contoso.com", purpose: "smimeEncryption", afterRotations: []int{0, 1, 2}},
		{name: "smime-keep-orphan", upn: "alice@contoso.com", purpose: "smimeEncryption",
			retention: &intunev1alpha1.Retention{Superseded: "Keep"}, deletion: "Orphan", afterRotations: []int{0, 1, 2}, afterDelete: []int{0, 1, 2}},
		{name: "smime-delete", upn: "alice@contoso.com", purpose: "smimeEncryption",
			retention: &intunev1alpha1.Retention{Superseded: "Delete"}, afterRotations: []int{2}},
		{name: "wifi-default", upn: "bob@contoso.com", purpose: "wifi", afterRotations: []int{2}},
		{name: "wifi-until-expired", upn: "bob@contoso.com", purpose: "wifi",
			retention: &intunev1alpha1.Retention{Superseded: "KeepUntilExpired"}, afterRotations: []int{0, 1, 2}},
	}
	for _, c := range cases {
		for i := range 3 {
			notAfter := start.AddDate(1, 0, i)
			if c.name == "wifi-until-expired" && i == 0 {
				notAfter = start.Add(2 * time.Hour)
			}
			u, err := testutil.NewUserCertificate(c.upn, start.Add(-time.Hour), notAfter)
			if err != nil {
				t.Fatal(err)
			}
			c.certs = append(c.certs, u)
		}
		h.pfxSecret(h.ns, c.name, c.certs[0], "pw-"+c.name)
		c.obj = h.userPfx(c.name, c.name)
		c.obj.Spec.IntendedPurpose, c.obj.Spec.Retention = c.purpose, c.retention
		if c.deletion != "" {
			c.obj.Spec.DeletionPolicy = c.deletion
		}
		if err := k8sClient.Create(h.ctx, c.obj); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range cases {
		upfxReady(h, c.obj, metav1.ConditionTrue, intunev1alpha1.ReasonImported)
	}
	for rotation := 1; rotation <= 2; rotation++ {
		for _, c := range cases {
			h.pfxSecret(h.ns, c.name, c.certs[rotation], "pw-"+c.name)
		}
		for _, c := range cases {
			want := h.recordID(c.upn, c.certs[rotation])
			h.eventually(c.name+" rotated", func() error {
				h.get(c.obj)
				if c.obj.Status.ID != want || meta.IsStatusConditionFalse(c.obj.Status.Conditions, intunev1alpha1.ConditionReady) {
					return fmt.Errorf("status id %s, want %s", c.obj.Status.ID, want)
				}
				return nil
			})
		}
	}
	for _, c := range cases {
		// Each rotation's pass has finished: history and Intune agree with the retention.
		h.eventually(c.name+" holds what its retention keeps", func() error {
			h.get(c.obj)
			return h.checkRecords(c, c.afterRotations)
		})
	}

	// The first certificate of wifi-until-expired expires 2h in: its pass asked to be woken then.
	until := cases[4]
	if got, want := h.lastRequeue(until.obj), until.certs[0].Cert.NotAfter.Sub(start)+time.Second; got != want {
		t.Errorf("%s's last pass requeues after %s, want %s (the kept record's expiry)", until.name, got, want)
	}
	clk.SetTime(until.certs[0].Cert.NotAfter.Add(time.Second))
	mark := h.logMark()
	h.touch(until.name) // stands in for the requeue: the test does not wait two hours
	h.waitPass(until.obj, mark)
	h.get(until.obj)
	if err := h.checkRecords(until, []int{1, 2}); err != nil {
		t.Fatalf("after the first certificate expired: %v", err)
	}

	for _, c := range cases {
		if err := k8sClient.Delete(h.ctx, c.obj); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range cases {
		h.eventually(c.name+" gone", func() error {
			err := k8sClient.Get(h.ctx, client.ObjectKeyFromObject(c.obj), &intunev1alpha1.UserPfxCertificate{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("still there (%v)", err)
		})
		recs := h.records(h.tenantID)
		for i, u := range c.certs {
			_, held := recs[h.recordID(c.upn, u)]
			if want := slices.Contains(c.afterDelete, i); held != want {
				t.Errorf("%s after deletion: Intune holds certificate %d: %v, want %v", c.name, i, held, want)
			}
		}
	}
}

// checkRecords compares Intune's records of c's certificates, and its status.history, with the indexes of
// the certificates Intune must hold (the last one is the current certificate).
func (h *harness) checkRecords(c *retentionCase, want []int) error {
	recs := h.records(h.tenantID)
	var history []string
	for _, rec := range c.obj.Status.History {
		history = append(history, rec.ID)
	}
	var wantHistory []string
	for i, u := range c.certs {
		id := h.recordID(c.upn, u)
		_, held := recs[id]
		if slices.Contains(want, i) != held {
			return fmt.Errorf("Intune holds certificate %d: %v, want %v (history %v)", i, held, !held, history)
		}
		if held && i < 2 {
			wantHistory = append(wantHistory, id)
		}
	}
	if !slices.Equal(history, wantHistory) {
		return fmt.Errorf("status.history %v, want %v", history, wantHistory)
	}
	byID := map[string]*testutil.UserCertificate{}
	for _, u := range c.certs {
		byID[h.recordID(c.upn, u)] = u
	}
	for i, rec := range c.obj.Status.History {
		u := byID[rec.ID]
		if rec.Thumbprint != thumbprintOf(u) || rec.ExpirationDateTime == nil || !rec.ExpirationDateTime.Equal(&metav1.Time{Time: u.Cert.NotAfter}) {
			return fmt.Errorf("history[%d] = %+v, want thumbprint %s, expiration %s", i, rec, thumbprintOf(u), u.Cert.NotAfter)
		}
	}
	return nil
}

// touch changes an annotation of the Secret name, which wakes the resources using it: the tests' stand-in
// for a requeue whose time (operator time, on a fake clock) has come.
func (h *harness) touch(name string) {
	h.t.Helper()
	secret := &corev1.Secret{}
	if err := k8sClient.Get(h.ctx, client.ObjectKey{Namespace: h.ns, Name: name}, secret); err != nil {
		h.t.Fatal(err)
	}
	patch := client.MergeFrom(secret.DeepCopy())
	metav1.SetMetaDataAnnotation(&secret.ObjectMeta, "test/touched", time.Now().Format(time.RFC3339Nano))
	if err := k8sClient.Patch(h.ctx, secret, patch); err != nil {
		h.t.Fatal(err)
	}
}

var requeuePattern = regexp.MustCompile(`"requeueAfter": "([^"]+)"`)

// lastRequeue is the requeueAfter of obj's last finished pass, from the operator's log.
func (h *harness) lastRequeue(obj client.Object) time.Duration {
	h.t.Helper()
	self := fmt.Sprintf(`"namespace": %q, "name": %q`, obj.GetNamespace(), obj.GetName())
	var last string
	for _, line := range strings.Split(testLogSink.String(), "\n") {
		if strings.Contains(line, "Pass finished") && strings.Contains(line, self) {
			if m := requeuePattern.FindStringSubmatch(line); m != nil {
				last = m[1]
			}
		}
	}
	d, err := time.ParseDuration(last)
	if err != nil {
		h.t.Fatalf("no finished pass of %s with a requeueAfter in the log (%q)", obj.GetName(), last)
	}
	return d
}

// eventsOf counts obj's Events of reason.
func (h *harness) eventsOf(obj client.Object, reason string) int {
	h.t.Helper()
	list := &eventsv1.EventList{}
	if err := k8sClient.List(h.ctx, list, client.InNamespace(obj.GetNamespace())); err != nil {
		h.t.Fatal(err)
	}
	n := 0
	for _, e := range list.Items {
		if e.Regarding.Name == obj.GetName() && e.Reason == reason {
			n++
		}
	}
	return n
}

// Expiry in operator time: the Expiring window and the expiry itself are scheduled by the pass's requeue,
// and spec.retention.expired decides whether the record stays. The clock is a fake one, moved by the test.
func TestUserPfxExpiryIsScheduledAndRetentionExpiredDecides(t *testing.T) {
	start := time.Now().Truncate(time.Second)
	clk := testingclock.NewFakeClock(start)
	h := newHarness(t, harnessOptions{clock: clk, resync: 10000 * time.Hour}) // drift checks later than any expiry here
	day := 24 * time.Hour
	notAfter := start.Add(40 * day) // the default renewBefore (720h) opens its window after 10 days
	type resource struct {
		obj  *intunev1alpha1.UserPfxCertificate
		cert *testutil.UserCertificate
		upn  string
	}
	var resources []resource
	for _, spec := range []struct {
		name, upn string
		purpose   intunev1alpha1.IntendedPurpose
	}{{"alice-smime", "alice@contoso.com", "smimeEncryption"}, {"bob-wifi", "bob@contoso.com", "wifi"}} {
		u, err := testutil.NewUserCertificate(spec.upn, start.Add(-time.Hour), notAfter)
		if err != nil {
			t.Fatal(err)
		}
		h.pfxSecret(h.ns, spec.name, u, "pw")
		obj := h.userPfx(spec.name, spec.name)
		obj.Spec.IntendedPurpose = spec.purpose
		if err := k8sClient.Create(h.ctx, obj); err != nil {
			t.Fatal(err)
		}
		resources = append(resources, resource{obj, u, spec.upn})
	}
	expiring := func(obj *intunev1alpha1.UserPfxCertificate) metav1.Condition {
		c := meta.FindStatusCondition(obj.Status.Conditions, intunev1alpha1.ConditionExpiring)
		if c == nil {
			t.Fatalf("%s has no Expiring condition: %+v", obj.Name, obj.Status.Conditions)
		}
		return *c
	}
	for _, r := range resources {
		upfxReady(h, r.obj, metav1.ConditionTrue, intunev1alpha1.ReasonImported)
		if c := expiring(r.obj); c.Status != metav1.ConditionFalse || c.Reason != intunev1alpha1.ReasonRenewalNotDue {
			t.Errorf("%s: Expiring %s/%s at import", r.obj.Name, c.Status, c.Reason)
		}
		if r.obj.Status.Conditions[0].Type != intunev1alpha1.ConditionReady {
			t.Errorf("%s: Ready is not the first condition", r.obj.Name)
		}
		if got, want := h.lastRequeue(r.obj), 10*day+time.Second; got != want {
			t.Errorf("%s requeues after %s, want %s (when the renewBefore window opens)", r.obj.Name, got, want)
		}
	}

	// The window opens: Expiring turns True, with one Warning Event naming the Secret.
	clk.SetTime(start.Add(10*day + time.Second))
	for _, r := range resources {
		mark := h.logMark()
		h.touch(r.obj.Name)
		h.waitPass(r.obj, mark)
		h.get(r.obj)
		c := expiring(r.obj)
		if c.Status != metav1.ConditionTrue || c.Reason != intunev1alpha1.ReasonRenewalDue || !strings.Contains(c.Message, fmt.Sprintf("Secret %q", r.obj.Name)) {
			t.Errorf("%s: Expiring %s/%s %q", r.obj.Name, c.Status, c.Reason, c.Message)
		}
		if !meta.IsStatusConditionTrue(r.obj.Status.Conditions, intunev1alpha1.ConditionReady) {
			t.Errorf("%s: not Ready while expiring", r.obj.Name)
		}
		h.waitEvent(r.obj, kindUserPfxCertificate, "Expiring")
		if got, want := h.lastRequeue(r.obj), 30*day; got != want {
			t.Errorf("%s requeues after %s, want %s (its expiry, a second after notAfter)", r.obj.Name, got, want)
		}
	}

	// The certificates expire: Ready says so; the wifi record goes (its default), the S/MIME one stays.
	clk.SetTime(notAfter.Add(time.Second))
	for _, r := range resources {
		mark := h.logMark()
		h.touch(r.obj.Name)
		h.waitPass(r.obj, mark)
		ready := upfxReady(h, r.obj, metav1.ConditionFalse, intunev1alpha1.ReasonCertificateExpired)
		id := h.recordID(r.upn, r.cert)
		_, held := h.records(h.tenantID)[id]
		switch r.obj.Spec.IntendedPurpose {
		case "smimeEncryption":
			if !held || r.obj.Status.ID != id || !strings.Contains(ready.Message, "Intune keeps its record") {
				t.Errorf("%s: held %v, status id %q, message %q", r.obj.Name, held, r.obj.Status.ID, ready.Message)
			}
		default:
			if held || r.obj.Status.ID != "" || !strings.Contains(ready.Message, "no longer in Intune") {
				t.Errorf("%s: held %v, status id %q, message %q", r.obj.Name, held, r.obj.Status.ID, ready.Message)
			}
		}
		if c := expiring(r.obj); c.Status != metav1.ConditionTrue || c.Reason != intunev1alpha1.ReasonCertificateExpired {
			t.Errorf("%s: Expiring %s/%s after expiry", r.obj.Name, c.Status, c.Reason)
		}
		if n := h.eventsOf(r.obj, "Expiring"); n != 1 {
			t.Errorf("%s: %d Expiring events, want 1", r.obj.Name, n)
		}
	}

	// A renewed certificate in the Secret imports as usual.
	bob := resources[1]
	renewed, err := testutil.NewUserCertificate(bob.upn, start.Add(-time.Hour), notAfter.AddDate(1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	h.pfxSecret(h.ns, bob.obj.Name, renewed, "pw")
	upfxReady(h, bob.obj, metav1.ConditionTrue, intunev1alpha1.ReasonImported)
	if c := expiring(bob.obj); c.Status != metav1.ConditionFalse {
		t.Errorf("Expiring %s/%s after the renewal", c.Status, c.Reason)
	}
}

// Resources written by the previous version list records still to delete in status.retiredIds: the next
// pass reads them into status.history once, and retention decides from there.
func TestUserPfxReadsRetiredIDsIntoHistoryOnce(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	_, obj := h.importAlice("pw") // smimeEncryption: superseded records are kept
	earlier := h.newUser("alice@contoso.com")
	h.importOutsideTheOperator(earlier, "earlier-pw")
	kept, gone := h.recordID("alice@contoso.com", earlier), strings.ReplaceAll(h.users["alice@contoso.com"], "-", "")+"-"+strings.Repeat("ab", 20)

	patch := client.MergeFrom(obj.DeepCopy())
	obj.Status.RetiredIDs = []string{kept, gone}
	if err := k8sClient.Status().Patch(h.ctx, obj, patch); err != nil {
		t.Fatal(err)
	}
	mark := h.logMark()
	h.touch("alice-pfx")
	h.waitPass(obj, mark)
	h.get(obj)
	if len(obj.Status.RetiredIDs) != 0 || len(obj.Status.History) != 1 {
		t.Fatalf("retiredIds %v, history %+v; want the record still in Intune moved into history", obj.Status.RetiredIDs, obj.Status.History)
	}
	rec := obj.Status.History[0]
	if rec.ID != kept || rec.Thumbprint != thumbprintOf(earlier) || rec.ExpirationDateTime == nil || !rec.ExpirationDateTime.Time.Equal(earlier.Cert.NotAfter) {
		t.Errorf("history %+v, want %s with its thumbprint and expiry read from Intune", rec, kept)
	}
	if _, ok := h.records(h.tenantID)[kept]; !ok {
		t.Error("the kept record was deleted")
	}
}

// A connection without a key name imports nothing: Ready=False InvalidSpec, and no Graph call.
func TestUserPfxNeedsTheConnectorKeyNamed(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	conn := &intunev1alpha1.ClusterGraphConnection{ObjectMeta: metav1.ObjectMeta{Name: h.connection}}
	h.update(conn, func() {
		conn.Spec.PfxEncryption.KeyName = ""
	})
	alice := h.newUser("alice@contoso.com")
	h.pfxSecret(h.ns, "alice-pfx", alice, "pw")
	mark := h.journalMark()
	obj := h.userPfx("alice", "alice-pfx")
	if err := k8sClient.Create(h.ctx, obj); err != nil {
		t.Fatal(err)
	}
	ready := upfxReady(h, obj, metav1.ConditionFalse, intunev1alpha1.ReasonInvalidSpec)
	if !strings.Contains(ready.Message, "keyName") {
		t.Errorf("message %q does not name keyName", ready.Message)
	}
	if calls := h.graphCalls(mark); len(calls) != 0 {
		t.Errorf("Graph calls: %v", calls)
	}
}

// opensslPkcs12Info is what openssl pkcs12 -info says about a PFX's encryption (it writes it to stderr).
func opensslPkcs12Info(t *testing.T, der []byte, password string) string {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is not installed")
	}
	file := filepath.Join(t.TempDir(), "pushed.pfx")
	if err := os.WriteFile(file, der, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "pkcs12", "-info", "-in", file, "-passin", "pass:"+password, "-noout").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl pkcs12 -info: %v: %s", err, out)
	}
	return string(out)
}

// The PFX built from a TLS Secret reaches Intune as 3DES/SHA-1 unless pfxEncoding asks for AES-256, which
// then is a new push of the same certificate (a PATCH); openssl reads both from what Intune received.
func TestUserPfxTLSSourcePfxEncodingReachesIntune(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	bob := h.newUser("bob@contoso.com")
	h.tlsSecret("bob-tls", bob)
	obj := h.userPfx("bob-wifi", "")
	obj.Spec.IntendedPurpose = "wifi"
	obj.Spec.Source = intunev1alpha1.CertificateSource{TLS: &intunev1alpha1.TLSSecretSource{SecretRef: intunev1alpha1.LocalSecretReference{Name: "bob-tls"}}}
	if err := k8sClient.Create(h.ctx, obj); err != nil {
		t.Fatal(err)
	}
	upfxReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonImported)
	if obj.Spec.Source.TLS.PfxEncoding != intunev1alpha1.PfxEncodingTripleDESSHA1 {
		t.Errorf("pfxEncoding defaults to %q", obj.Spec.Source.TLS.PfxEncoding)
	}
	id := h.recordID("bob@contoso.com", bob)
	pushed := func() string {
		rec := h.records(h.tenantID)[id]
		password, err := pfx.DecryptPassword(h.connectorKey, pfx.Padding(rec.PaddingScheme), rec.EncryptedPfxPassword)
		if err != nil {
			t.Fatal(err)
		}
		return opensslPkcs12Info(t, rec.EncryptedPfxBlob, password)
	}
	if info := pushed(); !strings.Contains(info, "Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC") || !strings.Contains(info, "MAC: sha1") {
		t.Errorf("the default push is not 3DES/SHA-1:\n%s", info)
	}

	mark := h.journalMark()
	h.update(obj, func() {
		obj.Spec.Source.TLS.PfxEncoding = intunev1alpha1.PfxEncodingAES256SHA256
	})
	upfxReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonUpdated)
	assertCalls(t, h.graphCalls(mark),
		"GET /deviceManagement/userPfxCertificates/"+id+" 200",
		"PATCH /deviceManagement/userPfxCertificates/"+id+" 200")
	if info := pushed(); !strings.Contains(info, "Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC") || !strings.Contains(info, "MAC: sha256") {
		t.Errorf("the AES256-SHA256 push is not AES-256/SHA-256:\n%s", info)
	}
	if f := h.sim.CheckFailures(); len(f) > 0 {
		t.Errorf("connector check failures: %v", f)
	}
}
