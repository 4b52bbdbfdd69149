package kinds_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/kinds"
)

// fakeOpenAI is an OpenAI-compatible provider on loopback: it records
// every request and answers chat completions with chat (the content of
// choices[0].message), transcriptions with the segments of transcript and
// moderations with scores, all in the API's documented shapes.
type fakeOpenAI struct {
	t          *testing.T
	url        string
	chat       func(req *chatCompletion) string
	transcript []kinds.Segment
	scores     func(n int) map[string]float64 // category_scores of the n-th image moderated

	mu       sync.Mutex
	requests map[string][][]byte // by path
	images   int                 // moderated so far
}

// chatCompletion is what a chat completion request carries.
type chatCompletion struct {
	Model    string `json:"model"`
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	ResponseFormat *struct {
		Type       string `json:"type"`
		JSONSchema struct {
			Name   string          `json:"name"`
			Schema json.RawMessage `json:"schema"`
		} `json:"json_schema"`
	} `json:"response_format"`
}

// parts returns the user message's text and its images, decoded.
func (c *chatCompletion) parts(t *testing.T) (text string, images [][]byte) {
	t.Helper()
	for _, m := range c.Messages {
		if m.Role != "user" {
			continue
		}
		var s string
		if json.Unmarshal(m.Content, &s) == nil {
			text += s
			continue
		}
		var parts []struct {
			Type     string `json:"type"`
			Text     string `json:"text"`
			ImageURL struct {
				URL string `json:"url"`
			} `json:"image_url"`
		}
		if err := json.Unmarshal(m.Content, &parts); err != nil {
			t.Fatalf("user message content %s: %v", m.Content, err)
		}
		for _, p := range parts {
			switch p.Type {
			case "text":
				text += p.Text
			case "image_url":
				data, ok := strings.CutPrefix(p.ImageURL.URL, "data:image/jpeg;base64,")
				if !ok {
					t.Fatalf("image url %.40s…: want a JPEG data url", p.ImageURL.URL)
				}
				b, err := base64.StdEncoding.DecodeString(data)
				if err != nil {
					t.Fatal(err)
				}
				images = append(images, b)
			}
		}
	}
	return text, images
}

func newFakeOpenAI(t *testing.T) *fakeOpenAI {
	f := &fakeOpenAI{t: t, requests: map[string][][]byte{}}
	srv, _ := serve(t, f.serve)
	f.url = srv.URL + "/v1"
	return f
}

func (f *fakeOpenAI) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests[r.URL.Path] = append(f.requests[r.URL.Path], body)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/v1/chat/completions":
		var req chatCompletion
		if err := json.Unmarshal(body, &req); err != nil || f.chat == nil {
			http.Error(w, `{"error": {"message": "bad request"}}`, http.StatusBadRequest)
			return
		}
		content, _ := json.Marshal(f.chat(&req))
		fmt.Fprintf(w, `{"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": %q,
			"choices": [{"index": 0, "message": {"role": "assistant", "content": %s, "refusal": null},
			"logprobs": null, "finish_reason": "stop"}],
			"usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}}`, req.Model, content)
	case "/v1/audio/transcriptions":
		var text []string
		segs := make([]map[string]any, len(f.transcript))
		for i, s := range f.transcript {
			text = append(text, s.Text)
			segs[i] = map[string]any{"id": i, "seek": 0, "start": s.Start, "end": s.End, "text": s.Text,
				"tokens": []int{1}, "temperature": 0, "avg_logprob": -0.2, "compression_ratio": 1.2, "no_speech_prob": 0.01}
		}
		json.NewEncoder(w).Encode(map[string]any{"task": "transcribe", "language": "english", "duration": 4,
			"text": strings.Join(text, " "), "segments": segs})
	case "/v1/moderations":
		var req struct {
			Input []json.RawMessage `json:"input"`
		}
		json.Unmarshal(body, &req)
		results := make([]map[string]any, len(req.Input))
		for i := range req.Input {
			f.mu.Lock()
			n := f.images
			f.images++
			f.mu.Unlock()
			scores := f.scores(n)
			categories := map[string]bool{}
			for k, v := range scores {
				categories[k] = v >= 0.5
			}
			results[i] = map[string]any{"flagged": false, "categories": categories, "category_scores": scores}
		}
		json.NewEncoder(w).Encode(map[string]any{"id": "modr-1", "model": "omni-moderation-latest", "results": results})
	default:
		http.NotFound(w, r)
	}
}

