package kinds

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spoolrun/spool"
)

// OpenAIConfig configures a client of an OpenAI-compatible HTTP API:
// OpenAI itself, or a whisper.cpp, llama.cpp, LocalAI, vLLM or Ollama
// server that speaks it. The URL is the operator's, not a request's, so
// the client is a plain one: a server on localhost works, and the engine's
// SSRF policy, which guards the URLs that requests name, does not apply.
//
// The constructors read no environment: kinds.Register fills an empty
// BaseURL and APIKey from OPENAI_BASE_URL and OPENAI_API_KEY before it
// makes the default providers.
type OpenAIConfig struct {
	// BaseURL is the API's root, such as http://localhost:8080/v1.
	// Defaults to https://api.openai.com/v1.
	BaseURL string
	// APIKey is sent as a bearer token, and redacted ("[redacted]") from
	// anything the provider answers before it goes into an error. Defaults
	// to none, which local servers accept.
	APIKey string
	// Model is the model to ask. Defaults to whisper-1 for
	// transcription, gpt-4o-mini for chat and omni-moderation-latest for
	// moderation.
	Model string
	// Timeout bounds one request, upload and answer included; one that
	// runs out is retried like a network error. Defaults to 10 minutes.
	Timeout time.Duration
	// HTTPClient sends the requests. Defaults to a client of its own with
	// http.DefaultTransport's settings.
	HTTPClient *http.Client
	// MaxAudioBytes is the largest audio file the transcriber uploads;
	// the speech kind cuts longer audio into chunks. Defaults to 25 MB,
	// OpenAI's limit. Only the transcriber uses it.
	MaxAudioBytes int64
}

// Defaults of OpenAIConfig fields.
const (
	defaultOpenAIBaseURL     = "https://api.openai.com/v1"
	defaultTranscribeModel   = "whisper-1"
	defaultChatModel         = "gpt-4o-mini"
	defaultModerationModel   = "omni-moderation-latest"
	defaultOpenAITimeout     = 10 * time.Minute
	defaultMaxAudioBytes     = 25 << 20
	maxProviderAnswer        = 32 << 20 // bytes of an answer read
	maxProviderErrorQuote    = 300      // bytes of an error body quoted
	redacted                 = "[redacted]"
	defaultChatSchemaName    = "answer"
	providerMalformedPreface = "malformed answer"
)

// openAIClient is what the three OpenAI-compatible providers share.
type openAIClient struct {
	cfg OpenAIConfig
}

func newOpenAIClient(cfg OpenAIConfig, model string) openAIClient {
	if cfg.BaseURL == "" {
		cfg.BaseURL = defaultOpenAIBaseURL
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.Model == "" {
		cfg.Model = model
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultOpenAITimeout
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.MaxAudioBytes <= 0 {
		cfg.MaxAudioBytes = defaultMaxAudioBytes
	}
	return openAIClient{cfg: cfg}
}

// ProviderError is a model provider's refusal: an HTTP answer that is not
// a success. The providers of this package return it wrapped: as a
// spool.Permanent error for a 4xx other than 408 and 429, which another
// attempt would repeat, so that the task fails; plainly (wrapped by
// spool.RetryAfter when the answer said when to come back) for 408, 429
// and 5xx, so that the engine retries the task with backoff.
type ProviderError struct {
	// StatusCode is the HTTP status of the answer.
	StatusCode int
	// RetryAfter is the answer's Retry-After, 0 if none.
	RetryAfter time.Duration
	// Message is the provider's error message, or the start of its
	// answer, with the API key redacted.
	Message string
}

// Error returns "provider answered STATUS: MESSAGE".
func (e *ProviderError) Error() string {
	msg := fmt.Sprintf("provider answered %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// Temporary reports whether another attempt may succeed: 408, 429 and 5xx.
func (e *ProviderError) Temporary() bool {
	return e.StatusCode == http.StatusRequestTimeout || e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
}

// redact removes the API key from provider text.
func (c *openAIClient) redact(s string) string {
	if c.cfg.APIKey == "" {
		return s
	}
	return strings.ReplaceAll(s, c.cfg.APIKey, redacted)
}

// errorf makes an error of op from provider text, with the key redacted.
func (c *openAIClient) errorf(op, format string, args ...any) error {
	return errors.New(c.redact(op + ": " + fmt.Sprintf(format, args...)))
}

// malformed is the Permanent failure of an answer that is not what the
// API documents.
func (c *openAIClient) malformed(op, format string, args ...any) error {
	return spool.Permanent(c.errorf(op, providerMalformedPreface+": "+format, args...))
}

// do sends a request built by newReq (called once) and decodes a 2xx
// JSON answer into out. op names the call in errors ("transcribe").
func (c *openAIClient) do(ctx context.Context, op, path, contentType string, body io.Reader, out any) error {
	rctx, cancel := context.WithTimeoutCause(ctx, c.cfg.Timeout, errProviderTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, c.cfg.BaseURL+path, body)
	if err != nil {
		// The base URL is the operator's: bad configuration.
		return spool.Permanent(c.errorf(op, "%v", err))
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json")
	if c.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.APIKey)
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", op, context.Cause(ctx))
		}
		if errors.Is(context.Cause(rctx), errProviderTimeout) {
			return fmt.Errorf("%s: %w after %s", op, errProviderTimeout, c.cfg.Timeout)
		}
		return c.errorf(op, "%v", err) // a network error: retried
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxProviderAnswer+1))
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", op, context.Cause(ctx))
		}
		return c.errorf(op, "read answer: %v", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		pe := &ProviderError{StatusCode: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
			Message: c.redact(errorMessage(data))}
		err := fmt.Errorf("%s: %w", op, pe)
		if pe.Temporary() {
			return spool.RetryAfter(err, pe.RetryAfter)
		}
		return spool.Permanent(err)
	}
	if len(data) > maxProviderAnswer {
		return c.malformed(op, "longer than %d bytes", maxProviderAnswer)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return c.malformed(op, "%v: %s", err, quote(data))
	}
	return nil
}

