package kinds

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"math"
	"os"
	"os/exec"
	"path"
	"strconv"
	"strings"
	"sync"

	"github.com/spoolrun/spool"
	"golang.org/x/image/draw"
)

// imageHandler runs the image kind: it makes one image from an image, or
// from a frame of a video, resized, cut and converted per the options
// (BuiltinSpec("image") declares them), and completes with the new file's
// record as the output.
//
// JPEG, PNG, GIF and WebP inputs are decoded, and JPEG, PNG and GIF outputs
// encoded, in Go, so that plain image work needs no ffmpeg; EXIF
// orientation is applied first. Video frames, other image formats (AVIF,
// BMP, TIFF…) and WebP and AVIF outputs go through ffmpeg. A machine
// without ffmpeg (or without the encoder a format needs) runs the rest:
// the handler is a spool.TaskChecker rather than a spool.Checker, so that
// a started engine refuses at Create only the tasks that need what is
// missing, naming the option to blame, instead of the whole kind.
//
// GIF output and input are still images: an animated input gives its
// first frame. Formats without transparency (JPEG, GIF, AVIF as ffmpeg 5
// writes it) are drawn over the background colour, black by default.
type imageHandler struct {
	ffmpeg string // path of ffmpeg, "" when it is not in PATH

	encOnce  sync.Once
	encoders map[string]bool // ffmpeg's encoders, by name
}

func newImage() *imageHandler {
	p, _ := exec.LookPath("ffmpeg")
	return &imageHandler{ffmpeg: p}
}

// Limits of the pictures decoded in memory: 64 megapixels are 256 MiB as
// RGBA, more than a phone or camera makes (the hosted service stops at
// 8192 pixels a side). Outputs are bounded as the spec bounds width and
// height, and so is the side that follows from the aspect ratio.
const (
	maxImageSide   = 16384
	maxImagePixels = 64 << 20
	maxOutputSide  = 8192
)

// imageOptions are an image task's options, read once.
type imageOptions struct {
	fit, position string
	format        string // "" for the input's
	quality       int
	start         float64
	bg            color.RGBA // premultiplied; zero (transparent) when not given
	hasBG         bool
}

func readImageOptions(job *spool.Job) imageOptions {
	var o imageOptions
	o.fit, _ = job.String("fit")
	o.position, _ = job.String("position")
	o.format, _ = job.String("format")
	q, ok := job.Int("quality")
	if !ok {
		q = 80
	}
	o.quality = int(min(max(q, 1), 100))
	o.start, _ = job.Float("start")
	if s, ok := job.String("background"); ok {
		o.bg, o.hasBG = imageColour(s)
	}
	return o
}

// imageColour reads #rgb, #rrggbb or #rrggbbaa (the spec checked the form)
// as a premultiplied colour.
func imageColour(s string) (color.RGBA, bool) {
	hex := strings.TrimPrefix(s, "#")
	if len(hex) == 3 {
		hex = string([]byte{hex[0], hex[0], hex[1], hex[1], hex[2], hex[2]})
	}
	if len(hex) == 6 {
		hex += "ff"
	}
	v, err := strconv.ParseUint(hex, 16, 32)
	if err != nil || len(hex) != 8 {
		return color.RGBA{}, false
	}
	c := color.NRGBA{R: uint8(v >> 24), G: uint8(v >> 16), B: uint8(v >> 8), A: uint8(v)}
	return color.RGBAModel.Convert(c).(color.RGBA), true
}

// imageFormat is the format a task writes: the format option, else the
// input's when the option allows it, else jpeg for a video and png for
// any other image.
func imageFormat(format string, in *spool.File) string {
	if format != "" {
		return format
	}
	if in == nil {
		return ""
	}
	if in.Kind == "video" {
		return "jpeg"
	}
	switch t := strings.TrimPrefix(in.Type, "image/"); t {
	case "jpeg", "png", "gif", "webp", "avif":
		return t
	}
	return "png"
}

// CheckTask refuses a task that needs ffmpeg, or an ffmpeg encoder, that
// this machine lacks: a WebP or AVIF output, or a video input; and a
// video input's frame past its end.
func (h *imageHandler) CheckTask(ctx context.Context, t *spool.Task) error {
	format, _ := t.Options["format"].(string)
	field := "format"
	if format == "" {
		field = "file_id" // the input's format is the output's
	}
	if err := h.canWrite(ctx, imageFormat(format, t.Input)); err != nil {
		return &spool.ValidationError{Field: field, Reason: err.Error()}
	}
	if t.Input == nil || t.Input.Kind != "video" {
		return nil
	}
	if h.ffmpeg == "" {
		return &spool.ValidationError{Field: "file_id", Reason: "a frame of a video needs ffmpeg: " + errFFmpegMissing.Error()}
	}
	start, _ := t.Options["start"].(float64)
	if d := t.Input.Duration; d > 0 && start >= d {
		return &spool.ValidationError{Field: "start", Reason: fmt.Sprintf("%g is not before the end of the video (%g s)", start, d)}
	}
	return nil
}

