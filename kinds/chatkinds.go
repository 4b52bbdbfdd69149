package kinds

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/spoolrun/spool"
)

// The chapters, description, outline and prompt kinds share what is
// here: finding out what the input holds, its transcript and frames, a
// text that gives both to a chat model, and checking the model's answer
// against a JSON Schema.

// errNoChat is the Check of a kind that needs a chat model when none is
// configured.
var errNoChat = errors.New("no chat provider configured: " + providerEnv + "kinds.Config.Chat in Go")

// framesPerTask is how many frames of a video the description, outline
// and prompt kinds show the model: enough to see what changes, few enough
// to keep the request small.
const framesPerTask = 4

// maxTranscriptChars bounds the transcript given to a model, so that
// hours of speech do not overrun its context; a longer one is cut, and
// the model told so.
const maxTranscriptChars = 60000

// chatBase is what the handlers that ask a chat model share.
type chatBase struct {
	handlerBase
	chat   ChatModel   // nil: the kind is unavailable
	speech Transcriber // nil: no transcript unless an earlier speech step made one
}

// Check says why the kind cannot run here: no chat model, or ffmpeg (which
// samples frames and extracts audio) missing.
func (b *chatBase) Check(ctx context.Context) error {
	if b.chat == nil {
		return errNoChat
	}
	return b.enc.check(ctx, "mjpeg")
}

// CheckTask refuses at Create a task on an audio file when nothing here
// can transcribe it: the model would be given nothing to read. (A video
// without a transcript still has its frames.)
func (b *chatBase) CheckTask(ctx context.Context, t *spool.Task) error {
	if t.Input == nil || t.Input.Kind != "audio" {
		return nil
	}
	if err := checkTranscriber(ctx, b.speech); err != nil {
		return &spool.ValidationError{Field: "file_id", Reason: "an audio input needs a transcript: " + err.Error()}
	}
	return nil
}

// material is what a model is told about the input.
type material struct {
	media      *media
	transcript *Transcript // nil when the input has no audio or none could be had
	frames     []frame
}

// gather probes the input and collects its transcript, when it has audio,
// and up to nFrames frames, when it has pictures. Audio without a way to
// transcribe it fails the task: there would be nothing to tell the model.
func (b *chatBase) gather(ctx context.Context, job *spool.Job, nFrames int) (*material, error) {
	if err := b.need(ctx, "mjpeg"); err != nil {
		return nil, err
	}
	m, err := probeInput(ctx, job)
	if err != nil {
		return nil, err
	}
	mat := &material{media: m}
	if m.audio {
		mat.transcript, err = b.transcript(ctx, job)
		switch {
		case errors.Is(err, errNoSpeech) && m.kind != "audio":
			// The pictures alone will do.
		case err != nil:
			return nil, err
		}
	}
	mat.frames, err = sampleFrames(ctx, job, m, nFrames)
	if err != nil {
		return nil, err
	}
	return mat, nil
}

// transcript returns the input's transcript: an earlier speech step's, or
// the configured Transcriber's, or errNoSpeech (Permanent) with neither
// (or with one that cannot run here, such as PocketSphinx not installed).
func (b *chatBase) transcript(ctx context.Context, job *spool.Job) (*Transcript, error) {
	speech := b.speech
	if checkTranscriber(ctx, speech) != nil {
		speech = nil // an earlier speech step may still have one
	}
	return jobTranscript(ctx, job, speech)
}

// images returns the frames' images, in order.
func (mat *material) images() []Image {
	out := make([]Image, len(mat.frames))
	for i, f := range mat.frames {
		out[i] = f.Image
	}
	return out
}

// describe writes what the model is given about the input: what it is,
// its transcript with times, and when each frame (sent as images with
// the message) was taken.
func (mat *material) describe() string {
	var b strings.Builder
	m := mat.media
	switch {
	case m.kind == "transcript":
		b.WriteString("The input is the transcript of a recording.\n")
	case m.duration > 0:
		fmt.Fprintf(&b, "The input is %s %s of %.1f seconds.\n", article(m.kind), m.kind, m.duration)
	default:
		fmt.Fprintf(&b, "The input is %s %s.\n", article(m.kind), m.kind)
	}
	switch {
	case mat.transcript != nil && strings.TrimSpace(mat.transcript.Text) != "":
		b.WriteString("\nTranscript of its speech, each line with its start and end in seconds:\n")
		b.WriteString(transcriptLines(mat.transcript, maxTranscriptChars))
	case mat.transcript != nil:
		b.WriteString("\nIt has no speech.\n")
	case m.audio:
		b.WriteString("\nIts sound was not transcribed.\n")
	case m.kind == "video":
		b.WriteString("\nIt has no sound.\n")
	}
	switch n := len(mat.frames); {
	case n == 1 && m.kind == "image":
		b.WriteString("\nThe attached image is the input.\n")
	case n > 0:
		times := make([]string, n)
		for i, f := range mat.frames {
			times[i] = fmt.Sprintf("%.1f s", f.Time)
		}
		fmt.Fprintf(&b, "\nThe %d attached images are frames of the video, in order, taken at %s.\n",
			n, strings.Join(times, ", "))
	}
	return b.String()
}

