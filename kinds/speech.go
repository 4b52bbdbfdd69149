package kinds

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/spoolrun/spool"
)

// speechHandler runs the speech kind: it extracts the input's audio as
// mono 16 kHz 16-bit WAV with ffmpeg, cuts it into chunks that the
// Transcriber accepts (at silences where it can), transcribes them in
// order, each with the end of the previous one's text as its prompt, and
// stitches their timelines into one, monotonic, inside the input's
// duration. The result is stored as an intelligence File and is the
// task's output: {object: intelligence, kind: speech, id, detected,
// language, text, confidence?, speakers?, duration, timeline: [{start,
// end, speaker?, text, confidence?}]}.
type speechHandler struct{ transcribing }

func newSpeech(enc *encoders, t Transcriber) *speechHandler {
	return &speechHandler{transcribing{handlerBase{enc: enc}, t}}
}

var (
	_ spool.Checker = (*speechHandler)(nil)
	_ spool.Checker = (*subtitlesHandler)(nil)
)

// transcribing is what the speech and subtitles kinds share: ffmpeg, to
// extract the audio, and a Transcriber.
type transcribing struct {
	handlerBase
	speech Transcriber // nil: none configured
}

// Check says why the kind cannot run here: no speech provider, or no
// ffmpeg.
func (h *transcribing) Check(ctx context.Context) error {
	if err := checkTranscriber(ctx, h.speech); err != nil {
		return err
	}
	return h.enc.check(ctx)
}

// checkTranscriber says why t cannot transcribe here: none configured,
// the local one not installed, or what t's own Check says.
func checkTranscriber(ctx context.Context, t Transcriber) error {
	if t == nil {
		return errNoSpeech
	}
	if ps, ok := t.(*PocketSphinx); ok {
		if s, err := ps.setup(); err != nil {
			if s.missingProgram {
				return errNoSpeech
			}
			return err
		}
		return nil
	}
	if c, ok := t.(spool.Checker); ok {
		return c.Check(ctx)
	}
	return nil
}

func (h *speechHandler) Handle(ctx context.Context, job *spool.Job) error {
	if h.speech == nil {
		return spool.Permanent(errNoSpeech)
	}
	if err := h.need(ctx); err != nil {
		return err
	}
	tr, err := transcribeInput(ctx, job, h.speech, 95)
	if err != nil {
		return err
	}
	_, err = storeIntelligence(ctx, job, "speech", speechOf(tr))
	return err
}

// speechOf makes the speech kind's result of a transcript.
func speechOf(tr *Transcript) *speechResult {
	r := &speechResult{Object: "intelligence", Kind: "speech", Language: tr.Language, Text: tr.Text,
		Duration: roundMS(tr.Duration), Timeline: tr.Segments}
	if r.Timeline == nil {
		r.Timeline = []Segment{}
	}
	r.Detected = strings.TrimSpace(r.Text) != ""
	var weighted, total float64
	known := len(r.Timeline) > 0
	seen := map[string]bool{}
	for _, s := range r.Timeline {
		if s.Confidence <= 0 {
			known = false
		}
		d := max(s.End-s.Start, 0.001)
		weighted += s.Confidence * d
		total += d
		if s.Speaker != "" && !seen[s.Speaker] {
			seen[s.Speaker] = true
			r.Speakers = append(r.Speakers, s.Speaker)
		}
	}
	if known {
		r.Confidence = math.Round(weighted/total*1000) / 1000
	}
	return r
}

func roundMS(s float64) float64 { return math.Round(s*1000) / 1000 }

// transcribeInput transcribes the job's input with t, reporting progress
// from 0 to upto: the speech kind's work, which jobTranscript also does
// for the kinds that need a transcript and have no speech step before
// them.
func transcribeInput(ctx context.Context, job *spool.Job, t Transcriber, upto int) (*Transcript, error) {
	p, info, err := inputInfo(ctx, job, true)
	if err != nil {
		return nil, err
	}
	if !info.audio {
		return nil, spool.Permanent(errors.New("input has no audio stream"))
	}
	wav, err := workPath(job, "speech.wav")
	if err != nil {
		return nil, err
	}
	args := append(ffInput(p), "-map", "0:a:0", "-vn", "-sn", "-dn", "-ac", "1", "-ar", "16000",
		"-c:a", "pcm_s16le", "-f", "wav", wav)
	if err := runFFmpeg(ctx, nil, args, 0); err != nil {
		return nil, err
	}
	const extracted = 5 // percent of the work
	job.Progress(extracted * upto / 100)
	audio, err := openWAV(wav)
	if err != nil {
		return nil, err
	}
	defer audio.Close()
	var limit int64
	if l, ok := t.(AudioLimiter); ok {
		limit = l.MaxAudioBytes()
	}
	spans, err := audio.plan(limit)
	if err != nil {
		return nil, err
	}
	language, _ := job.String("language")
	out := &Transcript{Language: language, Duration: audio.duration()}
	var prompt string
	for i, sp := range spans {
		path := wav
		if len(spans) > 1 {
			if path, err = workPath(job, fmt.Sprintf("chunk-%d.wav", i)); err != nil {
				return nil, err
			}
			if err := audio.writeSpan(path, sp); err != nil {
				return nil, err
			}
		}
		part, err := t.Transcribe(ctx, path, &TranscribeOptions{Language: language, Prompt: prompt})
		if err != nil {
			return nil, err
		}
		if part == nil {
			return nil, spool.Permanent(errors.New("transcribe: the provider returned no transcript"))
		}
		if out.Language == "" {
			out.Language = part.Language
		}
		out.Segments = stitch(out.Segments, part.Segments, sp)
		if txt := strings.TrimSpace(part.Text); txt != "" {
			out.Text = strings.TrimSpace(out.Text + " " + txt)
			prompt = lastRunes(txt, 200)
		}
		job.Progress((extracted + (100-extracted)*(i+1)/len(spans)) * upto / 100)
	}
	return out, nil
}

// stitch appends to timeline the segments of a chunk that covers span:
// moved by the chunk's start, kept inside it, starting no earlier than the
// previous segment's end. Segments without text are left out.
func stitch(timeline, segs []Segment, sp span) []Segment {
	prevEnd := 0.0
	if n := len(timeline); n > 0 {
		prevEnd = timeline[n-1].End
	}
	for _, s := range segs {
		s.Text = strings.TrimSpace(s.Text)
		if s.Text == "" || math.IsNaN(s.Start) || math.IsNaN(s.End) {
			continue
		}
		start := min(max(sp.start+s.Start, sp.start, prevEnd), sp.end)
		end := min(max(sp.start+s.End, start), sp.end)
		s.Start, s.End = roundMS(start), roundMS(end)
		prevEnd = s.End
		timeline = append(timeline, s)
	}
	return timeline
}

// lastRunes returns about the last n bytes of s, from a word start.
func lastRunes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, ' '); i >= 0 {
		s = s[i+1:]
	}
	return s
}
