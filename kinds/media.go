package kinds

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spoolrun/spool"
)

// mediaInfo is what the media kinds need to know of their input before
// running ffmpeg on it.
type mediaInfo struct {
	width, height int     // as displayed (rotation applied), 0 without video
	duration      float64 // seconds, 0 if unknown
	video, audio  bool    // has a video (not cover art) or an audio stream
}

// inputInfo returns the local path of the job's input (Job.InputPath)
// and what its record says of it when it says enough (an input the engine
// probed with ffprobe: a video's size and duration, an audio's duration),
// else what probeMedia reads: starting ffprobe costs a good part of a
// second on a busy machine. needAudio asks to know whether a video has
// sound, which its record does not tell.
func inputInfo(ctx context.Context, job *spool.Job, needAudio bool) (string, *mediaInfo, error) {
	p, err := job.InputPath(ctx)
	if err != nil {
		return "", nil, err
	}
	if in := job.Input(); in != nil && in.Duration > 0 {
		switch {
		case in.Kind == "video" && in.Width > 0 && in.Height > 0 && !needAudio:
			return p, &mediaInfo{width: in.Width, height: in.Height, duration: in.Duration, video: true}, nil
		case in.Kind == "audio":
			return p, &mediaInfo{duration: in.Duration, audio: true}, nil
		}
	}
	info, err := probeMedia(ctx, p)
	return p, info, err
}

// probeMedia reads the input's streams with ffprobe. An input that ffprobe
// cannot read fails the task (Permanent) with ffprobe's reason.
func probeMedia(ctx context.Context, p string) (*mediaInfo, error) {
	prober := &FFprobeProber{}
	out, err := prober.run(ctx, p)
	switch {
	case errors.Is(err, errNotMedia):
		return nil, spool.Permanent(fmt.Errorf("read input: not a media file ffmpeg can read (%s)",
			lastLines(scrub(strings.TrimPrefix(err.Error(), errNotMedia.Error()+": "), ffInput(p)), 2)))
	case err != nil && ctx.Err() == nil && strings.Contains(err.Error(), "not found"):
		return nil, spool.Permanent(err) // ffprobe missing
	case err != nil:
		return nil, err
	}
	info := &mediaInfo{}
	for i := range out.Streams {
		s := &out.Streams[i]
		switch {
		case s.CodecType == "video" && s.Disposition.AttachedPic == 0 && !info.video:
			info.video = true
			info.width, info.height = s.Width, s.Height
			if r := rotation(s); r == 90 || r == 270 {
				info.width, info.height = info.height, info.width
			}
		case s.CodecType == "audio":
			info.audio = true
		}
	}
	info.duration = firstNumber(out.Format.Duration)
	if info.duration == 0 {
		for _, s := range out.Streams {
			info.duration = max(info.duration, firstNumber(s.Duration))
		}
	}
	return info, nil
}

// trim is the part of the input a task produces.
type trim struct {
	start, end float64 // seconds; end 0 means the input's end
}

// trimOf reads start and end, and checks them against the input's
// duration (0 if unknown).
func trimOf(job *spool.Job, duration float64) (trim, error) {
	var t trim
	t.start, _ = job.Float("start")
	t.end, _ = job.Float("end")
	if duration > 0 {
		if t.start >= duration {
			return t, spool.Permanent(fmt.Errorf("start %g s is not before the input's end (%.3f s)", t.start, duration))
		}
		if t.end > duration {
			t.end = 0 // to the end, which is what was asked
		}
	}
	return t, nil
}

// args returns the input options (before -i) and output options of the
// trim, as ffmpeg reads seconds.
func (t trim) args() (in, out []string) {
	if t.start > 0 {
		in = []string{"-ss", seconds(t.start)}
	}
	if t.end > 0 {
		out = []string{"-t", seconds(t.end - t.start)}
	}
	return in, out
}

// produce is how much media the trim makes out of an input this long.
func (t trim) produce(duration float64) time.Duration {
	end := t.end
	if end == 0 {
		end = duration
	}
	return time.Duration(max(end-t.start, 0) * float64(time.Second))
}

func seconds(s float64) string { return strconv.FormatFloat(s, 'f', -1, 64) }

// outputName is the filename of a task's output: the request's filename,
// else the input's base name with ext.
func outputName(job *spool.Job, ext string) string {
	if n := namesOf(job.Task).filename; n != "" {
		return n
	}
	base := "output"
	if in := job.Input(); in != nil && in.Filename != "" {
		base = strings.TrimSuffix(in.Filename, path.Ext(in.Filename))
	}
	if base == "" || base == "." {
		base = "output"
	}
	return base + "." + ext
}

// workPath returns a path for a work file named name in the job's
// temporary directory.
func workPath(job *spool.Job, name string) (string, error) {
	dir, err := job.TempDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, name), nil
}

// mapQuality maps quality 0 (smallest) to 100 (best) onto an encoder's
// scale from worst to best, which may run either way.
func mapQuality(q int64, worst, best float64) float64 {
	return worst + (best-worst)*float64(min(max(q, 0), 100))/100
}

func itoa(f float64) string { return strconv.Itoa(int(math.Round(f))) }

// handlerBase is what the media handlers share: the encoders of the ffmpeg
// in PATH, and the prober they supply to an engine that has none.
type handlerBase struct {
	enc *encoders // never nil
}

// Prober supplies kinds.DefaultProber to an engine whose Config.Prober is
// nil (see spool.Engine.Register), so that an engine running media kinds
// probes its uploads and outputs with ffprobe.
func (handlerBase) Prober() spool.Prober { return DefaultProber() }

// need fails the task (Permanent) when ffmpeg lacks an encoder it needs:
// the engine ran it although the kind's Check would have said so.
func (b *handlerBase) need(ctx context.Context, names ...string) error {
	if err := b.enc.check(ctx, names...); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("check ffmpeg: %w", context.Cause(ctx))
		}
		return spool.Permanent(err)
	}
	return nil
}
