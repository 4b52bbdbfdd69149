package kinds

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// checkCues checks the subtitle conventions on cues made of segs: every
// word once and in order, at most two lines of 42 characters (a longer
// single word excepted), 1 to 7 seconds, no overlaps.
func checkCues(t *testing.T, segs []Segment, cues []*cue) {
	t.Helper()
	var want, got []string
	for _, s := range segs {
		want = append(want, strings.Fields(s.Text)...)
	}
	prevEnd := 0.0
	for i, c := range cues {
		got = append(got, strings.Fields(c.text())...)
		lines, ok := splitLines(c.words)
		if !ok || len(lines) > 2 {
			t.Errorf("cue %d %q: %d lines (ok %v), want at most 2", i, c.text(), len(lines), ok)
		}
		for _, l := range lines {
			if n := utf8.RuneCountInString(l); n > 42 && strings.Contains(l, " ") {
				t.Errorf("cue %d: line %q of %d characters, want at most 42", i, l, n)
			}
		}
		if d := c.end - c.start; d < 1-1e-6 || d > 7+1e-6 {
			t.Errorf("cue %d %q: %.3f–%.3f lasts %.3f s, want 1 to 7", i, c.text(), c.start, c.end, d)
		}
		if c.start < prevEnd-1e-6 {
			t.Errorf("cue %d starts at %.3f, before the previous one ends (%.3f)", i, c.start, prevEnd)
		}
		prevEnd = c.end
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("cues say %q, want %q", strings.Join(got, " "), strings.Join(want, " "))
	}
}

func TestSubtitlesCueRules(t *testing.T) {
	cases := []struct {
		name string
		segs []Segment
	}{
		{"empty", nil},
		{"one short word", []Segment{{Start: 0, End: 0.2, Text: "Hi."}}},
		{"long sentence", []Segment{{Start: 0, End: 12, Text: "This is a rather long sentence that goes on and on, well past what two lines of subtitles can hold at once, so it must be cut somewhere sensible."}}},
		{"dense quick segments", []Segment{{Start: 0, End: 0.3, Text: "Yes."}, {Start: 0.3, End: 0.6, Text: "No."}, {Start: 0.6, End: 0.9, Text: "Maybe."}, {Start: 0.9, End: 1.1, Text: "Stop."}}},
		{"long pause word", []Segment{{Start: 0, End: 30, Text: "[music]"}, {Start: 30, End: 31, Text: "Then we spoke."}}},
		{"very long word", []Segment{{Start: 0, End: 2, Text: strings.Repeat("x", 60)}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkCues(t, tc.segs, makeCues(tc.segs)) })
	}
}

// TestSubtitlesCueRulesRandom checks the rules on random timelines of
// natural pace (2 to 4 words a second).
func TestSubtitlesCueRulesRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	vocab := strings.Fields("the a quick brown fox jumps over lazy dog, and then; it ran away. Why? Because! extraordinary internationalisation of subtitles")
	for n := range 300 {
		var segs []Segment
		at := r.Float64() * 2
		for range 1 + r.IntN(8) {
			nw := 1 + r.IntN(25)
			var ws []string
			for range nw {
				ws = append(ws, vocab[r.IntN(len(vocab))])
			}
			dur := float64(nw) / (2 + 2*r.Float64())
			segs = append(segs, Segment{Start: at, End: at + dur, Text: strings.Join(ws, " ")})
			at += dur + r.Float64()*r.Float64()*3
		}
		t.Run(fmt.Sprint(n), func(t *testing.T) { checkCues(t, segs, makeCues(segs)) })
	}
}
