package kinds_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/kinds"
)

// TestOpenAIChatRequest: text and images go as content parts with data:
// URLs, a schema as a json_schema response_format; the answer's content
// comes back.
func TestOpenAIChatRequest(t *testing.T) {
	var got map[string]any
	srv, _ := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/chat/completions" || r.Header.Get("Authorization") != "Bearer k" {
			t.Errorf("request %s with Authorization %q", r.URL.Path, r.Header.Get("Authorization"))
		}
		json.NewDecoder(r.Body).Decode(&got)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini",
			"choices":[{"index":0,"message":{"role":"assistant","content":"{\"title\":\"x\"}","refusal":null},"logprobs":null,"finish_reason":"stop"}],
			"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`)
	})
	chat := kinds.NewOpenAIChat(kinds.OpenAIConfig{BaseURL: srv.URL + "/v1/", APIKey: "k"})
	png := pngBytes(t, 2, 2)
	resp, err := chat.Chat(t.Context(), &kinds.ChatRequest{System: "be brief", Prompt: "describe",
		Images: []kinds.Image{{Type: "image/png", Data: png}}, Schema: json.RawMessage(`{"type":"object"}`), SchemaName: "desc", Strict: true})
	if err != nil || resp.Text != `{"title":"x"}` {
		t.Fatalf("Chat = %+v, %v", resp, err)
	}
	want := `{"messages":[{"content":"be brief","role":"system"},{"content":[{"text":"describe","type":"text"},` +
		`{"image_url":{"url":"data:image/png;base64,` + base64.StdEncoding.EncodeToString(png) + `"},"type":"image_url"}],"role":"user"}],` +
		`"model":"gpt-4o-mini","response_format":{"json_schema":{"name":"desc","schema":{"type":"object"},"strict":true},"type":"json_schema"}}`
	if b, _ := json.Marshal(got); string(b) != want {
		t.Errorf("request\n%s\nwant\n%s", b, want)
	}
	// A request's Model (the prompt kind's model option) wins over the
	// configured one.
	if _, err := chat.Chat(t.Context(), &kinds.ChatRequest{Prompt: "p", Model: "gpt-4.1"}); err != nil {
		t.Fatal(err)
	}
	if got["model"] != "gpt-4.1" {
		t.Errorf("model %v, want the request's gpt-4.1", got["model"])
	}
}

// TestOpenAIChatAnswers: a refusal, an empty answer and an answer without
// choices fail the task (Permanent) saying so.
func TestOpenAIChatAnswers(t *testing.T) {
	for _, tc := range []struct{ answer, errHas string }{
		{`{"choices":[{"message":{"content":null,"refusal":"I can't help with that."},"finish_reason":"stop"}]}`, "refused"},
		{`{"choices":[{"message":{"content":""},"finish_reason":"stop"}]}`, "malformed answer: empty message"},
		{`{"choices":[]}`, "malformed answer: no choices"},
		{`not json`, "malformed answer"},
	} {
		srv, _ := serve(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, tc.answer) })
		_, err := kinds.NewOpenAIChat(kinds.OpenAIConfig{BaseURL: srv.URL}).Chat(t.Context(), &kinds.ChatRequest{Prompt: "hi"})
		if !spool.IsPermanent(err) || !strings.Contains(err.Error(), tc.errHas) {
			t.Errorf("answer %s: error %v, want a Permanent one containing %q", tc.answer, err, tc.errHas)
		}
	}
}

// TestOpenAIModeratorScores: each image goes up as an image_url input;
// sexual/minors counts towards sexual, violence/graphic is gore, nudity is
// sexual unless the provider scores nudity.
func TestOpenAIModeratorScores(t *testing.T) {
	var bodies []map[string]any
	srv, hits := serve(t, func(w http.ResponseWriter, r *http.Request) {
		var b map[string]any
		json.NewDecoder(r.Body).Decode(&b)
		bodies = append(bodies, b)
		extra := ""
		if len(bodies) == 2 {
			extra = `,"nudity":0.9`
		}
		io.WriteString(w, `{"id":"modr-1","model":"omni-moderation-latest","results":[{"flagged":false,
			"categories":{"sexual":false},"category_scores":{"sexual":0.2,"sexual/minors":0.4,"violence":0.1,
			"violence/graphic":0.05,"harassment":0.7`+extra+`},"category_applied_input_types":{"sexual":["image"]}}]}`)
	})
	m := kinds.NewOpenAIModerator(kinds.OpenAIConfig{BaseURL: srv.URL})
	img := kinds.Image{Type: "image/png", Data: pngBytes(t, 2, 2)}
	scores, err := m.Moderate(t.Context(), []kinds.Image{img, img})
	if err != nil {
		t.Fatal(err)
	}
	want := []kinds.Scores{{Nudity: 0.4, Sexual: 0.4, Violence: 0.1, Gore: 0.05}, {Nudity: 0.9, Sexual: 0.4, Violence: 0.1, Gore: 0.05}}
	if jsonOf(t, scores) != jsonOf(t, want) || hits.Load() != 2 {
		t.Errorf("scores %+v after %d requests, want %+v after 2", scores, hits.Load(), want)
	}
	in, _ := json.Marshal(bodies[0]["input"])
	if bodies[0]["model"] != "omni-moderation-latest" || !strings.HasPrefix(string(in), `[{"image_url":{"url":"data:image/png;base64,`) {
		t.Errorf("request %v, want the model and one image_url input", bodies[0])
	}
}

// TestSpeechOpenAIErrors: how the transcriber's failures read: a 429's
// Retry-After is kept and the error is not Permanent; a 400 is; a
// provider that cannot be reached is retried, without the key in the
// message.
func TestSpeechOpenAIErrors(t *testing.T) {
	const key = "sk-abc-123"
	wav := filepath.Join(t.TempDir(), "a.wav")
	if err := os.WriteFile(wav, []byte("RIFF"), 0o644); err != nil {
		t.Fatal(err)
	}
	status := http.StatusTooManyRequests
	srv, _ := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(status)
		io.WriteString(w, `{"error":{"message":"slow down, `+key+`"}}`)
	})
	tr := kinds.NewOpenAITranscriber(kinds.OpenAIConfig{BaseURL: srv.URL, APIKey: key})
	_, err := tr.Transcribe(t.Context(), wav, nil)
	var pe *kinds.ProviderError
	if !errors.As(err, &pe) || pe.StatusCode != 429 || pe.RetryAfter != 7*time.Second || spool.IsPermanent(err) ||
		strings.Contains(err.Error(), key) || !strings.Contains(pe.Message, "[redacted]") {
		t.Errorf("429: %v (%+v), want a retried ProviderError with Retry-After 7s, the key redacted", err, pe)
	}
	status = http.StatusBadRequest
	if _, err := tr.Transcribe(t.Context(), wav, nil); !spool.IsPermanent(err) || !strings.Contains(err.Error(), "400") {
		t.Errorf("400: %v, want Permanent", err)
	}
	srv.Close()
	_, err = tr.Transcribe(t.Context(), wav, nil)
	if err == nil || spool.IsPermanent(err) || strings.Contains(err.Error(), key) {
		t.Errorf("unreachable: %v, want a retried error without the key", err)
	}
	if tr.MaxAudioBytes() != 25<<20 {
		t.Errorf("MaxAudioBytes = %d, want 25 MB", tr.MaxAudioBytes())
	}
}
