package kinds_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/kinds"
)

// speechOutput is the speech kind's output as the API shows it.
type speechOutput struct {
	ID         string          `json:"id"`
	Object     string          `json:"object"`
	Kind       string          `json:"kind"`
	Detected   bool            `json:"detected"`
	Language   string          `json:"language"`
	Text       string          `json:"text"`
	Confidence float64         `json:"confidence"`
	Duration   float64         `json:"duration"`
	Timeline   []kinds.Segment `json:"timeline"`
}

func decodeSpeech(t *testing.T, task *spool.Task) *speechOutput {
	t.Helper()
	if task.Status != spool.StatusCompleted {
		t.Fatalf("speech task is %s (error %q), want completed", task.Status, task.Error)
	}
	var out speechOutput
	if err := json.Unmarshal(task.Output, &out); err != nil {
		t.Fatalf("decode output %s: %v", task.Output, err)
	}
	return &out
}

// fakeWhisper starts a fake transcription endpoint and returns a
// transcriber of it with key, and the fake.
func fakeWhisper(t *testing.T, key string, maxBytes int64) (*kinds.OpenAITranscriber, *whisper) {
	t.Helper()
	f := &whisper{t: t}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return kinds.NewOpenAITranscriber(kinds.OpenAIConfig{BaseURL: srv.URL + "/v1", APIKey: key, MaxAudioBytes: maxBytes}), f
}

// TestSpeechUploadAndOutput: the provider gets a valid multipart upload
// of 16 kHz mono 16-bit audio with the documented fields; the timeline
// lands in the output, which is the intelligence File's content with its
// id, and in the File.
func TestSpeechUploadAndOutput(t *testing.T) {
	needFFmpeg(t)
	tr, fake := fakeWhisper(t, "sk-test", 0)
	e := newEngine(t, spool.Config{}, &kinds.Config{Speech: tr, Getenv: noEnv})
	in := uploadFile(t, e, makeAudio(t, 3))
	task := run(t, e, spool.Request{Kind: "speech", FileID: in.ID, Options: map[string]any{"language": "en"}})
	out := decodeSpeech(t, task)

	ups := fake.uploads()
	if len(ups) != 1 {
		t.Fatalf("%d uploads, want 1", len(ups))
	}
	up := ups[0]
	if up.rate != 16000 || up.channels != 1 || up.bits != 16 {
		t.Errorf("upload is %d Hz, %d channels, %d bits; want 16000 Hz mono 16-bit", up.rate, up.channels, up.bits)
	}
	if math.Abs(up.duration-3) > 0.05 {
		t.Errorf("upload lasts %.3f s, want 3", up.duration)
	}
	want := map[string]string{"model": "whisper-1", "response_format": "verbose_json",
		"timestamp_granularities[]": "segment", "language": "en"}
	for k, v := range want {
		if got := up.fields[k]; len(got) != 1 || got[0] != v {
			t.Errorf("form field %s = %q, want %q", k, got, v)
		}
	}
	if up.key != "Bearer sk-test" || !strings.HasPrefix(up.contentType, "multipart/form-data; boundary=") || up.filename == "" {
		t.Errorf("upload: Authorization %q, Content-Type %q, filename %q", up.key, up.contentType, up.filename)
	}

	if out.Object != "intelligence" || out.Kind != "speech" || !strings.HasPrefix(out.ID, "file_") ||
		out.Language != "en" || out.Text != "part 1." || !out.Detected {
		t.Errorf("output %s: want an intelligence speech object with its file id, language en, text \"part 1.\"", task.Output)
	}
	if len(out.Timeline) != 1 || out.Timeline[0].Start != 0 || math.Abs(out.Timeline[0].End-3) > 0.05 ||
		out.Timeline[0].Text != "part 1." || math.Abs(out.Timeline[0].Confidence-math.Exp(-0.25)) > 0.001 {
		t.Errorf("timeline %+v, want one segment 0–3 s, \"part 1.\", confidence e^-0.25", out.Timeline)
	}
	if task.Progress != 100 {
		t.Errorf("progress %d, want 100", task.Progress)
	}

	f, data := openStored(t, e, out.ID)
	if f.Object != "intelligence" || f.Kind != "speech" || f.Type != "application/json" {
		t.Errorf("file %+v, want object intelligence, kind speech, type application/json", f)
	}
	var stored speechOutput
	if err := json.Unmarshal(data, &stored); err != nil {
		t.Fatalf("file content %s: %v", data, err)
	}
	stored.ID = out.ID
	if jsonOf(t, stored) != jsonOf(t, out) {
		t.Errorf("file content %s, want the output without its id %s", data, task.Output)
	}
}

