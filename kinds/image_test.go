package kinds_test

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/image/webp"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/kinds"
)

var (
	imgRed   = color.NRGBA{255, 0, 0, 255}
	imgWhite = color.NRGBA{255, 255, 255, 255}
	imgBlue  = color.NRGBA{0, 0, 255, 255}
	imgGreen = color.NRGBA{0, 255, 0, 255}
)

// imgStripes returns a w×h picture: red in the left quarter, blue in the
// right quarter, white between, so that where each lands in an output
// shows how it was cut and scaled.
func imgStripes(w, h int) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := imgWhite
			switch {
			case x < w/4:
				c = imgRed
			case x >= w-w/4:
				c = imgBlue
			}
			m.SetNRGBA(x, y, c)
		}
	}
	return m
}

func imgPNG(t *testing.T, m image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func imgJPEG(t *testing.T, m image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// imgUpload stores data as a file of e.
func imgUpload(t *testing.T, e *spool.Engine, name string, data []byte) *spool.File {
	t.Helper()
	f, err := e.CreateFile(t.Context(), bytes.NewReader(data), &spool.FileParams{Filename: name})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// runImage runs an image task on file f and returns its output record and
// bytes.
func runImage(t *testing.T, e *spool.Engine, f *spool.File, opts map[string]any) (*spool.File, []byte) {
	t.Helper()
	task := run(t, e, spool.Request{Kind: "image", FileID: f.ID, Options: opts})
	out := outputFile(t, task)
	_, r, err := e.OpenFile(t.Context(), out.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return out, b
}

func imgDecode(t *testing.T, b []byte) image.Image {
	t.Helper()
	m, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("decode output: %v", err)
	}
	return m
}

// imgNear reports whether c is within tol of want on every channel.
func imgNear(c color.Color, want color.NRGBA, tol int) bool {
	n := color.NRGBAModel.Convert(c).(color.NRGBA)
	d := func(a, b uint8) bool { return int(a)-int(b) <= tol && int(b)-int(a) <= tol }
	return d(n.R, want.R) && d(n.G, want.G) && d(n.B, want.B) && d(n.A, want.A)
}

// imgExpectAt checks the colours of an output at points.
func imgExpectAt(t *testing.T, m image.Image, want map[image.Point]color.NRGBA) {
	t.Helper()
	for p, c := range want {
		if got := m.At(p.X, p.Y); !imgNear(got, c, 40) {
			t.Errorf("pixel %v = %v, want about %v", p, got, c)
		}
	}
}

// TestImageFit resizes a 200×100 PNG to a 100×100 JPEG with each fit and
// checks the output's size and where the input's stripes went.
func TestImageFit(t *testing.T) {
	t.Parallel()
	e := newEngine(t, spool.Config{}, nil)
	in := imgUpload(t, e, "stripes.png", imgPNG(t, imgStripes(200, 100)))
	for _, tc := range []struct {
		name string
		opts map[string]any
		want map[image.Point]color.NRGBA
	}{
		// Stretched: the red quarter stays a quarter of the width.
		{"fill", map[string]any{"fit": "fill"},
			map[image.Point]color.NRGBA{{5, 50}: imgRed, {50, 5}: imgWhite, {50, 95}: imgWhite, {95, 50}: imgBlue}},
		// Fitted inside: 100×50 in the middle, green bars above and below.
		{"contain", map[string]any{"fit": "contain", "background": "#00ff00"},
			map[image.Point]color.NRGBA{{50, 5}: imgGreen, {50, 94}: imgGreen, {5, 50}: imgRed, {95, 50}: imgBlue, {50, 50}: imgWhite}},
		{"contain top", map[string]any{"fit": "contain", "background": "#0f0", "position": "top"},
			map[image.Point]color.NRGBA{{50, 5}: imgWhite, {50, 45}: imgWhite, {50, 60}: imgGreen, {50, 94}: imgGreen}},
		// Cut to the middle square: only white is left.
		{"cover", map[string]any{"fit": "cover"},
			map[image.Point]color.NRGBA{{3, 50}: imgWhite, {50, 50}: imgWhite, {96, 50}: imgWhite}},
		// Cut to the left square: red in its left half.
		{"cover left", map[string]any{"fit": "cover", "position": "left"},
			map[image.Point]color.NRGBA{{10, 50}: imgRed, {40, 50}: imgRed, {60, 50}: imgWhite, {96, 50}: imgWhite}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.opts["width"], tc.opts["height"], tc.opts["format"] = 100, 100, "jpeg"
			out, b := runImage(t, e, in, tc.opts)
			m := imgDecode(t, b)
			if m.Bounds() != image.Rect(0, 0, 100, 100) {
				t.Fatalf("output is %v, want 100×100", m.Bounds())
			}
			if out.Type != "image/jpeg" || out.Kind != "image" || out.Width != 100 || out.Height != 100 ||
				out.Filename != "stripes.jpg" || out.Filesize != int64(len(b)) {
				t.Errorf("output record = %s", jsonOf(t, out))
			}
			imgExpectAt(t, m, tc.want)
		})
	}
}

// TestImageSizes: one side keeps the aspect ratio, percentages are of the
// input's size, and no size at all converts.
func TestImageSizes(t *testing.T) {
	t.Parallel()
	e := newEngine(t, spool.Config{}, nil)
	in := imgUpload(t, e, "in.png", imgPNG(t, imgStripes(300, 200)))
	for _, tc := range []struct {
		opts map[string]any
		w, h int
	}{
		{map[string]any{"width": 150}, 150, 100},
		{map[string]any{"height": 50}, 75, 50},
		{map[string]any{"width": "50%"}, 150, 100},
		{map[string]any{"width": "10%", "height": "50%"}, 30, 100},
		{map[string]any{"width": 900}, 900, 600},
		{map[string]any{"format": "gif"}, 300, 200},
		{map[string]any{}, 300, 200},
	} {
		out, b := runImage(t, e, in, tc.opts)
		m := imgDecode(t, b)
		if m.Bounds().Dx() != tc.w || m.Bounds().Dy() != tc.h || out.Width != tc.w || out.Height != tc.h {
			t.Errorf("%v: output %v, record %d×%d, want %d×%d", tc.opts, m.Bounds(), out.Width, out.Height, tc.w, tc.h)
		}
	}
}

// TestImageTransparency: a PNG keeps its transparency, contain's bars
// are transparent without a background, and a JPEG is drawn over the
// background.
func TestImageTransparency(t *testing.T) {
	t.Parallel()
	e := newEngine(t, spool.Config{}, nil)
	m := image.NewNRGBA(image.Rect(0, 0, 40, 40))
	for y := range 40 {
		for x := range 40 {
			if x < 20 {
				m.SetNRGBA(x, y, color.NRGBA{255, 0, 0, 255})
			}
		}
	}
	in := imgUpload(t, e, "half.png", imgPNG(t, m))
	if !in.Transparency {
		t.Errorf("input record = %s, want transparency", jsonOf(t, in))
	}
	out, b := runImage(t, e, in, map[string]any{"width": 80, "height": 40, "fit": "contain"})
	if out.Type != "image/png" || !out.Transparency {
		t.Errorf("png output = %s, want a transparent png", jsonOf(t, out))
	}
	imgExpectAt(t, imgDecode(t, b), map[image.Point]color.NRGBA{{5, 20}: {}, {25, 20}: imgRed, {50, 20}: {}, {75, 20}: {}})
	_, b = runImage(t, e, in, map[string]any{"format": "jpeg", "background": "#ffffff"})
	imgExpectAt(t, imgDecode(t, b), map[image.Point]color.NRGBA{{5, 20}: imgRed, {35, 20}: imgWhite})
	_, b = runImage(t, e, in, map[string]any{"format": "jpeg"})
	imgExpectAt(t, imgDecode(t, b), map[image.Point]color.NRGBA{{5, 20}: imgRed, {35, 20}: {0, 0, 0, 255}})
}

// imgEXIFJPEG returns a JPEG of m carrying an EXIF orientation.
func imgEXIFJPEG(t *testing.T, m image.Image, orientation byte) []byte {
	t.Helper()
	j := imgJPEG(t, m)
	app1 := []byte("\xff\xe1\x00\x22Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x01" +
		"\x01\x12\x00\x03\x00\x00\x00\x01\x00" + string(orientation) + "\x00\x00\x00\x00\x00\x00")
	return append(append(append([]byte{}, j[:2]...), app1...), j[2:]...)
}

// TestImageEXIFOrientation: a JPEG stored sideways with orientation 6
// (turn 90° clockwise to view) comes out upright, and so do the others.
func TestImageEXIFOrientation(t *testing.T) {
	t.Parallel()
	e := newEngine(t, spool.Config{}, nil)
	// Stored 80×40: red left quarter, blue right quarter.
	stored := imgStripes(80, 40)
	for _, tc := range []struct {
		orientation byte
		w, h        int
		want        map[image.Point]color.NRGBA
	}{
		{1, 80, 40, map[image.Point]color.NRGBA{{5, 20}: imgRed, {75, 20}: imgBlue}},
		{3, 80, 40, map[image.Point]color.NRGBA{{5, 20}: imgBlue, {75, 20}: imgRed}},
		// Turned clockwise: the stored left edge is on top.
		{6, 40, 80, map[image.Point]color.NRGBA{{20, 5}: imgRed, {20, 75}: imgBlue}},
		{8, 40, 80, map[image.Point]color.NRGBA{{20, 5}: imgBlue, {20, 75}: imgRed}},
		{5, 40, 80, map[image.Point]color.NRGBA{{20, 5}: imgRed, {20, 75}: imgBlue}},
		{2, 80, 40, map[image.Point]color.NRGBA{{5, 20}: imgBlue, {75, 20}: imgRed}},
	} {
		in := imgUpload(t, e, "photo.jpg", imgEXIFJPEG(t, stored, tc.orientation))
		if in.Width != tc.w || in.Height != tc.h {
			t.Errorf("orientation %d: input record %d×%d, want %d×%d as displayed", tc.orientation, in.Width, in.Height, tc.w, tc.h)
		}
		out, b := runImage(t, e, in, map[string]any{"format": "png"})
		m := imgDecode(t, b)
		if m.Bounds().Dx() != tc.w || m.Bounds().Dy() != tc.h || out.Rotation != 0 {
			t.Errorf("orientation %d: output %v rotation %d, want %d×%d upright", tc.orientation, m.Bounds(), out.Rotation, tc.w, tc.h)
		}
		imgExpectAt(t, m, tc.want)
	}
}

// TestImageWebPAVIF: WebP and AVIF outputs, made with ffmpeg, decode at
// the requested size; a WebP input is read in Go.
func TestImageWebPAVIF(t *testing.T) {
	needFFmpeg(t)
	t.Parallel()
	e := newEngine(t, spool.Config{Prober: kinds.DefaultProber()}, nil)
	in := imgUpload(t, e, "in.png", imgPNG(t, imgStripes(160, 90)))
	out, b := runImage(t, e, in, map[string]any{"width": 81, "format": "webp", "quality": 90})
	m, err := webp.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("decode webp: %v", err)
	}
	if m.Bounds().Dx() != 81 || m.Bounds().Dy() != 46 || out.Type != "image/webp" || out.Width != 81 {
		t.Errorf("webp output %v, record %s", m.Bounds(), jsonOf(t, out))
	}
	imgExpectAt(t, m, map[image.Point]color.NRGBA{{5, 23}: imgRed, {40, 23}: imgWhite, {76, 23}: imgBlue})

	// The WebP output as an input, decoded in Go, to an AVIF.
	webpIn := imgUpload(t, e, "in.webp", b)
	for _, size := range []int{33, 120} { // libsvtav1 1.4 could not write the small one
		out, b = runImage(t, e, webpIn, map[string]any{"width": size, "format": "avif"})
		if out.Type != "image/avif" || out.Codec != "av1" || out.Width != size {
			t.Errorf("avif output record %s", jsonOf(t, out))
		}
		// Decode it back with ffmpeg, through an image task to PNG.
		avifIn := imgUpload(t, e, "back.avif", b)
		_, pngBytes := runImage(t, e, avifIn, map[string]any{"format": "png"})
		back := imgDecode(t, pngBytes)
		if back.Bounds().Dx() != size {
			t.Errorf("avif decodes as %v, want width %d", back.Bounds(), size)
		}
		if size > 100 {
			imgExpectAt(t, back, map[image.Point]color.NRGBA{{5, back.Bounds().Dy() / 2}: imgRed, {size - 5, back.Bounds().Dy() / 2}: imgBlue})
		}
	}
}

// TestImageVideoFrame takes frames of a video: at start, to the input's
// size by default and as a JPEG; past the end the task fails, and with
// the video's duration probed, Create refuses it naming start.
func TestImageVideoFrame(t *testing.T) {
	needFFmpeg(t)
	t.Parallel()
	e := newEngine(t, spool.Config{Prober: kinds.DefaultProber()}, nil)
	p := filepath.Join(t.TempDir(), "clip.mp4")
	enc, _ := h264(t)
	ffmpeg(t, "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=2", "-c:v", enc, "-pix_fmt", "yuv420p", p)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	in := imgUpload(t, e, "clip.mp4", data)
	out, b := runImage(t, e, in, map[string]any{"start": 1.5})
	m := imgDecode(t, b)
	if m.Bounds() != image.Rect(0, 0, 320, 180) || out.Type != "image/jpeg" || out.Filename != "clip.jpg" {
		t.Errorf("frame %v, record %s", m.Bounds(), jsonOf(t, out))
	}
	// Two frames apart in time differ: start is honoured.
	_, b0 := runImage(t, e, in, map[string]any{"start": 0, "format": "png"})
	_, b1 := runImage(t, e, in, map[string]any{"start": 1.5, "format": "png"})
	if bytes.Equal(b0, b1) {
		t.Error("frames at 0 s and 1.5 s are the same")
	}
	out, _ = runImage(t, e, in, map[string]any{"start": 0.5, "width": 64, "format": "webp"})
	if out.Width != 64 || out.Height != 36 {
		t.Errorf("small webp frame record %s", jsonOf(t, out))
	}

	_, err = e.Create(t.Context(), spool.Request{Kind: "image", FileID: in.ID, Options: map[string]any{"start": 5}})
	var ve *spool.ValidationError
	if !errors.As(err, &ve) || ve.Field != "start" {
		t.Errorf("Create with start past the end = %v, want a ValidationError for start", err)
	}
}

// TestImageVideoFramePastEnd: without a probed duration, a frame past the
// end fails the task with a reason, not an error to retry.
func TestImageVideoFramePastEnd(t *testing.T) {
	needFFmpeg(t)
	t.Parallel()
	e := newEngine(t, spool.Config{Prober: spool.BasicProber()}, nil) // no duration
	clip, _ := makeVideo(t)
	data, err := os.ReadFile(clip)
	if err != nil {
		t.Fatal(err)
	}
	in := imgUpload(t, e, "clip.mp4", data)
	task := run(t, e, spool.Request{Kind: "image", FileID: in.ID, Options: map[string]any{"start": 30}})
	if task.Status != spool.StatusFailed || !strings.Contains(task.Error, "no frame at 30 s") {
		t.Errorf("task %s %q, want failed: no frame at 30 s", task.Status, task.Error)
	}
}

// TestImageBadInput: a corrupt image and a file that is no picture fail
// with a readable reason.
func TestImageBadInput(t *testing.T) {
	t.Parallel()
	e := newEngine(t, spool.Config{}, nil)
	good := imgPNG(t, imgStripes(50, 50))
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"cut.png", good[:len(good)/2], "decode input png"},
		{"notes.txt", []byte("hello, world"), "not an image or a video"},
	} {
		in := imgUpload(t, e, tc.name, tc.data)
		task := run(t, e, spool.Request{Kind: "image", FileID: in.ID, Options: map[string]any{"format": "jpeg"}})
		if task.Status != spool.StatusFailed || !strings.Contains(task.Error, tc.want) {
			t.Errorf("%s: task %s %q, want failed: %s", tc.name, task.Status, task.Error, tc.want)
		}
	}
}

