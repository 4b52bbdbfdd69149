package kinds

// Stand-ins for intel-speech's storeIntelligence and jobTranscript, until
// its branch is merged. Minimal on purpose: the lead dedupes.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spoolrun/spool"
)

// storeIntelligence stores v as an intelligence File and makes v, with
// the file's id, the task's output.
func storeIntelligence(ctx context.Context, job *spool.Job, kind string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", kind, err)
	}
	f, err := job.CreateFile(ctx, bytes.NewReader(b), &spool.File{Object: "intelligence", Kind: kind,
		Type: "application/json", Filename: outputName(job, "json")})
	if err != nil {
		return err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("encode %s: %w", kind, err)
	}
	m["id"] = f.ID
	return job.SetOutput(m)
}

// jobTranscript returns the transcript of an earlier speech step, else
// tr's transcript of the input.
func jobTranscript(ctx context.Context, job *spool.Job, tr Transcriber) (*Transcript, error) {
	if up, err := job.Upstream(ctx, spool.KindSpeech); err == nil && up.Status == spool.StatusCompleted {
		var out struct {
			Language string    `json:"language"`
			Text     string    `json:"text"`
			Timeline []Segment `json:"timeline"`
		}
		if err := json.Unmarshal(up.Output, &out); err == nil {
			return &Transcript{Language: out.Language, Text: out.Text, Segments: out.Timeline}, nil
		}
	}
	if tr == nil {
		return nil, spool.Permanent(errNoSpeech)
	}
	p, err := job.InputPath(ctx)
	if err != nil {
		return nil, err
	}
	wav, err := workPath(job, "speech.wav")
	if err != nil {
		return nil, err
	}
	args := append(ffInput(p), "-map", "0:a:0", "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le", "-f", "wav", wav)
	if err := runFFmpeg(ctx, job, args, 0); err != nil {
		return nil, err
	}
	t, err := tr.Transcribe(ctx, wav, nil)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, errors.New("transcribe: no transcript")
	}
	return t, nil
}
