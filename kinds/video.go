package kinds

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spoolrun/spool"
)

// videoHandler runs the video kind with ffmpeg: it resizes (fit, position,
// background), changes the frame rate, trims (start, end) and transcodes
// into mp4, webm or mov, and completes with the output File, probed.
//
// Defaults are the input's size and frame rate, h264 in mp4 and mov and
// vp9 in webm, the encoder's quality. Audio is aac (mp4, mov) or opus
// (webm) at 128 kb/s; an input without audio gives an output without.
// Sizes are rounded down to even numbers, which 4:2:0 video needs. The
// encoders are set for speed on a small machine: x264 and x265 preset
// veryfast, VP9 with row-mt at speed 5, AV1 with SVT-AV1 preset 10 (libaom
// at cpu-used 8 when ffmpeg lacks SVT-AV1). quality maps onto each
// encoder's CRF; bitrate, when given, sets a target bitrate instead.
//
// The layers option is not implemented: the handler's spec refuses it at
// Create.
type videoHandler struct{ handlerBase }

func newVideo(enc *encoders) *videoHandler { return &videoHandler{handlerBase{enc: enc}} }

// Check says why video tasks cannot run here: ffmpeg, ffprobe, or the
// default encoders (libx264, aac) missing. The other codecs' encoders are
// checked when a task asks for them.
func (h *videoHandler) Check(ctx context.Context) error { return h.enc.check(ctx, "libx264", "aac") }

// Spec is the built-in video spec with layers refused, as this handler
// cannot draw them.
func (h *videoHandler) Spec() *spool.KindSpec {
	s, _ := spool.BuiltinSpec(spool.KindVideo)
	for i := range s.Options {
		if s.Options[i].Name == "layers" {
			s.Options[i].Description = "Image and text overlays. Not implemented: refused."
			s.Options[i].Check = func(any) error {
				return errors.New("is not implemented: this engine's video handler cannot draw overlays yet")
			}
		}
	}
	return s
}

// videoEncoder is how one codec is encoded.
type videoEncoder struct {
	name       string   // ffmpeg encoder
	speed      []string // options that make it fast enough on 2 CPUs
	worst      float64  // CRF at quality 0
	best       float64  // CRF at quality 100
	defaultCRF float64  // without quality or bitrate
	crfNeedsB0 bool     // CRF applies only with -b:v 0
}

var videoEncoders = map[string]videoEncoder{
	"h264": {name: "libx264", speed: []string{"-preset", "veryfast"}, worst: 51, best: 18, defaultCRF: 23},
	"h265": {name: "libx265", speed: []string{"-preset", "veryfast", "-x265-params", "log-level=error", "-tag:v", "hvc1"},
		worst: 51, best: 20, defaultCRF: 28},
	"vp9": {name: "libvpx-vp9", speed: []string{"-deadline", "good", "-cpu-used", "5", "-row-mt", "1"},
		worst: 63, best: 15, defaultCRF: 33, crfNeedsB0: true},
	"av1": {name: "libsvtav1", speed: []string{"-preset", "10"}, worst: 63, best: 20, defaultCRF: 35},
}

// libaom is AV1's encoder when ffmpeg lacks SVT-AV1: its defaults take a
// minute for what SVT-AV1 does in seconds, so it runs in realtime mode.
var libaom = videoEncoder{name: "libaom-av1", speed: []string{"-usage", "realtime", "-cpu-used", "8", "-row-mt", "1"},
	worst: 63, best: 20, defaultCRF: 32, crfNeedsB0: true}

func (h *videoHandler) Handle(ctx context.Context, job *spool.Job) error {
	format, _ := job.String("format")
	if format == "" {
		format = "mp4"
	}
	codec, ok := job.String("codec")
	if !ok {
		codec = videoCodecDefault(format)
	}
	enc := videoEncoders[codec]
	if codec == "av1" && !h.enc.has(ctx, enc.name) && h.enc.has(ctx, libaom.name) {
		enc = libaom
	}
	audio := "aac"
	if format == "webm" {
		audio = "libopus"
	}
	if err := h.need(ctx, enc.name, audio); err != nil {
		return err
	}
	p, info, err := inputInfo(ctx, job, false)
	if err != nil {
		return err
	}
	if !info.video || info.width == 0 || info.height == 0 {
		return spool.Permanent(errors.New("input has no video stream"))
	}
	t, err := trimOf(job, info.duration)
	if err != nil {
		return err
	}
	filters, err := videoFilters(job, info)
	if err != nil {
		return err
	}
	out, err := workPath(job, "output."+format)
	if err != nil {
		return err
	}
	in, trimOut := t.args()
	args := append(in, ffInput(p)...)
	args = append(args, trimOut...)
	args = append(args, "-map", "0:v:0", "-map", "0:a:0?", "-vf", strings.Join(filters, ","))
	args = append(args, videoCodecArgs(job, enc)...)
	args = append(args, "-c:a", audio, "-b:a", "128k")
	if format != "webm" {
		args = append(args, "-movflags", "+faststart")
	}
	args = append(args, "-f", format, out)
	if err := runFFmpeg(ctx, job, args, t.produce(info.duration)); err != nil {
		return err
	}
	f, err := job.CreateFileFromPath(ctx, out, &spool.File{Filename: outputName(job, format)})
	if err != nil {
		return err
	}
	return job.SetOutput(f)
}

