package spool

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// BuiltinKinds lists the 15 built-in kinds in the hosted API's order.
func BuiltinKinds() []string {
	return []string{"ingest", "video", "image", "audio", "chapters", "subtitles", "thumbnails",
		"nsfw", "speech", "description", "outline", "prompt", "workflow", "conditions", "http"}
}

// BuiltinSpec returns the spec of a built-in kind; ok is false for any other
// kind. Each call builds a new spec, so the caller may keep and change it.
//
// The hosted API documents few defaults; where it is silent, a default is
// filled in only when it is right whatever else the request says. So video
// has no default codec (h264 suits mp4 and mov, not webm), and sizes, frame
// rates, qualities and bitrates default to the input's or the encoder's
// choice, which only the handler can know.
func BuiltinSpec(kind string) (*KindSpec, bool) {
	s := &KindSpec{Kind: kind}
	switch kind {
	case "ingest":
		s.Description = "Stores the input as a file. It takes no options: filename, folder and ref are request fields."
	case "video":
		s.Description = "Transcodes, resizes or trims a video."
		s.Options = []OptionSpec{
			optSize("width", 8192, true, "the input's"), optSize("height", 8192, true, "the input's"),
			optFit("contain", "contain, which neither crops nor distorts"), optPosition(), optBackground("black"),
			{Name: "fps", Type: TypeNumber, Min: new(1.0), Max: new(60.0),
				Description: "Frame rate of the output. Defaults to the input's."},
			optFormat("mp4", "Container of the output.", "mp4", "webm", "mov"),
			{Name: "codec", Type: TypeEnum, Enum: []string{"h264", "h265", "vp9", "av1"},
				Description: "Video codec. Defaults to h264 in mp4 and mov, vp9 in webm. mp4 holds any of them, " +
					"mov h264 and h265, webm vp9 and av1. Audio is aac in mp4 and mov, opus in webm."},
			optQuality(0, nil, "Defaults to the encoder's choice."),
			optBitrate("300k", "60M", "2500k", "Target video bitrate; when given, quality is not used"),
			optSeconds("start", "Where the output starts, in seconds into the input. Defaults to 0."),
			optSeconds("end", "Where the output ends, in seconds into the input. Defaults to the input's end."),
			{Name: "layers", Type: TypeList, Items: TypeObject,
				Description: "Image and text overlays drawn over the video, bottom first. The video handler defines their fields " +
					"(the kinds package's does not implement them yet, and refuses them)."},
		}
		s.Check = checkVideo
	case "image":
		s.Description = "Makes an image from an image, or from a frame of a video."
		s.Options = []OptionSpec{
			optSize("width", 8192, true, "the input's"), optSize("height", 8192, true, "the input's"),
			optFit("fill", "fill"), optPosition(),
			optBackground("transparent in png and webp, else black; formats without transparency (jpeg, gif, avif) are drawn over it"),
			optFormat("", "Format of the output. Defaults to the input's format when it is one of these, else png; jpeg for a video input.",
				"jpeg", "png", "webp", "avif", "gif"),
			optQuality(1, 80, "Defaults to 80. Used by jpeg, webp and avif; png and gif ignore it."),
			optSeconds("start", "For a video input, the time of the frame to use, in seconds. Defaults to 0."),
		}
	case "audio":
		s.Description = "Extracts or transcodes audio."
		s.Options = []OptionSpec{
			optFormat("mp3", "Format of the output.", "mp3", "aac", "ogg", "opus", "wav", "flac"),
			optQuality(0, nil, "Defaults to the encoder's choice."),
			optBitrate("32k", "320k", "128k", "Target bitrate, for the lossy formats; when given, quality is not used"),
			optSeconds("start", "Where the output starts, in seconds into the input. Defaults to 0."),
			optSeconds("end", "Where the output ends, in seconds into the input. Defaults to the input's end."),
		}
		s.Check = checkAudio
	case "chapters":
		s.Description = "Splits a video or audio into titled chapters."
		s.Options = []OptionSpec{
			optFormat("json", "Format of the chapters track.", "json", "vtt"),
			optLanguage("Language of the chapter titles", "the language spoken in the input"),
		}
	case "subtitles":
		s.Description = "Transcribes speech into a subtitles track."
		s.Options = []OptionSpec{
			optFormat("vtt", "Format of the subtitles track.", "vtt", "srt"),
			optLanguage("Language spoken in the input", "detecting it"),
		}
	case "thumbnails":
		s.Description = "Makes evenly spaced thumbnails of a video, as a sprite and a VTT track pointing into it."
		s.Options = []OptionSpec{
			{Name: "count", Type: TypeInt, Min: new(1.0), Max: new(1000.0), Default: 10,
				Description: "Number of thumbnails, spread evenly over the video."},
			optSize("width", 4096, false, "the handler's thumbnail size"), optSize("height", 4096, false, "the handler's thumbnail size"),
			optFormat("jpeg", "Format of the sprite.", "jpeg", "png"),
		}
	case "nsfw":
		s.Description = "Scores a video or image for nudity, sexual content, violence and gore."
		s.Options = []OptionSpec{
			{Name: "threshold", Type: TypeNumber, Min: new(0.0), Max: new(1.0), Default: 0.5,
				Description: "Score from which the output says detected."},
		}
	case "speech":
		s.Description = "Transcribes speech into text with a timeline."
		s.Options = []OptionSpec{
			optLanguage("Language spoken in the input", "detecting it"),
			{Name: "diarization", Type: TypeBool, Default: true,
				Description: "Whether to tell speakers apart, filling the output's speakers and each segment's speaker."},
		}
	case "description":
		s.Description = "Describes the content of a video, image or audio in prose."
		s.Options = []OptionSpec{optLanguage("Language to write in", "English")}
	case "outline":
		s.Description = "Outlines the content of a video or audio as headings and points."
		s.Options = []OptionSpec{optLanguage("Language to write in", "English")}
	case "prompt":
		s.Description = "Asks a model a question about the input."
		s.Options = []OptionSpec{
			{Name: "prompt", Type: TypeString, Required: true, Min: new(1.0), Max: new(10000.0),
				Description: "What to ask, for example \"List the products shown\"."},
			{Name: "schema", Type: TypeObject,
				Description: "A JSON Schema the output must match. Without it the output is text."},
			{Name: "model", Type: TypeString, Min: new(1.0), Max: new(200.0),
				Description: "Model to use, as the configured provider names it. Defaults to the provider's default."},
		}
	case "workflow":
		s.Description = "Runs the steps of the request's workflow array on the input. It takes no options: workflow is a request field."
	case "conditions":
		s.Description = "Tests the input and earlier outputs, and runs its next steps only if every condition holds."
		s.Input = InputOptional
		s.Options = []OptionSpec{
			{Name: "conditions", Type: TypeList, Items: TypeObject, Required: true, Min: new(1.0), Check: checkConditions,
				Description: "Conditions that must all hold, each {prop, operator, value}. " +
					"prop is a property of the input file (" + strings.Join(fileProps, ", ") + ", metadata.<key>) " +
					"or <ref>.<field> of an earlier step's output in the same chain (by ref or kind). " +
					"Keys, refs and kinds may contain dots: metadata.com.apple.quicktime.make is the key com.apple.quicktime.make, " +
					"and the longest ref or kind of an earlier step that prop starts with is taken, so mod.v2.detected is " +
					"the field detected of the step whose ref is mod.v2. " +
					"operator is one of " + strings.Join(conditionOperators, ", ") + " and defaults to eq. " +
					"value is a string, compared as a number when both sides are numbers; a list or a comma-separated string for in; " +
					"true (the default) or false, as a boolean or a string, for exists. A prop that is absent fails every operator but exists."},
		}
	case "http":
		s.Description = "Sends an HTTP request to the request's url, which is the target, not an input."
		s.Input = InputNone
		s.Options = []OptionSpec{
			{Name: "method", Type: TypeEnum, Enum: []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}, Default: "GET",
				Description: "HTTP method, in any case."},
			{Name: "headers", Type: TypeObject, Items: TypeString, Check: checkHeaders,
				Description: "Request headers, name to value. Host and the hop-by-hop headers (Connection, Keep-Alive, TE, Transfer-Encoding, Upgrade…) are refused."},
			{Name: "body", Type: TypeAny,
				Description: "Request body: a string is sent as is, anything else as JSON."},
			{Name: "timeout", Type: TypeNumber, Min: new(1.0), Max: new(300.0), Default: 30,
				Description: "Seconds to wait for the whole response."},
		}
	default:
		return nil, false
	}
	return s, true
}

