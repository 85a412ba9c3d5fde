package stack

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is a binary the stack started, with its output in a log file.
type Process struct {
	Name    string
	LogPath string
	cmd     *exec.Cmd
	done    chan struct{}
	// logStart is where this run's output begins in LogPath: a restarted process appends to its log.
	logStart int64
	mu       sync.Mutex
	exitErr  error
}

// startProcess runs bin with args and env added to this process's environment. When ready is not empty it
// waits (up to a minute) until a line of standard output contains it and returns that line.
func startProcess(name, logPath, bin string, args, env []string, ready string) (*Process, string, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, "", err
	}
	var logStart int64
	if info, err := logFile.Stat(); err == nil {
		logStart = info.Size()
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = logFile
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Process{Name: name, LogPath: logPath, cmd: cmd, done: make(chan struct{}), logStart: logStart}
	lines := make(chan string, 1)
	go func() {
		scanner := bufio.NewScanner(stdout)
		sent := false
		for scanner.Scan() {
			line := scanner.Text()
			fmt.Fprintln(logFile, line)
			if !sent && ready != "" && strings.Contains(line, ready) {
				lines <- line
				sent = true
			}
		}
		_, _ = io.Copy(logFile, stdout)
	}()
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.exitErr = err
		p.mu.Unlock()
		_ = logFile.Close()
		close(p.done)
	}()
	if ready == "" {
		return p, "", nil
	}
	select {
	case line := <-lines:
		return p, line, nil
	case <-p.done:
		return nil, "", fmt.Errorf("%s exited before it was ready (see %s): %v", name, logPath, p.exitErr)
	case <-time.After(time.Minute):
		p.Kill()
		return nil, "", fmt.Errorf("%s was not ready within a minute (see %s)", name, logPath)
	}
}

// Stop asks the process to end (SIGTERM) and kills it if it has not after 15 s.
func (p *Process) Stop() {
	if p == nil {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.Kill()
	}
}

// Kill ends the process at once (SIGKILL), as a crash would.
func (p *Process) Kill() {
	if p == nil {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// Running reports whether the process has not exited.
func (p *Process) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Log returns what the process wrote so far.
func (p *Process) Log() string {
	data, _ := os.ReadFile(p.LogPath)
	return string(data)
}

// LogSinceStart returns what this run of the process wrote, without earlier runs' output in the same log.
func (p *Process) LogSinceStart() string {
	data, _ := os.ReadFile(p.LogPath)
	if int64(len(data)) < p.logStart {
		return ""
	}
	return string(data[p.logStart:])
}

// run runs a command to completion and returns its combined output.
func run(ctx context.Context, dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}
