package kinds

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestChaptersFix: a model's chapters are sorted, clamped into the input,
// overlaps trimmed, empty and too short ones dropped and the rest numbered
// from 1; chapters that start far past the end, or none usable, fail.
func TestChaptersFix(t *testing.T) {
	ch := func(start, end float64, title string) chapter { return chapter{Start: start, End: end, Title: title} }
	for _, c := range []struct {
		name     string
		in       []chapter
		duration float64
		want     []chapter // nil: fails with wantErr
		wantErr  string
	}{
		{"valid", []chapter{ch(0, 30, "A"), ch(30, 60, "B")}, 60,
			[]chapter{{1, 0, 30, "A"}, {2, 30, 60, "B"}}, ""},
		{"unordered and overlapping", []chapter{ch(25, 60, "B"), ch(0, 40, "A")}, 60,
			[]chapter{{1, 0, 25, "A"}, {2, 25, 60, "B"}}, ""},
		{"past the end by rounding, negative start", []chapter{ch(-2, 30, "A"), ch(30, 60.4, "B"), ch(60.2, 61, "C")}, 60,
			[]chapter{{1, 0, 30, "A"}, {2, 30, 60, "B"}}, ""},
		{"no end", []chapter{ch(0, 0, "A"), ch(20, 10, "B"), ch(40, 0, "C")}, 60,
			[]chapter{{1, 0, 20, "A"}, {2, 20, 40, "B"}, {3, 40, 60, "C"}}, ""},
		{"empty title, same start", []chapter{ch(0, 10, "  "), ch(0, 20, "A"), ch(0, 30, "A2"), ch(30, 60, "B\n-->x")}, 60,
			[]chapter{{1, 0, 30, "A2"}, {2, 30, 60, "B →x"}}, ""},
		{"gap kept", []chapter{ch(0, 10, "A"), ch(20, 30, "B")}, 60,
			[]chapter{{1, 0, 10, "A"}, {2, 20, 30, "B"}}, ""},
		{"unknown duration", []chapter{ch(0, 10, "A"), ch(10, 0, "B")}, 0,
			[]chapter{{1, 0, 10, "A"}}, ""},
		{"far past the end", []chapter{ch(0, 60, "A"), ch(300, 600, "B")}, 120, nil, `chapter "B" starts at 300.0 s, past the end`},
		{"none usable", []chapter{ch(10, 10.2, "A"), ch(5, 5, "")}, 60, nil, "none of the 2 chapters is usable"},
		{"none", nil, 60, nil, "none of the 0 chapters"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := fixChapters(c.in, c.duration)
			if c.want == nil {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("fixChapters = %+v, %v; want error %q", got, err, c.wantErr)
				}
				return
			}
			if err != nil || jsonText(t, got) != jsonText(t, c.want) {
				t.Fatalf("fixChapters = %s, %v; want %s", jsonText(t, got), err, jsonText(t, c.want))
			}
			checkChapters(t, got, c.duration)
		})
	}
}

// checkChapters fails unless chapters are numbered, ordered, not
// overlapping and inside the duration.
func checkChapters(t *testing.T, chapters []chapter, duration float64) {
	t.Helper()
	for i, c := range chapters {
		if c.Index != i+1 || c.Start < 0 || c.End <= c.Start || duration > 0 && c.End > duration ||
			i > 0 && c.Start < chapters[i-1].End || c.Title == "" {
			t.Fatalf("chapter %d of %s is invalid", i, jsonText(t, chapters))
		}
	}
}

// TestChaptersVTT: the track has one cue a chapter.
func TestChaptersVTT(t *testing.T) {
	got := string(chaptersVTT([]chapter{{1, 0, 61.5, "Intro"}, {2, 61.5, 3700, "Rest"}}))
	want := "WEBVTT\n\n1\n00:00:00.000 --> 00:01:01.500\nIntro\n\n2\n00:01:01.500 --> 01:01:40.000\nRest\n"
	if got != want {
		t.Fatalf("chaptersVTT = %q, want %q", got, want)
	}
}

