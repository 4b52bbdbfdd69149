package kinds_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/spoolrun/spool"
)

// mediaInputs caches the inputs that several media tests share, made once
// per test binary: a 10 s 1920x1080 clip takes a while here.
var mediaInputs struct {
	mu    sync.Mutex
	dir   string
	paths map[string]string
}

func TestMain(m *testing.M) {
	code := m.Run()
	if mediaInputs.dir != "" {
		os.RemoveAll(mediaInputs.dir)
	}
	os.Exit(code)
}

// sharedInput returns the path of the input called name, made with ffmpeg
// args (its output path appended) on first use.
func sharedInput(t *testing.T, name string, args ...string) string {
	t.Helper()
	needFFmpeg(t)
	mediaInputs.mu.Lock()
	defer mediaInputs.mu.Unlock()
	if p, ok := mediaInputs.paths[name]; ok {
		return p
	}
	if mediaInputs.dir == "" {
		dir, err := os.MkdirTemp("", "spool-media-test-")
		if err != nil {
			t.Fatal(err)
		}
		mediaInputs.dir, mediaInputs.paths = dir, map[string]string{}
	}
	p := filepath.Join(mediaInputs.dir, name)
	ffmpeg(t, append(args, p)...)
	mediaInputs.paths[name] = p
	return p
}

// hdClip is a 10 s 1920x1080 25 fps clip with a tone, encoded fast.
func hdClip(t *testing.T) string {
	return sharedInput(t, "hd.mp4", "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=25:duration=10",
		"-f", "lavfi", "-i", "sine=frequency=440:duration=10", "-c:v", "libx264", "-preset", "ultrafast",
		"-pix_fmt", "yuv420p", "-c:a", "aac")
}

// smallClip is a 4 s 320x180 clip with a tone.
func smallClip(t *testing.T) string {
	return sharedInput(t, "small.mp4", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=4",
		"-f", "lavfi", "-i", "sine=frequency=440:duration=4", "-c:v", "libx264", "-preset", "ultrafast",
		"-pix_fmt", "yuv420p", "-c:a", "aac")
}

// silentClip is a 2 s 320x240 clip without audio.
func silentClip(t *testing.T) string {
	return sharedInput(t, "silent.mp4", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=2",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")
}

// noiseAudio is 6 s of stereo pink noise, each channel its own, as wav:
// hard enough to encode that every encoder reaches its target bitrate.
func noiseAudio(t *testing.T) string {
	return sharedInput(t, "noise.wav",
		"-f", "lavfi", "-i", "anoisesrc=color=pink:amplitude=0.3:duration=6:sample_rate=48000:seed=1",
		"-f", "lavfi", "-i", "anoisesrc=color=pink:amplitude=0.3:duration=6:sample_rate=48000:seed=2",
		"-filter_complex", "[0][1]amerge=inputs=2", "-c:a", "pcm_s16le")
}

// upload stores a local file in e and returns its id.
func upload(t *testing.T, e *spool.Engine, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rec, err := e.CreateFile(t.Context(), f, &spool.FileParams{Filename: filepath.Base(p)})
	if err != nil {
		t.Fatalf("upload %s: %v", p, err)
	}
	return rec.ID
}

// runLong creates a task and waits for it with a deadline fit for a
// transcode on a slow, shared machine.
func runLong(t *testing.T, e *spool.Engine, req spool.Request) *spool.Task {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	task, err := e.Create(ctx, req)
	if err != nil {
		t.Fatalf("create %s: %v", req.Kind, err)
	}
	done, err := e.Wait(ctx, task.ID)
	if err != nil {
		t.Fatalf("wait for %s: %v", task.ID, err)
	}
	return done
}

// saveOutput copies a file's bytes to the test's directory for ffprobe.
func saveOutput(t *testing.T, e *spool.Engine, f *spool.File) string {
	t.Helper()
	_, r, err := e.OpenFile(t.Context(), f.ID)
	if err != nil {
		t.Fatalf("open %s: %v", f.ID, err)
	}
	defer r.Close()
	p := filepath.Join(t.TempDir(), f.Filename)
	w, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := io.Copy(w, r); err != nil {
		t.Fatal(err)
	}
	return p
}

// probed is what ffprobe says of a file, in the parts the tests check.
type probed struct {
	Streams []struct {
		CodecType string `json:"codec_type"`
		CodecName string `json:"codec_name"`
		Width     int    `json:"width"`
		Height    int    `json:"height"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
		BitRate  string `json:"bit_rate"`
	} `json:"format"`
}

func ffprobe(t *testing.T, p string) *probed {
	t.Helper()
	out, err := execOutput(t, "ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", p)
	if err != nil {
		t.Fatalf("ffprobe %s: %v", p, err)
	}
	var pr probed
	if err := json.Unmarshal([]byte(out), &pr); err != nil {
		t.Fatal(err)
	}
	return &pr
}

// stream returns the first stream of a type, or fails the test.
func (p *probed) stream(t *testing.T, typ string) (codec string, w, h int) {
	t.Helper()
	for _, s := range p.Streams {
		if s.CodecType == typ {
			return s.CodecName, s.Width, s.Height
		}
	}
	t.Fatalf("no %s stream in %+v", typ, p.Streams)
	return "", 0, 0
}

func (p *probed) has(typ string) bool {
	for _, s := range p.Streams {
		if s.CodecType == typ {
			return true
		}
	}
	return false
}

func (p *probed) duration(t *testing.T) float64 {
	t.Helper()
	d, err := strconv.ParseFloat(p.Format.Duration, 64)
	if err != nil {
		t.Fatalf("duration %q: %v", p.Format.Duration, err)
	}
	return d
}

// checkDuration fails unless d is want within 0.1 s.
func checkDuration(t *testing.T, d, want float64) {
	t.Helper()
	if math.Abs(d-want) > 0.1 {
		t.Errorf("duration %.3f s, want %.3f ± 0.1", d, want)
	}
}

// topAtoms lists the top-level boxes of an MP4 file.
func topAtoms(t *testing.T, p string) []string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var atoms []string
	var off int64
	for {
		var hdr [16]byte
		if _, err := f.ReadAt(hdr[:8], off); errors.Is(err, io.EOF) {
			return atoms
		} else if err != nil {
			t.Fatal(err)
		}
		size := int64(binary.BigEndian.Uint32(hdr[:4]))
		atoms = append(atoms, string(hdr[4:8]))
		if size == 1 {
			if _, err := f.ReadAt(hdr[8:16], off+8); err != nil {
				t.Fatal(err)
			}
			size = int64(binary.BigEndian.Uint64(hdr[8:16]))
		}
		if size < 8 {
			return atoms
		}
		off += size
	}
}