// TestSpeechChunksLongInput: audio over the provider's limit goes up in
// chunks under it, cut in silences; the stitched timeline is monotonic,
// without gaps here (each chunk's one segment covers it), and covers the
// whole duration; each chunk's prompt is the text before it.
func TestSpeechChunksLongInput(t *testing.T) {
	needFFmpeg(t)
	const limit = 44 + 32000*3 // 3 s of 16 kHz 16-bit mono
	tr, fake := fakeWhisper(t, "", limit)
	e := newEngine(t, spool.Config{}, &kinds.Config{Speech: tr, Getenv: noEnv})
	in := uploadFile(t, e, makeAudio(t, 10))
	out := decodeSpeech(t, run(t, e, spool.Request{Kind: "speech", FileID: in.ID}))

	ups := fake.uploads()
	if len(ups) < 4 {
		t.Fatalf("%d uploads, want at least 4 chunks of at most 3 s", len(ups))
	}
	for i, up := range ups {
		if up.duration > 3.001 || up.rate != 16000 || up.channels != 1 {
			t.Errorf("chunk %d: %.3f s at %d Hz, %d channels; want at most 3 s of 16 kHz mono", i, up.duration, up.rate, up.channels)
		}
		if i > 0 && (len(up.fields["prompt"]) != 1 || !strings.Contains(up.fields["prompt"][0], "part")) {
			t.Errorf("chunk %d: prompt %q, want the text before it", i, up.fields["prompt"])
		}
	}
	if len(out.Timeline) != len(ups) {
		t.Fatalf("timeline of %d segments, want one per chunk (%d): %+v", len(out.Timeline), len(ups), out.Timeline)
	}
	prev := 0.0
	for i, s := range out.Timeline {
		if math.Abs(s.Start-prev) > 0.002 || s.End <= s.Start {
			t.Errorf("segment %d runs %.3f–%.3f after one ending at %.3f: want monotonic, without gaps", i, s.Start, s.End, prev)
		}
		if i < len(out.Timeline)-1 {
			// The tone pauses from 1.4 to 2 s of every 2 s: a cut there
			// is in a silence.
			if m := math.Mod(s.End, 2); m < 1.4 || m > 2 {
				t.Errorf("chunk %d ends at %.3f s, not in a silence", i, s.End)
			}
		}
		prev = s.End
	}
	if math.Abs(prev-10) > 0.05 || math.Abs(out.Duration-10) > 0.05 {
		t.Errorf("timeline ends at %.3f s, duration %.3f; want both 10", prev, out.Duration)
	}
	if !strings.HasPrefix(out.Text, "part 1. part 2.") {
		t.Errorf("text %q, want the chunks' texts in order", out.Text)
	}
}

// TestSpeechProviderErrors: 429 then success retries, honouring
// Retry-After; 5xx every time ends in error; 401 fails at once with a
// message without the key, although the provider echoed it; an answer
// that is not the API's JSON fails clearly.
func TestSpeechProviderErrors(t *testing.T) {
	needFFmpeg(t)
	const key = "sk-secret-0123456789"
	cases := []struct {
		name    string
		fail    func(w http.ResponseWriter, n int) bool
		status  spool.Status
		uploads int
		errHas  string
	}{
		{"429 then success", func(w http.ResponseWriter, n int) bool {
			if n > 1 {
				return false
			}
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			w.Write([]byte(`{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`))
			return true
		}, spool.StatusCompleted, 2, ""},
		{"503 always", func(w http.ResponseWriter, n int) bool {
			http.Error(w, `{"error":{"message":"overloaded"}}`, http.StatusServiceUnavailable)
			return true
		}, spool.StatusError, 3, "503"},
		{"401 echoing the key", func(w http.ResponseWriter, n int) bool {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":{"message":"Incorrect API key provided: ` + key + `. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","code":"invalid_api_key"}}`))
			return true
		}, spool.StatusFailed, 1, "401"},
		{"garbage echoing the key", func(w http.ResponseWriter, n int) bool {
			w.Write([]byte("<html>Bad gateway, or so " + key + " says</html>"))
			return true
		}, spool.StatusFailed, 1, "malformed answer"},
		{"no text", func(w http.ResponseWriter, n int) bool {
			w.Write([]byte(`{"task":"transcribe"}`))
			return true
		}, spool.StatusFailed, 1, "malformed answer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr, fake := fakeWhisper(t, key, 0)
			fake.fail = tc.fail
			e := newEngine(t, spool.Config{}, &kinds.Config{Speech: tr, Getenv: noEnv})
			in := uploadFile(t, e, makeAudio(t, 1))
			task := run(t, e, spool.Request{Kind: "speech", FileID: in.ID})
			if task.Status != tc.status || len(fake.uploads()) != tc.uploads || !strings.Contains(task.Error, tc.errHas) {
				t.Errorf("task %s after %d uploads, error %q; want %s after %d, error containing %q",
					task.Status, len(fake.uploads()), task.Error, tc.status, tc.uploads, tc.errHas)
			}
			if strings.Contains(task.Error, key) || strings.Contains(string(task.Output), key) {
				t.Errorf("the key is in the task: error %q", task.Error)
			}
			if strings.Contains(task.Error, "[redacted]") != strings.Contains(tc.name, "key") {
				t.Errorf("error %q: want [redacted] exactly where the provider echoed the key", task.Error)
			}
			evs, err := e.Events(context.Background(), "", 1000)
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := json.Marshal(evs); strings.Contains(string(b), key) {
				t.Errorf("the key is in the task's events")
			}
		})
	}
}

