package kinds

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spoolrun/spool"
)

// errFFmpegMissing is what a kind that needs ffmpeg says on a machine
// without it: as its Check (so a started engine refuses its tasks) and as
// the failure of a task that reaches such an engine anyway.
var errFFmpegMissing = errors.New("ffmpeg not found in PATH: install ffmpeg")

// runFFmpeg runs the ffmpeg in PATH with args and waits for it. It is the
// one way this package runs ffmpeg; callers give only what is theirs to
// say: inputs (each through ffInput), filters, codecs and the output path
// (in job.TempDir). runFFmpeg adds the global options: no stdin, no
// banner, overwrite (the output is in a fresh directory), errors only on
// stderr, and -progress on stdout.
//
// produce is the duration of media the command writes; the progress
// ffmpeg reports (out_time) against it is passed to job.Progress, up to
// 99: the task's completion, once the caller has stored the output, makes
// it 100. With produce
// 0, or a nil job, no progress is reported.
//
// ffmpeg runs in its own process group, which is killed whole when ctx
// ends (a cancel, a timeout, a shutdown); runFFmpeg then returns an error
// wrapping context.Cause(ctx), and no process is left. An ffmpeg silent
// for stallAfter is killed too, and the error (errStalled) is retried. A failing ffmpeg
// returns a spool.Permanent error carrying the last meaningful lines of its
// stderr ("ffmpeg: …: Invalid data found when processing input"): a bad
// input or an option the encoder refuses, which a retry would repeat. A
// missing ffmpeg is Permanent errFFmpegMissing. ffmpeg killed by a signal
// that was not ours (the OOM killer) returns a plain error, to be retried.
func runFFmpeg(ctx context.Context, job *spool.Job, args []string, produce time.Duration) error {
	prog, err := exec.LookPath("ffmpeg")
	if err != nil {
		return spool.Permanent(errFFmpegMissing)
	}
	full := append([]string{"-nostdin", "-hide_banner", "-y", "-nostats", "-loglevel", "error",
		"-progress", "pipe:1"}, args...)
	runCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	cmd := exec.CommandContext(runCtx, prog, full...)
	// SVT-AV1 logs its banner to stderr whatever ffmpeg's log level; 1 is
	// errors only.
	cmd.Env = append(os.Environ(), "SVT_LOG=1")
	progress := &progressWriter{produce: produce, last: time.Now()}
	if job != nil {
		progress.report = job.Progress
	}
	go watchStall(runCtx, progress, stop)
	stderr := &tailBuffer{max: maxStderr}
	cmd.Stdout, cmd.Stderr = progress, stderr
	ownGroup(cmd)
	// Once ffmpeg is killed, wait this long for the pipes to close before
	// Wait gives up on them.
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("run ffmpeg: %w", context.Cause(ctx))
	case errors.Is(context.Cause(runCtx), errStalled):
		return fmt.Errorf("run ffmpeg: %w", errStalled)
	case err == nil:
		return nil
	case errors.Is(err, exec.ErrNotFound):
		return spool.Permanent(errFFmpegMissing)
	case errors.As(err, &exit) && exit.Exited():
		return spool.Permanent(fmt.Errorf("ffmpeg: %s", lastLines(scrub(stderr.String(), args), 3)))
	}
	return fmt.Errorf("run ffmpeg: %w: %s", err, lastLines(scrub(stderr.String(), args), 3))
}

// scrub makes ffmpeg's messages readable for users: an input's local path
// becomes "input", an output's its base name, and the addresses of
// ffmpeg's contexts ("[mov,mp4 @ 0x55d…] ") go.
func scrub(msg string, args []string) string {
	for _, a := range args {
		switch {
		case strings.HasPrefix(a, "file:/"):
			msg = strings.ReplaceAll(msg, a, "input")
		case filepath.IsAbs(a):
			msg = strings.ReplaceAll(msg, a, filepath.Base(a))
		}
	}
	return ffContext.ReplaceAllString(msg, "")
}

var ffContext = regexp.MustCompile(`\[[^\]\n]* @ 0x[0-9a-f]+\] `)

// errStalled is the failure of an ffmpeg that stopped reporting progress:
// ffmpeg writes a progress block twice a second while it works, and an
// encoder that deadlocks (SVT-AV1 did, muxing into mov) writes nothing
// more and never exits.
var errStalled = fmt.Errorf("ffmpeg reported no progress for %s: killed", stallAfter)

// stallAfter is how long ffmpeg may go without reporting progress.
const stallAfter = 5 * time.Minute

// watchStall kills ffmpeg (through stop) once its progress output has
// been silent for stallAfter, until ctx ends.
func watchStall(ctx context.Context, w *progressWriter, stop context.CancelCauseFunc) {
	tick := time.NewTicker(stallAfter / 10)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if w.silentFor() > stallAfter {
				stop(errStalled)
				return
			}
		}
	}
}

