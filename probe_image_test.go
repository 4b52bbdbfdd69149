package spool_test

import (
	"bytes"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/spoolrun/spool"
)

// TestBasicProberImages checks what BasicProber reads from image headers:
// the displayed size and rotation of an EXIF-rotated JPEG, transparency,
// and the frames of an animated GIF.
func TestBasicProberImages(t *testing.T) {
	opaque := image.NewRGBA(image.Rect(0, 0, 40, 30))
	for i := range opaque.Pix {
		opaque.Pix[i] = 200
	}
	var jpg bytes.Buffer
	if err := jpeg.Encode(&jpg, opaque, nil); err != nil {
		t.Fatal(err)
	}
	// APP1 with a big-endian TIFF header and orientation 6 (turn 90°
	// clockwise to display), spliced after SOI.
	app1 := []byte("\xff\xe1\x00\x22Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x01" +
		"\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00\x00\x00\x00\x00")
	rotated := append(append(append([]byte{}, jpg.Bytes()[:2]...), app1...), jpg.Bytes()[2:]...)

	alpha := image.NewNRGBA(image.Rect(0, 0, 8, 8))
	alpha.Set(0, 0, color.NRGBA{255, 0, 0, 128})
	var pngAlpha bytes.Buffer
	if err := png.Encode(&pngAlpha, alpha); err != nil {
		t.Fatal(err)
	}
	frame := image.NewPaletted(image.Rect(0, 0, 5, 6), palette.Plan9)
	var anim bytes.Buffer
	if err := gif.EncodeAll(&anim, &gif.GIF{Image: []*image.Paletted{frame, frame}, Delay: []int{5, 5}}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		data []byte
		want spool.File
	}{
		{"plain.jpg", jpg.Bytes(), spool.File{Object: "source", Kind: "image", Type: "image/jpeg", Codec: "jpeg",
			Width: 40, Height: 30, Orientation: "landscape", Frames: 1}},
		{"rotated.jpg", rotated, spool.File{Object: "source", Kind: "image", Type: "image/jpeg", Codec: "jpeg",
			Width: 30, Height: 40, Orientation: "portrait", Rotation: 90, Frames: 1}},
		{"alpha.png", pngAlpha.Bytes(), spool.File{Object: "source", Kind: "image", Type: "image/png", Codec: "png",
			Width: 8, Height: 8, Orientation: "square", Transparency: true, Frames: 1}},
		{"anim.gif", anim.Bytes(), spool.File{Object: "source", Kind: "image", Type: "image/gif", Codec: "gif",
			Width: 5, Height: 6, Orientation: "portrait", Animated: true, Frames: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name)
			if err := os.WriteFile(p, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := spool.BasicProber().Probe(t.Context(), p)
			if err != nil {
				t.Fatal(err)
			}
			tc.want.Filesize = int64(len(tc.data))
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", *got, tc.want)
			}
		})
	}
}