// canWrite says why this machine cannot write format, or returns nil.
func (h *imageHandler) canWrite(ctx context.Context, format string) error {
	switch format {
	case "webp", "avif":
	default:
		return nil
	}
	if h.ffmpeg == "" {
		return fmt.Errorf("%s output needs ffmpeg: %w", format, errFFmpegMissing)
	}
	if _, err := h.encoder(ctx, format); err != nil {
		return err
	}
	return nil
}

// encoder returns the ffmpeg encoder to write format with: libwebp for
// WebP; for AVIF libaom-av1, which at -cpu-used 8 with -still-picture
// encodes a picture as fast as libsvtav1's fast presets, smaller, and at
// any size (libsvtav1 1.4 needs even sides of 64 pixels or more), else
// libsvtav1.
func (h *imageHandler) encoder(ctx context.Context, format string) (string, error) {
	h.encOnce.Do(func() {
		out, err := exec.CommandContext(ctx, h.ffmpeg, "-hide_banner", "-encoders").Output()
		h.encoders = map[string]bool{}
		if err != nil {
			return // Handle's ffmpeg run will say what is wrong
		}
		for _, l := range strings.Split(string(out), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && len(f[0]) == 6 {
				h.encoders[f[1]] = true
			}
		}
	})
	var names []string
	switch format {
	case "webp":
		names = []string{"libwebp"}
	case "avif":
		names = []string{"libaom-av1", "libsvtav1"}
	}
	for _, n := range names {
		if h.encoders[n] {
			return n, nil
		}
	}
	if len(h.encoders) == 0 {
		return names[0], nil // could not list them: try, and let ffmpeg say
	}
	return "", fmt.Errorf("%s output needs ffmpeg with %s: install a build that has it", format, strings.Join(names, " or "))
}

func (h *imageHandler) Handle(ctx context.Context, job *spool.Job) error {
	opts := readImageOptions(job)
	p, err := job.InputPath(ctx)
	if err != nil {
		return err // already says what failed, Permanent when a retry cannot help
	}
	in := job.Input()
	format := imageFormat(opts.format, in)
	if err := h.canWrite(ctx, format); err != nil {
		return spool.Permanent(err)
	}
	tmp := &imageTempFiles{job: job}

	src, orientation, err := h.load(ctx, p, in, opts, tmp)
	if err != nil {
		return err
	}
	job.Progress(30)
	b := src.Bounds()
	sw, sh := b.Dx(), b.Dy()
	if orientation >= 5 {
		sw, sh = sh, sw
	}
	pl, err := planImage(job, opts, sw, sh)
	if err != nil {
		return spool.Permanent(err)
	}
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	img := renderImage(src, orientation, pl, opts)
	job.Progress(70)
	if format != "png" && format != "webp" {
		bg := color.RGBA{A: 255}
		if opts.hasBG {
			// A premultiplied colour made opaque is that colour over black.
			bg = color.RGBA{opts.bg.R, opts.bg.G, opts.bg.B, 255}
		}
		flatten(img, bg)
	}
	out, err := tmp.create("out." + imageExt(format))
	if err != nil {
		return err
	}
	if err := h.encode(ctx, img, format, opts.quality, out, tmp); err != nil {
		return err
	}
	job.Progress(95)
	f, err := job.CreateFileFromPath(ctx, out, &spool.File{Filename: imageOutputName(job, in, format)})
	if err != nil {
		return err
	}
	job.Progress(100)
	return job.SetOutput(f)
}

// imagePlan says how the output is made from an upright source of sw×sh: the
// srcWindow of the source to keep, the canvas size, and where on the canvas
// the scaled window lands.
type imagePlan struct {
	win    srcWindow
	canvas image.Point
	dst    image.Rectangle
}

// planImage works out the output's geometry from width, height, fit and
// position.
func planImage(job *spool.Job, o imageOptions, sw, sh int) (imagePlan, error) {
	w, okW := job.IntOrPercent("width", int64(sw))
	h, okH := job.IntOrPercent("height", int64(sh))
	switch {
	case !okW && !okH:
		w, h = int64(sw), int64(sh)
	case !okH:
		h = max(int64(math.Round(float64(w)*float64(sh)/float64(sw))), 1)
	case !okW:
		w = max(int64(math.Round(float64(h)*float64(sw)/float64(sh))), 1)
	}
	if w > maxOutputSide || h > maxOutputSide {
		return imagePlan{}, fmt.Errorf("the output would be %d×%d, larger than %d pixels a side", w, h, maxOutputSide)
	}
	if !okW || !okH {
		return imageFit("fill", "", sw, sh, int(w), int(h)), nil // the aspect ratio is kept: nothing to fit
	}
	return imageFit(o.fit, o.position, sw, sh, int(w), int(h)), nil
}

