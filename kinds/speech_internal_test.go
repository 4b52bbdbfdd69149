package kinds

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

func TestSpeechParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {"0", 0}, {"-3", 0}, {"garbage", 0}, {"12", 12 * time.Second}, {"1.5", 1500 * time.Millisecond},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"999999", 24 * time.Hour},
	} {
		if got := parseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestSpeechParseSphinx(t *testing.T) {
	cont := `hello world
<s> 0.000 0.320 0.999700
hello 0.330 0.650 0.8
<sil> 0.660 1.250 1.000000
world(2) 1.260 1.380 0.6
</s> 1.400 1.790 1.000000
<s> 2.000 2.100 1.0
[NOISE] 2.100 2.500 1.0
</s> 2.500 2.600 1.0
again
<s> 3.000 3.100 1.0
again 3.100 3.500 0.5
</s> 3.500 3.600 1.0
`
	want := `[{0.33 1.38 hello world  0.7} {3.1 3.5 again  0.5}]`
	if got := fmt.Sprint(parseSphinxContinuous(cont)); got != want {
		t.Errorf("pocketsphinx_continuous: %s, want %s", got, want)
	}
	v5 := `{"b":0.000,"d":1.790,"p":0.5,"t":"hello world","w":[{"b":0.000,"d":0.320,"p":1.0,"t":"<s>"},{"b":0.330,"d":0.320,"p":0.8,"t":"hello"},{"b":1.260,"d":0.120,"p":0.6,"t":"world"}]}
{"b":3.0,"d":0.5,"p":0.5,"t":"again"}
`
	segs, err := parseSphinxJSON(v5)
	var got string
	for _, s := range segs {
		got += fmt.Sprintf("[%.2f %.2f %s %.2f]", s.Start, s.End, s.Text, s.Confidence)
	}
	if err != nil || got != "[0.33 1.38 hello world 0.70][3.00 3.50 again 0.50]" {
		t.Errorf("pocketsphinx 5: %s, %v", got, err)
	}
}

func TestSpeechPlanSpans(t *testing.T) {
	for _, tc := range []struct {
		total, max float64
		silences   []span
		want       string
	}{
		{5, 10, nil, "[{0 5}]"},
		{10, 4, nil, "[{0 4} {4 8} {8 10}]"},
		// Cut in the middle of the latest silence in a chunk's second
		// half; a silence in the first half is not used.
		{10, 4, []span{{1, 1.4}, {3, 3.4}, {3.5, 3.9}, {6, 6.4}}, "[{0 3.7} {3.7 6.2} {6.2 10}]"},
	} {
		if got := fmt.Sprint(planSpans(tc.total, tc.max, tc.silences)); got != tc.want {
			t.Errorf("planSpans(%g, %g, %v) = %s, want %s", tc.total, tc.max, tc.silences, got, tc.want)
		}
	}
}

func TestSpeechStitch(t *testing.T) {
	var tl []Segment
	tl = stitch(tl, []Segment{{Start: 0, End: 2, Text: " a "}, {Start: 1.5, End: 5, Text: "b"}}, span{0, 3})
	tl = stitch(tl, []Segment{{Start: 0, End: 1, Text: ""}, {Start: -1, End: 1, Text: "c"}}, span{3, 6})
	if got := fmt.Sprint(tl); got != "[{0 2 a  0} {2 3 b  0} {3 4 c  0}]" {
		t.Errorf("stitched %s: want offsets, monotonic, inside each chunk, without empty segments", got)
	}
}