// sent returns the bodies of the requests to path.
func (f *fakeOpenAI) sent(path string) [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests["/v1"+path]
}

// chatSent decodes the chat completion requests.
func (f *fakeOpenAI) chatSent(t *testing.T) []*chatCompletion {
	t.Helper()
	var out []*chatCompletion
	for _, b := range f.sent("/chat/completions") {
		var c chatCompletion
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatal(err)
		}
		out = append(out, &c)
	}
	return out
}

// config returns a kinds.Config whose providers are f.
func (f *fakeOpenAI) config(chat, speech, moderation bool) *kinds.Config {
	c := &kinds.Config{}
	oc := kinds.OpenAIConfig{BaseURL: f.url, APIKey: "sk-test"}
	if chat {
		c.Chat = kinds.NewOpenAIChat(oc)
	}
	if speech {
		c.Speech = kinds.NewOpenAITranscriber(oc)
	}
	if moderation {
		c.Moderation = kinds.NewOpenAIModerator(oc)
	}
	return c
}

// checkFrames fails unless images are n JPEGs at most 512 pixels a side.
func checkFrames(t *testing.T, images [][]byte, n int) {
	t.Helper()
	if len(images) != n {
		t.Fatalf("sent %d images, want %d", len(images), n)
	}
	for i, b := range images {
		cfg, format, err := image.DecodeConfig(bytes.NewReader(b))
		if err != nil || format != "jpeg" || cfg.Width > 512 || cfg.Height > 512 || cfg.Width < 16 {
			t.Fatalf("image %d: %s %dx%d (%v), want a JPEG of at most 512x512", i, format, cfg.Width, cfg.Height, err)
		}
	}
}

// intelOutput decodes a completed task's output and checks that it is
// the intelligence File's content, with its id.
func intelOutput(t *testing.T, e *spool.Engine, task *spool.Task, kind string, v any) {
	t.Helper()
	if task.Status != spool.StatusCompleted {
		t.Fatalf("%s task is %s (error %q), want completed", task.Kind, task.Status, task.Error)
	}
	var head struct{ ID, Object, Kind string }
	if err := json.Unmarshal(task.Output, &head); err != nil || head.Object != "intelligence" || head.Kind != kind {
		t.Fatalf("output %s (%v): want an intelligence object of kind %s", task.Output, err, kind)
	}
	f, err := e.GetFile(t.Context(), head.ID)
	if err != nil || f.Object != "intelligence" {
		t.Fatalf("output's file %s: %+v, %v; want an intelligence File", head.ID, f, err)
	}
	if err := json.Unmarshal(task.Output, v); err != nil {
		t.Fatal(err)
	}
}

var speechSegments = []kinds.Segment{{Start: 0, End: 1.8, Text: "Welcome to the kitchen."},
	{Start: 1.8, End: 3.9, Text: "Today we bake bread."}}

