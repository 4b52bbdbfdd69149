package kinds

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"strconv"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/internal/imagemeta"
	"golang.org/x/image/draw"
	"golang.org/x/image/webp"
)

// load decodes the task's input picture and returns it with its EXIF
// orientation: in Go for JPEG, PNG, GIF and still WebP files, through
// ffmpeg (as a PNG) for a video's frame at start and for other images.
func (h *imageHandler) load(ctx context.Context, p string, in *spool.File, o imageOptions, tmp *imageTempFiles) (image.Image, int, error) {
	info, err := readImageInfo(p)
	switch {
	case err == nil && info.Format == "webp" && info.Frames > 1:
		return nil, 0, spool.Permanent(errors.New("animated WebP input is not supported"))
	case err == nil && info.Format == "avif":
		// No AV1 decoder in Go: ffmpeg reads it, below.
	case err == nil:
		m, err := decodeImageFile(p, info)
		return m, info.Orientation, err
	case !errors.Is(err, imagemeta.ErrUnknownFormat):
		return nil, 0, spool.Permanent(fmt.Errorf("read input image: %w", err))
	}
	kind := "file"
	switch {
	case err == nil:
		kind = "image" // an AVIF, whatever its record says
	case in != nil && in.Kind != "":
		kind = in.Kind
	}
	if kind != "image" && kind != "video" {
		typ := ""
		if in != nil {
			typ = " (" + in.Type + ")"
		}
		return nil, 0, spool.Permanent(fmt.Errorf("the input is a %s file%s, not an image or a video", kind, typ))
	}
	if h.ffmpeg == "" {
		what := "an input image of this format"
		if kind == "video" {
			what = "a frame of a video"
		}
		return nil, 0, spool.Permanent(fmt.Errorf("%s needs ffmpeg: %w", what, errFFmpegMissing))
	}
	frame, err := tmp.create("frame.png")
	if err != nil {
		return nil, 0, err
	}
	var args []string
	if kind == "video" {
		args = append(args, "-ss", strconv.FormatFloat(o.start, 'f', -1, 64))
	}
	args = append(args, ffInput(p)...)
	args = append(args, "-map", "0:v:0", "-frames:v", "1", "-c:v", "png", "-f", "image2", "-update", "1", frame)
	if err := runFFmpeg(ctx, nil, args, 0); err != nil {
		return nil, 0, err
	}
	if st, err := os.Stat(frame); err != nil || st.Size() == 0 {
		if kind == "video" {
			return nil, 0, spool.Permanent(fmt.Errorf("no frame at %g s: the video ends before", o.start))
		}
		return nil, 0, spool.Permanent(errors.New("ffmpeg found no picture in the input"))
	}
	info, err = readImageInfo(frame)
	if err != nil {
		return nil, 0, spool.Permanent(fmt.Errorf("read ffmpeg's frame: %w", err))
	}
	m, err := decodeImageFile(frame, info)
	return m, 1, err // ffmpeg turned a video upright already
}

func readImageInfo(p string) (imagemeta.Info, error) {
	f, err := os.Open(p)
	if err != nil {
		return imagemeta.Info{}, fmt.Errorf("open input: %w", err)
	}
	defer f.Close()
	return imagemeta.Read(f)
}

// decodeImageFile decodes the image at p, which info describes, refusing one
// too large to hold in memory before decoding it.
func decodeImageFile(p string, info imagemeta.Info) (image.Image, error) {
	if info.Width > maxImageSide || info.Height > maxImageSide || info.Width*info.Height > maxImagePixels {
		return nil, spool.Permanent(fmt.Errorf("the input is %d×%d, larger than %d pixels a side or %d megapixels",
			info.Width, info.Height, maxImageSide, maxImagePixels>>20))
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("open input: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	var m image.Image
	switch info.Format {
	case "jpeg":
		m, err = jpeg.Decode(r)
	case "png":
		m, err = png.Decode(r)
	case "gif":
		m, err = gif.Decode(r) // the first frame
	case "webp":
		m, err = webp.Decode(r)
	default:
		err = imagemeta.ErrUnknownFormat
	}
	if err != nil {
		return nil, spool.Permanent(fmt.Errorf("decode input %s: %w", info.Format, err))
	}
	return m, nil
}

// encode writes m to the file out in format: JPEG, PNG and GIF in Go,
// WebP and AVIF with ffmpeg from a PNG.
func (h *imageHandler) encode(ctx context.Context, m *image.RGBA, format string, quality int, out string, tmp *imageTempFiles) error {
	switch format {
	case "jpeg", "png", "gif":
		return writeImageFile(out, func(w io.Writer) error {
			switch format {
			case "jpeg":
				return jpeg.Encode(w, m, &jpeg.Options{Quality: quality})
			case "png":
				return (&png.Encoder{}).Encode(w, pngImage(m))
			}
			return gif.Encode(w, m, &gif.Options{NumColors: 256, Drawer: draw.FloydSteinberg})
		})
	}
	enc, err := h.encoder(ctx, format)
	if err != nil {
		return spool.Permanent(err)
	}
	src, err := tmp.create("src.png")
	if err != nil {
		return err
	}
	err = writeImageFile(src, func(w io.Writer) error {
		return (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(w, pngImage(m))
	})
	if err != nil {
		return err
	}
	args := append(ffInput(src), "-frames:v", "1", "-c:v", enc)
	switch enc {
	case "libwebp":
		args = append(args, "-quality", strconv.Itoa(quality))
	case "libaom-av1":
		args = append(args, "-cpu-used", "8", "-still-picture", "1", "-crf", strconv.Itoa(avifCRF(quality)), "-pix_fmt", "yuv420p")
	case "libsvtav1":
		args = append(args, "-preset", "10", "-crf", strconv.Itoa(avifCRF(quality)), "-pix_fmt", "yuv420p")
	}
	args = append(args, "-f", format, out)
	return runFFmpeg(ctx, nil, args, 0)
}

// avifCRF maps quality 1 to 100 onto the AV1 encoders' crf, 62 to 13:
// the default 80 gives 23, which looks like a JPEG of quality 80.
func avifCRF(quality int) int {
	return int(63 - 0.5*float64(quality) + 0.5)
}

// pngImage returns m as the PNG encoder writes fastest: *image.RGBA when
// opaque, else unpremultiplied *image.NRGBA.
func pngImage(m *image.RGBA) image.Image {
	if m.Opaque() {
		return m
	}
	n := image.NewNRGBA(m.Rect)
	inBands(m.Rect.Dy(), func(lo, hi int) {
		r := image.Rect(m.Rect.Min.X, m.Rect.Min.Y+lo, m.Rect.Max.X, m.Rect.Min.Y+hi)
		draw.Draw(n, r, m, r.Min, draw.Src)
	})
	return n
}

// writeImageFile writes the file at p with write, through a buffer.
func writeImageFile(p string, write func(io.Writer) error) error {
	f, err := os.Create(p)
	if err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	w := bufio.NewWriterSize(f, 64<<10)
	err = write(w)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	return nil
}
