//go:build unix

package kinds

import (
	"bytes"
	"image"
	"image/jpeg"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"golang.org/x/image/draw"
)

// imgPhoto writes a 4000×3000 (12-megapixel) JPEG of gradients and grain,
// which compresses about as badly as a photograph, and returns its path.
func imgPhoto(b *testing.B) string {
	b.Helper()
	const w, h = 4000, 3000
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	r := rand.New(rand.NewPCG(1, 2))
	for y := range h {
		for x := range w {
			i := m.PixOffset(x, y)
			g := r.IntN(48)
			m.Pix[i] = uint8(x*200/w + g)
			m.Pix[i+1] = uint8(y*200/h + g)
			m.Pix[i+2] = uint8((x+y)*100/(w+h) + r.IntN(64))
			m.Pix[i+3] = 255
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: 90}); err != nil {
		b.Fatal(err)
	}
	p := filepath.Join(b.TempDir(), "photo.jpg")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkImageResize12MP resizes a 12-megapixel JPEG to 1280×960 and
// encodes it as a JPEG of quality 80: the image kind's pure-Go path
// (decode, box pre-shrink and banded Catmull-Rom, encode), the same on
// one core, x/image/draw's CatmullRom.Scale in place of the resampler,
// and ffmpeg's scale filter from the same file. Besides the time, each
// reports cpu-s/op, the processor time used (of this process, or of the
// ffmpeg children), which a busy machine disturbs less than wall time.
//
//	go test -run '^$' -bench ImageResize12MP -benchtime 10x ./kinds
func BenchmarkImageResize12MP(b *testing.B) {
	in := imgPhoto(b)
	const dw, dh = 1280, 960
	goPath := func(b *testing.B, scale func(image.Image) *image.RGBA) {
		defer imgCPUPerOp(b, syscall.RUSAGE_SELF)()
		for b.Loop() {
			info, err := readImageInfo(in)
			if err != nil {
				b.Fatal(err)
			}
			src, err := decodeImageFile(in, info)
			if err != nil {
				b.Fatal(err)
			}
			if err := jpeg.Encode(io.Discard, scale(src), &jpeg.Options{Quality: 80}); err != nil {
				b.Fatal(err)
			}
		}
	}
	kind := func(src image.Image) *image.RGBA {
		return renderImage(src, 1, imageFit("fill", "", 4000, 3000, dw, dh), imageOptions{})
	}
	b.Run("go", func(b *testing.B) { goPath(b, kind) })
	b.Run("go-1core", func(b *testing.B) {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
		goPath(b, kind)
	})
	b.Run("draw-catmullrom", func(b *testing.B) {
		goPath(b, func(src image.Image) *image.RGBA {
			dst := image.NewRGBA(image.Rect(0, 0, dw, dh))
			draw.CatmullRom.Scale(dst, dst.Rect, src, src.Bounds(), draw.Src, nil)
			return dst
		})
	})
	b.Run("ffmpeg", func(b *testing.B) {
		prog, err := exec.LookPath("ffmpeg")
		if err != nil {
			b.Skip("install ffmpeg")
		}
		out := filepath.Join(b.TempDir(), "out.jpg")
		defer imgCPUPerOp(b, syscall.RUSAGE_CHILDREN)()
		for b.Loop() {
			cmd := exec.Command(prog, "-nostdin", "-v", "error", "-y", "-i", in, "-vf", "scale=1280:960", "-q:v", "3", out)
			if o, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("ffmpeg: %v: %s", err, o)
			}
		}
	})
}

// imgCPUPerOp measures the processor time of who (RUSAGE_SELF or
// RUSAGE_CHILDREN) until the returned function runs, and reports it per
// iteration.
func imgCPUPerOp(b *testing.B, who int) func() {
	used := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(who, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := used()
	return func() {
		b.ReportMetric((used()-start).Seconds()/float64(b.N), "cpu-s/op")
	}
}