// errProviderTimeout is the failure of a request that outlived
// OpenAIConfig.Timeout.
var errProviderTimeout = errors.New("provider timed out")

// errorMessage returns the message of an error answer: the API's
// {"error": {"message": …}} (or {"error": "…"}, {"message": …}, as some
// compatible servers answer), else the start of the body.
func errorMessage(data []byte) string {
	var v struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Detail  string          `json:"detail"`
	}
	if json.Unmarshal(data, &v) == nil {
		var inner struct {
			Message string `json:"message"`
		}
		var s string
		switch {
		case json.Unmarshal(v.Error, &inner) == nil && inner.Message != "":
			return inner.Message
		case json.Unmarshal(v.Error, &s) == nil && s != "":
			return s
		case v.Message != "":
			return v.Message
		case v.Detail != "":
			return v.Detail
		}
	}
	return quote(data)
}

// quote returns the start of a body, on one line, for an error message.
func quote(data []byte) string {
	s := strings.Join(strings.Fields(string(data)), " ")
	if len(s) > maxProviderErrorQuote {
		s = s[:maxProviderErrorQuote] + "…"
	}
	if s == "" {
		return "(empty)"
	}
	return s
}

// parseRetryAfter reads a Retry-After header: seconds, or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s <= 0 || math.IsNaN(s) || math.IsInf(s, 0) {
			return 0
		}
		return time.Duration(min(s, 24*3600) * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), 24*time.Hour)
	}
	return 0
}

// OpenAITranscriber is a Transcriber that POSTs to an OpenAI-compatible
// /audio/transcriptions, asking for verbose_json with segment timestamps.
// It implements AudioLimiter with OpenAIConfig.MaxAudioBytes.
type OpenAITranscriber struct{ c openAIClient }

// NewOpenAITranscriber returns a transcriber configured by cfg, whose
// model defaults to whisper-1.
func NewOpenAITranscriber(cfg OpenAIConfig) *OpenAITranscriber {
	return &OpenAITranscriber{newOpenAIClient(cfg, defaultTranscribeModel)}
}

// MaxAudioBytes returns the largest file Transcribe uploads.
func (t *OpenAITranscriber) MaxAudioBytes() int64 { return t.c.cfg.MaxAudioBytes }

