package imagemeta_test

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/spoolrun/spool/internal/imagemeta"
)

// exifSegment returns an APP1 segment holding a TIFF header and one IFD
// with the orientation tag.
func exifSegment(bo binary.AppendByteOrder, orientation uint16) []byte {
	tiff := []byte("II*\x00")
	if bo == binary.BigEndian {
		tiff = []byte("MM\x00*")
	}
	tiff = bo.AppendUint32(tiff, 8)
	tiff = bo.AppendUint16(tiff, 2)
	// An unrelated tag first (ImageDescription, ASCII), then orientation.
	tiff = bo.AppendUint16(tiff, 0x010e)
	tiff = bo.AppendUint16(tiff, 2)
	tiff = bo.AppendUint32(tiff, 1)
	tiff = bo.AppendUint32(tiff, 0)
	tiff = bo.AppendUint16(tiff, 0x0112)
	tiff = bo.AppendUint16(tiff, 3)
	tiff = bo.AppendUint32(tiff, 1)
	tiff = bo.AppendUint16(tiff, orientation)
	tiff = bo.AppendUint16(tiff, 0)
	tiff = bo.AppendUint32(tiff, 0) // no next IFD
	seg := append([]byte("Exif\x00\x00"), tiff...)
	return append([]byte{0xff, 0xe1, byte((len(seg) + 2) >> 8), byte(len(seg) + 2)}, seg...)
}

