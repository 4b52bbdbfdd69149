package kinds

import (
	"context"
	"errors"

	"github.com/spoolrun/spool"
)

// audioHandler runs the audio kind with ffmpeg: it takes the first audio
// stream of an audio or video input, trims it (start, end) and encodes it
// as mp3, aac (in an .m4a file), ogg (Vorbis), opus (in Ogg), wav (16-bit
// PCM) or flac, and completes with the output File, probed.
//
// bitrate sets the target bitrate of the lossy formats. quality maps onto
// each encoder's scale: LAME's and Vorbis's VBR quality, and a bitrate
// from 32 to 256 kb/s for aac and opus, whose encoders have none. Without
// either, the encoder chooses. A video without audio fails the task.
type audioHandler struct{ handlerBase }

func newAudio(enc *encoders) *audioHandler { return &audioHandler{handlerBase{enc: enc}} }

// audioFormat is how one format is encoded and stored.
type audioFormat struct {
	encoder, muxer, ext string
	// quality returns the options for quality 0 to 100; nil for the
	// lossless formats, which take neither quality nor bitrate.
	quality func(q int64) []string
}

var audioFormats = map[string]audioFormat{
	"mp3":  {"libmp3lame", "mp3", "mp3", func(q int64) []string { return []string{"-q:a", itoa(mapQuality(q, 9, 0))} }},
	"aac":  {"aac", "ipod", "m4a", bitrateQuality},
	"ogg":  {"libvorbis", "ogg", "ogg", func(q int64) []string { return []string{"-q:a", itoa(mapQuality(q, 0, 10))} }},
	"opus": {"libopus", "opus", "opus", bitrateQuality},
	"wav":  {"pcm_s16le", "wav", "wav", nil},
	"flac": {"flac", "flac", "flac", nil},
}

// bitrateQuality maps quality onto a bitrate, for encoders without a
// quality scale of their own.
func bitrateQuality(q int64) []string {
	return []string{"-b:a", itoa(mapQuality(q, 32, 256)) + "k"}
}

// Check says why audio tasks cannot run here: ffmpeg, ffprobe or the
// default format's encoder (libmp3lame) missing.
func (h *audioHandler) Check(ctx context.Context) error { return h.enc.check(ctx, "libmp3lame") }

func (h *audioHandler) Handle(ctx context.Context, job *spool.Job) error {
	name, _ := job.String("format")
	if name == "" {
		name = "mp3"
	}
	format, ok := audioFormats[name]
	if !ok {
		return spool.Permanent(errors.New("unknown audio format " + name))
	}
	if err := h.need(ctx, format.encoder); err != nil {
		return err
	}
	p, info, err := inputInfo(ctx, job, true)
	if err != nil {
		return err
	}
	if !info.audio {
		return spool.Permanent(errors.New("input has no audio stream"))
	}
	t, err := trimOf(job, info.duration)
	if err != nil {
		return err
	}
	out, err := workPath(job, "output."+format.ext)
	if err != nil {
		return err
	}
	in, trimOut := t.args()
	args := append(in, ffInput(p)...)
	args = append(args, trimOut...)
	args = append(args, "-map", "0:a:0", "-vn", "-sn", "-dn", "-c:a", format.encoder)
	if format.quality != nil {
		if b, ok := job.String("bitrate"); ok {
			args = append(args, "-b:a", b)
		} else if q, ok := job.Int("quality"); ok {
			args = append(args, format.quality(q)...)
		}
	}
	if format.muxer == "ipod" {
		args = append(args, "-movflags", "+faststart")
	}
	args = append(args, "-f", format.muxer, out)
	if err := runFFmpeg(ctx, job, args, t.produce(info.duration)); err != nil {
		return err
	}
	f, err := job.CreateFileFromPath(ctx, out, &spool.File{Filename: outputName(job, format.ext)})
	if err != nil {
		return err
	}
	return job.SetOutput(f)
}