// TestImageWithoutFFmpeg: with no ffmpeg in PATH, PNG, JPEG and GIF tasks
// still run, while Create refuses WebP and AVIF outputs, naming format,
// and the kind stays available.
func TestImageWithoutFFmpeg(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	e := newEngine(t, spool.Config{}, nil)
	for _, info := range e.Kinds(t.Context()) {
		if info.Kind == "image" && !info.Available {
			t.Errorf("image kind unavailable without ffmpeg: %s", info.Reason)
		}
	}
	png := imgUpload(t, e, "in.png", imgPNG(t, imgStripes(64, 32)))
	jpg := imgUpload(t, e, "in.jpg", imgEXIFJPEG(t, imgStripes(64, 32), 6))
	for _, tc := range []struct {
		in   *spool.File
		opts map[string]any
		typ  string
		w, h int
	}{
		{png, map[string]any{"width": 32, "format": "jpeg"}, "image/jpeg", 32, 16},
		{jpg, map[string]any{"height": 16, "format": "png"}, "image/png", 8, 16},
		{jpg, map[string]any{"width": 10, "height": 10, "fit": "cover"}, "image/jpeg", 10, 10},
		{png, map[string]any{"format": "gif"}, "image/gif", 64, 32},
	} {
		out, b := runImage(t, e, tc.in, tc.opts)
		m := imgDecode(t, b)
		if out.Type != tc.typ || m.Bounds() != image.Rect(0, 0, tc.w, tc.h) {
			t.Errorf("%v: output %s %v, want %s %d×%d", tc.opts, out.Type, m.Bounds(), tc.typ, tc.w, tc.h)
		}
	}
	// Bytes the sniffer takes for an MP4: a video input needs ffmpeg.
	video := imgUpload(t, e, "clip.mp4", append([]byte("\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"), make([]byte, 100)...))
	_, err := e.Create(t.Context(), spool.Request{Kind: "image", FileID: video.ID, Options: map[string]any{"format": "png"}})
	var ve *spool.ValidationError
	if video.Kind != "video" || !errors.As(err, &ve) || ve.Field != "file_id" || !strings.Contains(err.Error(), "install ffmpeg") {
		t.Errorf("Create from a %s input without ffmpeg = %v, want refused naming file_id", video.Kind, err)
	}
	for _, format := range []string{"webp", "avif"} {
		_, err := e.Create(t.Context(), spool.Request{Kind: "image", FileID: png.ID, Options: map[string]any{"format": format}})
		var ve *spool.ValidationError
		if !errors.As(err, &ve) || ve.Field != "format" || !errors.Is(err, spool.ErrKindUnavailable) ||
			!strings.Contains(err.Error(), "ffmpeg not found in PATH: install ffmpeg") {
			t.Errorf("Create %s without ffmpeg = %v, want refused naming format and how to install ffmpeg", format, err)
		}
	}
}

