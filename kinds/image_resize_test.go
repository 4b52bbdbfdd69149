package kinds

import (
	"image"
	"image/color"
	"math/rand/v2"
	"testing"

	"golang.org/x/image/draw"
)

// imgNoise returns a w×h picture of smooth gradients with some noise and
// some transparency, premultiplied.
func imgNoise(w, h int, seed uint64) *image.RGBA {
	r := rand.New(rand.NewPCG(seed, 1))
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			a := uint8(255)
			if x > w*3/4 {
				a = uint8(128 + r.IntN(128))
			}
			c := color.NRGBA{uint8(x * 255 / w), uint8(y * 255 / h), uint8(r.IntN(256)), a}
			m.Set(x, y, c)
		}
	}
	return m
}

// TestImageResampleMatchesDraw: the banded resampler gives what
// x/image/draw's CatmullRom.Scale gives, up to rounding, reducing and
// enlarging.
func TestImageResampleMatchesDraw(t *testing.T) {
	t.Parallel()
	src := imgNoise(301, 203, 1)
	for _, size := range []image.Point{{100, 67}, {150, 150}, {37, 11}, {602, 406}, {301, 203}, {1, 1}} {
		got := resample(src, srcWindow{0, 0, 301, 203}, size.X, size.Y)
		want := image.NewRGBA(image.Rect(0, 0, size.X, size.Y))
		draw.CatmullRom.Scale(want, want.Rect, src, src.Rect, draw.Src, nil)
		worst := 0
		for i := range got.Pix {
			worst = max(worst, imgAbs(int(got.Pix[i])-int(want.Pix[i])))
		}
		if worst > 2 {
			t.Errorf("%v: differs from draw.CatmullRom by up to %d", size, worst)
		}
		for i := 0; i < len(got.Pix); i += 4 {
			if p := got.Pix[i : i+4]; p[0] > p[3] || p[1] > p[3] || p[2] > p[3] {
				t.Fatalf("%v: pixel %v is not premultiplied", size, p)
			}
		}
	}
}

func imgAbs(x int) int { return max(x, -x) }

// TestImageBoxShrink averages blocks, partial ones at the edges too.
func TestImageBoxShrink(t *testing.T) {
	t.Parallel()
	src := image.NewRGBA(image.Rect(0, 0, 5, 3))
	for i := range src.Pix {
		src.Pix[i] = uint8(i / 4 * 10)
	}
	got := boxShrink(src, 2)
	if got.Rect != image.Rect(0, 0, 3, 2) {
		t.Fatalf("size %v", got.Rect)
	}
	// Pixel values are 10 × index: block (0,0) holds 0, 10, 50, 60; the
	// last column of blocks is one pixel wide, the last row one high.
	want := []uint8{30, 50, 65, 105, 125, 140}
	for i, w := range want {
		if g := got.Pix[4*i]; g != w {
			t.Errorf("block %d = %d, want %d", i, g, w)
		}
	}
}

// TestImageOrient: each EXIF orientation puts the stored top-left pixel
// where it belongs.
func TestImageOrient(t *testing.T) {
	t.Parallel()
	src := image.NewRGBA(image.Rect(0, 0, 3, 2))
	src.Pix[0] = 255 // the top-left pixel is marked
	for o, want := range map[int]image.Point{1: {0, 0}, 2: {2, 0}, 3: {2, 1}, 4: {0, 1}, 5: {0, 0}, 6: {1, 0}, 7: {1, 2}, 8: {0, 2}} {
		m := orient(src, o)
		size := image.Pt(3, 2)
		if o >= 5 {
			size = image.Pt(2, 3)
		}
		if m.Rect.Size() != size {
			t.Errorf("orientation %d: size %v, want %v", o, m.Rect.Size(), size)
		}
		if m.Pix[m.PixOffset(want.X, want.Y)] != 255 {
			t.Errorf("orientation %d: the marked pixel is not at %v", o, want)
		}
	}
}