// maxStderr bounds what is kept of ffmpeg's stderr: its last bytes, where
// the reason of a failure is.
const maxStderr = 16 << 10

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// lastLines returns the last n meaningful lines of an encoder's stderr,
// joined with "; ": empty lines, repeats and the informational lines that
// some encoders (x265, SVT-AV1) print whatever the log level are left out.
func lastLines(s string, n int) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "", strings.Contains(l, "[info]"), strings.HasPrefix(l, "Svt[warn]"),
			len(keep) > 0 && keep[len(keep)-1] == l:
			continue
		}
		keep = append(keep, l)
	}
	if len(keep) == 0 {
		return "failed without saying why"
	}
	return strings.Join(keep[max(len(keep)-n, 0):], "; ")
}

// progressWriter reads ffmpeg's -progress output: blocks of key=value
// lines, of which out_time_us (out_time in older versions) is how much
// has been written.
type progressWriter struct {
	produce time.Duration
	report  func(pct int)
	partial []byte
	done    time.Duration // latest out_time

	mu   sync.Mutex
	last time.Time // of the latest write, for watchStall
}

// silentFor is how long since ffmpeg last wrote progress.
func (w *progressWriter) silentFor() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return time.Since(w.last)
}

func (w *progressWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.last = time.Now()
	w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.line(string(bytes.TrimSpace(w.partial[:i])))
		w.partial = w.partial[i+1:]
	}
	if len(w.partial) > 4096 { // not progress output: drop it
		w.partial = w.partial[:0]
	}
	return len(p), nil
}

func (w *progressWriter) line(l string) {
	key, val, _ := strings.Cut(l, "=")
	var at time.Duration
	switch key {
	case "out_time_us", "out_time_ms": // both are microseconds
		us, err := strconv.ParseInt(val, 10, 64)
		if err != nil {
			return
		}
		at = time.Duration(us) * time.Microsecond
	case "out_time":
		d, ok := parseClock(val)
		if !ok {
			return
		}
		at = d
	default:
		return
	}
	if at <= w.done {
		return
	}
	w.done = at
	if w.report != nil && w.produce > 0 {
		w.report(min(int(99*at/w.produce), 99))
	}
}

// parseClock reads ffmpeg's HH:MM:SS.micro.
func parseClock(s string) (time.Duration, bool) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return 0, false
	}
	h, err1 := strconv.Atoi(parts[0])
	m, err2 := strconv.Atoi(parts[1])
	sec, err3 := strconv.ParseFloat(parts[2], 64)
	if err1 != nil || err2 != nil || err3 != nil || h < 0 || m < 0 || sec < 0 {
		return 0, false
	}
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(sec*float64(time.Second)), true
}

// encoders tells which encoders the ffmpeg in PATH has. The handlers that
// Register makes share one, so that ffmpeg is asked once, not once per
// kind; a failed listing is not kept, so installing ffmpeg later is seen.
type encoders struct {
	mu   sync.Mutex
	prog string          // the ffmpeg listed
	have map[string]bool // its encoders
}

// check returns nil when ffmpeg and ffprobe are in PATH and ffmpeg has
// every named encoder, else an error saying what to install.
func (e *encoders) check(ctx context.Context, names ...string) error {
	have, err := e.list(ctx)
	if err != nil {
		return err
	}
	if _, err := exec.LookPath("ffprobe"); err != nil {
		return errors.New("ffprobe not found in PATH: install ffmpeg")
	}
	for _, n := range names {
		if !have[n] {
			return fmt.Errorf("ffmpeg lacks the %s encoder: install an ffmpeg built with it (Debian's ffmpeg package has it)", n)
		}
	}
	return nil
}

// has reports whether ffmpeg has the encoder; false if ffmpeg is missing.
func (e *encoders) has(ctx context.Context, name string) bool {
	have, err := e.list(ctx)
	return err == nil && have[name]
}

func (e *encoders) list(ctx context.Context) (map[string]bool, error) {
	prog, err := exec.LookPath("ffmpeg")
	if err != nil {
		return nil, errFFmpegMissing
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.have != nil && e.prog == prog {
		return e.have, nil
	}
	cmd := exec.CommandContext(ctx, prog, "-hide_banner", "-nostdin", "-encoders")
	cmd.WaitDelay = time.Second
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("list ffmpeg's encoders: %w", err)
	}
	have := map[string]bool{}
	listing := false
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) > 0 && strings.HasPrefix(f[0], "---"):
			listing = true // the legend ends here
		case listing && len(f) >= 2:
			have[f[1]] = true
		}
	}
	e.prog, e.have = prog, have
	return have, nil
}