func optSize(name string, maxPixels float64, percent bool, def string) OptionSpec {
	d := "Output " + name + " in pixels"
	if percent {
		d += ", or a percentage of the input's " + name + ` like "50%"`
	}
	return OptionSpec{Name: name, Type: TypeInt, Min: new(1.0), Max: &maxPixels, Percent: percent,
		Description: d + ". When only one side is given, the other keeps the input's aspect ratio. Defaults to " + def + "."}
}

func optFit(def, why string) OptionSpec {
	return OptionSpec{Name: "fit", Type: TypeEnum, Enum: []string{"contain", "cover", "fill"}, Default: def,
		Description: "How the input fills width and height when both are given: contain adds bars (see background), " +
			"cover crops, fill stretches. Defaults to " + why + "."}
}

func optPosition() OptionSpec {
	return OptionSpec{Name: "position", Type: TypeEnum, Default: "center",
		Enum:        []string{"center", "top", "bottom", "left", "right", "top-left", "top-right", "bottom-left", "bottom-right"},
		Description: "Which part of the input stays in view when cover crops, and where contain places it."}
}

func optBackground(def string) OptionSpec {
	return OptionSpec{Name: "background", Type: TypeString, Check: checkColour,
		Description: "Colour of the bars that contain adds, as #rgb, #rrggbb or #rrggbbaa. Defaults to " + def + "."}
}