// TestImageTempFiles: temporary files live under the engine's data
// directory and none is left behind, after a success or a failure.
func TestImageTempFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	e := newEngine(t, spool.Config{DataDir: filepath.Join(dir, "files")}, nil)
	in := imgUpload(t, e, "in.png", imgPNG(t, imgStripes(64, 32)))
	runImage(t, e, in, map[string]any{"width": 32, "format": "jpeg"})
	bad := imgUpload(t, e, "bad.png", imgPNG(t, imgStripes(64, 32))[:100])
	run(t, e, spool.Request{Kind: "image", FileID: bad.ID})
	left, _ := filepath.Glob(filepath.Join(dir, "files", ".tmp", "image-*"))
	if len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// TestImageCorruptForFFmpeg: an input only ffmpeg could read, but
// corrupt, fails with ffmpeg's own reason.
func TestImageCorruptForFFmpeg(t *testing.T) {
	needFFmpeg(t)
	t.Parallel()
	e := newEngine(t, spool.Config{}, nil)
	in := imgUpload(t, e, "broken.bmp", append([]byte("BM"), bytes.Repeat([]byte{7}, 500)...))
	task := run(t, e, spool.Request{Kind: "image", FileID: in.ID, Options: map[string]any{"format": "png"}})
	// ffmpeg 5.1 says "ffmpeg: Error while decoding stream #0:0: Invalid
	// data found when processing input; …".
	if task.Status != spool.StatusFailed || !strings.HasPrefix(task.Error, "ffmpeg: ") ||
		!strings.Contains(task.Error, "Invalid data") || strings.Contains(task.Error, "/") || strings.Contains(task.Error, "@ 0x") {
		t.Errorf("task %s %q, want failed with ffmpeg's reason, without paths", task.Status, task.Error)
	}
}
