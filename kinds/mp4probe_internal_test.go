package kinds

import (
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/spoolrun/spool"
)

// TestProbeMP4MatchesFFprobe: the MP4 box reader says what ffprobe says
// of the files ffmpeg writes, rotated and audio-only ones included.
func TestProbeMP4MatchesFFprobe(t *testing.T) {
	for _, prog := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(prog); err != nil {
			t.Skip("ffmpeg not found in PATH: install ffmpeg")
		}
	}
	dir := t.TempDir()
	src := []string{"-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30:duration=1.5", "-f", "lavfi", "-i", "sine=duration=1.5"}
	cases := map[string][]string{
		"h264.mp4":    append(src, "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-metadata:s:a", "language=fra"),
		"hevc.mov":    append(src, "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error", "-tag:v", "hvc1", "-c:a", "aac"),
		"rotated.mp4": append(src, "-c:v", "libx264", "-preset", "ultrafast", "-an", "-metadata:s:v", "rotate=90"),
		"audio.m4a":   {"-f", "lavfi", "-i", "sine=duration=2", "-c:a", "aac"},
		"vp9.mp4":     append(src, "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus"),
		"ntsc.mp4":    {"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30000/1001:duration=1", "-c:v", "libx264", "-preset", "ultrafast"},
	}
	ff := &FFprobeProber{}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, name)
			full := append([]string{"-nostdin", "-v", "error", "-y"}, args...)
			if out, err := exec.Command("ffmpeg", append(full, p)...).CombinedOutput(); err != nil {
				t.Fatalf("ffmpeg: %v: %s", err, out)
			}
			basic, err := spool.BasicProber().Probe(t.Context(), p)
			if err != nil {
				t.Fatal(err)
			}
			fast, ok := probeMP4(p, basic)
			if !ok {
				t.Fatalf("probeMP4 gave up on %s", name)
			}
			out, err := ff.run(t.Context(), p)
			if err != nil {
				t.Fatal(err)
			}
			want := fromFFprobe(out, basic, p)
			if fast.Kind != want.Kind || fast.Type != want.Type || fast.Container != want.Container || fast.Codec != want.Codec ||
				fast.Width != want.Width || fast.Height != want.Height || fast.Orientation != want.Orientation ||
				fast.Language != want.Language || math.Abs(fast.Duration-want.Duration) > 0.05 ||
				math.Abs(fast.FPS-want.FPS) > 0.01 || math.Abs(float64(fast.Bitrate-want.Bitrate)) > 0.02*float64(want.Bitrate) {
				t.Errorf("box reader:\n%#v\nffprobe:\n%#v", *fast, *want)
			}
		})
	}
}

// TestProbeMP4GivesUp: what the box reader does not know goes to ffprobe.
func TestProbeMP4GivesUp(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"text.mp4": "hello, world", "short.mp4": "\x00\x00\x00\x20ftypisom",
		"nomoov.mp4": "\x00\x00\x00\x0cftypisom"} {
		p := filepath.Join(dir, name)
		if err := writeTestFile(p, content); err != nil {
			t.Fatal(err)
		}
		if f, ok := probeMP4(p, &spool.File{}); ok {
			t.Errorf("%s: probeMP4 = %+v, want it to give up", name, f)
		}
	}
}

func writeTestFile(p, content string) error { return os.WriteFile(p, []byte(content), 0o644) }
