package kinds_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/kinds"
)

// fixedTranscriber answers every file with the same transcript.
type fixedTranscriber struct{ tr kinds.Transcript }

func (f *fixedTranscriber) Transcribe(context.Context, string, *kinds.TranscribeOptions) (*kinds.Transcript, error) {
	tr := f.tr
	return &tr, nil
}

// parsedCue is a cue read back from a VTT or SRT file.
type parsedCue struct {
	start, end float64
	lines      []string
}

var cueTiming = regexp.MustCompile(`^(\d\d):(\d\d):(\d\d)([.,])(\d\d\d) --> (\d\d):(\d\d):(\d\d)([.,])(\d\d\d)$`)

// parseSubtitles reads a WebVTT or SubRip file strictly, failing the
// test on anything malformed.
func parseSubtitles(t *testing.T, data, format string) []parsedCue {
	t.Helper()
	sep := ","
	blocks := strings.Split(strings.TrimRight(data, "\n"), "\n\n")
	if format == "vtt" {
		sep = "."
		if blocks[0] != "WEBVTT" {
			t.Fatalf("VTT starts %q, want WEBVTT", blocks[0])
		}
		blocks = blocks[1:]
	}
	var cues []parsedCue
	for i, b := range blocks {
		lines := strings.Split(b, "\n")
		if format == "srt" {
			if n, err := strconv.Atoi(lines[0]); err != nil || n != i+1 {
				t.Fatalf("SRT cue %d numbered %q", i+1, lines[0])
			}
			lines = lines[1:]
		}
		m := cueTiming.FindStringSubmatch(lines[0])
		if m == nil || m[4] != sep || m[9] != sep {
			t.Fatalf("%s cue %d timing %q malformed", format, i, lines[0])
		}
		sec := func(h, mi, s, ms string) float64 {
			a, _ := strconv.Atoi(h)
			b, _ := strconv.Atoi(mi)
			c, _ := strconv.Atoi(s)
			d, _ := strconv.Atoi(ms)
			return float64(a*3600+b*60+c) + float64(d)/1000
		}
		c := parsedCue{start: sec(m[1], m[2], m[3], m[5]), end: sec(m[6], m[7], m[8], m[10]), lines: lines[1:]}
		if len(c.lines) == 0 {
			t.Fatalf("%s cue %d has no text", format, i)
		}
		cues = append(cues, c)
	}
	return cues
}

// checkConventions checks parsed cues against the subtitle rules and that
// they say every segment's text, in order.
func checkConventions(t *testing.T, cues []parsedCue, segs []kinds.Segment) {
	t.Helper()
	var said []string
	prevEnd := 0.0
	for i, c := range cues {
		if len(c.lines) > 2 {
			t.Errorf("cue %d has %d lines, want at most 2", i, len(c.lines))
		}
		for _, l := range c.lines {
			if utf8.RuneCountInString(l) > 42 {
				t.Errorf("cue %d: line %q longer than 42 characters", i, l)
			}
			said = append(said, strings.Fields(l)...)
		}
		if d := c.end - c.start; d < 0.999 || d > 7.001 {
			t.Errorf("cue %d lasts %.3f s, want 1 to 7", i, d)
		}
		if c.start < prevEnd {
			t.Errorf("cue %d starts at %.3f, before the previous one ends at %.3f", i, c.start, prevEnd)
		}
		prevEnd = c.end
	}
	all := strings.Join(said, " ")
	for _, s := range segs {
		if !strings.Contains(all, strings.Join(strings.Fields(s.Text), " ")) {
			t.Errorf("subtitles %q lack segment %q", all, s.Text)
		}
	}
}