// TestDescriptionSendsFramesAndTranscript is acceptance 5 for description:
// a video's four frames and its transcript, with times, go to the model as
// a JSON Schema request; an image goes alone, without transcription.
func TestDescriptionSendsFramesAndTranscript(t *testing.T) {
	fake := newFakeOpenAI(t)
	fake.transcript = speechSegments
	fake.chat = func(*chatCompletion) string {
		return `{"title": "Baking bread", "description": "A cook bakes bread.", "tags": ["bread", " Baking ", "bread", ""]}`
	}
	e := newEngine(t, spool.Config{}, fake.config(true, true, false))
	task := runLong(t, e, spool.Request{Kind: spool.KindDescription, FileID: upload(t, e, smallClip(t)),
		Options: map[string]any{"language": "fr"}})
	var out struct {
		Language, Title, Description string
		Tags                         []string
	}
	intelOutput(t, e, task, "description", &out)
	if out.Language != "fr" || out.Title != "Baking bread" || out.Description != "A cook bakes bread." ||
		strings.Join(out.Tags, ",") != "bread,Baking" {
		t.Errorf("output %s", task.Output)
	}
	if n := len(fake.sent("/audio/transcriptions")); n != 1 {
		t.Errorf("%d transcriptions, want 1", n)
	}
	reqs := fake.chatSent(t)
	if len(reqs) != 1 {
		t.Fatalf("%d chat requests, want 1", len(reqs))
	}
	text, images := reqs[0].parts(t)
	checkFrames(t, images, 4)
	for _, want := range []string{"[0.0–1.8] Welcome to the kitchen.", "[1.8–3.9] Today we bake bread.",
		"taken at 0.5 s, 1.5 s, 2.5 s, 3.5 s", `"fr"`} {
		if !strings.Contains(text, want) {
			t.Errorf("prompt lacks %q:\n%s", want, text)
		}
	}
	if rf := reqs[0].ResponseFormat; rf == nil || rf.Type != "json_schema" || !bytes.Contains(rf.JSONSchema.Schema, []byte(`"tags"`)) {
		t.Errorf("response_format %+v, want the description's JSON Schema", rf)
	}

	// An image: itself, scaled down, and no transcription.
	task = runLong(t, e, spool.Request{Kind: spool.KindDescription, FileID: upload(t, e, bigPNG(t))})
	intelOutput(t, e, task, "description", &out)
	text, images = fake.chatSent(t)[1].parts(t)
	checkFrames(t, images, 1)
	if !strings.Contains(text, "The attached image is the input") || strings.Contains(text, "Transcript") ||
		len(fake.sent("/audio/transcriptions")) != 1 || out.Language != "en" {
		t.Errorf("image: language %q, prompt %s", out.Language, text)
	}
}

// bigPNG is a 1000x600 PNG, larger than a frame may be.
func bigPNG(t *testing.T) string {
	return sharedInput(t, "big.png", "-f", "lavfi", "-i", "testsrc2=size=1000x600", "-frames:v", "1")
}

// TestOutlineOfAudio is acceptance 5 for outline: audio sends its
// transcript and no image; the sections come back in order, inside the
// input.
func TestOutlineOfAudio(t *testing.T) {
	fake := newFakeOpenAI(t)
	fake.transcript = speechSegments
	fake.chat = func(*chatCompletion) string {
		return `{"sections": [
			{"start": 3, "end": 30, "title": "Baking", "points": ["Bread is baked."]},
			{"start": 0, "end": 4, "title": "Welcome", "points": ["A greeting.", ""]}]}`
	}
	e := newEngine(t, spool.Config{}, fake.config(true, true, false))
	task := runLong(t, e, spool.Request{Kind: spool.KindOutline, FileID: upload(t, e, noiseAudio(t))})
	var out struct {
		Language string
		Sections []struct {
			Start, End float64
			Title      string
			Points     []string
		}
	}
	intelOutput(t, e, task, "outline", &out)
	got := jsonOf(t, out.Sections)
	want := `[{"Start":0,"End":3,"Title":"Welcome","Points":["A greeting."]},{"Start":3,"End":6,"Title":"Baking","Points":["Bread is baked."]}]`
	if got != want || out.Language != "en" {
		t.Errorf("sections %s (language %q), want %s", got, out.Language, want)
	}
	text, images := fake.chatSent(t)[0].parts(t)
	if len(images) != 0 || !strings.Contains(text, "an audio of 6.0 seconds") || !strings.Contains(text, "Today we bake bread.") {
		t.Errorf("sent %d images and %s", len(images), text)
	}
}

