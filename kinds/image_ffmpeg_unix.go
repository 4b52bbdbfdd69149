//go:build unix

package kinds

import (
	"os/exec"
	"syscall"
)

// setImageProcessGroup starts cmd in a process group of its own and makes its
// cancellation kill the whole group: ffmpeg and anything it started.
func setImageProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
