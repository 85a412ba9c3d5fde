package controller

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/graph"
)

// fakeRecord is the record the fake external serves: an id and one field that matches or not.
type fakeRecord struct {
	ID   string
	Good bool
}

// fakeExternal is an external client made of function fields; a nil field fails the test when called, so
// each case states exactly which Graph calls it expects.
type fakeExternal struct {
	t      *testing.T
	calls  []string
	get    func(id string) (*fakeRecord, error)
	find   func() (*fakeRecord, error)
	create func() (*fakeRecord, error)
	update func(id string) (*fakeRecord, error)
}

func (f *fakeExternal) called(name string, fn any) {
	f.calls = append(f.calls, name)
	if fn == nil {
		f.t.Fatalf("unexpected %s", name)
	}
}

func (f *fakeExternal) Get(_ context.Context, id string) (*fakeRecord, error) {
	f.called("Get", f.get)
	return f.get(id)
}
func (f *fakeExternal) Find(context.Context) (*fakeRecord, error) {
	f.called("Find", f.find)
	return f.find()
}
func (f *fakeExternal) Create(context.Context) (*fakeRecord, error) {
	f.called("Create", f.create)
	return f.create()
}
func (f *fakeExternal) Update(_ context.Context, id string) (*fakeRecord, error) {
	f.called("Update", f.update)
	return f.update(id)
}
func (f *fakeExternal) Delete(context.Context, string) error {
	f.called("Delete", nil)
	return nil
}

