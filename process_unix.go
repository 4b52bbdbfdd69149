//go:build unix

package spool

import (
	"errors"
	"os"
	"strings"
	"syscall"
)

// processAlive reports whether a process with this pid exists in this PID
// namespace.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// processSpace returns the id of this boot and of this process's PID
// namespace where the system tells them (Linux), else "".
func processSpace() (bootID, pidNS string) {
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		bootID = strings.TrimSpace(string(b))
	}
	if l, err := os.Readlink("/proc/self/ns/pid"); err == nil {
		pidNS = l // "pid:[inode]"
	}
	if bootID == "" || pidNS == "" {
		return "", ""
	}
	return bootID, pidNS
}
