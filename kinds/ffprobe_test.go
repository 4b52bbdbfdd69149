package kinds_test

import (
	"context"
	"errors"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/kinds"
)

// TestFFprobeMedia probes files that ffmpeg made and checks every field
// the prober fills.
func TestFFprobeMedia(t *testing.T) {
	needFFmpeg(t)
	t.Parallel()
	dir := t.TempDir()
	file := func(name string) string { return filepath.Join(dir, name) }
	clip, codec := makeVideo(t)
	ffmpeg(t, "-f", "lavfi", "-i", "sine=frequency=440", "-t", "1", file("tone.wav"))
	ffmpeg(t, "-f", "lavfi", "-i", "testsrc=size=64x48", "-frames:v", "1", file("frame.png"))
	ffmpeg(t, "-f", "lavfi", "-i", "testsrc=size=64x48", "-frames:v", "1", file("frame.jpg"))
	ffmpeg(t, "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10", "-t", "2", "-c:v", "mpeg4", file("clip.mov"))
	ffmpeg(t, "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10", "-t", "2", "-c:v", "mpeg4", file("clip.mkv"))
	ffmpeg(t, "-f", "lavfi", "-i", "testsrc=size=48x64", "-frames:v", "1", "-f", "image2pipe", "-c:v", "png", file("tall"))

	tests := []struct {
		path string
		want spool.File
	}{
		{clip, spool.File{Kind: "video", Type: "video/mp4", Container: "mp4", Codec: codec,
			Width: 320, Height: 240, Orientation: "landscape", FPS: 25, Duration: 1, Frames: 25}},
		{file("tone.wav"), spool.File{Kind: "audio", Type: "audio/wav", Container: "wav", Codec: "pcm_s16le",
			Duration: 1}},
		{file("frame.png"), spool.File{Kind: "image", Type: "image/png", Container: "png", Codec: "png",
			Width: 64, Height: 48, Orientation: "landscape", Frames: 1}},
		{file("frame.jpg"), spool.File{Kind: "image", Type: "image/jpeg", Container: "jpeg", Codec: "jpeg",
			Width: 64, Height: 48, Orientation: "landscape", Frames: 1}},
		{file("clip.mov"), spool.File{Kind: "video", Type: "video/quicktime", Container: "mov", Codec: "mpeg4",
			Width: 160, Height: 120, Orientation: "landscape", FPS: 10, Duration: 2, Frames: 20}},
		{file("clip.mkv"), spool.File{Kind: "video", Type: "video/x-matroska", Container: "mkv", Codec: "mpeg4",
			Width: 160, Height: 120, Orientation: "landscape", FPS: 10, Duration: 2}},
		// No extension: ffprobe tells a PNG by its content.
		{file("tall"), spool.File{Kind: "image", Type: "image/png", Container: "png", Codec: "png",
			Width: 48, Height: 64, Orientation: "portrait", Frames: 1}},
	}
	p := kinds.DefaultProber()
	if _, ok := p.(*kinds.FFprobeProber); !ok {
		t.Fatalf("DefaultProber() = %T with ffprobe in PATH, want *kinds.FFprobeProber", p)
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.path), func(t *testing.T) {
			t.Parallel()
			got, err := p.Probe(t.Context(), tt.path)
			if err != nil {
				t.Fatalf("Probe: %v", err)
			}
			st, err := os.Stat(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			want.Object, want.Filesize = "source", st.Size()
			// Durations of encoded media are close, not exact, and bitrates
			// depend on the encoder and the container's overhead.
			if math.Abs(got.Duration-want.Duration) > 0.1 {
				t.Errorf("duration = %v, want %v ± 0.1", got.Duration, want.Duration)
			}
			if want.Kind != "image" && got.Bitrate <= 0 {
				t.Errorf("bitrate = %d, want some", got.Bitrate)
			}
			got.Duration, got.Bitrate = want.Duration, 0
			if jsonOf(t, got) != jsonOf(t, &want) {
				t.Errorf("Probe = %s\nwant    %s", jsonOf(t, got), jsonOf(t, &want))
			}
		})
	}
}

// TestFFprobeRotated: a video whose display matrix turns it by 90° reports
// its displayed size.
func TestFFprobeRotated(t *testing.T) {
	needFFmpeg(t)
	t.Parallel()
	clip, _ := makeVideo(t)
	rotated := filepath.Join(t.TempDir(), "rotated.mp4")
	// ffmpeg 5 turns a rotate tag into a display matrix; ffmpeg 6 and later
	// take -display_rotation instead.
	if v := ffmpegVersion(t); v >= 6 {
		ffmpeg(t, "-display_rotation", "90", "-i", clip, "-c", "copy", rotated)
	} else {
		ffmpeg(t, "-i", clip, "-c", "copy", "-metadata:s:v", "rotate=90", rotated)
	}
	got, err := kinds.DefaultProber().Probe(t.Context(), rotated)
	if err != nil {
		t.Fatal(err)
	}
	if got.Width != 240 || got.Height != 320 || got.Orientation != "portrait" {
		t.Errorf("Probe = %s, want a 240×320 portrait video", jsonOf(t, got))
	}
}

