package kinds

import (
	"context"
	"encoding/json"
)

// The intelligence kinds (speech, subtitles, chapters, description,
// outline, prompt, nsfw) do locally all they can (audio extraction,
// chunking, frame sampling, subtitle timing, checking a model's answer)
// and ask a model only what needs one, through the small interfaces
// below. Each has an OpenAI-compatible HTTP implementation, so that the
// same code runs against OpenAI, a whisper.cpp or llama.cpp server,
// LocalAI, vLLM or Ollama.

// Transcriber turns the speech in an audio file into a timed transcript.
type Transcriber interface {
	// Transcribe transcribes the audio file at path: mono 16 kHz WAV as
	// the speech kind extracts it, at most MaxAudioBytes long when the
	// Transcriber implements AudioLimiter. opts may be nil.
	Transcribe(ctx context.Context, path string, opts *TranscribeOptions) (*Transcript, error)
}

// AudioLimiter is implemented by a Transcriber that accepts files of at
// most MaxAudioBytes bytes, such as OpenAI's (25 MB): the speech kind cuts
// longer audio into chunks, at silences where it can, and stitches their
// timelines.
type AudioLimiter interface {
	MaxAudioBytes() int64
}

// TranscribeOptions are the hints a Transcriber may use.
type TranscribeOptions struct {
	// Language is the spoken language as an ISO 639-1 code; empty lets
	// the model detect it.
	Language string
	// Prompt is text that precedes the audio, such as the transcript of
	// the previous chunk, to keep spelling and style consistent.
	Prompt string
}

// Transcript is a Transcriber's answer. Times are seconds from the start
// of the audio file it was given.
type Transcript struct {
	Language string    // ISO 639-1 code, or the model's name for it
	Text     string    // the whole text
	Duration float64   // seconds; 0 when the model does not say
	Segments []Segment // in order, not overlapping
}

// Segment is a timed stretch of a transcript.
type Segment struct {
	Start      float64 `json:"start"` // seconds
	End        float64 `json:"end"`   // seconds
	Text       string  `json:"text"`
	Speaker    string  `json:"speaker,omitempty"`
	Confidence float64 `json:"confidence,omitempty"` // 0–1; 0 when unknown
}

// ChatModel answers a prompt of text and images, optionally as JSON that
// follows a schema.
type ChatModel interface {
	Chat(ctx context.Context, req *ChatRequest) (*ChatResponse, error)
}

// ChatRequest is one question to a ChatModel.
type ChatRequest struct {
	// System is the system message; empty sends none.
	System string
	// Prompt is the user's message.
	Prompt string
	// Images are sent with the prompt, in order, as image inputs.
	Images []Image
	// Schema, when set, is a JSON Schema the answer must follow; the
	// model is asked for structured output named SchemaName.
	Schema     json.RawMessage
	SchemaName string
	// Model, when set, is the model to ask instead of the one the
	// ChatModel was configured with (the prompt kind's model option).
	Model string
	// Strict asks for OpenAI's strict structured outputs, which accept
	// only schemas whose objects require every property and set
	// additionalProperties to false. The caller checks the answer against
	// Schema either way.
	Strict bool
}

// Image is an image given to a model: its MIME type and bytes.
type Image struct {
	Type string // image/jpeg or image/png
	Data []byte
}

// ChatResponse is a ChatModel's answer.
type ChatResponse struct {
	// Text is the answer; with a Schema, the JSON text of it, which the
	// caller checks against the schema.
	Text string
}

// Moderator scores images for unsafe content.
type Moderator interface {
	// Moderate returns one Scores per image, in order.
	Moderate(ctx context.Context, images []Image) ([]Scores, error)
}

// Scores are a Moderator's judgement of one image, each from 0 to 1.
type Scores struct {
	Nudity   float64 `json:"nudity"`
	Sexual   float64 `json:"sexual"`
	Violence float64 `json:"violence"`
	Gore     float64 `json:"gore"`
}