// TestPromptWithSchema is acceptance 5 for prompt: the user's prompt goes
// with the frames and the transcript; an answer matching the schema is the
// output's data, one that does not fails the task saying so, and a schema
// that does not compile is refused at Create.
func TestPromptWithSchema(t *testing.T) {
	fake := newFakeOpenAI(t)
	fake.transcript = speechSegments
	answer := `{"count": 2, "items": ["flour", "water"]}`
	fake.chat = func(*chatCompletion) string { return answer }
	e := newEngine(t, spool.Config{}, fake.config(true, true, false))
	in := upload(t, e, smallClip(t))
	schema := map[string]any{"type": "object", "required": []any{"count", "items"}, "additionalProperties": false,
		"properties": map[string]any{"count": map[string]any{"type": "integer"},
			"items": map[string]any{"type": "array", "items": map[string]any{"type": "string"}}}}
	req := spool.Request{Kind: spool.KindPrompt, FileID: in,
		Options: map[string]any{"prompt": "List the ingredients", "schema": schema}}
	task := runLong(t, e, req)
	var out struct {
		Prompt string
		Text   *string
		Data   struct {
			Count int
			Items []string
		}
	}
	intelOutput(t, e, task, "prompt", &out)
	if out.Prompt != "List the ingredients" || out.Text != nil || out.Data.Count != 2 || len(out.Data.Items) != 2 {
		t.Errorf("output %s", task.Output)
	}
	c := fake.chatSent(t)[0]
	text, images := c.parts(t)
	checkFrames(t, images, 4)
	if !strings.Contains(text, "Request: List the ingredients") || !strings.Contains(text, "Welcome to the kitchen.") {
		t.Errorf("prompt sent: %s", text)
	}
	if c.ResponseFormat == nil || !bytes.Contains(c.ResponseFormat.JSONSchema.Schema, []byte(`"count"`)) {
		t.Errorf("response_format %+v, want the user's schema", c.ResponseFormat)
	}

	// An answer that does not match fails, saying why.
	answer = `{"count": "two", "items": ["flour"]}`
	task = runLong(t, e, req)
	if task.Status != spool.StatusFailed || !strings.Contains(task.Error, "does not match the schema") ||
		!strings.Contains(task.Error, "/count") {
		t.Errorf("non-matching answer: %s %q, want failed naming /count", task.Status, task.Error)
	}

	// Without a schema, the text.
	answer = "Flour and water."
	task = runLong(t, e, spool.Request{Kind: spool.KindPrompt, FileID: in, Options: map[string]any{"prompt": "What is made?"}})
	intelOutput(t, e, task, "prompt", &out)
	if out.Text == nil || *out.Text != "Flour and water." || fake.chatSent(t)[2].ResponseFormat != nil {
		t.Errorf("output %s", task.Output)
	}

	// A schema that refers outside itself is refused at Create.
	_, err := e.Create(t.Context(), spool.Request{Kind: spool.KindPrompt, FileID: in,
		Options: map[string]any{"prompt": "x", "schema": map[string]any{"$ref": "file:///etc/passwd"}}})
	var verr *spool.ValidationError
	if !errors.As(err, &verr) || verr.Field != "schema" {
		t.Errorf("Create with a $ref to a file: %v, want a ValidationError on schema", err)
	}
}

