package kinds

import (
	"image"
	"image/color"
	"math"
	"runtime"
	"sync"

	"golang.org/x/image/draw"
)

// The image kind's pixel work, on premultiplied RGBA in memory, spread over
// every core. Scaling is separable Catmull-Rom (x/image/draw's kernel,
// which gives its best-looking results), computed here rather than with
// Kernel.Scale, whose horizontal pass cannot be split: a band of output
// rows would redo it whole. A reduction by more than 4× first averages
// boxes of k×k pixels down to about twice the target size, which costs
// little and leaves the kernel a few taps per pixel.

// inBands runs fn over [0, n) cut into one band per core, each in its own
// goroutine, and waits for them.
func inBands(n int, fn func(lo, hi int)) {
	workers := min(runtime.GOMAXPROCS(0), n/16)
	if workers <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	step := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += step {
		wg.Go(func() { fn(lo, min(lo+step, n)) })
	}
	wg.Wait()
}

// toRGBA returns src as an *image.RGBA whose bounds start at 0, 0,
// converting in bands (image/draw has fast paths for what the decoders
// return: YCbCr, Gray, NRGBA, Paletted, CMYK).
func toRGBA(src image.Image) *image.RGBA {
	b := src.Bounds()
	if m, ok := src.(*image.RGBA); ok && b.Min == (image.Point{}) {
		return m
	}
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	inBands(b.Dy(), func(lo, hi int) {
		r := image.Rect(0, lo, b.Dx(), hi)
		draw.Draw(dst, r, src, b.Min.Add(r.Min), draw.Src)
	})
	return dst
}

// shrinkFactor is the box pre-shrink for a reduction of ratio (source
// pixels per output pixel): the largest k that leaves the kernel at least
// 1.5 source pixels per output pixel, or 1 for none.
func shrinkFactor(ratio float64) int {
	return max(int(ratio/1.5), 1)
}

// boxShrink averages k×k blocks of src; the last row and column of blocks
// may be partial, so nothing at the edges is lost.
func boxShrink(src *image.RGBA, k int) *image.RGBA {
	sw, sh := src.Rect.Dx(), src.Rect.Dy()
	dw, dh := (sw+k-1)/k, (sh+k-1)/k
	dst := image.NewRGBA(image.Rect(0, 0, dw, dh))
	inBands(dh, func(lo, hi int) {
		sums := make([]uint32, 4*dw)
		for dy := lo; dy < hi; dy++ {
			clear(sums)
			y0, y1 := dy*k, min(dy*k+k, sh)
			for y := y0; y < y1; y++ {
				row := src.Pix[y*src.Stride : y*src.Stride+4*sw]
				for dx := range dw {
					s := sums[4*dx : 4*dx+4 : 4*dx+4]
					x1 := min(dx*k+k, sw)
					for x := dx * k; x < x1; x++ {
						p := row[4*x : 4*x+4 : 4*x+4]
						s[0] += uint32(p[0])
						s[1] += uint32(p[1])
						s[2] += uint32(p[2])
						s[3] += uint32(p[3])
					}
				}
			}
			out := dst.Pix[dy*dst.Stride:]
			for dx := range dw {
				n := uint32((min(dx*k+k, sw) - dx*k) * (y1 - y0))
				for c := range 4 {
					out[4*dx+c] = uint8((sums[4*dx+c] + n/2) / n)
				}
			}
		}
	})
	return dst
}

// boxShrinkYCbCr is boxShrink reading a decoded JPEG directly, which
// saves converting every pixel of a large input to RGBA first: averaging
// Y, Cb and Cr and then converting gives the same colours, as the
// conversion is affine. Chroma is averaged over the chroma samples under
// each block. src's bounds must start at 0, 0.
func boxShrinkYCbCr(src *image.YCbCr, k int) *image.RGBA {
	sw, sh := src.Rect.Dx(), src.Rect.Dy()
	hs, vs := 1, 1
	switch src.SubsampleRatio {
	case image.YCbCrSubsampleRatio422:
		hs = 2
	case image.YCbCrSubsampleRatio420:
		hs, vs = 2, 2
	case image.YCbCrSubsampleRatio440:
		vs = 2
	case image.YCbCrSubsampleRatio411:
		hs = 4
	case image.YCbCrSubsampleRatio410:
		hs, vs = 4, 2
	}
	dw, dh := (sw+k-1)/k, (sh+k-1)/k
	dst := image.NewRGBA(image.Rect(0, 0, dw, dh))
	inBands(dh, func(lo, hi int) {
		sums := make([]uint32, 3*dw)
		for dy := lo; dy < hi; dy++ {
			clear(sums)
			y0, y1 := dy*k, min(dy*k+k, sh)
			for y := y0; y < y1; y++ {
				row := src.Y[y*src.YStride : y*src.YStride+sw]
				for dx := range dw {
					s := uint32(0)
					for _, v := range row[dx*k : min(dx*k+k, sw)] {
						s += uint32(v)
					}
					sums[3*dx] += s
				}
			}
			cy0, cy1 := y0/vs, (y1+vs-1)/vs
			for cy := cy0; cy < cy1; cy++ {
				cb := src.Cb[cy*src.CStride:]
				cr := src.Cr[cy*src.CStride:]
				for dx := range dw {
					cx0, cx1 := dx*k/hs, (min(dx*k+k, sw)+hs-1)/hs
					var b, r uint32
					for cx := cx0; cx < cx1; cx++ {
						b += uint32(cb[cx])
						r += uint32(cr[cx])
					}
					sums[3*dx+1] += b
					sums[3*dx+2] += r
				}
			}
			out := dst.Pix[dy*dst.Stride:]
			for dx := range dw {
				n := uint32((min(dx*k+k, sw) - dx*k) * (y1 - y0))
				nc := uint32(((min(dx*k+k, sw)+hs-1)/hs - dx*k/hs) * (cy1 - cy0))
				s := sums[3*dx : 3*dx+3 : 3*dx+3]
				r, g, b := color.YCbCrToRGB(uint8((s[0]+n/2)/n), uint8((s[1]+nc/2)/nc), uint8((s[2]+nc/2)/nc))
				o := out[4*dx : 4*dx+4 : 4*dx+4]
				o[0], o[1], o[2], o[3] = r, g, b, 255
			}
		}
	})
	return dst
}