func encode(t testing.TB, f func(*bytes.Buffer) error) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := f(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestRead(t *testing.T) {
	rgba := image.NewNRGBA(image.Rect(0, 0, 30, 20))
	rgba.Set(1, 1, color.NRGBA{1, 2, 3, 4})
	opaque := image.NewRGBA(image.Rect(0, 0, 30, 20))
	for i := range opaque.Pix {
		opaque.Pix[i] = 255
	}
	jpg := encode(t, func(b *bytes.Buffer) error { return jpeg.Encode(b, opaque, nil) })
	rotated := append(append(append([]byte{}, jpg[:2]...), exifSegment(binary.BigEndian, 6)...), jpg[2:]...)
	rotatedLE := append(append(append([]byte{}, jpg[:2]...), exifSegment(binary.LittleEndian, 8)...), jpg[2:]...)
	pal := image.NewPaletted(image.Rect(0, 0, 7, 9), palette.Plan9)
	anim := encode(t, func(b *bytes.Buffer) error {
		return gif.EncodeAll(b, &gif.GIF{Image: []*image.Paletted{pal, pal, pal}, Delay: []int{1, 1, 1}})
	})
	still := encode(t, func(b *bytes.Buffer) error { return gif.Encode(b, pal, nil) })
	for _, tc := range []struct {
		name string
		data []byte
		want imagemeta.Info
	}{
		{"jpeg", jpg, imagemeta.Info{Format: "jpeg", Width: 30, Height: 20, Orientation: 1, Frames: 1}},
		{"jpeg exif MM 6", rotated, imagemeta.Info{Format: "jpeg", Width: 30, Height: 20, Orientation: 6, Frames: 1}},
		{"jpeg exif II 8", rotatedLE, imagemeta.Info{Format: "jpeg", Width: 30, Height: 20, Orientation: 8, Frames: 1}},
		{"png alpha", encode(t, func(b *bytes.Buffer) error { return png.Encode(b, rgba) }),
			imagemeta.Info{Format: "png", Width: 30, Height: 20, Orientation: 1, Alpha: true, Frames: 1}},
		{"png opaque", encode(t, func(b *bytes.Buffer) error { return png.Encode(b, opaque) }),
			imagemeta.Info{Format: "png", Width: 30, Height: 20, Orientation: 1, Frames: 1}},
		{"gif still", still, imagemeta.Info{Format: "gif", Width: 7, Height: 9, Orientation: 1, Frames: 1}},
		{"gif animated", anim, imagemeta.Info{Format: "gif", Width: 7, Height: 9, Orientation: 1, Frames: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := imagemeta.Read(bytes.NewReader(tc.data))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			// Every prefix is an error or a plausible answer, never a panic.
			for n := range len(tc.data) {
				imagemeta.Read(bytes.NewReader(tc.data[:n]))
			}
		})
	}
	if _, err := imagemeta.Read(bytes.NewReader([]byte("hello, world"))); err != imagemeta.ErrUnknownFormat {
		t.Errorf("text: got %v, want ErrUnknownFormat", err)
	}
}

// TestReadFFmpeg reads WebP files that ffmpeg writes (lossy, lossless
// with alpha, and animated) and an AVIF.
func TestReadFFmpeg(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("install ffmpeg")
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want imagemeta.Info
	}{
		{"lossy", []string{"-f", "lavfi", "-i", "testsrc2=s=64x48", "-frames:v", "1", "-c:v", "libwebp"},
			imagemeta.Info{Format: "webp", Width: 64, Height: 48, Orientation: 1, Frames: 1}},
		{"alpha", []string{"-f", "lavfi", "-i", "color=c=red@0.5:s=33x17,format=rgba", "-frames:v", "1", "-c:v", "libwebp", "-lossless", "1"},
			imagemeta.Info{Format: "webp", Width: 33, Height: 17, Orientation: 1, Alpha: true, Frames: 1}},
		{"animated", []string{"-f", "lavfi", "-i", "testsrc2=s=40x30:r=5:d=1", "-c:v", "libwebp_anim", "-loop", "0"},
			imagemeta.Info{Format: "webp", Width: 40, Height: 30, Orientation: 1, Frames: 5}},
		{"avif", []string{"-f", "lavfi", "-i", "testsrc2=s=96x54", "-frames:v", "1", "-c:v", "libaom-av1", "-cpu-used", "8",
			"-still-picture", "1", "-f", "avif"},
			imagemeta.Info{Format: "avif", Width: 96, Height: 54, Orientation: 1, Frames: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, tc.name+".webp") // the avif case names its muxer
			args := append([]string{"-v", "error", "-nostdin", "-y"}, tc.args...)
			if b, err := exec.Command("ffmpeg", append(args, out)...).CombinedOutput(); err != nil {
				t.Fatalf("ffmpeg: %v: %s", err, b)
			}
			data, _ := readFile(out)
			got, err := imagemeta.Read(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			if tc.name == "animated" && got.Frames >= 4 {
				// ffmpeg 5.1's libwebp_anim keeps the last frame back.
				got.Frames = tc.want.Frames
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestOrientation(t *testing.T) {
	for o := uint16(0); o <= 9; o++ {
		want := int(o)
		if o < 1 || o > 8 {
			want = 1
		}
		for _, bo := range []binary.AppendByteOrder{binary.BigEndian, binary.LittleEndian} {
			seg := exifSegment(bo, o)
			if got := imagemeta.Orientation(seg[10:]); got != want {
				t.Errorf("%v %d: got %d", bo, o, got)
			}
		}
	}
}

// FuzzOrientation feeds the EXIF parser arbitrary bytes: it must never
// panic and always answer 1 to 8.
func FuzzOrientation(f *testing.F) {
	f.Add(exifSegment(binary.BigEndian, 6)[10:])
	f.Add(exifSegment(binary.LittleEndian, 3)[10:])
	f.Add([]byte("II*\x00\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if o := imagemeta.Orientation(b); o < 1 || o > 8 {
			t.Fatalf("orientation %d", o)
		}
	})
}

// FuzzRead feeds Read arbitrary files starting like a JPEG, PNG, GIF or
// WebP: it must never panic, and a success has a size and sane fields.
func FuzzRead(f *testing.F) {
	jpg := encode(f, func(b *bytes.Buffer) error { return jpeg.Encode(b, image.NewGray(image.Rect(0, 0, 4, 3)), nil) })
	f.Add(append(append(append([]byte{}, jpg[:2]...), exifSegment(binary.BigEndian, 6)...), jpg[2:]...))
	f.Add(encode(f, func(b *bytes.Buffer) error { return png.Encode(b, image.NewNRGBA(image.Rect(0, 0, 4, 3))) }))
	f.Add(encode(f, func(b *bytes.Buffer) error {
		return gif.Encode(b, image.NewPaletted(image.Rect(0, 0, 4, 3), palette.Plan9), nil)
	}))
	f.Add([]byte("\x00\x00\x00\x10ftypavif\x00\x00\x00\x00\x00\x00\x00\x30meta\x00\x00\x00\x00\x00\x00\x00\x24iprp" +
		"\x00\x00\x00\x1cipco\x00\x00\x00\x14ispe\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x03"))
	f.Add([]byte("RIFF\x20\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x12\x00\x00\x00\x03\x00\x00\x02\x00\x00ANMF\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := imagemeta.Read(bytes.NewReader(b))
		if err != nil {
			return
		}
		if info.Width <= 0 || info.Height <= 0 || info.Orientation < 1 || info.Orientation > 8 || info.Frames < 1 {
			t.Fatalf("implausible %+v", info)
		}
	})
}

func readFile(p string) ([]byte, error) { return os.ReadFile(p) }
