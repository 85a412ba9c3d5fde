package stack

import (
	"fmt"
	"net"
	"time"
)

// RestartControlPlane stops the API server and etcd and starts them again on the same ports with the
// same etcd data and certificates, as a control-plane upgrade or a node reboot would. between runs while
// both are down (nil: nothing). Clients, kubeconfigs and the operator keep working once it is back.
//
// kube-apiserver stops listening at once on SIGTERM but may then wait on open watch connections for
// longer than envtest's stop timeout, after which envtest SIGKILLs it: either way it is down, which is
// all a restart needs, so that timeout is not an error here as long as the port is released.
func (s *Stack) RestartControlPlane(between func()) error {
	cp := &s.Env.ControlPlane
	apiAddr := net.JoinHostPort(cp.APIServer.Address, cp.APIServer.Port)
	stopErr := cp.APIServer.Stop()
	if err := waitClosed(apiAddr, 30*time.Second); err != nil {
		return fmt.Errorf("stopping the API server (%v): %w", stopErr, err)
	}
	if err := cp.Etcd.Stop(); err != nil {
		return fmt.Errorf("stopping etcd: %w", err)
	}
	if between != nil {
		between()
	}
	if err := cp.Etcd.Start(); err != nil {
		return fmt.Errorf("starting etcd again: %w", err)
	}
	cp.APIServer.EtcdURL = cp.Etcd.URL
	if err := cp.APIServer.Start(); err != nil {
		return fmt.Errorf("starting the API server again: %w", err)
	}
	return nil
}

// waitClosed waits until nothing accepts connections on addr.
func waitClosed(addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return nil
		}
		_ = conn.Close()
		if time.Now().After(deadline) {
			return fmt.Errorf("%s still accepts connections after %s", addr, limit)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
