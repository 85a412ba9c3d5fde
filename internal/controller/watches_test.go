package controller

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"
)

// Only the Secrets of the initial list are dropped; every later event of a Secret passes.
func TestSecretsAfterStart(t *testing.T) {
	s := &corev1.Secret{}
	for _, c := range []struct {
		what string
		pass bool
		got  bool
	}{
		{"create from the initial list", false, secretsAfterStart.Create(event.CreateEvent{Object: s, IsInInitialList: true})},
		{"create after start", true, secretsAfterStart.Create(event.CreateEvent{Object: s})},
		{"update", true, secretsAfterStart.Update(event.UpdateEvent{ObjectOld: s, ObjectNew: s})},
		{"delete", true, secretsAfterStart.Delete(event.DeleteEvent{Object: s})},
		{"generic", true, secretsAfterStart.Generic(event.GenericEvent{Object: s})},
	} {
		if c.got != c.pass {
			t.Errorf("%s: passes %v, want %v", c.what, c.got, c.pass)
		}
	}
}