// videoCodecDefault is the codec of a format without one.
func videoCodecDefault(format string) string {
	if format == "webm" {
		return "vp9"
	}
	return "h264"
}

// videoCodecArgs returns the encoder and its rate control: a target
// bitrate if given, else a CRF from quality or the encoder's default.
func videoCodecArgs(job *spool.Job, enc videoEncoder) []string {
	args := append([]string{"-c:v", enc.name}, enc.speed...)
	if b, ok := job.String("bitrate"); ok {
		return append(args, "-b:v", b)
	}
	crf := enc.defaultCRF
	if q, ok := job.Int("quality"); ok {
		crf = mapQuality(q, enc.worst, enc.best)
	}
	args = append(args, "-crf", itoa(crf))
	if enc.crfNeedsB0 {
		args = append(args, "-b:v", "0")
	}
	return args
}

// videoFilters returns the filter chain that makes the frames the options
// ask for: size and fit, frame rate, and a pixel format every player reads.
func videoFilters(job *spool.Job, info *mediaInfo) ([]string, error) {
	g, err := geometryOf(job, info.width, info.height)
	if err != nil {
		return nil, err
	}
	filters := g.filters()
	if fps, ok := job.Float("fps"); ok {
		filters = append(filters, "fps="+seconds(fps))
	}
	return append(filters, "format=yuv420p"), nil
}

// geometry is how the input's frames become the output's.
type geometry struct {
	inW, inH   int
	w, h       int    // output size, even
	fit        string // contain, cover or fill; "" when only scaling
	position   string
	background string // ffmpeg colour
}

// geometryOf works out the output size from width, height (pixels or a
// percentage of the input's) and fit.
func geometryOf(job *spool.Job, inW, inH int) (geometry, error) {
	g := geometry{inW: inW, inH: inH, w: inW, h: inH}
	w, wok := job.IntOrPercent("width", int64(inW))
	h, hok := job.IntOrPercent("height", int64(inH))
	switch {
	case wok && hok:
		g.w, g.h = int(w), int(h)
		g.fit, _ = job.String("fit")
		g.position, _ = job.String("position")
		g.background = ffColour(job)
	case wok:
		g.w, g.h = int(w), int(float64(w)*float64(inH)/float64(inW)+0.5)
	case hok:
		g.w, g.h = int(float64(h)*float64(inW)/float64(inH)+0.5), int(h)
	}
	g.w, g.h = g.w&^1, g.h&^1
	if g.w < 2 || g.h < 2 {
		return g, spool.Permanent(fmt.Errorf("output size %dx%d is too small: a video needs at least 2x2 pixels", g.w, g.h))
	}
	return g, nil
}

func (g geometry) filters() []string {
	size := fmt.Sprintf("%d:%d", g.w, g.h)
	switch g.fit {
	case "cover":
		x, y := offsets(g.position, "iw-ow", "ih-oh")
		return []string{"scale=" + size + ":force_original_aspect_ratio=increase", "crop=" + size + ":" + x + ":" + y, "setsar=1"}
	case "contain":
		x, y := offsets(g.position, "ow-iw", "oh-ih")
		return []string{"scale=" + size + ":force_original_aspect_ratio=decrease:force_divisible_by=2",
			"pad=" + size + ":" + x + ":" + y + ":color=" + g.background, "setsar=1"}
	}
	if g.w == g.inW && g.h == g.inH {
		return nil
	}
	return []string{"scale=" + size, "setsar=1"}
}

// offsets returns the x and y of a crop or pad at position, given the
// expressions of the room left on each axis.
func offsets(position, roomX, roomY string) (x, y string) {
	x, y = "("+roomX+")/2", "("+roomY+")/2"
	if strings.Contains(position, "left") {
		x = "0"
	}
	if strings.Contains(position, "right") {
		x = roomX
	}
	if strings.HasPrefix(position, "top") {
		y = "0"
	}
	if strings.HasPrefix(position, "bottom") {
		y = roomY
	}
	return x, y
}

// ffColour returns the background option as ffmpeg writes colours:
// #rgb, #rrggbb or #rrggbbaa becomes 0xRRGGBB[AA]. Defaults to black.
func ffColour(job *spool.Job) string {
	s, ok := job.String("background")
	hex := strings.TrimPrefix(s, "#")
	if !ok || hex == s {
		return "black"
	}
	if len(hex) == 3 {
		hex = string([]byte{hex[0], hex[0], hex[1], hex[1], hex[2], hex[2]})
	}
	return "0x" + strings.ToUpper(hex)
}
