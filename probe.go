package spool

import (
	"context"
	"fmt"
	"image"
	_ "image/gif" // register decoders for DecodeConfig
	_ "image/jpeg"
	_ "image/png"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"
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
// the size, and the width and height of JPEG, PNG and GIF images. The kinds
// package has a prober that asks ffprobe for video and audio properties.
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
	if out.Kind == "image" {
		if _, err := f.Seek(0, io.SeekStart); err == nil {
			if cfg, format, err := image.DecodeConfig(f); err == nil {
				out.Width, out.Height, out.Codec = cfg.Width, cfg.Height, format
			}
		}
	}
	return out, nil
}

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
