package kinds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/spoolrun/spool"
)

// chaptersHandler runs the chapters kind: the input's transcript (an
// earlier speech step's, else the configured Transcriber's) goes to the
// chat model, which answers chapters in a JSON Schema; they are checked
// and repaired where that is safe (see fixChapters), and written as a
// track in json or vtt (format).
//
// The output is the track's File (object "track", kind "chapters") with
// its chapters: [{index, start, end, title}], index counting from 1,
// times in seconds.
type chaptersHandler struct{ chatBase }

func newChapters(enc *encoders, chat ChatModel, speech Transcriber) *chaptersHandler {
	return &chaptersHandler{chatBase{handlerBase: handlerBase{enc: enc}, chat: chat, speech: speech}}
}

// Check says why chapters tasks cannot run here: no chat model, no
// speech provider, or no ffmpeg.
func (h *chaptersHandler) Check(ctx context.Context) error {
	if h.chat == nil {
		return errNoChat
	}
	if err := checkTranscriber(ctx, h.speech); err != nil {
		return err
	}
	return h.enc.check(ctx)
}

// chapter is one chapter of the output.
type chapter struct {
	Index int     `json:"index"`
	Start float64 `json:"start"`
	End   float64 `json:"end"`
	Title string  `json:"title"`
}

// chaptersOutput is the task's output: the track's File and its chapters.
type chaptersOutput struct {
	*spool.File
	Chapters []chapter `json:"chapters"`
}

var chaptersSchema = mustSchema(`{
	"type": "object",
	"properties": {
		"chapters": {
			"type": "array",
			"items": {
				"type": "object",
				"properties": {
					"start": {"type": "number", "description": "seconds from the start of the media"},
					"end": {"type": "number", "description": "seconds from the start of the media"},
					"title": {"type": "string"}
				},
				"required": ["start", "end", "title"],
				"additionalProperties": false
			}
		}
	},
	"required": ["chapters"],
	"additionalProperties": false
}`)

const chaptersSystem = "You split media into chapters from the transcript of its speech. " +
	"A chapter starts where the topic changes. Use only the times given in the transcript."

func (h *chaptersHandler) Handle(ctx context.Context, job *spool.Job) error {
	format, _ := job.String("format")
	if format == "" {
		format = "json"
	}
	if err := h.need(ctx); err != nil {
		return err
	}
	m, err := probeInput(ctx, job)
	if err != nil {
		return err
	}
	if !m.audio {
		return spool.Permanent(errors.New("input has no audio: chapters are made from the transcript of its speech"))
	}
	tr, err := h.transcript(ctx, job)
	if err != nil {
		return err
	}
	if strings.TrimSpace(tr.Text) == "" && len(tr.Segments) == 0 {
		return spool.Permanent(errors.New("input has no speech to make chapters from"))
	}
	duration := m.duration
	if duration <= 0 {
		duration = max(tr.Duration, transcriptEnd(tr))
	}
	lang := languageOf(job, tr.Language)
	mat := &material{media: m, transcript: tr}
	prompt := mat.describe() + fmt.Sprintf("\nSplit it into chapters: %s, in order, not overlapping, "+
		"together covering it from 0 to %.1f seconds. Give each a short title (at most 8 words)%s. "+
		"Answer in JSON.", chapterCount(duration), duration, inLanguage(lang))
	var answer struct {
		Chapters []chapter `json:"chapters"`
	}
	if err := askJSON(ctx, h.chat, &ChatRequest{System: chaptersSystem, Prompt: prompt}, "chapters", chaptersSchema, &answer); err != nil {
		return err
	}
	chapters, err := fixChapters(answer.Chapters, duration)
	if err != nil {
		return spool.Permanent(fmt.Errorf("model's chapters: %w", err))
	}
	return h.store(ctx, job, format, lang, duration, chapters)
}

// store writes the chapters track and makes it the output.
func (h *chaptersHandler) store(ctx context.Context, job *spool.Job, format, lang string, duration float64, chapters []chapter) error {
	var (
		data []byte
		typ  = "application/json"
	)
	if format == "vtt" {
		data, typ = chaptersVTT(chapters), "text/vtt"
	} else {
		var err error
		data, err = json.MarshalIndent(map[string]any{"language": lang, "chapters": chapters}, "", "  ")
		if err != nil {
			return fmt.Errorf("encode chapters: %w", err)
		}
	}
	p, err := workPath(job, "chapters."+format)
	if err != nil {
		return err
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		return fmt.Errorf("write chapters track: %w", err)
	}
	track, err := job.CreateFileFromPath(ctx, p, &spool.File{Object: "track", Kind: "chapters", Type: typ,
		Format: format, Language: lang, Duration: duration, Filename: outputName(job, format)})
	if err != nil {
		return err
	}
	return job.SetOutput(&chaptersOutput{File: track, Chapters: chapters})
}

