package kinds

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/spoolrun/spool"
)

// runImageFFmpeg runs the ffmpeg program prog with args, which follow
// "-nostdin -hide_banner -y -v error" (inputs opened with ffInput). It is
// the image kind's one way to run ffmpeg, kept apart so that the shared
// ffmpeg runner can replace it: it takes an argument list, never a shell
// string; ffmpeg runs in its own process group, and the whole group is
// killed when ctx ends, so no child outlives the task; stderr is kept
// bounded, its last lines only.
//
// A non-zero exit is a Permanent error carrying ffmpeg's own reason: the
// input is corrupt or unsupported, or the encoder refused the picture, and
// another attempt would fail the same way. When ctx ends the error is its
// cause, which the engine records (cancelled, timeout, shutdown).
func runImageFFmpeg(ctx context.Context, prog string, args []string) error {
	full := append([]string{"-nostdin", "-hide_banner", "-y", "-v", "error"}, args...)
	cmd := exec.CommandContext(ctx, prog, full...)
	stderr := &imageStderr{max: 8 << 10}
	cmd.Stderr = stderr
	setImageProcessGroup(cmd)
	// Once ffmpeg is killed, stop waiting for its pipes after a moment even
	// if something else still holds them.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("run ffmpeg: %w", context.Cause(ctx))
	case errors.Is(err, exec.ErrNotFound), cmd.Process == nil && errors.Is(err, fs.ErrNotExist):
		return spool.Permanent(errImageNoFFmpeg)
	case errors.As(err, &exit) && exit.Exited():
		return spool.Permanent(fmt.Errorf("ffmpeg: %s", tidyFFmpegReason(stderr.reason(), args)))
	}
	// Killed by a signal not ours (out of memory…): another attempt may do.
	return fmt.Errorf("run ffmpeg: %w: %s", err, tidyFFmpegReason(stderr.reason(), args))
}

// ffmpegMessageContext matches the "[mov,mp4,m4a @ 0x55d0c0ffee00] " that starts
// ffmpeg's messages.
var ffmpegMessageContext = regexp.MustCompile(`\[([^\]@]+?) @ 0x[0-9a-f]+\] `)

// tidyFFmpegReason makes ffmpeg's reason fit a task's error, which users see: without
// the addresses of ffmpeg's structures, and with the files it names, which
// are local paths of the engine's storage, by their base names only.
func tidyFFmpegReason(reason string, args []string) string {
	reason = ffmpegMessageContext.ReplaceAllString(reason, "$1: ")
	for _, a := range args {
		if p, ok := strings.CutPrefix(a, "file:"); ok && p != "" {
			reason = strings.ReplaceAll(reason, a, filepath.Base(p))
		}
		if filepath.IsAbs(a) {
			reason = strings.ReplaceAll(reason, a, filepath.Base(a))
		}
	}
	return reason
}

// errImageNoFFmpeg says how to fix a machine without ffmpeg.
var errImageNoFFmpeg = errors.New("ffmpeg not found in PATH: install ffmpeg")

// imageStderr keeps the last max bytes (about) written to it.
type imageStderr struct {
	buf []byte
	max int
}

func (b *imageStderr) Write(p []byte) (int, error) {
	b.buf = append(b.buf, p...)
	if len(b.buf) > 2*b.max {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-b.max:]...)
	}
	return len(p), nil
}

// reason returns the last meaningful lines of ffmpeg's stderr, joined on
// one line: encoder libraries print banners (SVT-AV1's "Svt[info]") that
// say nothing of the failure.
func (b *imageStderr) reason() string {
	var lines []string
	for l := range bytes.Lines(b.buf) {
		s := strings.TrimSpace(string(l))
		if s == "" || strings.HasPrefix(s, "Svt[info]") || strings.HasPrefix(s, "Svt[warn]") {
			continue
		}
		lines = append(lines, s)
	}
	if len(lines) == 0 {
		return "failed without saying why"
	}
	const keep = 4
	lines = lines[max(len(lines)-keep, 0):]
	s := strings.Join(lines, "; ")
	if len(s) > 1000 {
		s = "…" + s[len(s)-1000:]
	}
	return s
}