// TestSubtitlesFormats: a given timeline makes VTT and SRT files that
// parse, keep the line and duration rules and say every segment; the
// output is the track File itself.
func TestSubtitlesFormats(t *testing.T) {
	needFFmpeg(t)
	segs := []kinds.Segment{
		{Start: 0.2, End: 0.5, Text: "Hello."},
		{Start: 0.6, End: 4.8, Text: "Welcome to the show, where we talk at length about the things that matter to everyone."},
		{Start: 5.0, End: 5.4, Text: "Right?"},
		{Start: 5.5, End: 19.5, Text: "Today we have a guest who has travelled very far, from the other side of the world, to tell us a story; it is long, and it is worth every minute."},
	}
	fake := &fixedTranscriber{kinds.Transcript{Language: "en", Text: "…", Duration: 20, Segments: segs}}
	e := newEngine(t, spool.Config{}, &kinds.Config{Speech: fake, Getenv: noEnv})
	in := uploadFile(t, e, makeAudio(t, 20)) // the timeline is kept inside the audio
	for _, format := range []string{"vtt", "srt"} {
		t.Run(format, func(t *testing.T) {
			task := run(t, e, spool.Request{Kind: "subtitles", FileID: in.ID, Options: map[string]any{"format": format}})
			f := outputFile(t, task)
			wantType := map[string]string{"vtt": "text/vtt", "srt": "application/x-subrip"}[format]
			if f.Object != "track" || f.Kind != "subtitles" || f.Format != format || f.Language != "en" ||
				f.Type != wantType || !strings.HasSuffix(f.Filename, "."+format) || f.ID == "" {
				t.Errorf("output %s: want the %s subtitles track File, language en", task.Output, format)
			}
			var m map[string]any
			json.Unmarshal(task.Output, &m)
			if _, ok := m["sprite"]; ok || m["object"] != "track" {
				t.Errorf("output %s names another file", task.Output)
			}
			_, data := openStored(t, e, f.ID)
			cues := parseSubtitles(t, string(data), format)
			checkConventions(t, cues, segs)
			if len(cues) < 4 {
				t.Errorf("%d cues for 20 s of talk, want the long sentences split", len(cues))
			}
		})
	}
}

// TestSubtitlesWorkflow: a workflow video → speech → subtitles runs end to
// end with a fake provider; the subtitles step reads the speech step's
// File, the speech step's output with its id passed on as its input,
// without transcribing again.
func TestSubtitlesWorkflow(t *testing.T) {
	needFFmpeg(t)
	tr, fake := fakeWhisper(t, "sk-test", 0)
	e := newEngine(t, spool.Config{}, &kinds.Config{Speech: tr, Getenv: noEnv})
	in := uploadFile(t, e, smallClip(t))
	var steps []spool.Step
	if err := json.Unmarshal([]byte(`[{"kind": "video", "width": 160, "next": [
		{"kind": "speech", "ref": "words", "next": [{"kind": "subtitles", "format": "srt", "ref": "subs"}]}]}]`), &steps); err != nil {
		t.Fatal(err)
	}
	wf := runLong(t, e, spool.Request{Kind: "workflow", FileID: in.ID, Workflow: steps})
	if wf.Status != spool.StatusCompleted {
		t.Fatalf("workflow %s: %s; steps %+v", wf.Status, wf.Error, wf.Workflow)
	}
	page, err := e.List(t.Context(), &spool.ListParams{ParentID: wf.ID, Limit: 100})
	if err != nil || page.Total != 3 {
		t.Fatalf("steps: %v, %v; want 3", page, err)
	}
	byKind := map[string]*spool.Task{}
	for _, s := range page.Tasks {
		byKind[s.Kind] = s
	}
	speech := decodeSpeech(t, byKind["speech"])
	if ups := fake.uploads(); len(ups) != 1 || ups[0].rate != 16000 {
		t.Errorf("%d uploads, want the speech step's one (the subtitles step reads it)", len(ups))
	}
	subs := byKind["subtitles"]
	if subs.Input == nil || subs.Input.ID != speech.ID || subs.Input.Object != "intelligence" {
		t.Errorf("subtitles step's input %+v, want the speech step's File %s", subs.Input, speech.ID)
	}
	f := outputFile(t, subs)
	_, data := openStored(t, e, f.ID)
	cues := parseSubtitles(t, string(data), "srt")
	checkConventions(t, cues, speech.Timeline)
	if len(cues) != 1 || fmt.Sprint(cues[0].lines) != "[part 1.]" {
		t.Errorf("subtitles %q, want the speech step's one segment", data)
	}
}