// TestSpeechProviderResolution: with nothing configured, OPENAI_API_KEY
// and OPENAI_BASE_URL (read through Config.Getenv) make the default an
// OpenAI-compatible provider, taking precedence over the local one.
func TestSpeechProviderResolution(t *testing.T) {
	needFFmpeg(t)
	fake := &whisper{t: t}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	e := newEngine(t, spool.Config{}, &kinds.Config{Getenv: env(map[string]string{
		"OPENAI_API_KEY": "sk-env", "OPENAI_BASE_URL": srv.URL + "/v1"})})
	in := uploadFile(t, e, makeAudio(t, 1))
	out := decodeSpeech(t, run(t, e, spool.Request{Kind: "speech", FileID: in.ID}))
	if ups := fake.uploads(); len(ups) != 1 || ups[0].key != "Bearer sk-env" || out.Text != "part 1." {
		t.Errorf("uploads %+v, text %q: want one, with the environment's key", ups, out.Text)
	}
}

// TestSpeechUnavailable: with no provider configured and no pocketsphinx
// in PATH, speech is unavailable with the reason, and a started engine
// refuses it at Create. Not parallel: it changes PATH.
func TestSpeechUnavailable(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	for _, prog := range []string{"ffmpeg", "ffprobe"} {
		p, _ := exec.LookPath(prog)
		if err := os.Symlink(p, filepath.Join(dir, prog)); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir)
	const reason = "no speech provider configured: set OPENAI_API_KEY (or OPENAI_BASE_URL, for a local OpenAI-compatible server) " +
		"in the environment of spool serve, spool run or your program, or kinds.Config.Speech in Go; or install pocketsphinx"
	e := newEngine(t, spool.Config{}, &kinds.Config{Getenv: noEnv})
	for _, info := range e.Kinds(context.Background()) {
		if info.Kind == "speech" && (info.Available || info.Reason != reason) {
			t.Errorf("speech: available %v, reason %q; want unavailable: %q", info.Available, info.Reason, reason)
		}
	}
	_, err := e.Create(context.Background(), spool.Request{Kind: "speech", URL: "https://example.com/a.mp4"})
	if !errors.Is(err, spool.ErrKindUnavailable) || !strings.Contains(err.Error(), reason) {
		t.Errorf("Create = %v, want ErrKindUnavailable saying %q", err, reason)
	}
}

// needSphinx skips the test unless pocketsphinx, its model and espeak-ng
// are installed.
func needSphinx(t *testing.T) {
	t.Helper()
	needFFmpeg(t)
	if err := (&kinds.PocketSphinx{}).Check(context.Background()); err != nil {
		t.Skipf("%v (apt-get install -y pocketsphinx pocketsphinx-en-us)", err)
	}
	if _, err := exec.LookPath("espeak-ng"); err != nil {
		t.Skip("espeak-ng not found in PATH: install espeak-ng (apt-get install -y espeak-ng)")
	}
}

// spoken are the words of the sentence the local tests speak.
var spoken = []string{"one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"}

// speak writes the sentence spoken by espeak-ng as a wav and returns its
// path and duration.
func speak(t *testing.T) (string, float64) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "spoken.wav")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "espeak-ng", "-s", "120", "-w", p, strings.Join(spoken, " ")).CombinedOutput(); err != nil {
		t.Fatalf("espeak-ng: %v\n%s", err, out)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return p, float64(st.Size()-44) / (22050 * 2) // espeak-ng's 22.05 kHz 16-bit mono
}

// TestSpeechPocketSphinx: with nothing configured, a sentence spoken by
// espeak-ng is transcribed locally, end to end, to text with at least one
// of its words, timed inside the clip.
func TestSpeechPocketSphinx(t *testing.T) {
	needSphinx(t)
	p, dur := speak(t)
	e := newEngine(t, spool.Config{}, &kinds.Config{Getenv: noEnv})
	in := uploadFile(t, e, p)
	out := decodeSpeech(t, run(t, e, spool.Request{Kind: "speech", FileID: in.ID}))
	if !containsAny(out.Text, spoken) || out.Language != "en" || len(out.Timeline) == 0 {
		t.Fatalf("output %+v: want English text with one of %q", out, spoken)
	}
	for _, s := range out.Timeline {
		if s.Start < 0 || s.End < s.Start || s.End > dur+0.05 || s.Text == "" {
			t.Errorf("segment %+v not inside the %.2f s clip", s, dur)
		}
	}
	t.Logf("pocketsphinx heard %q", out.Text)
}