// TestChaptersRepairedOrFailed is acceptance 4: a provider's overlapping,
// unordered and out-of-range chapters come out repaired, as a valid track;
// chapters far past the input's end fail the task, saying so.
func TestChaptersRepairedOrFailed(t *testing.T) {
	fake := newFakeOpenAI(t)
	fake.transcript = speechSegments
	answer := `{"chapters": [
		{"start": 1.5, "end": 9, "title": "Baking"},
		{"start": 0, "end": 2, "title": "Welcome"},
		{"start": 3.99, "end": 4, "title": "Tail"}]}`
	fake.chat = func(*chatCompletion) string { return answer }
	e := newEngine(t, spool.Config{}, fake.config(true, true, false))
	in := upload(t, e, smallClip(t)) // 4 s
	for _, format := range []string{"json", "vtt"} {
		task := runLong(t, e, spool.Request{Kind: spool.KindChapters, FileID: in, Options: map[string]any{"format": format}})
		track := outputFile(t, task)
		var out struct {
			Chapters []struct {
				Index      int
				Start, End float64
				Title      string
			}
		}
		if err := json.Unmarshal(task.Output, &out); err != nil {
			t.Fatal(err)
		}
		want := `[{"Index":1,"Start":0,"End":1.5,"Title":"Welcome"},{"Index":2,"Start":1.5,"End":4,"Title":"Baking"}]`
		if got := jsonOf(t, out.Chapters); got != want {
			t.Errorf("%s: chapters %s, want %s", format, got, want)
		}
		if track.Object != "track" || track.Kind != "chapters" || track.Format != format || track.Language != "en" {
			t.Errorf("%s: track %s", format, jsonOf(t, track))
		}
		body := readFile(t, e, track.ID)
		if format == "vtt" {
			wantVTT := "WEBVTT\n\n1\n00:00:00.000 --> 00:00:01.500\nWelcome\n\n2\n00:00:01.500 --> 00:00:04.000\nBaking\n"
			if body != wantVTT {
				t.Errorf("vtt track %q, want %q", body, wantVTT)
			}
		} else if !strings.Contains(body, `"title": "Baking"`) {
			t.Errorf("json track %s", body)
		}
	}
	text, _ := fake.chatSent(t)[0].parts(t)
	if !strings.Contains(text, "[1.8–3.9] Today we bake bread.") || !strings.Contains(text, "from 0 to 4.0 seconds") {
		t.Errorf("prompt %s", text)
	}

	answer = `{"chapters": [{"start": 0, "end": 60, "title": "Welcome"}, {"start": 120, "end": 240, "title": "Baking"}]}`
	task := runLong(t, e, spool.Request{Kind: spool.KindChapters, FileID: in})
	if task.Status != spool.StatusFailed || !strings.Contains(task.Error, `chapter "Baking" starts at 120.0 s, past the end of the input (4.0 s)`) {
		t.Errorf("far out of range: %s %q, want failed saying so", task.Status, task.Error)
	}
	answer = `{"chapters": [{"begin": 0, "title": "Welcome"}]}`
	task = runLong(t, e, spool.Request{Kind: spool.KindChapters, FileID: in})
	if task.Status != spool.StatusFailed || !strings.Contains(task.Error, "does not match the schema") {
		t.Errorf("wrong shape: %s %q, want failed saying so", task.Status, task.Error)
	}
}

// TestNSFWScoresAndThreshold is acceptance 5 for nsfw: the moderation
// scores of each frame map to the timeline and to the highest of each
// score, and detected follows the threshold.
func TestNSFWScoresAndThreshold(t *testing.T) {
	fake := newFakeOpenAI(t)
	fake.scores = func(i int) map[string]float64 {
		return map[string]float64{"sexual": 0.05 * float64(i%4), "violence": 0.6, "violence/graphic": 0.1,
			"harassment": 0.9, "self-harm": 0, "hate": 0, "illicit": 0}
	}
	e := newEngine(t, spool.Config{}, fake.config(false, false, true))
	in := upload(t, e, smallClip(t)) // 4 s: 4 frames
	type verdict struct {
		Detected                                   bool
		Nudity, Sexual, Violence, Gore, Confidence float64
		Timeline                                   []struct{ Time, Nudity, Sexual, Violence, Gore float64 }
	}
	for _, c := range []struct {
		threshold float64
		detected  bool
	}{{0.5, true}, {0.7, false}} {
		task := runLong(t, e, spool.Request{Kind: spool.KindNSFW, FileID: in, Options: map[string]any{"threshold": c.threshold}})
		var out verdict
		intelOutput(t, e, task, "nsfw", &out)
		if out.Detected != c.detected || out.Violence != 0.6 || out.Gore != 0.1 || out.Sexual < 0.149 || out.Sexual > 0.151 ||
			len(out.Timeline) != 4 || out.Timeline[0].Time != 0.5 || out.Timeline[3].Time != 3.5 {
			t.Errorf("threshold %g: output %s", c.threshold, task.Output)
		}
	}
	var images int
	for _, b := range fake.sent("/moderations") {
		images += bytes.Count(b, []byte(`data:image/jpeg;base64,`))
	}
	if images != 8 {
		t.Errorf("moderations got %d images, want 4 per task", images)
	}
}