// format's default may be empty: an option without a default.
func optFormat(def, desc string, values ...string) OptionSpec {
	o := OptionSpec{Name: "format", Type: TypeEnum, Enum: values, Description: desc}
	if def != "" {
		o.Default = def
	}
	return o
}

func optQuality(lowest float64, def any, desc string) OptionSpec {
	return OptionSpec{Name: "quality", Type: TypeInt, Min: &lowest, Max: new(100.0), Default: def,
		Description: "Encoding quality from " + strconv.FormatFloat(lowest, 'f', -1, 64) +
			" (smallest file) to 100 (best). " + desc}
}

func optSeconds(name, desc string) OptionSpec {
	return OptionSpec{Name: name, Type: TypeNumber, Min: new(0.0), Description: desc}
}

func optLanguage(what, def string) OptionSpec {
	return OptionSpec{Name: "language", Type: TypeString, Check: checkLanguage,
		Description: what + `, as a tag like "en" or "pt-BR". Defaults to ` + def + "."}
}

func optBitrate(lowest, highest, example, what string) OptionSpec {
	lo, _ := parseBitrate(lowest)
	hi, _ := parseBitrate(highest)
	return OptionSpec{Name: "bitrate", Type: TypeString,
		Description: what + ", in bits per second from " + lowest + " to " + highest +
			` with an optional k or M suffix, like "` + example + `". Defaults to the encoder's choice.`,
		Check: func(v any) error {
			s, _ := v.(string)
			if b, ok := parseBitrate(s); !ok || b < lo || b > hi {
				return fmt.Errorf(`must be a bitrate from %s to %s: bits per second with an optional k or M suffix, like %q`, lowest, highest, example)
			}
			return nil
		}}
}

