// Package fairshare shares what one Graph application may do among the namespaces that use it: a workqueue
// for controller-runtime that hands out reconcile requests round-robin by namespace (Queue), and a write
// limiter that hands out the application's write tokens round-robin by the namespace the context names
// (Limiter). Within one namespace both stay first come, first served.
//
// Without them a namespace that queues 2000 imports delays another namespace's single certificate by the
// whole queue: the controller's workqueue is FIFO, so the other request waits behind the 2000 while every
// worker is blocked on the write budget, and the write budget's rate.Limiter serves its waiters in arrival
// order. With them a namespace that arrives while another has a backlog is served by the next worker that
// frees up and gets the next write token but one.
package fairshare

import "context"

type namespaceKey struct{}

// WithNamespace returns a copy of ctx that says the work it carries is done for namespace (reconcilers put
// their request's namespace in; "" is a cluster-scoped object's).
func WithNamespace(ctx context.Context, namespace string) context.Context {
	return context.WithValue(ctx, namespaceKey{}, namespace)
}

// Namespace returns the namespace ctx carries, and false when it carries none.
func Namespace(ctx context.Context) (string, bool) {
	ns, ok := ctx.Value(namespaceKey{}).(string)
	return ns, ok
}
