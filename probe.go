package spool

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/spoolrun/spool/internal/imagemeta"
)

// Prober reads the media properties of a local file: its kind, MIME type,
// size and, where it can, dimensions, duration and codec.
type Prober interface {
	Probe(ctx context.Context, path string) (*File, error)
}

// ProberFunc adapts a function to Prober.
type ProberFunc func(ctx context.Context, path string) (*File, error)

// Probe calls f.
func (f ProberFunc) Probe(ctx context.Context, path string) (*File, error) { return f(ctx, path) }

// prober returns the prober the engine uses: Config.Prober, else the one
// a registered handler supplies, else BasicProber.
func (e *Engine) prober() Prober {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.handlerProber != nil {
		return e.handlerProber
	}
	return e.cfg.Prober
}

// BasicProber returns the default Prober, which needs no outside program.
// It tells the MIME type from the content (and the name, for text formats),
// the size, and of JPEG, PNG, GIF, WebP and AVIF images the width and height (as
// displayed), rotation (from the EXIF orientation), transparency and
// frames, reading only their headers. The kinds package has a prober that
// asks ffprobe for video and audio properties.
func BasicProber() Prober { return ProberFunc(basicProbe) }

func basicProbe(_ context.Context, path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	head := make([]byte, 512)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, fmt.Errorf("probe: %w", err)
	}
	typ := http.DetectContentType(head[:n])
	if byExt := mime.TypeByExtension(filepath.Ext(path)); byExt != "" &&
		(strings.HasPrefix(typ, "text/plain") || typ == "application/octet-stream") {
		typ = byExt // the sniffer cannot tell JSON, VTT or SRT from text
	}
	typ, _, _ = strings.Cut(typ, ";")
	out := &File{Object: "source", Type: typ, Kind: kindOfType(typ), Filesize: st.Size()}
	// The sniffer knows no AVIF: an image it cannot name may still be one.
	if out.Kind == "image" || typ == "application/octet-stream" {
		if _, err := f.Seek(0, io.SeekStart); err == nil {
			if info, err := imagemeta.Read(f); err == nil {
				probeImage(out, info)
			}
		}
	}
	return out, nil
}

// probeImage fills an image's fields from what its headers say.
func probeImage(out *File, info imagemeta.Info) {
	out.Kind = "image"
	if out.Type == "application/octet-stream" {
		out.Type = "image/" + info.Format
	}
	out.Codec = info.Format
	if info.Format == "avif" {
		out.Codec = "av1" // as ffprobe names it
	}
	out.Width, out.Height = info.Width, info.Height
	out.Rotation = exifRotation[info.Orientation]
	if info.Orientation >= 5 { // turned a quarter: displayed the other way round
		out.Width, out.Height = out.Height, out.Width
	}
	switch {
	case out.Width > out.Height:
		out.Orientation = "landscape"
	case out.Width < out.Height:
		out.Orientation = "portrait"
	default:
		out.Orientation = "square"
	}
	out.Transparency = info.Alpha
	out.Frames = info.Frames
	out.Animated = info.Frames > 1
}

// exifRotation maps an EXIF orientation to how far the stored picture
// turns clockwise for display; 2, 4, 5 and 7 also mirror it, which
// File.Rotation cannot say.
var exifRotation = [9]int{3: 180, 4: 180, 5: 270, 6: 90, 7: 90, 8: 270}

// kindOfType maps a MIME type to a file kind of the hosted API.
func kindOfType(typ string) string {
	major, minor, _ := strings.Cut(typ, "/")
	switch {
	case major == "video" || major == "image" || major == "audio":
		return major
	case strings.Contains(minor, "json"):
		return "json"
	case major == "text":
		return "text"
	}
	return "file"
}
