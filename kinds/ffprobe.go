package kinds

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spoolrun/spool"
)

// FFprobeProber is a spool.Prober that asks ffprobe (part of ffmpeg) for
// the properties of a file: its kind (video, audio or image), MIME type,
// container, codec, width and height, duration, frame rate, bitrate,
// orientation and language. A file that ffprobe cannot read, such as JSON
// or text, and a file without video or audio, such as subtitles, get what
// spool.BasicProber says, as does the MIME type of a format that ffprobe
// names but this prober does not map.
//
// ffprobe may read only local files (-protocol_whitelist file), so that a
// playlist cannot make it fetch its segments from the network.
//
// An MP4 or QuickTime file whose boxes say all of that in the usual way
// (what ffmpeg writes, what cameras and phones write) is read without
// starting ffprobe, which costs more than a short transcode's own
// overhead on a busy machine; anything unusual goes to ffprobe.
//
// Width and height are as displayed: a video whose rotation metadata turns
// it by 90° reports them swapped. Orientation is "landscape", "portrait"
// or "square", from those displayed sizes.
type FFprobeProber struct {
	// Path is the ffprobe program: a path, or a name looked up in PATH
	// when probing. Defaults to "ffprobe".
	Path string
}

// DefaultProber returns the best Prober this machine can run: an
// FFprobeProber when ffprobe is in PATH, else spool.BasicProber. Use it as
// spool.Config.Prober; the engine's prober is fixed when it is opened.
func DefaultProber() spool.Prober {
	p, err := exec.LookPath("ffprobe")
	if err != nil {
		return spool.BasicProber()
	}
	return &FFprobeProber{Path: p}
}

// Check returns an error saying how to install ffprobe when the program
// is missing, so that a handler that embeds the prober can implement
// spool.Checker with it.
func (p *FFprobeProber) Check(context.Context) error {
	if _, err := exec.LookPath(p.program()); err != nil {
		return p.missing()
	}
	return nil
}

func (p *FFprobeProber) program() string {
	if p.Path == "" {
		return "ffprobe"
	}
	return p.Path
}

// missing is the error for a missing program; Engine.Kinds shows it to
// whoever has to fix the machine.
func (p *FFprobeProber) missing() error {
	if prog := p.program(); strings.ContainsRune(prog, filepath.Separator) {
		return fmt.Errorf("ffprobe not found at %s: install ffmpeg", prog)
	}
	return errors.New("ffprobe not found in PATH: install ffmpeg")
}

// Probe reads the properties of the file at path. It fails when the file
// cannot be read, when ffprobe is missing or crashes, and when ctx ends,
// which kills ffprobe.
func (p *FFprobeProber) Probe(ctx context.Context, path string) (*spool.File, error) {
	basic, err := spool.BasicProber().Probe(ctx, path)
	if err != nil {
		return nil, err
	}
	if f, ok := probeMP4(path, basic); ok {
		return f, nil
	}
	out, err := p.run(ctx, path)
	switch {
	case errors.Is(err, errNotMedia):
		return basic, nil
	case err != nil:
		return nil, err
	}
	return fromFFprobe(out, basic, path), nil
}

// errNotMedia is returned by run when ffprobe cannot read a file.
var errNotMedia = errors.New("ffprobe cannot read the file")

// maxProbeOutput bounds ffprobe's JSON output, which is a few kilobytes
// for real media but grows with the number of streams.
const maxProbeOutput = 8 << 20