// TestFFprobeNotMedia: files ffprobe cannot read, or that hold neither
// picture nor sound, get what spool.BasicProber says.
func TestFFprobeNotMedia(t *testing.T) {
	needFFmpeg(t)
	t.Parallel()
	dir := t.TempDir()
	files := map[string]string{
		"data.json": `{"a": 1}`,
		"notes.txt": "hello\n",
		"subs.vtt":  "WEBVTT\n\n00:00.000 --> 00:01.000\nhello\n",
		// Not a picture whatever its name: no codec, no size.
		"fake.png": "hello\n",
		"fake.jpg": "hello\n",
	}
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := kinds.DefaultProber().Probe(t.Context(), path)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		want, err := spool.BasicProber().Probe(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		if jsonOf(t, got) != jsonOf(t, want) {
			t.Errorf("%s: Probe = %s, want the basic prober's %s", name, jsonOf(t, got), jsonOf(t, want))
		}
	}
}

// TestFFprobePlaylistFetchesNothing: a playlist whose segments, keys or
// variants are URLs on a server makes ffprobe fetch nothing: it is not
// media, then (what spool.BasicProber says), rather than a way to make a
// request.
func TestFFprobePlaylistFetchesNothing(t *testing.T) {
	needFFmpeg(t)
	t.Parallel()
	srv, hits := serve(t, func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("ffprobe fetched %s", r.URL)
		http.Error(w, "no", http.StatusNotFound)
	})
	dir := t.TempDir()
	seg := filepath.Join(dir, "seg.ts")
	ffmpeg(t, "-f", "lavfi", "-i", "testsrc=size=64x48:rate=5", "-t", "1", "-c:v", "mpeg2video", "-f", "mpegts", seg)
	files := map[string]string{
		"segment.m3u8": "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXTINF:10.0,\n" +
			srv.URL + "/seg0.ts\n#EXT-X-ENDLIST\n",
		// A user chooses the stored name: the content alone must not fetch.
		"segment": "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10.0,\n" + srv.URL + "/seg1.ts\n#EXT-X-ENDLIST\n",
		"key.m3u8": "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXT-X-KEY:METHOD=AES-128,URI=\"" + srv.URL + "/key\"\n" +
			"#EXTINF:1.0,\n" + seg + "\n#EXT-X-ENDLIST\n",
		"master.m3u8":   "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000\n" + srv.URL + "/variant.m3u8\n",
		"list.ffconcat": "ffconcat version 1.0\nfile " + srv.URL + "/part.ts\n",
	}
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := kinds.DefaultProber().Probe(t.Context(), path)
		if err != nil {
			continue // failing is fine; fetching is not
		}
		want, err := spool.BasicProber().Probe(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		if jsonOf(t, got) != jsonOf(t, want) {
			t.Errorf("%s: Probe = %s, want the basic prober's %s", name, jsonOf(t, got), jsonOf(t, want))
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the server got %d requests", n)
	}
}

// TestFFprobeMissingFile: a file that does not exist is an error, not a
// guess.
func TestFFprobeMissingFile(t *testing.T) {
	t.Parallel()
	_, err := (&kinds.FFprobeProber{}).Probe(t.Context(), filepath.Join(t.TempDir(), "nope.mp4"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Probe(missing file) = %v, want an error matching os.ErrNotExist", err)
	}
}

// TestFFprobeCancelled: a cancelled context stops the probe, without
// starting ffprobe when it is already cancelled.
func TestFFprobeCancelled(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "a.txt")
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := (&kinds.FFprobeProber{Path: "/bin/sh"}).Probe(ctx, path)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Probe(cancelled) = %v, want context.Canceled", err)
	}
}

// ffmpegVersion returns ffmpeg's major version, or 0 when it cannot tell
// (a build from git says "N-…").
func ffmpegVersion(t *testing.T) int {
	t.Helper()
	out, err := execOutput(t, "ffmpeg", "-version")
	if err != nil {
		t.Fatal(err)
	}
	// "ffmpeg version 5.1.6-0+deb12u1 Copyright …"
	fields := strings.Fields(out)
	if len(fields) < 3 {
		return 0
	}
	major, _, _ := strings.Cut(strings.TrimPrefix(fields[2], "n"), ".")
	n := 0
	for _, c := range major {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}
