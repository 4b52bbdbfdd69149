package kinds

import (
	"errors"
	"fmt"

	"github.com/spoolrun/spool"
)

// Config configures the handlers that Register registers. A nil *Config
// is the zero value, which is usable. The http kind takes its network
// policy (AllowPrivateNetworks, AllowNetworks) from the engine's Config,
// so that a url that Create accepts is one the handler may reach.
type Config struct {
	// HTTPMaxBodySize is the largest response body, in bytes, that an http
	// task reads; a larger one fails the task, since the output is stored
	// in the database with the task. Defaults to 10 MiB.
	HTTPMaxBodySize int64
	// HTTPUserAgent is sent by http tasks whose headers set no User-Agent.
	// Defaults to "spool".
	HTTPUserAgent string
}

// Defaults of Config fields.
const (
	defaultHTTPMaxBodySize = 10 << 20
	defaultHTTPUserAgent   = "spool"
)

// withDefaults returns a copy of c, which may be nil, with defaults filled.
func (c *Config) withDefaults() Config {
	var out Config
	if c != nil {
		out = *c
	}
	if out.HTTPMaxBodySize <= 0 {
		out.HTTPMaxBodySize = defaultHTTPMaxBodySize
	}
	if out.HTTPUserAgent == "" {
		out.HTTPUserAgent = defaultHTTPUserAgent
	}
	return out
}

// Register registers on e the handlers of the built-in kinds that this
// package implements: ingest, http, image, video, audio and thumbnails.
// Call it before e.Start, which fixes the handlers. cfg may be nil. It
// returns nil, or the registration
// failures joined (a kind already registered matches
// spool.ErrDuplicateKind); the kinds that could be registered stay
// registered.
//
// A handler that needs an outside program is registered even when this
// machine lacks it, and implements spool.Checker, so that e.Kinds says
// why it cannot run and a started engine refuses its tasks: video, audio
// and thumbnails need ffmpeg and ffprobe; ingest and http need nothing.
// image needs ffmpeg only for some tasks (WebP and AVIF outputs, video
// frames) and implements spool.TaskChecker instead, so that a started
// engine refuses only those. When e's Config.Prober was nil, the media
// kinds make DefaultProber the engine's prober, so that uploads and
// outputs are probed with ffprobe. The built-in kinds this package does
// not implement yet are left unregistered, so that e.Kinds says they have
// no handler.
func Register(e *spool.Engine, cfg *Config) error {
	enc := &encoders{} // the media kinds ask ffmpeg for its encoders once
	handlers := []struct {
		kind string
		h    spool.Handler
	}{
		{spool.KindIngest, ingestHandler{}},
		{spool.KindHTTP, newHTTP(e.Config(), cfg)},
		{spool.KindImage, newImage()},
		{spool.KindVideo, newVideo(enc)},
		{spool.KindAudio, newAudio(enc)},
		{spool.KindThumbnails, newThumbnails(enc)},
	}
	var errs []error
	for _, k := range handlers {
		// TryRegister's errors already name the kind.
		if err := e.TryRegister(k.kind, k.h); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kinds: %w", err)
	}
	return nil
}