// run runs ffprobe on path and decodes its output.
func (p *FFprobeProber) run(ctx context.Context, path string) (*ffprobeOutput, error) {
	args := append([]string{"-v", "error", "-print_format", "json", "-show_format", "-show_streams"},
		ffInput(path)...)
	cmd := exec.CommandContext(ctx, p.program(), args...)
	stdout := &cappedBuffer{max: maxProbeOutput}
	stderr := &cappedBuffer{max: 1 << 10}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// Once ffprobe is killed, stop waiting for its output after a moment
	// even if a child of it still holds the pipes.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return nil, fmt.Errorf("run ffprobe: %w", context.Cause(ctx))
	case errors.Is(err, exec.ErrNotFound):
		return nil, p.missing()
	case errors.As(err, &exit) && exit.Exited():
		// ffprobe exits with an error for files it cannot demux: not media.
		return nil, fmt.Errorf("%w: %s", errNotMedia, strings.TrimSpace(stderr.String()))
	case err != nil:
		return nil, fmt.Errorf("run ffprobe: %w: %s", err, strings.TrimSpace(stderr.String()))
	case stdout.over:
		return nil, fmt.Errorf("run ffprobe: output larger than %d bytes", maxProbeOutput)
	}
	var out ffprobeOutput
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return nil, fmt.Errorf("decode ffprobe output: %w", err)
	}
	return &out, nil
}

// cappedBuffer keeps the first max bytes written to it and discards the
// rest without failing, since a failing writer would leave the program
// blocked on a full pipe.
type cappedBuffer struct {
	bytes.Buffer
	max  int
	over bool
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); len(p) > room {
		b.over = true
		b.Buffer.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return b.Buffer.Write(p)
}

// ffprobeOutput is what -show_format -show_streams prints, in the parts
// used here.
type ffprobeOutput struct {
	Streams []ffprobeStream `json:"streams"`
	Format  struct {
		FormatName string            `json:"format_name"` // such as "mov,mp4,m4a,3gp,3g2,mj2"
		Duration   string            `json:"duration"`
		BitRate    string            `json:"bit_rate"`
		Tags       map[string]string `json:"tags"`
	} `json:"format"`
}

type ffprobeStream struct {
	CodecName    string `json:"codec_name"`
	CodecType    string `json:"codec_type"` // video, audio, subtitle, data, attachment
	Width        int    `json:"width"`
	Height       int    `json:"height"`
	AvgFrameRate string `json:"avg_frame_rate"` // such as "30000/1001", or "0/0"
	RFrameRate   string `json:"r_frame_rate"`
	PixFmt       string `json:"pix_fmt"`   // such as "yuv420p" or "rgba"
	NbFrames     string `json:"nb_frames"` // when the container says
	Duration     string `json:"duration"`
	BitRate      string `json:"bit_rate"`
	Disposition  struct {
		AttachedPic int `json:"attached_pic"` // cover art of an audio file
	} `json:"disposition"`
	Tags         map[string]string `json:"tags"`
	SideDataList []struct {
		SideDataType string  `json:"side_data_type"`
		Rotation     float64 `json:"rotation"`
	} `json:"side_data_list"`
}

// fromFFprobe maps ffprobe's view of the file at path onto basic, what
// spool.BasicProber said of it.
func fromFFprobe(out *ffprobeOutput, basic *spool.File, path string) *spool.File {
	var video, audio *ffprobeStream
	for i := range out.Streams {
		s := &out.Streams[i]
		switch {
		case s.CodecType == "video" && s.Disposition.AttachedPic == 0 && video == nil:
			// A picture with no size is none: ffprobe names an image
			// pipe's codec from the file's extension alone ("hello" in
			// a.png is "png" to it), and finds no size in what follows.
			if s.Width > 0 && s.Height > 0 {
				video = s
			}
		case s.CodecType == "audio" && audio == nil:
			audio = s
		}
	}
	formats := strings.Split(out.Format.FormatName, ",")
	brand := strings.TrimSpace(out.Format.Tags["major_brand"])
	f := *basic
	switch {
	case video != nil && isImageFormat(formats, brand):
		f.Kind = "image"
		f.Codec = video.CodecName
		if f.Codec == "mjpeg" {
			f.Codec = "jpeg" // as spool.BasicProber and the image kind's format option say
		}
	case video != nil:
		f.Kind, f.Codec = "video", video.CodecName
	case audio != nil:
		f.Kind, f.Codec = "audio", audio.CodecName
	default:
		return basic // no picture, no sound: subtitles, data
	}
	typ, container := mediaType(formats, brand, f.Kind, out.Streams, path)
	if typ != "" {
		f.Type = typ
	}
	f.Container = container
	if f.Kind == "image" || f.Kind == "video" {
		f.Width, f.Height = video.Width, video.Height
		f.Rotation = rotation(video)
		if f.Rotation == 90 || f.Rotation == 270 {
			f.Width, f.Height = f.Height, f.Width
		}
		f.Orientation = orientation(f.Width, f.Height)
		f.Transparency = hasAlpha(video.PixFmt)
		if n, err := strconv.Atoi(video.NbFrames); err == nil && n > 0 {
			f.Frames = n
		}
	}
	if f.Kind == "image" {
		if basic.Kind == "image" && basic.Width > 0 {
			// spool.BasicProber read the headers itself, which tell what
			// ffprobe does not: the EXIF orientation, a GIF's frames, a
			// palette's transparent colour.
			f.Width, f.Height, f.Orientation, f.Rotation = basic.Width, basic.Height, basic.Orientation, basic.Rotation
			f.Transparency, f.Frames = basic.Transparency, basic.Frames
		}
		f.Animated = f.Frames > 1
		return &f // an image pipe's "frame rate" and "duration" are made up
	}
	if video != nil {
		f.FPS = rate(video.AvgFrameRate)
		if f.FPS == 0 {
			f.FPS = rate(video.RFrameRate) // some containers store no average
		}
	}
	f.Duration = firstNumber(out.Format.Duration, streamField(video, audio, func(s *ffprobeStream) string { return s.Duration }))
	f.Bitrate = int64(firstNumber(out.Format.BitRate, streamField(video, audio, func(s *ffprobeStream) string { return s.BitRate })))
	if audio != nil {
		if lang := audio.Tags["language"]; lang != "" && lang != "und" {
			f.Language = lang
		}
	}
	return &f
}