// TestImagePlanFits checks the geometry of each fit and position.
func TestImagePlanFits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		fit, pos string
		win      srcWindow
		dst      image.Rectangle
	}{
		{"fill", "center", srcWindow{0, 0, 400, 200}, image.Rect(0, 0, 100, 100)},
		{"contain", "center", srcWindow{0, 0, 400, 200}, image.Rect(0, 25, 100, 75)},
		{"contain", "bottom-right", srcWindow{0, 0, 400, 200}, image.Rect(0, 50, 100, 100)},
		{"cover", "center", srcWindow{100, 0, 200, 200}, image.Rect(0, 0, 100, 100)},
		{"cover", "right", srcWindow{200, 0, 200, 200}, image.Rect(0, 0, 100, 100)},
	} {
		pl := imageFit(tc.fit, tc.pos, 400, 200, 100, 100)
		if pl.win != tc.win || pl.dst != tc.dst || pl.canvas != image.Pt(100, 100) {
			t.Errorf("%s %s: %+v, want window %v onto %v", tc.fit, tc.pos, pl, tc.win, tc.dst)
		}
	}
}

// TestImageBoxShrinkYCbCr: averaging a JPEG's planes before converting
// gives what converting first and averaging gives, for each subsampling.
func TestImageBoxShrinkYCbCr(t *testing.T) {
	t.Parallel()
	for _, ratio := range []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422,
		image.YCbCrSubsampleRatio420, image.YCbCrSubsampleRatio440} {
		src := image.NewYCbCr(image.Rect(0, 0, 37, 23), ratio)
		r := rand.New(rand.NewPCG(3, 4))
		// Values whose RGB needs no clamping, where the conversion is
		// affine; smooth chroma, as in photographs, so that which samples
		// a block averages matters little.
		for i := range src.Y {
			src.Y[i] = uint8(40 + r.IntN(170))
		}
		for i := range src.Cb {
			src.Cb[i], src.Cr[i] = uint8(120+i%7), uint8(135-i%5)
		}
		for _, k := range []int{2, 3, 4} {
			got := boxShrinkYCbCr(src, k)
			want := boxShrink(toRGBA(src), k)
			if got.Rect != want.Rect {
				t.Fatalf("%v k=%d: size %v, want %v", ratio, k, got.Rect, want.Rect)
			}
			for i := range got.Pix {
				if d := imgAbs(int(got.Pix[i]) - int(want.Pix[i])); d > 4 {
					t.Fatalf("%v k=%d: byte %d = %d, want about %d", ratio, k, i, got.Pix[i], want.Pix[i])
				}
			}
		}
	}
}

// TestImageRenderSizes renders sources of many shapes to many sizes with
// every fit and a few orientations: no panic, and always the canvas size.
func TestImageRenderSizes(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(5, 6))
	for range 300 {
		sw, sh := 1+r.IntN(60), 1+r.IntN(60)
		if r.IntN(10) == 0 {
			sw *= 20 // large reductions take the box pre-shrink
		}
		var src image.Image = imgNoise(sw, sh, r.Uint64())
		if r.IntN(2) == 0 {
			src = image.NewYCbCr(image.Rect(0, 0, sw, sh), image.YCbCrSubsampleRatio420)
		}
		o := []int{1, 3, 6, 8}[r.IntN(4)]
		uw, uh := sw, sh
		if o >= 5 {
			uw, uh = sh, sw
		}
		W, H := 1+r.IntN(80), 1+r.IntN(80)
		fit := []string{"fill", "contain", "cover"}[r.IntN(3)]
		pos := []string{"center", "top-left", "bottom-right"}[r.IntN(3)]
		pl := imageFit(fit, pos, uw, uh, W, H)
		m := renderImage(src, o, pl, imageOptions{bg: color.RGBA{1, 2, 3, 255}, hasBG: true})
		if m.Rect != image.Rect(0, 0, W, H) {
			t.Fatalf("%d×%d orientation %d %s %s to %d×%d: got %v", sw, sh, o, fit, pos, W, H, m.Rect)
		}
	}
}