// orient turns src upright for its EXIF orientation (1 to 8): 2 to 4
// mirror or turn it half round, 5 to 8 also swap its width and height.
func orient(src *image.RGBA, o int) *image.RGBA {
	if o < 2 || o > 8 {
		return src
	}
	w, h := src.Rect.Dx(), src.Rect.Dy()
	dw, dh := w, h
	if o >= 5 {
		dw, dh = h, w
	}
	// at maps a pixel of the output to the pixel of src it shows.
	at := map[int]func(x, y int) (int, int){
		2: func(x, y int) (int, int) { return w - 1 - x, y },
		3: func(x, y int) (int, int) { return w - 1 - x, h - 1 - y },
		4: func(x, y int) (int, int) { return x, h - 1 - y },
		5: func(x, y int) (int, int) { return y, x },
		6: func(x, y int) (int, int) { return y, h - 1 - x },
		7: func(x, y int) (int, int) { return w - 1 - y, h - 1 - x },
		8: func(x, y int) (int, int) { return w - 1 - y, x },
	}[o]
	dst := image.NewRGBA(image.Rect(0, 0, dw, dh))
	inBands(dh, func(lo, hi int) {
		for y := lo; y < hi; y++ {
			for x := range dw {
				sx, sy := at(x, y)
				copy(dst.Pix[y*dst.Stride+4*x:y*dst.Stride+4*x+4], src.Pix[sy*src.Stride+4*sx:])
			}
		}
	})
	return dst
}

// srcWindow is a rectangle of the source with fractional edges: what cover
// keeps of it, after a box shrink.
type srcWindow struct{ x, y, w, h float64 }

// kernelWeights holds the weights of one axis: output sample i reads count[i]
// source samples from first[i], weighted by w[i*n:], in fixed point.
type kernelWeights struct {
	n     int
	first []int
	count []int
	w     []int32
}

const weightBits = 14

// newKernelWeights computes Catmull-Rom weights mapping the source span
// [start, start+length) of srcN samples onto dstN samples. Taps past the
// source's edges are dropped and the rest renormalized.
func newKernelWeights(dstN int, start, length float64, srcN int) kernelWeights {
	scale := length / float64(dstN)
	fscale := max(scale, 1) // widen the kernel when reducing
	support := draw.CatmullRom.Support * fscale
	n := int(math.Ceil(2*support)) + 1
	f := kernelWeights{n: n, first: make([]int, dstN), count: make([]int, dstN), w: make([]int32, dstN*n)}
	ws := make([]float64, n)
	for i := range dstN {
		center := start + (float64(i)+0.5)*scale
		lo := max(int(math.Floor(center-support)), 0)
		hi := min(int(math.Ceil(center+support)), srcN) // exclusive
		if hi <= lo {                                   // a window at the very edge
			lo, hi = min(max(int(center), 0), srcN-1), min(max(int(center), 0), srcN-1)+1
		}
		hi = min(hi, lo+n)
		sum := 0.0
		for j := lo; j < hi; j++ {
			t := math.Abs((float64(j) + 0.5 - center) / fscale)
			v := 0.0
			if t < draw.CatmullRom.Support {
				v = draw.CatmullRom.At(t)
			}
			ws[j-lo] = v
			sum += v
		}
		if sum == 0 {
			ws[0], sum = 1, 1
		}
		// Quantize so that the weights add up to exactly one, putting the
		// rounding error on the largest.
		total, big := int32(0), 0
		row := f.w[i*n : i*n+n]
		for j := range hi - lo {
			row[j] = int32(math.Round(ws[j] / sum * (1 << weightBits)))
			total += row[j]
			if row[j] > row[big] {
				big = j
			}
		}
		row[big] += 1<<weightBits - total
		f.first[i], f.count[i] = lo, hi-lo
	}
	return f
}