// Transcribe uploads the audio file at path and returns its transcript.
func (t *OpenAITranscriber) Transcribe(ctx context.Context, path string, opts *TranscribeOptions) (*Transcript, error) {
	const op = "transcribe"
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > t.c.cfg.MaxAudioBytes {
		return nil, spool.Permanent(fmt.Errorf("%s: audio of %d bytes is over the provider's limit of %d", op, st.Size(), t.c.cfg.MaxAudioBytes))
	}
	if opts == nil {
		opts = &TranscribeOptions{}
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		pw.CloseWithError(writeTranscribeForm(mw, f, filepath.Base(path), t.c.cfg.Model, opts))
	}()
	defer pr.Close()
	var ans struct {
		Language string   `json:"language"`
		Duration *float64 `json:"duration"`
		Text     *string  `json:"text"`
		Segments []struct {
			Start      float64  `json:"start"`
			End        float64  `json:"end"`
			Text       string   `json:"text"`
			AvgLogprob *float64 `json:"avg_logprob"`
			Speaker    string   `json:"speaker"`
		} `json:"segments"`
	}
	if err := t.c.do(ctx, op, "/audio/transcriptions", mw.FormDataContentType(), pr, &ans); err != nil {
		return nil, err
	}
	if ans.Text == nil && ans.Segments == nil {
		return nil, t.c.malformed(op, "no text and no segments")
	}
	tr := &Transcript{Language: languageCode(ans.Language)}
	if ans.Duration != nil {
		tr.Duration = *ans.Duration
	}
	if ans.Text != nil {
		tr.Text = strings.TrimSpace(*ans.Text)
	}
	prevEnd := 0.0
	for i, s := range ans.Segments {
		if s.End < s.Start || s.Start < 0 || math.IsNaN(s.Start) || math.IsNaN(s.End) {
			return nil, t.c.malformed(op, "segment %d runs from %g to %g s", i, s.Start, s.End)
		}
		seg := Segment{Start: max(s.Start, prevEnd), End: max(s.End, prevEnd), Text: strings.TrimSpace(s.Text), Speaker: s.Speaker}
		if s.AvgLogprob != nil {
			seg.Confidence = roundMS(min(max(math.Exp(*s.AvgLogprob), 0), 1))
		}
		prevEnd = seg.End
		tr.Segments = append(tr.Segments, seg)
	}
	if tr.Text == "" {
		var parts []string
		for _, s := range tr.Segments {
			parts = append(parts, s.Text)
		}
		tr.Text = strings.Join(parts, " ")
	}
	if len(tr.Segments) == 0 && tr.Text != "" && tr.Duration > 0 {
		// A server that ignores verbose_json: one segment for all.
		tr.Segments = []Segment{{Start: 0, End: tr.Duration, Text: tr.Text}}
	}
	return tr, nil
}

// writeTranscribeForm writes the multipart form of a transcription.
func writeTranscribeForm(mw *multipart.Writer, audio io.Reader, name, model string, opts *TranscribeOptions) error {
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, name))
	h.Set("Content-Type", "audio/wav")
	part, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	if _, err := io.Copy(part, audio); err != nil {
		return err
	}
	fields := [][2]string{{"model", model}, {"response_format", "verbose_json"}, {"timestamp_granularities[]", "segment"}}
	if opts.Language != "" {
		fields = append(fields, [2]string{"language", opts.Language})
	}
	if opts.Prompt != "" {
		fields = append(fields, [2]string{"prompt", opts.Prompt})
	}
	for _, f := range fields {
		if err := mw.WriteField(f[0], f[1]); err != nil {
			return err
		}
	}
	return mw.Close()
}

// whisperLanguages maps the language names that Whisper's verbose_json
// gives to ISO 639-1 codes, for the most spoken ones; other names pass
// through as they are.
var whisperLanguages = map[string]string{
	"english": "en", "chinese": "zh", "german": "de", "spanish": "es", "russian": "ru", "korean": "ko",
	"french": "fr", "japanese": "ja", "portuguese": "pt", "turkish": "tr", "polish": "pl", "catalan": "ca",
	"dutch": "nl", "arabic": "ar", "swedish": "sv", "italian": "it", "indonesian": "id", "hindi": "hi",
	"finnish": "fi", "vietnamese": "vi", "hebrew": "he", "ukrainian": "uk", "greek": "el", "malay": "ms",
	"czech": "cs", "romanian": "ro", "danish": "da", "hungarian": "hu", "tamil": "ta", "norwegian": "no",
	"thai": "th", "urdu": "ur", "croatian": "hr", "bulgarian": "bg", "lithuanian": "lt", "persian": "fa",
	"slovak": "sk", "bengali": "bn", "serbian": "sr", "slovenian": "sl", "estonian": "et", "latvian": "lv",
}

func languageCode(name string) string {
	if code, ok := whisperLanguages[strings.ToLower(strings.TrimSpace(name))]; ok {
		return code
	}
	return strings.TrimSpace(name)
}

// OpenAIChat is a ChatModel that POSTs to an OpenAI-compatible
// /chat/completions: images go as image_url parts holding data: URLs, and
// a Schema as a json_schema response_format.
type OpenAIChat struct{ c openAIClient }

// NewOpenAIChat returns a chat model configured by cfg, whose model
// defaults to gpt-4o-mini.
func NewOpenAIChat(cfg OpenAIConfig) *OpenAIChat {
	return &OpenAIChat{newOpenAIClient(cfg, defaultChatModel)}
}

// chatPart is one part of a message's content.
type chatPart struct {
	Type     string    `json:"type"`
	Text     string    `json:"text,omitempty"`
	ImageURL *imageURL `json:"image_url,omitempty"`
}

type imageURL struct {
	URL string `json:"url"`
}

func dataURL(img Image) string {
	typ := img.Type
	if typ == "" {
		typ = http.DetectContentType(img.Data)
	}
	return "data:" + typ + ";base64," + base64.StdEncoding.EncodeToString(img.Data)
}