func article(kind string) string {
	if kind == "audio" || kind == "image" {
		return "an"
	}
	return "a"
}

// transcriptLines writes a transcript one segment a line, "[start–end]
// text", at most limit bytes; a transcript without segments is its text.
func transcriptLines(tr *Transcript, limit int) string {
	var b strings.Builder
	if len(tr.Segments) == 0 {
		b.WriteString(strings.TrimSpace(tr.Text))
		b.WriteString("\n")
	}
	for _, s := range tr.Segments {
		text := strings.Join(strings.Fields(s.Text), " ")
		if text == "" {
			continue
		}
		fmt.Fprintf(&b, "[%.1f–%.1f] %s\n", s.Start, s.End, text)
	}
	out := b.String()
	if len(out) > limit {
		cut := strings.LastIndexByte(out[:limit], '\n')
		out = out[:cut+1] + "[the rest of the transcript is left out]\n"
	}
	return out
}

// languageOf returns the language option, or def.
func languageOf(job *spool.Job, def string) string {
	if l, ok := job.String("language"); ok && l != "" {
		return l
	}
	return def
}

// schema is a compiled JSON Schema and its text, which the model is given.
type schema struct {
	text     json.RawMessage
	compiled *jsonschema.Schema
	// strict: the schema follows the rules of OpenAI's strict structured
	// outputs, so the model may be held to it. A user's schema may not.
	strict bool
}

// noLoader refuses every $ref to another document: a schema comes from a
// request, and must not make the engine read a file or fetch a URL.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("$ref to %s: only references inside the schema are allowed", url)
}

// compileSchema compiles a JSON Schema given as JSON.
func compileSchema(text []byte) (*schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("read schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(noLoader{})
	c.DefaultDraft(jsonschema.Draft2020)
	// A URL of its own, so that messages name no local path.
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, fmt.Errorf("read schema: %w", err)
	}
	compiled, err := c.Compile(schemaURL)
	if err != nil {
		return nil, fmt.Errorf("compile schema: %s", schemaMessage(err))
	}
	return &schema{text: text, compiled: compiled}, nil
}

// mustSchema compiles one of this package's own schemas.
func mustSchema(text string) *schema {
	s, err := compileSchema([]byte(text))
	if err != nil {
		panic(err)
	}
	s.strict = true
	return s
}

// check decodes answer and validates it against the schema, returning
// the decoded value (JSON data as encoding/json decodes into any).
func (s *schema) check(answer []byte) (any, error) {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(answer))
	if err != nil {
		return nil, fmt.Errorf("answer is not JSON: %w", err)
	}
	if err := s.compiled.Validate(v); err != nil {
		return nil, fmt.Errorf("answer does not match the schema: %s", schemaMessage(err))
	}
	return v, nil
}

// schemaURL names the schemas compiled here.
const schemaURL = "urn:spool:schema"

// schemaMessage is a validation error on one line, without the schema's
// URL, which says nothing to a user.
func schemaMessage(err error) string {
	s := oneLine(err.Error())
	for _, prefix := range []string{"jsonschema validation failed with '" + schemaURL + "#' - ", "\"" + schemaURL + "#\" "} {
		s = strings.ReplaceAll(s, prefix, "")
	}
	return s
}

// oneLine joins the lines of a validation error, which lists each failed
// keyword on its own line, so that it reads in a task's error.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// askJSON asks the model req with the schema s, named name, checks the
// answer against s and decodes it into out. An answer that is not JSON or
// does not match fails the task (Permanent) saying so, with the start of
// the answer.
func askJSON(ctx context.Context, chat ChatModel, req *ChatRequest, name string, s *schema, out any) error {
	req.Schema, req.SchemaName, req.Strict = s.text, name, s.strict
	resp, err := chat.Chat(ctx, req)
	if err != nil {
		return err
	}
	answer := []byte(stripFences(resp.Text))
	if _, err := s.check(answer); err != nil {
		return spool.Permanent(fmt.Errorf("model's %s: %w (answer %s)", name, err, quoteAnswer(resp.Text)))
	}
	if out != nil {
		if err := json.Unmarshal(answer, out); err != nil {
			return spool.Permanent(fmt.Errorf("model's %s: decode answer: %w", name, err))
		}
	}
	return nil
}

// stripFences removes the ```json … ``` that some models put around JSON
// even when asked for JSON alone.
func stripFences(s string) string {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "```") {
		return s
	}
	s = strings.TrimPrefix(s, "```")
	if i := strings.IndexByte(s, '\n'); i >= 0 && !strings.ContainsAny(s[:i], "{[") {
		s = s[i+1:] // the language tag
	}
	return strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "```"))
}

// quoteAnswer quotes the start of a model's answer for an error.
func quoteAnswer(s string) string {
	const max = 200
	s = oneLine(s)
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "") + "…"
	}
	return fmt.Sprintf("%q", s)
}