// chapterCount says how many chapters to ask for: about one per three
// minutes, at least 2 and at most 20, fewer for short media.
func chapterCount(duration float64) string {
	n := int(math.Round(duration / 180))
	switch {
	case duration < 60:
		return "1 to 3 chapters"
	case n <= 2:
		return "2 to 4 chapters"
	}
	return fmt.Sprintf("about %d chapters", min(n, 20))
}

func inLanguage(lang string) string {
	if lang == "" {
		return " in the language spoken"
	}
	return fmt.Sprintf(" in the language %q", lang)
}

// transcriptEnd is where a transcript's last segment ends.
func transcriptEnd(tr *Transcript) float64 {
	end := 0.0
	for _, s := range tr.Segments {
		end = max(end, s.End)
	}
	return end
}

// minChapter is the shortest chapter kept, in seconds: a shorter one is
// an artefact of trimming overlaps, not a chapter.
const minChapter = 0.5

// maxTitle bounds a chapter title, in bytes.
const maxTitle = 200

// fixChapters checks a model's chapters and repairs what can safely be:
// it sorts them by start, cleans titles (dropping chapters without one),
// clamps starts below 0 to 0 and ends past the duration (0 if unknown) to
// it, gives a chapter without an end (end not after start) the next one's
// start, trims overlaps by ending a chapter where the next starts, drops
// chapters under minChapter and numbers the rest from 1. It fails when
// what is left cannot be trusted: a start past the end of the media by
// more than rounding explains (the model got its times wrong, and no
// clamping makes them right), a time that is not a number, or no chapter
// left.
func fixChapters(in []chapter, duration float64) ([]chapter, error) {
	tol := max(1, duration/100) // rounding of times near the end
	var out []chapter
	for _, c := range in {
		c.Title = cleanTitle(c.Title)
		switch {
		case math.IsNaN(c.Start) || math.IsInf(c.Start, 0) || math.IsNaN(c.End) || math.IsInf(c.End, 0):
			return nil, fmt.Errorf("chapter %q has a time that is not a number", c.Title)
		case c.Title == "":
			continue
		case duration > 0 && c.Start > duration+tol:
			return nil, fmt.Errorf("chapter %q starts at %.1f s, past the end of the input (%.1f s)", c.Title, c.Start, duration)
		}
		c.Start = max(c.Start, 0)
		if duration > 0 {
			c.Start, c.End = min(c.Start, duration), min(c.End, duration)
		}
		out = append(out, c)
	}
	slices.SortStableFunc(out, func(a, b chapter) int {
		switch {
		case a.Start < b.Start:
			return -1
		case a.Start > b.Start:
			return 1
		}
		return 0
	})
	for i := range out {
		next := duration
		if i+1 < len(out) {
			next = out[i+1].Start
		}
		if out[i].End <= out[i].Start && next > out[i].Start {
			out[i].End = next // no end given: up to the next chapter
		}
	}
	// Too short a chapter goes before overlaps are trimmed, so that the
	// one before it is not cut short for it; then those that trimming
	// leaves too short (two chapters starting together) go too.
	short := func(c chapter) bool { return c.End-c.Start < minChapter }
	out = slices.DeleteFunc(out, short)
	for i := 0; i+1 < len(out); i++ {
		out[i].End = min(out[i].End, out[i+1].Start)
	}
	out = slices.DeleteFunc(out, short)
	if len(out) == 0 {
		return nil, fmt.Errorf("none of the %d chapters is usable (each needs a title and at least %g s inside the input)", len(in), minChapter)
	}
	for i := range out {
		out[i].Index = i + 1
	}
	return out, nil
}

// cleanTitle makes a title fit a track: one line, no cue separator, at
// most maxTitle bytes.
func cleanTitle(s string) string {
	s = strings.Join(strings.Fields(strings.ReplaceAll(s, "-->", "→")), " ")
	if len(s) > maxTitle {
		s = strings.TrimSpace(strings.ToValidUTF8(s[:maxTitle], "")) + "…"
	}
	return s
}

// chaptersVTT writes the chapters as a WebVTT chapters track: one cue a
// chapter, its identifier the index, its text the title.
func chaptersVTT(chapters []chapter) []byte {
	var b strings.Builder
	b.WriteString("WEBVTT\n")
	for _, c := range chapters {
		fmt.Fprintf(&b, "\n%d\n%s --> %s\n%s\n", c.Index, vttTime(c.Start), vttTime(c.End), c.Title)
	}
	return []byte(b.String())
}
