package stack

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ProcStats is what /proc says about a running process (Linux only).
type ProcStats struct {
	// PeakRSS is VmHWM: the largest resident set since the process started, in bytes.
	PeakRSS int64 `json:"peakRSSBytes"`
	// RSS is VmRSS: the resident set now, in bytes; RSSAnon (heap, stacks) plus RSSFile (pages of the
	// binary and other mapped files, which the kernel can drop and read again).
	RSS     int64 `json:"rssBytes"`
	RSSAnon int64 `json:"rssAnonBytes"`
	RSSFile int64 `json:"rssFileBytes"`
	// CPUSeconds is user plus system time since the process started.
	CPUSeconds float64 `json:"cpuSeconds"`
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times: 100 on every Linux architecture Go
// supports (it is part of the kernel ABI, independent of the kernel's HZ), and reading sysconf
// would need cgo.
const clockTicks = 100

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Stats reads the process's peak and current resident set and CPU time from /proc.
func (p *Process) Stats() (ProcStats, error) {
	var st ProcStats
	dir := fmt.Sprintf("/proc/%d/", p.Pid())
	status, err := os.ReadFile(dir + "status")
	if err != nil {
		return st, fmt.Errorf("reading the %s process status: %w", p.Name, err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		name, value, _ := strings.Cut(line, ":")
		into := map[string]*int64{"VmHWM": &st.PeakRSS, "VmRSS": &st.RSS, "RssAnon": &st.RSSAnon, "RssFile": &st.RSSFile}[name]
		if into == nil {
			continue
		}
		kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return st, fmt.Errorf("parsing %s of %s: %w", name, p.Name, err)
		}
		*into = kib << 10
	}
	stat, err := os.ReadFile(dir + "stat")
	if err != nil {
		return st, fmt.Errorf("reading the %s process stat: %w", p.Name, err)
	}
	// The command name (field 2) may hold spaces and parentheses: the fields after it start at the last ')'.
	end := strings.LastIndexByte(string(stat), ')')
	if end < 0 {
		return st, fmt.Errorf("unexpected /proc stat of %s", p.Name)
	}
	fields := strings.Fields(string(stat)[end+1:])
	// fields[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(fields) < 13 {
		return st, fmt.Errorf("unexpected /proc stat of %s", p.Name)
	}
	for _, f := range fields[11:13] {
		ticks, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return st, fmt.Errorf("parsing the CPU time of %s: %w", p.Name, err)
		}
		st.CPUSeconds += float64(ticks) / clockTicks
	}
	return st, nil
}