// Chat asks the model and returns its answer.
func (m *OpenAIChat) Chat(ctx context.Context, req *ChatRequest) (*ChatResponse, error) {
	const op = "chat"
	type message struct {
		Role    string `json:"role"`
		Content any    `json:"content"`
	}
	var msgs []message
	if req.System != "" {
		msgs = append(msgs, message{"system", req.System})
	}
	parts := []chatPart{{Type: "text", Text: req.Prompt}}
	for _, img := range req.Images {
		parts = append(parts, chatPart{Type: "image_url", ImageURL: &imageURL{URL: dataURL(img)}})
	}
	msgs = append(msgs, message{"user", parts})
	body := map[string]any{"model": cmp.Or(req.Model, m.c.cfg.Model), "messages": msgs}
	if len(req.Schema) > 0 {
		name := req.SchemaName
		if name == "" {
			name = defaultChatSchemaName
		}
		body["response_format"] = map[string]any{"type": "json_schema",
			"json_schema": map[string]any{"name": name, "strict": req.Strict, "schema": req.Schema}}
	}
	data, err := json.Marshal(body)
	if err != nil {
		return nil, spool.Permanent(fmt.Errorf("%s: encode request: %w", op, err))
	}
	var ans struct {
		Choices []struct {
			FinishReason string `json:"finish_reason"`
			Message      struct {
				Content *string `json:"content"`
				Refusal string  `json:"refusal"`
			} `json:"message"`
		} `json:"choices"`
	}
	if err := m.c.do(ctx, op, "/chat/completions", "application/json", bytes.NewReader(data), &ans); err != nil {
		return nil, err
	}
	if len(ans.Choices) == 0 {
		return nil, m.c.malformed(op, "no choices")
	}
	ch := ans.Choices[0]
	switch {
	case ch.Message.Refusal != "":
		return nil, spool.Permanent(m.c.errorf(op, "the model refused: %s", ch.Message.Refusal))
	case ch.Message.Content == nil || strings.TrimSpace(*ch.Message.Content) == "":
		return nil, m.c.malformed(op, "empty message (finish_reason %q)", ch.FinishReason)
	case ch.FinishReason == "length" && len(req.Schema) > 0:
		return nil, spool.Permanent(m.c.errorf(op, "the answer was cut off at the model's length limit"))
	}
	return &ChatResponse{Text: *ch.Message.Content}, nil
}

// OpenAIModerator is a Moderator that POSTs each image to an
// OpenAI-compatible /moderations as an image_url input. Of the category
// scores, sexual and sexual/minors make Sexual (the higher), violence
// Violence, violence/graphic Gore; Nudity is the provider's nudity score
// when it gives one, else Sexual, since OpenAI's model scores no nudity of
// its own.
type OpenAIModerator struct{ c openAIClient }

// NewOpenAIModerator returns a moderator configured by cfg, whose model
// defaults to omni-moderation-latest.
func NewOpenAIModerator(cfg OpenAIConfig) *OpenAIModerator {
	return &OpenAIModerator{newOpenAIClient(cfg, defaultModerationModel)}
}

// Moderate scores the images, one request each: a request of several
// inputs is judged as one whole.
func (m *OpenAIModerator) Moderate(ctx context.Context, images []Image) ([]Scores, error) {
	const op = "moderate"
	out := make([]Scores, 0, len(images))
	for i, img := range images {
		body, err := json.Marshal(map[string]any{"model": m.c.cfg.Model,
			"input": []chatPart{{Type: "image_url", ImageURL: &imageURL{URL: dataURL(img)}}}})
		if err != nil {
			return nil, spool.Permanent(fmt.Errorf("%s: encode request: %w", op, err))
		}
		var ans struct {
			Results []struct {
				Scores map[string]*float64 `json:"category_scores"`
			} `json:"results"`
		}
		if err := m.c.do(ctx, op, "/moderations", "application/json", bytes.NewReader(body), &ans); err != nil {
			return nil, err
		}
		if len(ans.Results) == 0 || ans.Results[0].Scores == nil {
			return nil, m.c.malformed(op, "no category_scores for image %d", i)
		}
		sc := ans.Results[0].Scores
		get := func(name string) (float64, bool) {
			v, ok := sc[name]
			if !ok || v == nil {
				return 0, false
			}
			return min(max(*v, 0), 1), true
		}
		var s Scores
		sexual, ok1 := get("sexual")
		minors, _ := get("sexual/minors")
		violence, ok2 := get("violence")
		gore, _ := get("violence/graphic")
		if !ok1 && !ok2 {
			return nil, m.c.malformed(op, "category_scores lack sexual and violence")
		}
		s.Sexual, s.Violence, s.Gore = max(sexual, minors), violence, gore
		s.Nudity = s.Sexual
		if n, ok := get("nudity"); ok {
			s.Nudity = n
		}
		out = append(out, s)
	}
	return out, nil
}
