package kinds

import (
	"strings"
	"testing"
	"time"
)

func TestFFmpegProgressParsing(t *testing.T) {
	var got []int
	w := &progressWriter{produce: 10 * time.Second, report: func(p int) { got = append(got, p) }}
	// Split across writes as a pipe may deliver it; out_time_ms is
	// microseconds too, and a block repeats the time in three spellings.
	for _, chunk := range []string{"frame=1\nout_time_us=2500", "000\nout_time_ms=2500000\nout_time=00:00:02.500000\n",
		"out_time_us=N/A\nout_time=00:00:05.000000\n", "out_time_us=10000000\nprogress=end\n", "out_time_us=20000000\n"} {
		if _, err := w.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	want := []int{24, 49, 99, 99}
	if len(got) != len(want) {
		t.Fatalf("reported %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("reported %v, want %v", got, want)
		}
	}
}

func TestFFmpegStderrTrimmed(t *testing.T) {
	b := &tailBuffer{max: 160}
	b.Write([]byte(strings.Repeat("noise\n", 100)))
	b.Write([]byte("x265 [info]: frame I: 1\n\n[mov @ 0x55d0] moov atom not found\nfile:/data/in.mp4: Invalid data found\nfile:/data/in.mp4: Invalid data found\n"))
	if got := len(b.String()); got != 160 {
		t.Errorf("kept %d bytes, want the last 160", got)
	}
	got := lastLines(scrub(b.String(), []string{"-i", "file:/data/in.mp4"}), 3)
	if want := "noise; moov atom not found; input: Invalid data found"; got != want {
		t.Errorf("lastLines = %q, want %q", got, want)
	}
	if got := lastLines("\n\n", 3); got != "failed without saying why" {
		t.Errorf("lastLines of nothing = %q", got)
	}
}

func TestThumbnailsVTTTimes(t *testing.T) {
	for s, want := range map[float64]string{0: "00:00:00.000", 1.2345: "00:00:01.235", 3725.5: "01:02:05.500"} {
		if got := vttTime(s); got != want {
			t.Errorf("vttTime(%g) = %q, want %q", s, got, want)
		}
	}
	vtt := string(thumbnailsVTT("s.jpg", 4, 2, 10, 5, 2))
	if !strings.Contains(vtt, "00:00:01.500 --> 00:00:02.000\ns.jpg#xywh=10,5,10,5\n") {
		t.Errorf("last cue wrong:\n%s", vtt)
	}
}