// TestNSFWChatFallback: without a Moderator, a vision chat model scores
// the frames in a JSON Schema.
func TestNSFWChatFallback(t *testing.T) {
	fake := newFakeOpenAI(t)
	fake.chat = func(*chatCompletion) string {
		return `{"images": [{"nudity": 0.9, "sexual": 0.2, "violence": 0, "gore": 0}]}`
	}
	e := newEngine(t, spool.Config{}, fake.config(true, false, false))
	task := runLong(t, e, spool.Request{Kind: spool.KindNSFW, FileID: upload(t, e, bigPNG(t))})
	var out struct {
		Detected       bool
		Nudity, Sexual float64
		Timeline       []struct{ Time float64 }
	}
	intelOutput(t, e, task, "nsfw", &out)
	if !out.Detected || out.Nudity != 0.9 || out.Sexual != 0.2 || len(out.Timeline) != 1 {
		t.Errorf("output %s", task.Output)
	}
	_, images := fake.chatSent(t)[0].parts(t)
	checkFrames(t, images, 1)
}

// TestDescriptionUnavailableWithoutProvider: with no provider configured
// or in the environment, the model kinds are unavailable, saying what to
// set, and a started engine refuses them.
func TestDescriptionUnavailableWithoutProvider(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "")
	t.Setenv("OPENAI_BASE_URL", "")
	e := newEngine(t, spool.Config{}, nil)
	reasons := map[string]string{}
	for _, k := range e.Kinds(t.Context()) {
		reasons[k.Kind] = k.Reason
	}
	// The reasons name what users of spool serve and spool run set (the
	// environment) beside the Go field, which only a program can set.
	for _, k := range []string{"description", "outline", "prompt", "chapters", "nsfw"} {
		want := []string{"no chat provider configured", "OPENAI_API_KEY", "environment of spool serve, spool run", "kinds.Config.Chat"}
		if k == "nsfw" {
			want[0] = "no moderation provider configured"
			want = append(want, "kinds.Config.Moderation")
		}
		for _, w := range want {
			if !strings.Contains(reasons[k], w) {
				t.Errorf("%s: reason %q does not say %q", k, reasons[k], w)
			}
		}
	}
	_, err := e.Create(t.Context(), spool.Request{Kind: spool.KindDescription, URL: "https://example.com/a.mp4"})
	if err == nil || !strings.Contains(err.Error(), "no chat provider configured") {
		t.Errorf("Create: %v, want refused naming the missing provider", err)
	}
}

// TestNSFWWorkflowAlert: an nsfw step's output is what a later step tests
// and sends: a condition on <ref>.detected lets an http step run, which
// posts the workflow's results so far, the nsfw verdict among them.
func TestNSFWWorkflowAlert(t *testing.T) {
	fake := newFakeOpenAI(t)
	fake.scores = func(int) map[string]float64 { return map[string]float64{"sexual": 0.8, "violence": 0.1} }
	var got []byte
	var mu sync.Mutex
	hook, _ := serve(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got, _ = io.ReadAll(r.Body)
		mu.Unlock()
	})
	e := newEngine(t, spool.Config{AllowNetworks: loopback}, fake.config(false, false, true))
	var steps []spool.Step
	if err := json.Unmarshal([]byte(`[{"kind": "nsfw", "ref": "safety", "next": [
		{"kind": "conditions", "conditions": [{"prop": "safety.detected", "value": "true"}], "next": [
			{"kind": "http", "url": "`+hook.URL+`", "method": "POST", "ref": "alert"}]}]}]`), &steps); err != nil {
		t.Fatal(err)
	}
	wf := runLong(t, e, spool.Request{Kind: spool.KindWorkflow, FileID: upload(t, e, bigPNG(t)), Workflow: steps})
	if wf.Status != spool.StatusCompleted || len(wf.Results.Passed) != 3 {
		t.Fatalf("workflow %s (%s), results %s: want its 3 steps passed", wf.Status, wf.Error, jsonOf(t, wf.Results))
	}
	mu.Lock()
	defer mu.Unlock()
	var sent struct {
		Passed []struct {
			Ref    string
			Output struct {
				Kind     string
				Detected bool
				Sexual   float64
			}
		}
	}
	if err := json.Unmarshal(got, &sent); err != nil || len(sent.Passed) != 2 {
		t.Fatalf("alert sent %s (%v): want the results of the 2 steps before it", got, err)
	}
	if v := sent.Passed[0]; v.Ref != "safety" || v.Output.Kind != "nsfw" || !v.Output.Detected || v.Output.Sexual != 0.8 {
		t.Errorf("alert's first result %+v, want the nsfw verdict", v)
	}
}