// TestOutlineFixSections: sections are sorted, clamped and trimmed; an
// image's have no times.
func TestOutlineFixSections(t *testing.T) {
	got, err := fixSections([]section{{Start: 30, End: 90, Title: "B", Points: []string{" x ", "", "x"}},
		{Start: 0, End: 40, Title: "A"}}, 60)
	want := `[{"start":0,"end":30,"title":"A","points":[]},{"start":30,"end":60,"title":"B","points":["x"]}]`
	if err != nil || jsonText(t, got) != want {
		t.Fatalf("fixSections = %s, %v; want %s", jsonText(t, got), err, want)
	}
	got, err = fixSections([]section{{Start: 3, End: 5, Title: "Picture", Points: []string{"a"}}}, 0)
	if err != nil || got[0].Start != 0 || got[0].End != 0 {
		t.Fatalf("fixSections of an image = %+v, %v; want no times", got, err)
	}
	if _, err := fixSections([]section{{Start: 500, End: 600, Title: "Late"}}, 60); err == nil {
		t.Fatal("fixSections accepted a section past the end")
	}
}

// TestNSFWVerdict: scores map to the output, each the highest of any
// frame's, and detected follows the threshold.
func TestNSFWVerdict(t *testing.T) {
	frames := []frame{{Time: 1}, {Time: 3}}
	scores := []Scores{{Nudity: 0.1, Violence: 0.7}, {Nudity: 0.3, Sexual: 1.2, Gore: -1}}
	for _, c := range []struct {
		threshold  float64
		detected   bool
		confidence float64
	}{{0.5, true, 1}, {1, true, 1}} {
		out := nsfwVerdict(frames, scores, c.threshold)
		if out.Detected != c.detected || out.Confidence != c.confidence || out.Nudity != 0.3 || out.Sexual != 1 ||
			out.Violence != 0.7 || out.Gore != 0 || len(out.Timeline) != 2 || out.Timeline[1].Time != 3 || out.Timeline[1].Sexual != 1 {
			t.Fatalf("threshold %g: verdict %s", c.threshold, jsonText(t, out))
		}
	}
	out := nsfwVerdict(frames[:1], scores[:1], 0.8)
	if out.Detected || out.Confidence < 0.29 || out.Confidence > 0.31 {
		t.Fatalf("threshold 0.8: verdict %s, want not detected with confidence 0.3", jsonText(t, out))
	}
	want := `{"object":"intelligence","kind":"nsfw","detected":false,"nudity":0.1,"sexual":0,"violence":0.7,"gore":0,` +
		`"confidence":0.30000000000000004,"timeline":[{"time":1,"nudity":0.1,"sexual":0,"violence":0.7,"gore":0}]}`
	if got := jsonText(t, out); got != want {
		t.Fatalf("verdict %s, want %s", got, want)
	}
}

// TestPromptSchema: a schema checks answers, may not refer outside
// itself, and an answer in fences is read.
func TestPromptSchema(t *testing.T) {
	s, err := userSchema(map[string]any{"type": "object", "required": []any{"n"},
		"properties": map[string]any{"n": map[string]any{"type": "integer"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.check([]byte(stripFences("```json\n{\"n\": 3}\n```"))); err != nil {
		t.Errorf("a matching answer: %v", err)
	}
	for _, bad := range []string{`{"n": "three"}`, `{}`, `not json`} {
		if _, err := s.check([]byte(bad)); err == nil {
			t.Errorf("answer %s was accepted", bad)
		}
	}
	for _, v := range []any{
		map[string]any{"$ref": "file:///etc/passwd"},
		map[string]any{"$ref": "https://example.com/schema.json"},
		map[string]any{"type": 5},
	} {
		if _, err := userSchema(v); err == nil {
			t.Errorf("schema %v was accepted", v)
		}
	}
}

// TestDescriptionMaterial: the text given to a model has the transcript,
// with times, and the frames' times.
func TestDescriptionMaterial(t *testing.T) {
	mat := &material{media: &media{kind: "video", duration: 12, audio: true},
		transcript: &Transcript{Text: "hello there", Segments: []Segment{{Start: 0, End: 1.5, Text: " hello\n there "}}},
		frames:     []frame{{Time: 1.5}, {Time: 4.5}}}
	got := mat.describe()
	for _, want := range []string{"a video of 12.0 seconds", "[0.0–1.5] hello there\n", "2 attached images", "1.5 s, 4.5 s"} {
		if !strings.Contains(got, want) {
			t.Errorf("material %q lacks %q", got, want)
		}
	}
	long := &Transcript{}
	for range 100 {
		long.Segments = append(long.Segments, Segment{Start: 1, End: 2, Text: strings.Repeat("word ", 20)})
	}
	if got := transcriptLines(long, 1000); len(got) > 1100 || !strings.HasSuffix(got, "left out]\n") {
		t.Errorf("a long transcript gives %d bytes: %q", len(got), got)
	}
}

func jsonText(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
