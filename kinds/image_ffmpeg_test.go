//go:build unix

package kinds

import (
	"context"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spoolrun/spool"
)

// TestImageFFmpegCancel: ending the context kills ffmpeg's whole process
// group at once, and the error is the context's cause, not a failure.
func TestImageFFmpegCancel(t *testing.T) {
	prog, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Skip("install ffmpeg")
	}
	// Not parallel: the other tests' ffmpeg children must not be running
	// when this one looks for its own.
	ctx, cancel := context.WithCancelCause(t.Context())
	cause := errors.New("stop")
	var cmdPID int
	done := make(chan error, 1)
	go func() {
		// An endless source into the null muxer runs until killed.
		done <- runImageFFmpeg(ctx, prog, []string{"-re", "-f", "lavfi", "-i", "testsrc2", "-f", "null", "-"})
	}()
	// Find the ffmpeg this test started: a child of this process.
	deadline := time.Now().Add(10 * time.Second)
	for cmdPID == 0 && time.Now().Before(deadline) {
		out, _ := exec.Command("pgrep", "-P", strconv.Itoa(syscall.Getpid()), "ffmpeg").Output()
		if f := strings.Fields(string(out)); len(f) > 0 {
			cmdPID, _ = strconv.Atoi(f[0])
		}
		time.Sleep(20 * time.Millisecond)
	}
	if cmdPID == 0 {
		t.Skip("cannot find the ffmpeg child (no pgrep?)")
	}
	if pgid, err := syscall.Getpgid(cmdPID); err != nil || pgid != cmdPID {
		t.Errorf("ffmpeg's process group = %d, %v; want its own, %d", pgid, err, cmdPID)
	}
	cancel(cause)
	select {
	case err := <-done:
		if !errors.Is(err, cause) || spool.IsPermanent(err) {
			t.Errorf("runImageFFmpeg = %v, want the context's cause, not permanent", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("runImageFFmpeg did not return after cancel")
	}
	if err := syscall.Kill(-cmdPID, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("ffmpeg's process group still exists after cancel: %v", err)
	}
}

// TestImageFFmpegFailure: ffmpeg's own reason, trimmed, in a Permanent
// error.
func TestImageFFmpegFailure(t *testing.T) {
	prog, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Skip("install ffmpeg")
	}
	t.Parallel()
	err = runImageFFmpeg(t.Context(), prog, ffInput("/nonexistent/in.png"))
	if !spool.IsPermanent(err) || !strings.Contains(err.Error(), "No such file or directory") {
		t.Errorf("runImageFFmpeg on a missing file = %v, want permanent with ffmpeg's reason", err)
	}
	err = runImageFFmpeg(t.Context(), "/nonexistent/ffmpeg", nil)
	if !spool.IsPermanent(err) || !strings.Contains(err.Error(), "install ffmpeg") {
		t.Errorf("runImageFFmpeg without ffmpeg = %v, want permanent: install ffmpeg", err)
	}
}