// TestChaptersAfterSpeechStep: steps after a speech step get its result
// as their input; chapters and description read its transcript, not
// transcribing again, and description still sees the video's frames.
func TestChaptersAfterSpeechStep(t *testing.T) {
	fake := newFakeOpenAI(t)
	fake.transcript = speechSegments
	fake.chat = func(c *chatCompletion) string {
		if c.ResponseFormat.JSONSchema.Name == "chapters" {
			return `{"chapters": [{"start": 0, "end": 1.8, "title": "Welcome"}, {"start": 1.8, "end": 3.9, "title": "Bread"}]}`
		}
		return `{"title": "Bread", "description": "Bread is baked.", "tags": []}`
	}
	e := newEngine(t, spool.Config{}, fake.config(true, true, false))
	var steps []spool.Step
	if err := json.Unmarshal([]byte(`[{"kind": "speech", "next": [
		{"kind": "chapters", "ref": "chapters", "format": "vtt"}, {"kind": "description", "ref": "about"}]}]`), &steps); err != nil {
		t.Fatal(err)
	}
	wf := runLong(t, e, spool.Request{Kind: spool.KindWorkflow, FileID: upload(t, e, smallClip(t)), Workflow: steps})
	if wf.Status != spool.StatusCompleted {
		t.Fatalf("workflow %s: %s; results %s", wf.Status, wf.Error, jsonOf(t, wf.Results))
	}
	if n := len(fake.sent("/audio/transcriptions")); n != 1 {
		t.Errorf("%d transcriptions, want the speech step's alone", n)
	}
	var chapters, about map[string]any
	for _, p := range wf.Results.Passed {
		out, _ := json.Marshal(p["output"])
		switch p["ref"] {
		case "chapters":
			json.Unmarshal(out, &chapters)
		case "about":
			json.Unmarshal(out, &about)
		}
	}
	if list, _ := chapters["chapters"].([]any); len(list) != 2 || chapters["format"] != "vtt" {
		t.Errorf("chapters step's output %v", chapters)
	}
	if about["title"] != "Bread" {
		t.Errorf("description step's output %v", about)
	}
	for _, c := range fake.chatSent(t) {
		text, images := c.parts(t)
		want := 0
		if c.ResponseFormat.JSONSchema.Name == "description" {
			want = 4
		}
		if len(images) != want || !strings.Contains(text, "a video of 4.0 seconds") || !strings.Contains(text, "Today we bake bread.") {
			t.Errorf("%s request: %d images, text %s", c.ResponseFormat.JSONSchema.Name, len(images), text)
		}
	}
}

// TestDescriptionAudioNeedsTranscriber: with a chat model but nothing to
// transcribe with, a task on an audio file is refused at Create, naming
// what is missing; one on an image is not.
func TestDescriptionAudioNeedsTranscriber(t *testing.T) {
	needFFmpeg(t)
	audio := noiseAudio(t)
	dir := t.TempDir()
	for _, prog := range []string{"ffmpeg", "ffprobe"} { // and no pocketsphinx
		p, _ := exec.LookPath(prog)
		if err := os.Symlink(p, filepath.Join(dir, prog)); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir)
	chat := kinds.NewOpenAIChat(kinds.OpenAIConfig{BaseURL: "http://127.0.0.1:1/v1", APIKey: "k"})
	e := newEngine(t, spool.Config{}, &kinds.Config{Chat: chat, Getenv: noEnv})
	for _, kind := range []string{spool.KindDescription, spool.KindOutline} {
		_, err := e.Create(t.Context(), spool.Request{Kind: kind, FileID: upload(t, e, audio)})
		if !errors.Is(err, spool.ErrKindUnavailable) || !strings.Contains(err.Error(), "an audio input needs a transcript: no speech provider configured") {
			t.Errorf("%s on audio: Create = %v, want refused for want of a transcriber", kind, err)
		}
	}
	img, err := e.CreateFile(t.Context(), bytes.NewReader(pngBytes(t, 8, 8)), &spool.FileParams{Filename: "a.png"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Create(t.Context(), spool.Request{Kind: spool.KindDescription, FileID: img.ID}); err != nil {
		t.Errorf("description on an image: %v", err)
	}
}
