package kinds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spoolrun/spool"
)

// speechResult is the speech kind's output, and its intelligence File's
// content.
type speechResult struct {
	Object     string    `json:"object"` // intelligence
	Kind       string    `json:"kind"`   // speech
	Detected   bool      `json:"detected"`
	Language   string    `json:"language,omitempty"`
	Text       string    `json:"text"`
	Confidence float64   `json:"confidence,omitempty"`
	Speakers   []string  `json:"speakers,omitempty"`
	Duration   float64   `json:"duration,omitempty"`
	Timeline   []Segment `json:"timeline"`
}

func (r *speechResult) transcript() *Transcript {
	return &Transcript{Language: r.Language, Text: r.Text, Duration: r.Duration, Segments: r.Timeline}
}

// maxTranscriptFile bounds the speech File that jobTranscript reads.
const maxTranscriptFile = 64 << 20

// jobTranscript returns the transcript of the job's media: in a workflow,
// the output of the nearest earlier speech step in the job's chain (by ref
// "speech", else by kind); for an input that is a speech intelligence File
// (a file_id of one, or what a workflow passed on), its content; else what
// t transcribes of the input's audio, as the speech kind does, reporting
// progress up to 90. t nil then fails with errNoSpeech.
func jobTranscript(ctx context.Context, j *spool.Job, t Transcriber) (*Transcript, error) {
	up, err := j.Upstream(ctx, "speech")
	switch {
	case err == nil && up.Kind == "speech":
		var r speechResult
		if err := json.Unmarshal(up.Output, &r); err != nil || r.Timeline == nil && r.Text == "" {
			return nil, spool.Permanent(fmt.Errorf("read the transcript of step %s: output is not a speech result", up.ID))
		}
		return r.transcript(), nil
	case err != nil && !errors.Is(err, spool.ErrNotFound):
		return nil, err
	}
	if in := j.Input(); in != nil && in.Object == "intelligence" && in.Kind == "speech" {
		return readSpeechFile(ctx, j)
	}
	if t == nil {
		return nil, spool.Permanent(errNoSpeech)
	}
	return transcribeInput(ctx, j, t, 90)
}

// readSpeechFile reads the speech result that is the job's input.
func readSpeechFile(ctx context.Context, j *spool.Job) (*Transcript, error) {
	p, err := j.InputPath(ctx)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("read transcript: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxTranscriptFile))
	if err != nil {
		return nil, fmt.Errorf("read transcript: %w", err)
	}
	var r speechResult
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, spool.Permanent(fmt.Errorf("read transcript: input is not a speech result: %w", err))
	}
	return r.transcript(), nil
}
