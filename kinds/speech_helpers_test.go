package kinds_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/spoolrun/spool"
)

// audioUpload is what a fake transcription endpoint received.
type audioUpload struct {
	fields           map[string][]string
	filename         string
	rate, channels   int
	bits             int
	duration         float64 // seconds of audio
	contentType, key string
}

// whisper is a fake OpenAI /audio/transcriptions endpoint: it checks the
// multipart upload, reads the WAV's header, and answers verbose_json with
// one segment covering the whole upload, "part N".
type whisper struct {
	t  *testing.T
	mu sync.Mutex
	// got are the uploads, in order.
	got []audioUpload
	// fail, if set, answers instead of the transcript when it returns
	// true.
	fail func(w http.ResponseWriter, n int) bool
}

func (f *whisper) uploads() []audioUpload {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]audioUpload(nil), f.got...)
}

func (f *whisper) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/audio/transcriptions" || r.Method != http.MethodPost {
		http.Error(w, `{"error":{"message":"no route"}}`, http.StatusNotFound)
		return
	}
	if err := r.ParseMultipartForm(64 << 20); err != nil {
		f.t.Errorf("fake whisper: parse multipart: %v", err)
		http.Error(w, `{"error":{"message":"bad multipart"}}`, http.StatusBadRequest)
		return
	}
	up := audioUpload{fields: r.MultipartForm.Value, contentType: r.Header.Get("Content-Type"), key: r.Header.Get("Authorization")}
	fh := r.MultipartForm.File["file"]
	if len(fh) != 1 {
		f.t.Errorf("fake whisper: %d files, want 1", len(fh))
		http.Error(w, `{"error":{"message":"no file"}}`, http.StatusBadRequest)
		return
	}
	up.filename = fh[0].Filename
	file, _ := fh[0].Open()
	data, _ := io.ReadAll(file)
	file.Close()
	if len(data) < 44 || string(data[0:4]) != "RIFF" || string(data[8:16]) != "WAVEfmt " {
		f.t.Errorf("fake whisper: upload is not a WAV file (%d bytes)", len(data))
	} else {
		up.channels = int(binary.LittleEndian.Uint16(data[22:24]))
		up.rate = int(binary.LittleEndian.Uint32(data[24:28]))
		up.bits = int(binary.LittleEndian.Uint16(data[34:36]))
		// ffmpeg's header may hold a LIST chunk before data.
		i := bytes.Index(data, []byte("data"))
		size := int(binary.LittleEndian.Uint32(data[i+4 : i+8]))
		if size > len(data)-i-8 || size == 0 {
			size = len(data) - i - 8
		}
		up.duration = float64(size) / float64(up.rate*up.channels*up.bits/8)
	}
	f.mu.Lock()
	f.got = append(f.got, up)
	n := len(f.got)
	f.mu.Unlock()
	if f.fail != nil && f.fail(w, n) {
		return
	}
	text := fmt.Sprintf("part %d.", n)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"task": "transcribe", "language": "english", "duration": up.duration, "text": text,
		"segments": []map[string]any{{"id": 0, "seek": 0, "start": 0.0, "end": up.duration, "text": " " + text,
			"tokens": []int{50364, 1}, "temperature": 0.0, "avg_logprob": -0.25, "compression_ratio": 1.1, "no_speech_prob": 0.01}},
	})
}

// makeAudio writes a mono wav of seconds seconds (44.1 kHz, so that the
// speech kind must resample it) whose tone stops for 0.6 s every 2 s, and
// returns its path.
func makeAudio(t *testing.T, seconds int) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "talk.wav")
	ffmpeg(t, "-f", "lavfi", "-i", fmt.Sprintf("aevalsrc='if(lt(mod(t,2),1.4),0.5*sin(440*2*PI*t),0)':s=44100:d=%d", seconds),
		"-ac", "2", "-c:a", "pcm_s16le", p)
	return p
}

// uploadFile stores the file at p in e.
func uploadFile(t *testing.T, e *spool.Engine, p string) *spool.File {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	f, err := e.CreateFile(context.Background(), bytes.NewReader(data), &spool.FileParams{Filename: filepath.Base(p)})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// openStored returns a stored file's record and bytes.
func openStored(t *testing.T, e *spool.Engine, id string) (*spool.File, []byte) {
	t.Helper()
	f, rc, err := e.OpenFile(context.Background(), id)
	if err != nil {
		t.Fatalf("open file %s: %v", id, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return f, data
}

// noEnv is a Getenv of an empty environment.
func noEnv(string) string { return "" }

// env is a Getenv of the given variables.
func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// containsAny reports whether s contains one of words, in any case.
func containsAny(s string, words []string) bool {
	s = strings.ToLower(s)
	for _, w := range words {
		if strings.Contains(s, strings.ToLower(w)) {
			return true
		}
	}
	return false
}