// streamField returns a field of the video stream, or of the audio stream
// when the video has none.
func streamField(video, audio *ffprobeStream, field func(*ffprobeStream) string) string {
	for _, s := range []*ffprobeStream{video, audio} {
		if s != nil && field(s) != "" && field(s) != "N/A" {
			return field(s)
		}
	}
	return ""
}

// isImageFormat reports whether a demuxer reads still images: ffprobe
// reports a PNG as a one-frame video stream in format "png_pipe".
func isImageFormat(formats []string, brand string) bool {
	for _, f := range formats {
		if strings.HasSuffix(f, "_pipe") || f == "image2" || f == "gif" || f == "apng" || f == "webp" {
			return true
		}
	}
	return isMP4Family(formats) && (brand == "avif" || brand == "avis")
}

func isMP4Family(formats []string) bool {
	return slices.Contains(formats, "mp4") || slices.Contains(formats, "mov")
}

// simpleTypes maps ffprobe's format names to a MIME type and a container
// name, for the formats whose type does not depend on their streams.
var simpleTypes = map[string][2]string{
	"mp3":       {"audio/mpeg", "mp3"},
	"wav":       {"audio/wav", "wav"},
	"flac":      {"audio/flac", "flac"},
	"aac":       {"audio/aac", "aac"},
	"aiff":      {"audio/aiff", "aiff"},
	"avi":       {"video/x-msvideo", "avi"},
	"mpegts":    {"video/mp2t", "ts"},
	"mpeg":      {"video/mpeg", "mpeg"},
	"flv":       {"video/x-flv", "flv"},
	"gif":       {"image/gif", "gif"},
	"apng":      {"image/apng", "apng"},
	"png_pipe":  {"image/png", "png"},
	"jpeg_pipe": {"image/jpeg", "jpeg"},
	"webp_pipe": {"image/webp", "webp"},
	"bmp_pipe":  {"image/bmp", "bmp"},
	"tiff_pipe": {"image/tiff", "tiff"},
	"svg_pipe":  {"image/svg+xml", "svg"},
}

// webmCodecs are the codecs a WebM file may hold; a Matroska file with
// only these is WebM.
var webmCodecs = []string{"vp8", "vp9", "av1", "opus", "vorbis", "webvtt"}