// imageFit fits a source of sw×sh into W×H.
func imageFit(fit, position string, sw, sh, W, H int) imagePlan {
	pl := imagePlan{win: srcWindow{0, 0, float64(sw), float64(sh)}, canvas: image.Pt(W, H), dst: image.Rect(0, 0, W, H)}
	fx, fy := imagePosition(position)
	switch fit {
	case "contain":
		s := math.Min(float64(W)/float64(sw), float64(H)/float64(sh))
		cw := min(max(int(math.Round(float64(sw)*s)), 1), W)
		ch := min(max(int(math.Round(float64(sh)*s)), 1), H)
		x := int(math.Round(float64(W-cw) * fx))
		y := int(math.Round(float64(H-ch) * fy))
		pl.dst = image.Rect(x, y, x+cw, y+ch)
	case "cover":
		s := math.Max(float64(W)/float64(sw), float64(H)/float64(sh))
		ww, wh := math.Min(float64(W)/s, float64(sw)), math.Min(float64(H)/s, float64(sh))
		pl.win = srcWindow{(float64(sw) - ww) * fx, (float64(sh) - wh) * fy, ww, wh}
	}
	return pl
}

// imagePosition returns where along each axis a position puts the
// picture: 0 at the left or top, 1 at the right or bottom.
func imagePosition(pos string) (fx, fy float64) {
	fx, fy = 0.5, 0.5
	if strings.Contains(pos, "left") {
		fx = 0
	}
	if strings.Contains(pos, "right") {
		fx = 1
	}
	if strings.Contains(pos, "top") {
		fy = 0
	}
	if strings.Contains(pos, "bottom") {
		fy = 1
	}
	return fx, fy
}

// renderImage makes the output picture from src, stored turned by orientation.
func renderImage(src image.Image, orientation int, pl imagePlan, o imageOptions) *image.RGBA {
	win := pl.win
	var m *image.RGBA
	k := shrinkFactor(math.Min(win.w/float64(pl.dst.Dx()), win.h/float64(pl.dst.Dy())))
	switch y, ok := src.(*image.YCbCr); {
	case k == 1:
		m = toRGBA(src)
	case ok && y.Rect.Min == image.Point{}:
		m = boxShrinkYCbCr(y, k)
	default:
		m = boxShrink(toRGBA(src), k)
	}
	if k > 1 {
		f := float64(k)
		win = srcWindow{win.x / f, win.y / f, win.w / f, win.h / f}
	}
	m = orient(m, orientation)
	if win != (srcWindow{0, 0, float64(m.Rect.Dx()), float64(m.Rect.Dy())}) || pl.dst.Size() != m.Rect.Size() {
		m = resample(m, win, pl.dst.Dx(), pl.dst.Dy())
	}
	if pl.dst == image.Rect(0, 0, pl.canvas.X, pl.canvas.Y) {
		return m
	}
	canvas := image.NewRGBA(image.Rect(0, 0, pl.canvas.X, pl.canvas.Y))
	if o.hasBG {
		draw.Draw(canvas, canvas.Rect, image.NewUniform(o.bg), image.Point{}, draw.Src)
	}
	draw.Draw(canvas, pl.dst, m, image.Point{}, draw.Over)
	return canvas
}

// imageExt returns the file extension of a format.
func imageExt(format string) string {
	if format == "jpeg" {
		return "jpg"
	}
	return format
}

// imageOutputName is the output's filename: the request's, else the input's
// name with the output's extension.
func imageOutputName(job *spool.Job, in *spool.File, format string) string {
	if n := namesOf(job.Task).filename; n != "" {
		return n
	}
	base := "image"
	if in != nil && in.Filename != "" {
		base = strings.TrimSuffix(in.Filename, path.Ext(in.Filename))
	}
	return base + "." + imageExt(format)
}

// imageTempFiles are a task's temporary files, in the job's work
// directory (Job.TempDir), which the engine removes when the handler
// returns.
type imageTempFiles struct {
	job *spool.Job
}

// create returns the path of a new empty file whose name ends in suffix.
func (t *imageTempFiles) create(suffix string) (string, error) {
	dir, err := t.job.TempDir()
	if err != nil {
		return "", fmt.Errorf("create temporary file: %w", err)
	}
	f, err := os.CreateTemp(dir, "image-*-"+suffix)
	if err != nil {
		return "", fmt.Errorf("create temporary file: %w", err)
	}
	return f.Name(), f.Close()
}
