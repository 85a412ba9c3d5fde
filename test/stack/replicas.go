package stack

import (
	"fmt"
	"strings"
)

// Replica is one more operator process beside Stack.Operator, e.g. a second replica under --leader-elect.
type Replica struct {
	*Process
	MetricsURL string
}

// StartReplica starts another operator process with the same identity and Options.OperatorArgs (then
// extraArgs), logging to <name>.log in the stack's directory. The stack stops it with everything else.
func (s *Stack) StartReplica(name string, extraArgs ...string) (*Replica, error) {
	if name == "operator" {
		return nil, fmt.Errorf("replica name %q is the primary operator's", name)
	}
	r, err := s.startOperatorProcess(name, extraArgs...)
	if err != nil {
		return nil, err
	}
	s.replicas = append(s.replicas, r)
	return r, nil
}

// leaseAcquired is what client-go's leader election logs (through the operator's logger, compared in
// lower case) when a process becomes the leader.
const leaseAcquired = "successfully acquired lease"

// Leader returns the running process among procs that holds the leader lease, judged by its own log
// since it started: client-go logs when it acquires the lease, and a process only loses it by exiting
// (controller-runtime ends the manager when a renewal fails). nil when none has acquired it yet.
func Leader(procs ...*Process) *Process {
	for _, p := range procs {
		if p != nil && p.Running() && strings.Contains(strings.ToLower(p.LogSinceStart()), leaseAcquired) {
			return p
		}
	}
	return nil
}

// OperatorLogs returns the log of every operator process the stack ran (all runs of the primary and every
// replica), by file name.
func (s *Stack) OperatorLogs() map[string]string {
	logs := map[string]string{}
	procs := make([]*Process, 0, 1+len(s.replicas))
	procs = append(procs, s.Operator)
	for _, r := range s.replicas {
		procs = append(procs, r.Process)
	}
	for _, p := range procs {
		if p != nil {
			logs[p.LogPath] = p.Log()
		}
	}
	return logs
}