// clamp8 turns a fixed-point sum into a channel value: rounded, in
// 0..255, and for a colour no more than its alpha, as premultiplied
// colours must be (the kernel's negative lobes can overshoot).
func clamp8(v int32) int32 {
	v = (v + 1<<(weightBits-1)) >> weightBits
	return min(max(v, 0), 255)
}

// resample scales the window win of src to a dw×dh image.
func resample(src *image.RGBA, win srcWindow, dw, dh int) *image.RGBA {
	sw, sh := src.Rect.Dx(), src.Rect.Dy()
	fx := newKernelWeights(dw, win.x, win.w, sw)
	fy := newKernelWeights(dh, win.y, win.h, sh)
	// Only the source rows some output row reads go through the
	// horizontal pass.
	y0, y1 := fy.first[0], 0
	for i := range dh {
		y0 = min(y0, fy.first[i])
		y1 = max(y1, fy.first[i]+fy.count[i])
	}
	// The horizontal pass keeps 6 more bits than a byte, unclamped, so
	// that the vertical pass sees the overshoot of the kernel's lobes as
	// x/image/draw's float pass does.
	stride := 4 * dw
	tmp := make([]int16, stride*(y1-y0))
	inBands(y1-y0, func(lo, hi int) {
		for y := lo; y < hi; y++ {
			in := src.Pix[(y+y0)*src.Stride:]
			out := tmp[y*stride : (y+1)*stride]
			for x := range dw {
				var r, g, b, a int32
				w := fx.w[x*fx.n : x*fx.n+fx.count[x]]
				p := in[4*fx.first[x]:]
				for j, c := range w {
					q := p[4*j : 4*j+4 : 4*j+4]
					r += int32(q[0]) * c
					g += int32(q[1]) * c
					b += int32(q[2]) * c
					a += int32(q[3]) * c
				}
				o := out[4*x : 4*x+4 : 4*x+4]
				o[0] = int16((r + 1<<(tmpShift-1)) >> tmpShift)
				o[1] = int16((g + 1<<(tmpShift-1)) >> tmpShift)
				o[2] = int16((b + 1<<(tmpShift-1)) >> tmpShift)
				o[3] = int16((a + 1<<(tmpShift-1)) >> tmpShift)
			}
		}
	})
	dst := image.NewRGBA(image.Rect(0, 0, dw, dh))
	inBands(dh, func(lo, hi int) {
		for y := lo; y < hi; y++ {
			w := fy.w[y*fy.n : y*fy.n+fy.count[y]]
			first := fy.first[y] - y0
			out := dst.Pix[y*dst.Stride:]
			for x := range dw {
				var r, g, b, a int32
				off := first*stride + 4*x
				for _, c := range w {
					q := tmp[off : off+4 : off+4]
					r += int32(q[0]) * c
					g += int32(q[1]) * c
					b += int32(q[2]) * c
					a += int32(q[3]) * c
					off += stride
				}
				putPremul(out[4*x:4*x+4:4*x+4], r>>extraBits, g>>extraBits, b>>extraBits, a>>extraBits)
			}
		}
	})
	return dst
}

// The horizontal pass's output is in 1/64ths of a byte: sums shifted by
// tmpShift rather than weightBits. Its values, at most about 1.3 × 255 ×
// 64 in magnitude, fit an int16, and the vertical pass's sums an int32.
const (
	extraBits = 6
	tmpShift  = weightBits - extraBits
)

// putPremul stores fixed-point premultiplied sums as a pixel.
func putPremul(p []uint8, r, g, b, a int32) {
	a = clamp8(a)
	p[0] = uint8(min(clamp8(r), a))
	p[1] = uint8(min(clamp8(g), a))
	p[2] = uint8(min(clamp8(b), a))
	p[3] = uint8(a)
}

// flatten draws m over the opaque colour bg, in place, for formats
// without transparency.
func flatten(m *image.RGBA, bg color.RGBA) {
	if m.Opaque() {
		return
	}
	inBands(m.Rect.Dy(), func(lo, hi int) {
		for y := lo; y < hi; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+4*m.Rect.Dx()]
			for i := 0; i < len(row); i += 4 {
				t := 255 - uint32(row[i+3])
				row[i] += uint8((uint32(bg.R)*t + 127) / 255)
				row[i+1] += uint8((uint32(bg.G)*t + 127) / 255)
				row[i+2] += uint8((uint32(bg.B)*t + 127) / 255)
				row[i+3] = 255
			}
		}
	})
}