// The paths of the assigned-id flow the emulator produces only with effort: every combination of what the
// record's id, the list, a pending create and Graph's answers say.
func TestAssignedRecordFlow(t *testing.T) {
	markedAt := metav1.NewTime(time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC))
	good, bad := &fakeRecord{ID: "r1", Good: true}, &fakeRecord{ID: "r1"}
	lost := &graph.Error{StatusCode: 504}
	refused := &graph.Error{StatusCode: 400}
	settling := &conditionError{reason: intunev1alpha1.ReasonProgressing, message: "settling"}
	tests := []struct {
		name       string
		id         string
		marked     bool
		settles    bool // an earlier create may still show up in the list
		refuse     bool // adoption refused
		rewrite    bool
		ext        fakeExternal
		wantCalls  []string
		wantAction string
		wantErr    any // nil, an error to be errors.Is, or a reason string
		wantMark   bool
	}{
		{name: "in sync: one read, no write", id: "r1",
			ext: fakeExternal{get: func(string) (*fakeRecord, error) { return good, nil }}, wantCalls: []string{"Get"}},
		{name: "drifted: updated", id: "r1",
			ext:       fakeExternal{get: func(string) (*fakeRecord, error) { return bad, nil }, update: func(string) (*fakeRecord, error) { return good, nil }},
			wantCalls: []string{"Get", "Update"}, wantAction: actionUpdated},
		{name: "deleted in Intune: recreated", id: "r1",
			ext: fakeExternal{get: func(string) (*fakeRecord, error) { return nil, nil }, find: func() (*fakeRecord, error) { return nil, nil },
				create: func() (*fakeRecord, error) { return &fakeRecord{ID: "r2", Good: true}, nil }},
			wantCalls: []string{"Get", "Find", "Create"}, wantAction: actionRecreated},
		{name: "first pass: created",
			ext: fakeExternal{find: func() (*fakeRecord, error) { return nil, nil },
				create: func() (*fakeRecord, error) { return good, nil }},
			wantCalls: []string{"Find", "Create"}, wantAction: actionCreated},
		{name: "a record someone made: adopted",
			ext:       fakeExternal{find: func() (*fakeRecord, error) { return good, nil }},
			wantCalls: []string{"Find"}, wantAction: actionAdopted},
		{name: "adopted but its secret parts unknown: rewritten", rewrite: true,
			ext:       fakeExternal{find: func() (*fakeRecord, error) { return good, nil }, update: func(string) (*fakeRecord, error) { return good, nil }},
			wantCalls: []string{"Find", "Update"}, wantAction: actionAdopted},
		{name: "adoption refused: no write", refuse: true,
			ext:       fakeExternal{find: func() (*fakeRecord, error) { return good, nil }},
			wantCalls: []string{"Find"}, wantErr: intunev1alpha1.ReasonAccessDenied},
		{name: "own create whose answer was lost: found, not repeated", marked: true,
			ext:       fakeExternal{find: func() (*fakeRecord, error) { return good, nil }},
			wantCalls: []string{"Find"}, wantAction: actionCreated},
		{name: "own create not listed yet: wait, no second POST", marked: true, settles: true,
			ext:       fakeExternal{find: func() (*fakeRecord, error) { return nil, nil }},
			wantCalls: []string{"Find"}, wantErr: intunev1alpha1.ReasonProgressing, wantMark: true},
		{name: "own create never listed within the settle time: created again", marked: true,
			ext: fakeExternal{find: func() (*fakeRecord, error) { return nil, nil },
				create: func() (*fakeRecord, error) { return good, nil }},
			wantCalls: []string{"Find", "Create"}, wantAction: actionCreated},
		{name: "create answered 504: outcome unknown, mark kept",
			ext: fakeExternal{find: func() (*fakeRecord, error) { return nil, nil },
				create: func() (*fakeRecord, error) { return nil, lost }},
			wantCalls: []string{"Find", "Create"}, wantErr: error(lost), wantMark: true},
		{name: "create refused (400): nothing made, mark cleared",
			ext: fakeExternal{find: func() (*fakeRecord, error) { return nil, nil },
				create: func() (*fakeRecord, error) { return nil, refused }},
			wantCalls: []string{"Find", "Create"}, wantErr: error(refused)},
		{name: "create answered without an id: mark kept, found later",
			ext: fakeExternal{find: func() (*fakeRecord, error) { return nil, nil },
				create: func() (*fakeRecord, error) { return &fakeRecord{}, nil }},
			wantCalls: []string{"Find", "Create"}, wantErr: intunev1alpha1.ReasonProgressing, wantMark: true},
		{name: "read failed before the record was seen: unseen hook", id: "r1",
			ext:       fakeExternal{get: func(string) (*fakeRecord, error) { return nil, refused }},
			wantCalls: []string{"Get"}, wantErr: errUnseen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mark *metav1.Time
			if tt.marked {
				mark = markedAt.DeepCopy()
			}
			ext := tt.ext
			ext.t = t
			flow := &assignedRecord[fakeRecord]{
				ext: &ext, id: tt.id, mark: &mark, rewriteFound: tt.rewrite,
				idOf:    func(r *fakeRecord) string { return r.ID },
				matches: func(r *fakeRecord) bool { return r.Good },
				unseen:  func(_ context.Context, err error) error { return errors.Join(errUnseen, err) },
				adopt: func(context.Context, *fakeRecord) error {
					if tt.refuse {
						return &conditionError{reason: intunev1alpha1.ReasonAccessDenied, message: "refused"}
					}
					return nil
				},
				beginCreate: func(context.Context) error { mark = markedAt.DeepCopy(); return nil },
				settling: func(m *metav1.Time) error {
					if m != nil && tt.settles {
						return settling
					}
					return nil
				},
			}
			_, action, err := flow.sync(context.Background())
			if !slices.Equal(ext.calls, tt.wantCalls) {
				t.Errorf("calls %v, want %v", ext.calls, tt.wantCalls)
			}
			switch want := tt.wantErr.(type) {
			case nil:
				if err != nil || action != tt.wantAction {
					t.Errorf("action %q, err %v; want %q", action, err, tt.wantAction)
				}
			case string:
				var c *conditionError
				if !errors.As(err, &c) || c.reason != want {
					t.Errorf("err %v, want reason %s", err, want)
				}
			case error:
				if !errors.Is(err, want) {
					t.Errorf("err %v, want %v", err, want)
				}
			}
			if (mark != nil) != tt.wantMark {
				t.Errorf("mark %v, want set %v", mark, tt.wantMark)
			}
		})
	}
}

var errUnseen = errors.New("unseen")