// parseBitrate reads "2500k", "1.5M" or "128000". Lower-case m is refused
// because ffmpeg reads it as milli.
func parseBitrate(s string) (float64, bool) {
	mult := 1.0
	switch {
	case strings.HasSuffix(s, "k"), strings.HasSuffix(s, "K"):
		mult, s = 1e3, s[:len(s)-1]
	case strings.HasSuffix(s, "M"):
		mult, s = 1e6, s[:len(s)-1]
	}
	// ParseFloat alone would also take "1e3", "+5", "Inf" and "0x10".
	if s == "" || strings.Trim(s, "0123456789.") != "" {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	return f * mult, err == nil
}

// videoCodecs lists the codecs each video format can hold, the default
// first. mov is left h264 and h265, which players expect in it (ffmpeg's
// mov muxer refuses vp9, and av1 in mov has stalled its encoder).
var videoCodecs = map[string][]string{
	"mp4":  {"h264", "h265", "vp9", "av1"},
	"mov":  {"h264", "h265"},
	"webm": {"vp9", "av1"},
}

// checkVideo refuses a codec the format cannot hold and an empty trim.
func checkVideo(opts map[string]any) error {
	format, _ := opts["format"].(string)
	if codec, ok := opts["codec"].(string); ok && !slices.Contains(videoCodecs[format], codec) {
		return invalid("codec", "%s cannot be stored in %s: use one of %s, or another format",
			codec, format, strings.Join(videoCodecs[format], ", "))
	}
	return checkTrim(opts)
}

// checkAudio refuses a bitrate or quality for a lossless format, which
// would be ignored, and an empty trim.
func checkAudio(opts map[string]any) error {
	if format, _ := opts["format"].(string); format == "wav" || format == "flac" {
		for _, name := range []string{"bitrate", "quality"} {
			if _, ok := opts[name]; ok {
				return invalid(name, "does not apply to %s, which is lossless", format)
			}
		}
	}
	return checkTrim(opts)
}

// checkTrim refuses an end that is not after start.
func checkTrim(opts map[string]any) error {
	end, ok := opts["end"].(float64)
	if !ok {
		return nil
	}
	start, _ := opts["start"].(float64)
	if end <= start {
		return invalid("end", "must be after start (%g s), not %g s", start, end)
	}
	return nil
}

// The checks below run on values Validate has already typed; they still
// type-assert safely, since a caller may give a copied spec other Items.

func checkColour(v any) error {
	s, _ := v.(string)
	hex := strings.TrimPrefix(s, "#")
	if hex == s || (len(hex) != 3 && len(hex) != 6 && len(hex) != 8) || strings.Trim(hex, "0123456789abcdefABCDEF") != "" {
		return errors.New("must be a colour as #rgb, #rrggbb or #rrggbbaa")
	}
	return nil
}

// checkLanguage accepts the shape of a BCP 47 tag (a 2 or 3 letter language,
// then subtags of 1 to 8 letters or digits) without checking the registry,
// so that a handler's provider decides which languages it supports.
func checkLanguage(v any) error {
	s, _ := v.(string)
	parts := strings.Split(s, "-")
	ok := len(parts[0]) >= 2 && len(parts[0]) <= 3 && strings.Trim(parts[0], asciiLetters) == ""
	for _, p := range parts[1:] {
		ok = ok && p != "" && len(p) <= 8 && strings.Trim(p, asciiLetters+"0123456789") == ""
	}
	if !ok {
		return errors.New(`must be a language tag like "en" or "pt-BR"`)
	}
	return nil
}

const asciiLetters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// checkHeaders refuses names that are not HTTP tokens and values with line
// breaks, which would let a request smuggle extra headers. It also refuses
// Host, which would send an internal virtual host's name to an address
// the url's check allowed, and the hop-by-hop headers, which concern the
// connection the engine makes rather than the request (refusing Connection
// also makes moot any header a Connection value would name). The http
// handler runs it again on every request, for tasks stored before it
// refused them.
func checkHeaders(v any) error {
	h, _ := v.(map[string]any)
	for _, name := range slices.Sorted(maps.Keys(h)) {
		if name == "" || strings.Trim(name, asciiLetters+"0123456789!#$%&'*+-.^_`|~") != "" {
			return fmt.Errorf("headers[%q]: not a valid header name", name)
		}
		switch strings.ToLower(name) {
		case "host":
			return fmt.Errorf("headers[%q]: is set from the url and cannot be given", name)
		case "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
			"te", "trailer", "trailers", "transfer-encoding", "upgrade":
			return fmt.Errorf("headers[%q]: is a hop-by-hop header, which the engine sets", name)
		}
		if value, _ := h[name].(string); strings.ContainsAny(value, "\r\n\x00") {
			return fmt.Errorf("headers[%q]: value must not contain line breaks or NUL", name)
		}
	}
	return nil
}
