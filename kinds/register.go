package kinds

import (
	"errors"
	"fmt"
	"os"
	"strings"

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

	// Speech transcribes for the speech and subtitles kinds, and gives the
	// kinds that read a transcript theirs. Defaults to the
	// OpenAI-compatible one (NewOpenAITranscriber with OpenAI) when
	// OPENAI_API_KEY or OPENAI_BASE_URL is set (or OpenAI has an APIKey or
	// a BaseURL), else to the local PocketSphinx, which the kinds report
	// unavailable, saying why, when it is not installed.
	Speech Transcriber
	// Chat answers the chapters, description, outline and prompt kinds.
	// Defaults to the OpenAI-compatible one (NewOpenAIChat with OpenAI)
	// when OPENAI_API_KEY or OPENAI_BASE_URL is set (or OpenAI has an
	// APIKey or a BaseURL), else to none: those kinds are then
	// unavailable.
	Chat ChatModel
	// Moderation scores images for the nsfw kind. Defaults to the
	// OpenAI-compatible one (NewOpenAIModerator with OpenAI) when
	// OPENAI_API_KEY or OPENAI_BASE_URL is set (or OpenAI has an APIKey or
	// a BaseURL), else to none.
	Moderation Moderator
	// OpenAI configures the default providers above: their base URL, key,
	// timeout and client. Its Model is not used, since each default asks
	// its own model (whisper-1, gpt-4o-mini, omni-moderation-latest); to
	// ask another, set Speech, Chat or Moderation to a provider made with
	// that Model. Defaults to an OpenAIConfig whose empty BaseURL and
	// APIKey are OPENAI_BASE_URL's and OPENAI_API_KEY's: OPENAI_BASE_URL
	// alone (a local whisper.cpp or llama.cpp server) is enough to make
	// the defaults OpenAI-compatible ones.
	OpenAI *OpenAIConfig
	// Getenv reads the environment, once, when Register resolves the
	// providers. Defaults to os.Getenv.
	Getenv func(string) string
}

// providers are the model providers of the intelligence kinds, nil where
// there is none.
type providers struct {
	speech     Transcriber
	chat       ChatModel
	moderation Moderator
}

// providerEnv is how the reasons below tell both kinds of users to
// configure a provider: the environment, which spool serve and spool run
// read too, and the Go field, which only a program can set.
const providerEnv = "set OPENAI_API_KEY (or OPENAI_BASE_URL, for a local OpenAI-compatible server) " +
	"in the environment of spool serve, spool run or your program, or "

// errNoSpeech is why the kinds that need a transcript are unavailable
// when no speech provider is configured and pocketsphinx is missing.
var errNoSpeech = errors.New("no speech provider configured: " + providerEnv + "kinds.Config.Speech in Go; or install pocketsphinx")

// providers resolves the providers: those configured, else the
// OpenAI-compatible ones when a key or base URL is configured or in the
// environment, else the local transcriber. It reads the environment once.
func (c *Config) providers() providers {
	var cfg Config
	if c != nil {
		cfg = *c
	}
	getenv := cfg.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	var oc OpenAIConfig
	if cfg.OpenAI != nil {
		oc = *cfg.OpenAI
	}
	if oc.APIKey == "" {
		oc.APIKey = strings.TrimSpace(getenv("OPENAI_API_KEY"))
	}
	if oc.BaseURL == "" {
		oc.BaseURL = strings.TrimSpace(getenv("OPENAI_BASE_URL"))
	}
	oc.Model = ""
	remote := oc.APIKey != "" || oc.BaseURL != ""
	p := providers{speech: cfg.Speech, chat: cfg.Chat, moderation: cfg.Moderation}
	if p.speech == nil {
		if remote {
			p.speech = NewOpenAITranscriber(oc)
		} else {
			p.speech = &PocketSphinx{}
		}
	}
	if p.chat == nil && remote {
		p.chat = NewOpenAIChat(oc)
	}
	if p.moderation == nil && remote {
		p.moderation = NewOpenAIModerator(oc)
	}
	return p
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
// package implements: ingest, http, image, video, audio, thumbnails,
// speech, subtitles, chapters, description, outline, prompt and nsfw.
// Call it before e.Start, which fixes the handlers. cfg may be nil. It
// returns nil, or the registration
// failures joined (a kind already registered matches
// spool.ErrDuplicateKind); the kinds that could be registered stay
// registered.
//
// A handler that needs an outside program is registered even when this
// machine lacks it, and implements spool.Checker, so that e.Kinds says
// why it cannot run and a started engine refuses its tasks: video, audio
// and thumbnails need ffmpeg and ffprobe; speech and subtitles need them
// and a speech provider (see Config.Speech); description, outline and
// prompt need them and a chat model (Config.Chat), chapters both a chat
// model and a speech provider, nsfw a moderator (Config.Moderation) or a
// chat model that sees images; ingest and http need nothing.
// image needs ffmpeg only for some tasks (WebP and AVIF outputs, video
// frames) and implements spool.TaskChecker instead, so that a started
// engine refuses only those. When e's Config.Prober was nil, the media
// kinds make DefaultProber the engine's prober, so that uploads and
// outputs are probed with ffprobe. Register resolves the model providers
// (Config.Speech, Chat, Moderation), reading the environment then and only
// then.
func Register(e *spool.Engine, cfg *Config) error {
	enc := &encoders{} // the media kinds ask ffmpeg for its encoders once
	prov := cfg.providers()
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
		{spool.KindSpeech, newSpeech(enc, prov.speech)},
		{spool.KindSubtitles, newSubtitles(enc, prov.speech)},
		{spool.KindChapters, newChapters(enc, prov.chat, prov.speech)},
		{spool.KindDescription, newDescribe(enc, spool.KindDescription, prov.chat, prov.speech)},
		{spool.KindOutline, newDescribe(enc, spool.KindOutline, prov.chat, prov.speech)},
		{spool.KindPrompt, newPrompt(enc, prov.chat, prov.speech)},
		{spool.KindNSFW, newNSFW(enc, prov.moderation, prov.chat)},
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
