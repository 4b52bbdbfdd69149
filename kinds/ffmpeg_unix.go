//go:build unix

package kinds

import (
	"os/exec"
	"syscall"
)

// ownGroup makes cmd the leader of a new process group and has its
// cancellation kill the whole group, so that nothing ffmpeg started (a
// helper, a filter's child) outlives a cancelled task.
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