// mediaType returns the MIME type and the container name of a file, or an
// empty type when the format is not one it knows.
func mediaType(formats []string, brand, kind string, streams []ffprobeStream, path string) (typ, container string) {
	sound := kind == "audio"
	switch {
	case isMP4Family(formats):
		switch {
		case brand == "qt" || brand == "" && strings.EqualFold(filepath.Ext(path), ".mov"):
			return "video/quicktime", "mov"
		case brand == "avif" || brand == "avis":
			return "image/avif", "avif"
		case strings.HasPrefix(brand, "3g2"):
			return pick(sound, "audio/3gpp2", "video/3gpp2"), "3g2"
		case strings.HasPrefix(brand, "3gp"):
			return pick(sound, "audio/3gpp", "video/3gpp"), "3gp"
		}
		return pick(sound, "audio/mp4", "video/mp4"), "mp4"
	case slices.Contains(formats, "matroska") || slices.Contains(formats, "webm"):
		webm := true
		for _, s := range streams {
			if s.CodecType != "attachment" && !slices.Contains(webmCodecs, s.CodecName) {
				webm = false
			}
		}
		if webm {
			return pick(sound, "audio/webm", "video/webm"), "webm"
		}
		return pick(sound, "audio/x-matroska", "video/x-matroska"), "mkv"
	case formats[0] == "ogg":
		return pick(sound, "audio/ogg", "video/ogg"), "ogg"
	case formats[0] == "image2":
		// Image files that no pipe demuxer claimed: tell them by codec.
		for _, s := range streams {
			if t, ok := simpleTypes[s.CodecName+"_pipe"]; ok {
				return t[0], t[1]
			}
		}
		if slices.ContainsFunc(streams, func(s ffprobeStream) bool { return s.CodecName == "mjpeg" }) {
			return "image/jpeg", "jpeg"
		}
	}
	if t, ok := simpleTypes[formats[0]]; ok {
		return t[0], t[1]
	}
	return "", formats[0]
}

func pick(sound bool, audio, video string) string {
	if sound {
		return audio
	}
	return video
}

// rotation returns how far a video is turned clockwise for display, in
// degrees from 0 to 359, from its display matrix (whose rotation ffprobe
// gives counter-clockwise) or its older rotate tag (clockwise).
func rotation(s *ffprobeStream) int {
	deg := 0.0
	if r, err := strconv.ParseFloat(s.Tags["rotate"], 64); err == nil {
		deg = r
	}
	for _, sd := range s.SideDataList {
		if sd.SideDataType == "Display Matrix" {
			deg = -sd.Rotation
		}
	}
	r := int(math.Round(deg)) % 360
	if r < 0 {
		r += 360
	}
	return r
}

// hasAlpha reports whether a pixel format has an alpha channel: yuva420p,
// rgba, ya8, gbrap… A palette's (pal8) transparent entry does not show in
// the format; for images, the pure-Go probe's answer is used instead.
func hasAlpha(pixFmt string) bool {
	if strings.HasPrefix(pixFmt, "yuva") || strings.HasPrefix(pixFmt, "ya") || strings.HasPrefix(pixFmt, "gbrap") {
		return true
	}
	for _, p := range []string{"rgba", "bgra", "argb", "abgr"} {
		if strings.HasPrefix(pixFmt, p) {
			return true
		}
	}
	return false
}

func orientation(w, h int) string {
	switch {
	case w == 0 || h == 0:
		return ""
	case w > h:
		return "landscape"
	case w < h:
		return "portrait"
	}
	return "square"
}

// rate reads a frame rate such as "30000/1001"; it is 0 for "0/0" and for
// anything unreadable.
func rate(s string) float64 {
	num, den, ok := strings.Cut(s, "/")
	if !ok {
		return 0
	}
	n, err1 := strconv.ParseFloat(num, 64)
	d, err2 := strconv.ParseFloat(den, 64)
	if err1 != nil || err2 != nil || d == 0 || n <= 0 {
		return 0
	}
	return n / d
}

// firstNumber returns the first of values that is a positive number, or 0:
// ffprobe prints numbers as strings, and "N/A" for unknown ones.
func firstNumber(values ...string) float64 {
	for _, v := range values {
		if f, err := strconv.ParseFloat(v, 64); err == nil && f > 0 && !math.IsInf(f, 0) {
			return f
		}
	}
	return 0
}
