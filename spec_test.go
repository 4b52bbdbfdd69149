package spool_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/spoolrun/spool"
)

func builtin(t testing.TB, kind string) *spool.KindSpec {
	t.Helper()
	s, ok := spool.BuiltinSpec(kind)
	if !ok {
		t.Fatalf("BuiltinSpec(%q): not found", kind)
	}
	return s
}

// validate runs Validate and checks what every call must satisfy: a failure
// is a *ValidationError matching ErrInvalidRequest and returns no map; a
// success is JSON-encodable and a fixed point of Validate.
func validate(t *testing.T, spec *spool.KindSpec, opts map[string]any) (map[string]any, *spool.ValidationError) {
	t.Helper()
	out, err := spec.Validate(opts)
	if err != nil {
		var ve *spool.ValidationError
		if !errors.As(err, &ve) || !errors.Is(err, spool.ErrInvalidRequest) {
			t.Fatalf("Validate(%v): error %v is not a *ValidationError matching ErrInvalidRequest", opts, err)
		}
		if out != nil {
			t.Fatalf("Validate(%v): returned %v along with error %v", opts, out, err)
		}
		return nil, ve
	}
	if out == nil {
		t.Fatalf("Validate(%v): nil map and nil error", opts)
	}
	if _, err := json.Marshal(out); err != nil {
		t.Fatalf("Validate(%v) = %v, which does not marshal: %v", opts, out, err)
	}
	again, err := spec.Validate(out)
	if err != nil || !reflect.DeepEqual(again, out) {
		t.Fatalf("Validate(Validate(%v)) = %#v, %v; want %#v, nil", opts, again, err, out)
	}
	return out, nil
}

func TestBuiltinKinds(t *testing.T) {
	t.Parallel()
	want := []string{"ingest", "video", "image", "audio", "chapters", "subtitles", "thumbnails",
		"nsfw", "speech", "description", "outline", "prompt", "workflow", "conditions", "http"}
	got := spool.BuiltinKinds()
	if !slices.Equal(got, want) {
		t.Fatalf("BuiltinKinds() = %v, want %v", got, want)
	}
	got[0] = "changed"
	if spool.BuiltinKinds()[0] != "ingest" {
		t.Error("changing the result of BuiltinKinds changed a later result")
	}
	for _, k := range want {
		s := builtin(t, k)
		if s.Kind != k || s.Description == "" {
			t.Errorf("BuiltinSpec(%q) has Kind %q, Description %q", k, s.Kind, s.Description)
		}
		for _, o := range s.Options {
			if o.Description == "" {
				t.Errorf("%s.%s has no description", k, o.Name)
			}
		}
	}
	for _, k := range []string{"", "Video", "transcode"} {
		if s, ok := spool.BuiltinSpec(k); ok || s != nil {
			t.Errorf("BuiltinSpec(%q) = %v, %v; want nil, false", k, s, ok)
		}
	}
	inputs := map[string]spool.InputRule{"ingest": spool.InputRequired, "workflow": spool.InputRequired,
		"image": spool.InputRequired, "conditions": spool.InputOptional, "http": spool.InputNone}
	for k, want := range inputs {
		if got := builtin(t, k).Input; got != want {
			t.Errorf("%s: Input = %v, want %v", k, got, want)
		}
	}
}

func TestBuiltinSpecReturnsIndependentCopies(t *testing.T) {
	t.Parallel()
	for _, k := range spool.BuiltinKinds() {
		before, err := json.Marshal(builtin(t, k))
		if err != nil {
			t.Fatal(err)
		}
		s := builtin(t, k)
		for i := range s.Options {
			o := &s.Options[i]
			o.Name += "-changed"
			for j := range o.Enum {
				o.Enum[j] = "changed"
			}
			if o.Min != nil {
				*o.Min = -42
			}
			if o.Max != nil {
				*o.Max = -42
			}
			o.Default = "changed"
		}
		s.Options = append(s.Options, spool.OptionSpec{Name: "extra"})
		s.Description = "changed"
		after, err := json.Marshal(builtin(t, k))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(before, after) {
			t.Errorf("%s: changing a returned spec changed a later one:\nbefore %s\nafter  %s", k, before, after)
		}
	}
}

type validateCase struct {
	name   string
	kind   string
	opts   map[string]any
	want   map[string]any // on success
	field  string         // on failure: ValidationError.Field
	reason string         // on failure: a part of ValidationError.Reason
}

func runValidateCases(t *testing.T, cases []validateCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.kind+"/"+tc.name, func(t *testing.T) {
			t.Parallel()
			got, ve := validate(t, builtin(t, tc.kind), tc.opts)
			switch {
			case tc.field == "" && ve != nil:
				t.Fatalf("Validate(%v): %v; want %v", tc.opts, ve, tc.want)
			case tc.field == "" && !reflect.DeepEqual(got, tc.want):
				t.Fatalf("Validate(%v) =\n%#v\nwant\n%#v", tc.opts, got, tc.want)
			case tc.field != "" && ve == nil:
				t.Fatalf("Validate(%v) = %v; want an error on %s", tc.opts, got, tc.field)
			case tc.field != "" && (ve.Field != tc.field || !strings.Contains(ve.Reason, tc.reason)):
				t.Fatalf("Validate(%v): Field %q, Reason %q; want Field %q, Reason containing %q",
					tc.opts, ve.Field, ve.Reason, tc.field, tc.reason)
			}
		})
	}
}

// TestValidateBuiltin covers, for every kind, the defaults it fills in and
// the errors of its options. TestValidateEveryOption adds the generic
// unknown, wrong-type and out-of-range cases for every option.
func TestValidateBuiltin(t *testing.T) {
	t.Parallel()
	videoDefaults := map[string]any{"fit": "contain", "position": "center", "format": "mp4"}
	with := func(m map[string]any, kv ...any) map[string]any {
		out := make(map[string]any, len(m)+len(kv)/2)
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i].(string)] = kv[i+1]
		}
		return out
	}
	cond := func(c ...map[string]any) map[string]any {
		l := make([]any, len(c))
		for i := range c {
			l[i] = c[i]
		}
		return map[string]any{"conditions": l}
	}
	cases := []validateCase{
		{name: "no options", kind: "ingest", opts: nil, want: map[string]any{}},
		{name: "takes none", kind: "ingest", opts: map[string]any{"ref": "x"}, field: "ref", reason: "unknown option for kind ingest"},
		{name: "no options", kind: "workflow", opts: map[string]any{}, want: map[string]any{}},
		{name: "takes none", kind: "workflow", opts: map[string]any{"steps": []any{}}, field: "steps", reason: "unknown option for kind workflow"},

		{name: "defaults", kind: "video", opts: nil, want: videoDefaults},
		{name: "all options", kind: "video", opts: map[string]any{
			"width": 1280.0, "height": "50%", "fit": "cover", "position": "top-left", "background": "#00000080",
			"fps": 29.97, "format": "webm", "codec": "vp9", "quality": 70.0, "bitrate": "2500k",
			"start": 1.5, "end": 10.0, "layers": []any{map[string]any{"type": "text", "text": "hi"}},
		}, want: map[string]any{
			"width": int64(1280), "height": "50%", "fit": "cover", "position": "top-left", "background": "#00000080",
			"fps": 29.97, "format": "webm", "codec": "vp9", "quality": int64(70), "bitrate": "2500k",
			"start": 1.5, "end": 10.0, "layers": []any{map[string]any{"type": "text", "text": "hi"}},
		}},
		{name: "enum case", kind: "video", opts: map[string]any{"format": "MP4", "fit": "Cover"},
			want: with(videoDefaults, "format", "mp4", "fit", "cover")},
		{name: "width type", kind: "video", opts: map[string]any{"width": "abc"}, field: "width",
			reason: "must be an integer between 1 and 8192 or a percentage from 1% to 100%"},
		{name: "width range", kind: "video", opts: map[string]any{"width": 8193}, field: "width", reason: "must be an integer between 1 and 8192"},
		{name: "width zero", kind: "video", opts: map[string]any{"width": 0}, field: "width", reason: "between 1 and 8192"},
		{name: "fit enum", kind: "video", opts: map[string]any{"fit": "squash"}, field: "fit", reason: "must be one of contain, cover, fill"},
		{name: "position enum", kind: "video", opts: map[string]any{"position": "middle"}, field: "position", reason: "must be one of center, top,"},
		{name: "codec enum", kind: "video", opts: map[string]any{"codec": "vp8"}, field: "codec", reason: "must be one of h264, h265, vp9, av1"},
		{name: "fps range", kind: "video", opts: map[string]any{"fps": 61}, field: "fps", reason: "must be a number between 1 and 60"},
		{name: "quality range", kind: "video", opts: map[string]any{"quality": 101}, field: "quality", reason: "must be an integer between 0 and 100"},
		{name: "start negative", kind: "video", opts: map[string]any{"start": -1}, field: "start", reason: "must be a number of at least 0"},
		{name: "end type", kind: "video", opts: map[string]any{"end": "10s"}, field: "end", reason: "must be a number of at least 0"},
		{name: "bitrate M", kind: "video", opts: map[string]any{"bitrate": "60M"}, want: with(videoDefaults, "bitrate", "60M")},
		{name: "bitrate decimal", kind: "video", opts: map[string]any{"bitrate": "1.5M"}, want: with(videoDefaults, "bitrate", "1.5M")},
		{name: "bitrate plain", kind: "video", opts: map[string]any{"bitrate": "300000"}, want: with(videoDefaults, "bitrate", "300000")},
		{name: "bitrate high", kind: "video", opts: map[string]any{"bitrate": "61M"}, field: "bitrate", reason: "must be a bitrate from 300k to 60M"},
		{name: "bitrate low", kind: "video", opts: map[string]any{"bitrate": "299k"}, field: "bitrate", reason: "from 300k to 60M"},
		{name: "bitrate milli", kind: "video", opts: map[string]any{"bitrate": "6m"}, field: "bitrate", reason: "from 300k to 60M"},
		{name: "bitrate exponent", kind: "video", opts: map[string]any{"bitrate": "1e6"}, field: "bitrate", reason: "from 300k to 60M"},
		{name: "bitrate empty", kind: "video", opts: map[string]any{"bitrate": "k"}, field: "bitrate", reason: "from 300k to 60M"},
		{name: "bitrate number", kind: "video", opts: map[string]any{"bitrate": 2500000}, field: "bitrate", reason: "must be a string"},
		{name: "background short", kind: "video", opts: map[string]any{"background": "#FfF"}, want: with(videoDefaults, "background", "#FfF")},
		{name: "background name", kind: "video", opts: map[string]any{"background": "red"}, field: "background", reason: "must be a colour as #rgb, #rrggbb or #rrggbbaa"},
		{name: "background length", kind: "video", opts: map[string]any{"background": "#ffff"}, field: "background", reason: "must be a colour"},
		{name: "background digits", kind: "video", opts: map[string]any{"background": "#gggggg"}, field: "background", reason: "must be a colour"},
		{name: "layers type", kind: "video", opts: map[string]any{"layers": "logo.png"}, field: "layers", reason: "must be a list of objects"},
		{name: "layers element", kind: "video", opts: map[string]any{"layers": []any{map[string]any{}, "x"}}, field: "layers", reason: "layers[1]: must be an object"},
		{name: "unknown", kind: "video", opts: map[string]any{"resolution": "1080p"}, field: "resolution",
			reason: "unknown option for kind video; its options are background, bitrate, codec,"},

		{name: "defaults", kind: "image", opts: map[string]any{}, want: map[string]any{"fit": "fill", "position": "center", "quality": int64(80)}},
		{name: "hosted example", kind: "image", opts: map[string]any{"width": 320.0, "format": "png"},
			want: map[string]any{"width": int64(320), "format": "png", "fit": "fill", "position": "center", "quality": int64(80)}},
		{name: "format enum", kind: "image", opts: map[string]any{"format": "bmp"}, field: "format", reason: "must be one of jpeg, png, webp, avif, gif"},
		{name: "quality range", kind: "image", opts: map[string]any{"quality": 0}, field: "quality", reason: "must be an integer between 1 and 100"},
		{name: "quality type", kind: "image", opts: map[string]any{"quality": "high"}, field: "quality", reason: "must be an integer between 1 and 100"},
		{name: "height percent", kind: "image", opts: map[string]any{"height": "25%"},
			want: map[string]any{"height": "25%", "fit": "fill", "position": "center", "quality": int64(80)}},
		{name: "start", kind: "image", opts: map[string]any{"start": -0.5}, field: "start", reason: "at least 0"},
		{name: "unknown", kind: "image", opts: map[string]any{"codec": "h264"}, field: "codec", reason: "unknown option for kind image"},

		{name: "defaults", kind: "audio", opts: nil, want: map[string]any{"format": "mp3"}},
		{name: "bitrate", kind: "audio", opts: map[string]any{"bitrate": "128k", "format": "ogg"}, want: map[string]any{"format": "ogg", "bitrate": "128k"}},
		{name: "bitrate lossless", kind: "audio", opts: map[string]any{"bitrate": "128k", "format": "flac"}, field: "bitrate", reason: "does not apply to flac, which is lossless"},
		{name: "end before start", kind: "audio", opts: map[string]any{"start": 5, "end": 2}, field: "end", reason: "must be after start (5 s), not 2 s"},
		{name: "h264 in webm", kind: "video", opts: map[string]any{"codec": "h264", "format": "webm"}, field: "codec", reason: "h264 cannot be stored in webm: use one of vp9, av1, or another format"},
		{name: "vp9 in mov", kind: "video", opts: map[string]any{"codec": "vp9", "format": "mov"}, field: "codec", reason: "vp9 cannot be stored in mov: use one of h264, h265, or another format"},
		{name: "vp9 in default mp4", kind: "video", opts: map[string]any{"codec": "vp9"}, want: map[string]any{"codec": "vp9", "format": "mp4", "fit": "contain", "position": "center"}},
		{name: "bitrate high", kind: "audio", opts: map[string]any{"bitrate": "400k"}, field: "bitrate", reason: "must be a bitrate from 32k to 320k"},
		{name: "quality fraction", kind: "audio", opts: map[string]any{"quality": 3.5}, field: "quality", reason: "must be an integer between 0 and 100"},
		{name: "format enum", kind: "audio", opts: map[string]any{"format": "m4a"}, field: "format", reason: "must be one of mp3, aac, ogg, opus, wav, flac"},
		{name: "end negative", kind: "audio", opts: map[string]any{"end": -3}, field: "end", reason: "at least 0"},
		{name: "unknown", kind: "audio", opts: map[string]any{"fps": 30}, field: "fps", reason: "unknown option for kind audio"},

		{name: "defaults", kind: "chapters", opts: nil, want: map[string]any{"format": "json"}},
		{name: "language", kind: "chapters", opts: map[string]any{"language": "pt-BR", "format": "vtt"}, want: map[string]any{"format": "vtt", "language": "pt-BR"}},
		{name: "format enum", kind: "chapters", opts: map[string]any{"format": "srt"}, field: "format", reason: "must be one of json, vtt"},
		{name: "language type", kind: "chapters", opts: map[string]any{"language": 5}, field: "language", reason: "must be a string"},
		{name: "language tag", kind: "chapters", opts: map[string]any{"language": "English"}, field: "language", reason: `must be a language tag like "en" or "pt-BR"`},
		{name: "unknown", kind: "chapters", opts: map[string]any{"count": 3}, field: "count", reason: "unknown option for kind chapters"},

		{name: "defaults", kind: "subtitles", opts: nil, want: map[string]any{"format": "vtt"}},
		{name: "language script", kind: "subtitles", opts: map[string]any{"language": "zh-Hant-TW"}, want: map[string]any{"format": "vtt", "language": "zh-Hant-TW"}},
		{name: "language region digits", kind: "subtitles", opts: map[string]any{"language": "es-419", "format": "SRT"}, want: map[string]any{"format": "srt", "language": "es-419"}},
		{name: "format enum", kind: "subtitles", opts: map[string]any{"format": "ass"}, field: "format", reason: "must be one of vtt, srt"},
		{name: "language underscore", kind: "subtitles", opts: map[string]any{"language": "en_US"}, field: "language", reason: "language tag"},
		{name: "language empty subtag", kind: "subtitles", opts: map[string]any{"language": "en-"}, field: "language", reason: "language tag"},
		{name: "language one letter", kind: "subtitles", opts: map[string]any{"language": "e"}, field: "language", reason: "language tag"},
		{name: "language long subtag", kind: "subtitles", opts: map[string]any{"language": "en-abcdefghi"}, field: "language", reason: "language tag"},
		{name: "unknown", kind: "subtitles", opts: map[string]any{"lang": "en"}, field: "lang", reason: "unknown option for kind subtitles"},

		{name: "defaults", kind: "thumbnails", opts: nil, want: map[string]any{"count": int64(10), "format": "jpeg"}},
		{name: "sized", kind: "thumbnails", opts: map[string]any{"count": 100, "width": 160, "format": "png"},
			want: map[string]any{"count": int64(100), "width": int64(160), "format": "png"}},
		{name: "count zero", kind: "thumbnails", opts: map[string]any{"count": 0}, field: "count", reason: "must be an integer between 1 and 1000"},
		{name: "count high", kind: "thumbnails", opts: map[string]any{"count": 1001}, field: "count", reason: "between 1 and 1000"},
		{name: "count type", kind: "thumbnails", opts: map[string]any{"count": "ten"}, field: "count", reason: "must be an integer"},
		{name: "width range", kind: "thumbnails", opts: map[string]any{"width": 5000}, field: "width", reason: "must be an integer between 1 and 4096"},
		{name: "no percent", kind: "thumbnails", opts: map[string]any{"width": "50%"}, field: "width", reason: "must be an integer between 1 and 4096"},
		{name: "format enum", kind: "thumbnails", opts: map[string]any{"format": "gif"}, field: "format", reason: "must be one of jpeg, png"},
		{name: "unknown", kind: "thumbnails", opts: map[string]any{"interval": 5}, field: "interval", reason: "unknown option for kind thumbnails"},

		{name: "defaults", kind: "nsfw", opts: nil, want: map[string]any{"threshold": 0.5}},
		{name: "threshold int", kind: "nsfw", opts: map[string]any{"threshold": 1}, want: map[string]any{"threshold": 1.0}},
		{name: "threshold range", kind: "nsfw", opts: map[string]any{"threshold": 1.5}, field: "threshold", reason: "must be a number between 0 and 1"},
		{name: "threshold type", kind: "nsfw", opts: map[string]any{"threshold": "high"}, field: "threshold", reason: "must be a number between 0 and 1"},
		{name: "unknown", kind: "nsfw", opts: map[string]any{"categories": []any{"gore"}}, field: "categories", reason: "unknown option for kind nsfw"},

		{name: "defaults", kind: "speech", opts: nil, want: map[string]any{"diarization": true}},
		{name: "options", kind: "speech", opts: map[string]any{"language": "en", "diarization": false}, want: map[string]any{"language": "en", "diarization": false}},
		{name: "diarization type", kind: "speech", opts: map[string]any{"diarization": "yes"}, field: "diarization", reason: "must be true or false"},
		{name: "language tag", kind: "speech", opts: map[string]any{"language": "-en"}, field: "language", reason: "language tag"},
		{name: "unknown", kind: "speech", opts: map[string]any{"speakers": 2}, field: "speakers", reason: "unknown option for kind speech"},

		{name: "defaults", kind: "description", opts: nil, want: map[string]any{}},
		{name: "language", kind: "description", opts: map[string]any{"language": "fr"}, want: map[string]any{"language": "fr"}},
		{name: "language type", kind: "description", opts: map[string]any{"language": true}, field: "language", reason: "must be a string"},
		{name: "unknown", kind: "description", opts: map[string]any{"length": "short"}, field: "length", reason: "unknown option for kind description; its options are language"},

		{name: "defaults", kind: "outline", opts: map[string]any{}, want: map[string]any{}},
		{name: "language tag", kind: "outline", opts: map[string]any{"language": "en-"}, field: "language", reason: "language tag"},
		{name: "unknown", kind: "outline", opts: map[string]any{"depth": 2}, field: "depth", reason: "unknown option for kind outline"},

		{name: "required only", kind: "prompt", opts: map[string]any{"prompt": "What is shown?"}, want: map[string]any{"prompt": "What is shown?"}},
		{name: "all", kind: "prompt", opts: map[string]any{"prompt": "Tags?", "model": "small", "schema": map[string]any{"type": "array", "maxItems": 5.0}},
			want: map[string]any{"prompt": "Tags?", "model": "small", "schema": map[string]any{"type": "array", "maxItems": 5.0}}},
		{name: "missing", kind: "prompt", opts: nil, field: "prompt", reason: "is required and must be a string of 1 to 10000 characters"},
		{name: "null", kind: "prompt", opts: map[string]any{"prompt": nil}, field: "prompt", reason: "is required"},
		{name: "empty", kind: "prompt", opts: map[string]any{"prompt": ""}, field: "prompt", reason: "must be a string of 1 to 10000 characters"},
		{name: "too long", kind: "prompt", opts: map[string]any{"prompt": strings.Repeat("é", 10001)}, field: "prompt", reason: "of 1 to 10000 characters"},
		{name: "longest", kind: "prompt", opts: map[string]any{"prompt": strings.Repeat("é", 10000)}, want: map[string]any{"prompt": strings.Repeat("é", 10000)}},
		{name: "schema type", kind: "prompt", opts: map[string]any{"prompt": "x", "schema": "json"}, field: "schema", reason: "must be an object"},
		{name: "model length", kind: "prompt", opts: map[string]any{"prompt": "x", "model": ""}, field: "model", reason: "must be a string of 1 to 200 characters"},
		{name: "unknown", kind: "prompt", opts: map[string]any{"prompt": "x", "temperature": 0.2}, field: "temperature", reason: "unknown option for kind prompt"},

		{name: "hosted example", kind: "conditions", opts: cond(map[string]any{"prop": "kind", "value": "video"}),
			want: cond(map[string]any{"prop": "kind", "value": "video"})},
		{name: "operators", kind: "conditions", opts: cond(
			map[string]any{"prop": "duration", "operator": "gt", "value": json.Number("60")},
			map[string]any{"prop": "format", "operator": "in", "value": []any{"mp4", "mov"}},
			map[string]any{"prop": "audio", "operator": "exists"},
			map[string]any{"prop": "title", "operator": "exists", "value": false},
			map[string]any{"prop": "title", "operator": "contains", "value": "trailer"},
			map[string]any{"prop": "label", "operator": "ne", "value": "x"},
			map[string]any{"prop": "kind", "operator": "in", "value": "video,image"},
			map[string]any{"prop": "title", "operator": "exists", "value": "false"},
		), want: cond(
			map[string]any{"prop": "duration", "operator": "gt", "value": int64(60)},
			map[string]any{"prop": "format", "operator": "in", "value": []any{"mp4", "mov"}},
			map[string]any{"prop": "audio", "operator": "exists"},
			map[string]any{"prop": "title", "operator": "exists", "value": false},
			map[string]any{"prop": "title", "operator": "contains", "value": "trailer"},
			map[string]any{"prop": "label", "operator": "ne", "value": "x"},
			map[string]any{"prop": "kind", "operator": "in", "value": "video,image"},
			map[string]any{"prop": "title", "operator": "exists", "value": "false"},
		)},
		{name: "missing", kind: "conditions", opts: nil, field: "conditions", reason: "is required and must be a list of objects with at least 1 item"},
		{name: "empty", kind: "conditions", opts: map[string]any{"conditions": []any{}}, field: "conditions", reason: "must be a list of objects with at least 1 item"},
		{name: "type", kind: "conditions", opts: map[string]any{"conditions": map[string]any{"prop": "kind"}}, field: "conditions", reason: "must be a list of objects"},
		{name: "element type", kind: "conditions", opts: map[string]any{"conditions": []any{"kind=video"}}, field: "conditions", reason: "conditions[0]: must be an object"},
		{name: "missing prop", kind: "conditions", opts: cond(map[string]any{"prop": "kind", "value": "video"}, map[string]any{"value": "video"}),
			field: "conditions[1].prop", reason: "is required"},
		{name: "prop type", kind: "conditions", opts: cond(map[string]any{"prop": 3, "value": "video"}), field: "conditions[0].prop", reason: "is required: a non-empty string"},
		{name: "prop empty", kind: "conditions", opts: cond(map[string]any{"prop": "", "value": "video"}), field: "conditions[0].prop", reason: "is required: a non-empty string"},
		{name: "operator", kind: "conditions", opts: cond(map[string]any{"prop": "kind", "operator": "like", "value": "v%"}),
			field: "conditions[0].operator", reason: "must be one of eq, ne, gt, gte, lt, lte, in, contains, exists"},
		{name: "operator case", kind: "conditions", opts: cond(map[string]any{"prop": "kind", "operator": "EQ", "value": "v"}), field: "conditions[0].operator", reason: "must be one of"},
		{name: "missing value", kind: "conditions", opts: cond(map[string]any{"prop": "kind"}), field: "conditions[0].value", reason: "is required for operator eq"},
		{name: "null value", kind: "conditions", opts: cond(map[string]any{"prop": "kind", "operator": "ne", "value": nil}), field: "conditions[0].value", reason: "is required for operator ne"},
		{name: "in value", kind: "conditions", opts: cond(map[string]any{"prop": "kind", "operator": "in", "value": true}),
			field: "conditions[0].value", reason: "must be a list or a comma-separated string for operator in"},
		{name: "in item", kind: "conditions", opts: cond(map[string]any{"prop": "kind", "operator": "in", "value": []any{"a", []any{}}}),
			field: "conditions[0].value[1]", reason: "must be a string, number or boolean"},
		{name: "exists value", kind: "conditions", opts: cond(map[string]any{"prop": "kind", "operator": "exists", "value": "yes"}),
			field: "conditions[0].value", reason: "must be true or false"},
		{name: "gt value", kind: "conditions", opts: cond(map[string]any{"prop": "duration", "operator": "gt", "value": true}),
			field: "conditions[0].value", reason: "must be a number or a string for operator gt"},
		{name: "eq object", kind: "conditions", opts: cond(map[string]any{"prop": "duration", "value": map[string]any{}}),
			field: "conditions[0].value", reason: "must be a string, number or boolean for operator eq"},
		{name: "unknown field", kind: "conditions", opts: cond(map[string]any{"prop": "kind", "operater": "ne", "value": "video"}),
			field: "conditions[0].operater", reason: "unknown field; the fields are prop, operator and value"},
		{name: "unknown", kind: "conditions", opts: map[string]any{"next": []any{}}, field: "conditions", reason: "is required"},
		{name: "unknown with conditions", kind: "conditions", opts: with(cond(map[string]any{"prop": "kind", "value": "video"}), "mode", "any"),
			field: "mode", reason: "unknown option for kind conditions"},

		{name: "defaults", kind: "http", opts: nil, want: map[string]any{"method": "GET", "timeout": 30.0}},
		{name: "post", kind: "http", opts: map[string]any{"method": "post", "headers": map[string]any{"Content-Type": "application/json"},
			"body": map[string]any{"id": 1.0}, "timeout": 5},
			want: map[string]any{"method": "POST", "headers": map[string]any{"Content-Type": "application/json"},
				"body": map[string]any{"id": 1.0}, "timeout": 5.0}},
		{name: "string body", kind: "http", opts: map[string]any{"method": "PUT", "body": "a=1"},
			want: map[string]any{"method": "PUT", "body": "a=1", "timeout": 30.0}},
		{name: "method enum", kind: "http", opts: map[string]any{"method": "FETCH"}, field: "method", reason: "must be one of GET, HEAD, POST, PUT, PATCH, DELETE"},
		{name: "timeout range", kind: "http", opts: map[string]any{"timeout": 0.5}, field: "timeout", reason: "must be a number between 1 and 300"},
		{name: "timeout high", kind: "http", opts: map[string]any{"timeout": 301}, field: "timeout", reason: "between 1 and 300"},
		{name: "headers type", kind: "http", opts: map[string]any{"headers": []any{"A: b"}}, field: "headers", reason: "must be an object of strings"},
		{name: "header value type", kind: "http", opts: map[string]any{"headers": map[string]any{"B": "ok", "X-Count": 1.0}},
			field: "headers", reason: `headers["X-Count"]: must be a string`},
		{name: "header name", kind: "http", opts: map[string]any{"headers": map[string]any{"Bad Name": "x"}},
			field: "headers", reason: `headers["Bad Name"]: not a valid header name`},
		{name: "header injection", kind: "http", opts: map[string]any{"headers": map[string]any{"X-A": "a\r\nHost: evil"}},
			field: "headers", reason: `headers["X-A"]: value must not contain line breaks`},
		{name: "header host", kind: "http", opts: map[string]any{"headers": map[string]any{"Host": "internal.example"}},
			field: "headers", reason: `headers["Host"]: is set from the url`},
		{name: "header host lower", kind: "http", opts: map[string]any{"headers": map[string]any{"A": "b", "host": "internal.example"}},
			field: "headers", reason: `headers["host"]: is set from the url`},
		{name: "header connection", kind: "http", opts: map[string]any{"headers": map[string]any{"Connection": "close, X-Secret"}},
			field: "headers", reason: `headers["Connection"]: is a hop-by-hop header`},
		{name: "header keep-alive", kind: "http", opts: map[string]any{"headers": map[string]any{"KEEP-ALIVE": "timeout=5"}},
			field: "headers", reason: `headers["KEEP-ALIVE"]: is a hop-by-hop header`},
		{name: "header proxy-connection", kind: "http", opts: map[string]any{"headers": map[string]any{"Proxy-Connection": "keep-alive"}},
			field: "headers", reason: "hop-by-hop"},
		{name: "header proxy-authenticate", kind: "http", opts: map[string]any{"headers": map[string]any{"Proxy-Authenticate": "Basic"}},
			field: "headers", reason: "hop-by-hop"},
		{name: "header proxy-authorization", kind: "http", opts: map[string]any{"headers": map[string]any{"proxy-authorization": "Basic eDp5"}},
			field: "headers", reason: "hop-by-hop"},
		{name: "header te", kind: "http", opts: map[string]any{"headers": map[string]any{"te": "trailers"}},
			field: "headers", reason: `headers["te"]: is a hop-by-hop header`},
		{name: "header trailer", kind: "http", opts: map[string]any{"headers": map[string]any{"Trailer": "X-A"}},
			field: "headers", reason: "hop-by-hop"},
		{name: "header trailers", kind: "http", opts: map[string]any{"headers": map[string]any{"Trailers": "X-A"}},
			field: "headers", reason: "hop-by-hop"},
		{name: "header transfer-encoding", kind: "http", opts: map[string]any{"headers": map[string]any{"Transfer-Encoding": "chunked"}},
			field: "headers", reason: "hop-by-hop"},
		{name: "header upgrade", kind: "http", opts: map[string]any{"headers": map[string]any{"Upgrade": "websocket"}},
			field: "headers", reason: "hop-by-hop"},
		{name: "unknown", kind: "http", opts: map[string]any{"url": "https://example.com"}, field: "url", reason: "unknown option for kind http"},
	}
	runValidateCases(t, cases)
	tested := map[string]bool{}
	for _, tc := range cases {
		tested[tc.kind] = true
	}
	for _, k := range spool.BuiltinKinds() {
		if !tested[k] {
			t.Errorf("no case for kind %s", k)
		}
	}
}

// validRequired gives a valid value for each required option, so that
// generic cases can test one option at a time.
var validRequired = map[string]any{
	"prompt":     "Describe it",
	"conditions": []any{map[string]any{"prop": "kind", "value": "video"}},
}

func required(spec *spool.KindSpec, kv ...any) map[string]any {
	opts := map[string]any{}
	for _, o := range spec.Options {
		if o.Required {
			opts[o.Name] = validRequired[o.Name]
		}
	}
	for i := 0; i < len(kv); i += 2 {
		opts[kv[i].(string)] = kv[i+1]
	}
	return opts
}

// TestValidateEveryOption derives, from each built-in spec, an unknown
// option, a wrong type for every option, values just past every bound and a
// value outside every enum, so that an option added later is covered too.
func TestValidateEveryOption(t *testing.T) {
	t.Parallel()
	wrongType := map[spool.OptionType]any{
		spool.TypeInt: "abc", spool.TypeNumber: "abc", spool.TypeString: 12, spool.TypeBool: "yes",
		spool.TypeEnum: 12, spool.TypeObject: "x", spool.TypeList: "x", spool.TypeAny: make(chan int),
	}
	for _, k := range spool.BuiltinKinds() {
		spec := builtin(t, k)
		t.Run(k, func(t *testing.T) {
			t.Parallel()
			_, ve := validate(t, spec, required(spec, "zzz_bogus", 1))
			if ve == nil || ve.Field != "zzz_bogus" || !strings.Contains(ve.Reason, "unknown option for kind "+k) {
				t.Errorf("unknown option: %v", ve)
			}
			for _, o := range spec.Options {
				bad := []any{wrongType[o.Type]}
				if o.Type == spool.TypeInt {
					bad = append(bad, 1.5, "1.5%", true)
				}
				if o.Type == spool.TypeEnum {
					bad = append(bad, "not-a-"+o.Name)
				}
				for _, b := range []*float64{o.Min, o.Max} {
					if b == nil {
						continue
					}
					past := *b - 1
					if b == o.Max {
						past = *b + 1
					}
					switch o.Type {
					case spool.TypeInt, spool.TypeNumber:
						bad = append(bad, past)
					case spool.TypeString:
						bad = append(bad, strings.Repeat("a", int(past)))
					}
				}
				for _, v := range bad {
					_, ve := validate(t, spec, required(spec, o.Name, v))
					if ve == nil || ve.Field != o.Name || ve.Reason == "" {
						t.Errorf("%s = %#v: got error %v, want one on %s", o.Name, v, ve, o.Name)
					}
				}
			}
		})
	}
}

func TestValidateIntNormalization(t *testing.T) {
	t.Parallel()
	spec := builtin(t, "video")
	for _, v := range []any{320, int8(64), int16(320), int32(320), int64(320), uint(320), uint16(320), uint64(320),
		320.0, float32(320), json.Number("320"), json.Number("320.0"), json.Number("3.2e2")} {
		out, ve := validate(t, spec, map[string]any{"width": v})
		want := int64(320)
		if v == int8(64) {
			want = 64
		}
		if ve != nil || out["width"] != want {
			t.Errorf("width %T(%v): got %#v, %v; want int64(%d)", v, v, out["width"], ve, want)
		}
	}
	for _, v := range []any{320.5, json.Number("320.5"), json.Number("abc"), "320", float32(0.5), math.NaN(), math.Inf(1),
		uint64(math.MaxUint64), 1e300, true, []any{320}, map[string]any{"px": 320}} {
		if _, ve := validate(t, spec, map[string]any{"width": v}); ve == nil || ve.Field != "width" {
			t.Errorf("width %T(%v): got %v, want an error on width", v, v, ve)
		}
	}
	for _, v := range []any{1, 1.0, int64(1), json.Number("1")} {
		out, ve := validate(t, builtin(t, "nsfw"), map[string]any{"threshold": v})
		if ve != nil || out["threshold"] != 1.0 {
			t.Errorf("threshold %T(%v): got %#v, %v; want float64(1)", v, v, out["threshold"], ve)
		}
	}
}

func TestValidatePercent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		kind, in string
		want     string // "" for refused
	}{
		{"video", "50%", "50%"}, {"video", "1%", "1%"}, {"video", "100%", "100%"}, {"video", "050%", "50%"},
		{"image", "75%", "75%"},
		{"video", "150%", ""}, {"video", "0%", ""}, {"video", "abc%", ""}, {"video", "%", ""}, {"video", "50", ""},
		{"video", "-5%", ""}, {"video", "+5%", ""}, {"video", " 5%", ""}, {"video", "5 %", ""}, {"video", "5.5%", ""},
		{"video", "50%%", ""}, {"thumbnails", "50%", ""},
	} {
		out, ve := validate(t, builtin(t, tc.kind), map[string]any{"width": tc.in})
		switch {
		case tc.want == "" && ve == nil:
			t.Errorf("%s width %q: accepted as %#v, want refused", tc.kind, tc.in, out["width"])
		case tc.want == "" && ve.Field != "width":
			t.Errorf("%s width %q: error on %q, want width", tc.kind, tc.in, ve.Field)
		case tc.want != "" && (ve != nil || out["width"] != tc.want):
			t.Errorf("%s width %q: got %#v, %v; want %q", tc.kind, tc.in, out["width"], ve, tc.want)
		}
	}
}

type overlay struct {
	Type string  `json:"type"`
	X    int     `json:"x"`
	Opac float32 `json:"opacity,omitempty"`
}

type format string

// TestValidateGoValues passes what a Go caller would rather than what
// encoding/json decodes, and expects the same normalized values.
func TestValidateGoValues(t *testing.T) {
	t.Parallel()
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	width := 640
	cases := []validateCase{
		{name: "typed slice and struct", kind: "video", opts: map[string]any{
			"layers": []overlay{{Type: "text", X: 10, Opac: 0.5}}, "format": format("mov"), "width": &width},
			want: map[string]any{"layers": []any{map[string]any{"type": "text", "x": int64(10), "opacity": 0.5}},
				"format": "mov", "width": int64(640), "fit": "contain", "position": "center"}},
		{name: "typed maps", kind: "http", opts: map[string]any{"headers": map[string]string{"X-A": "1"},
			"body": map[string][]int{"ids": {1, 2}}, "timeout": float32(2.5)},
			want: map[string]any{"method": "GET", "headers": map[string]any{"X-A": "1"},
				"body": map[string]any{"ids": []any{int64(1), int64(2)}}, "timeout": 2.5}},
		{name: "raw body", kind: "http", opts: map[string]any{"body": json.RawMessage(`{"a": [1, 2.5, null, "x"]}`)},
			want: map[string]any{"method": "GET", "timeout": 30.0, "body": map[string]any{"a": []any{int64(1), 2.5, nil, "x"}}}},
		{name: "number body", kind: "http", opts: map[string]any{"body": json.Number("12345678901234567890")},
			want: map[string]any{"method": "GET", "timeout": 30.0, "body": 12345678901234567890.0}},
		{name: "typed conditions", kind: "conditions", opts: map[string]any{"conditions": []map[string]any{{"prop": "kind", "value": "video"}}},
			want: map[string]any{"conditions": []any{map[string]any{"prop": "kind", "value": "video"}}}},
		{name: "func body", kind: "http", opts: map[string]any{"body": func() {}}, field: "body", reason: "must be JSON data"},
		{name: "NaN body", kind: "http", opts: map[string]any{"body": []any{math.NaN()}}, field: "body", reason: "must be JSON data"},
		{name: "bad raw body", kind: "http", opts: map[string]any{"body": json.RawMessage(`{`)}, field: "body", reason: "must be JSON data"},
		{name: "cyclic body", kind: "http", opts: map[string]any{"body": cyclic}, field: "body", reason: "nested at most"},
		{name: "chan width", kind: "video", opts: map[string]any{"width": make(chan int)}, field: "width", reason: "must be an integer"},
	}
	runValidateCases(t, cases)
}

func TestValidateDoesNotMutateOrAlias(t *testing.T) {
	t.Parallel()
	input := func() map[string]any {
		return map[string]any{
			"method":  "post",
			"headers": map[string]any{"X-A": "1"},
			"body":    map[string]any{"list": []any{1.0, map[string]any{"deep": "x"}}},
		}
	}
	opts := input()
	out, ve := validate(t, builtin(t, "http"), opts)
	if ve != nil {
		t.Fatal(ve)
	}
	if !reflect.DeepEqual(opts, input()) {
		t.Fatalf("Validate changed its input to %#v", opts)
	}
	out["headers"].(map[string]any)["X-A"] = "changed"
	out["body"].(map[string]any)["list"].([]any)[1].(map[string]any)["deep"] = "changed"
	out["method"] = "DELETE"
	if !reflect.DeepEqual(opts, input()) {
		t.Fatalf("changing Validate's result changed its input to %#v", opts)
	}

	conds := map[string]any{"conditions": []any{map[string]any{"prop": "duration", "operator": "gt", "value": json.Number("60")}}}
	out, ve = validate(t, builtin(t, "conditions"), conds)
	if ve != nil {
		t.Fatal(ve)
	}
	out["conditions"].([]any)[0].(map[string]any)["prop"] = "changed"
	if got := conds["conditions"].([]any)[0].(map[string]any); got["prop"] != "duration" || got["value"] != json.Number("60") {
		t.Fatalf("input condition became %#v", got)
	}
}

func TestValidateReportsFirstBadOptionInNameOrder(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		kind  string
		opts  map[string]any
		field string
	}{
		{"image", map[string]any{"width": "abc", "zoom": 2, "format": "bmp", "quality": 0}, "format"},
		{"image", map[string]any{"width": "abc", "zoom": 2, "quality": 0}, "quality"},
		{"image", map[string]any{"width": "abc", "zoom": 2}, "width"},
		{"prompt", map[string]any{"model": 5}, "model"},                // before the missing prompt
		{"prompt", map[string]any{"schema": "x"}, "prompt"},            // the missing prompt comes first
		{"http", map[string]any{"timeout": 0, "body": nil}, "timeout"}, // null is absent, not an error
	} {
		for range 20 { // map order is random; the error must not be
			_, ve := validate(t, builtin(t, tc.kind), tc.opts)
			if ve == nil || ve.Field != tc.field {
				t.Fatalf("%s %v: got %v, want an error on %s", tc.kind, tc.opts, ve, tc.field)
			}
		}
	}
}

func TestValidateNullIsAbsent(t *testing.T) {
	t.Parallel()
	out, ve := validate(t, builtin(t, "image"), map[string]any{"format": nil, "quality": nil, "width": nil})
	want := map[string]any{"fit": "fill", "position": "center", "quality": int64(80)}
	if ve != nil || !reflect.DeepEqual(out, want) {
		t.Fatalf("got %#v, %v; want %#v", out, ve, want)
	}
}

func TestValidateCustomSpec(t *testing.T) {
	t.Parallel()
	spec := &spool.KindSpec{Kind: "custom", Options: []spool.OptionSpec{
		{Name: "ids", Type: spool.TypeList, Items: spool.TypeInt, Min: new(1.0), Max: new(3.0)},
		{Name: "level", Type: spool.TypeInt, Default: 3},
		{Name: "tags", Type: spool.TypeObject, Default: map[string]string{"a": "b"}},
		{Name: "ratio", Type: spool.TypeNumber, Max: new(2.0)},
		{Name: "note", Type: spool.TypeString, Max: new(3.0), Check: func(v any) error {
			if v == "bad" {
				return errors.New("must not be bad")
			}
			return nil
		}},
	}}
	runCustom := func(opts map[string]any) (map[string]any, *spool.ValidationError) {
		t.Helper()
		return validate(t, spec, opts)
	}
	out, ve := runCustom(map[string]any{"ids": []any{1.0, json.Number("2")}})
	want := map[string]any{"ids": []any{int64(1), int64(2)}, "level": int64(3), "tags": map[string]any{"a": "b"}}
	if ve != nil || !reflect.DeepEqual(out, want) {
		t.Fatalf("got %#v, %v; want %#v", out, ve, want)
	}
	out["tags"].(map[string]any)["a"] = "changed"
	if again, _ := runCustom(nil); again["tags"].(map[string]any)["a"] != "b" {
		t.Fatal("changing a filled-in default changed the spec's default")
	}
	for _, tc := range []struct {
		opts          map[string]any
		field, reason string
	}{
		{map[string]any{"ids": []any{}}, "ids", "must be a list of integers with 1 to 3 items"},
		{map[string]any{"ids": []any{1, 2, 3, 4}}, "ids", "with 1 to 3 items"},
		{map[string]any{"ids": []any{1, 2.5}}, "ids", "ids[1]: must be an integer"},
		{map[string]any{"ratio": 2.5}, "ratio", "must be a number of at most 2"},
		{map[string]any{"note": "long"}, "note", "must be a string of at most 3 characters"},
		{map[string]any{"note": "bad"}, "note", "must not be bad"},
	} {
		_, ve := runCustom(tc.opts)
		if ve == nil || ve.Field != tc.field || !strings.Contains(ve.Reason, tc.reason) {
			t.Errorf("%v: got %v, want %s: %s", tc.opts, ve, tc.field, tc.reason)
		}
	}
	broken := &spool.KindSpec{Kind: "broken", Options: []spool.OptionSpec{{Name: "n", Type: spool.TypeInt, Default: "many"}}}
	if _, err := broken.Validate(nil); err == nil || !strings.Contains(err.Error(), "bad default") {
		t.Errorf("a spec with a bad default: got %v, want an error naming it", err)
	}
}

func TestKindSpecOption(t *testing.T) {
	t.Parallel()
	spec := builtin(t, "image")
	o, ok := spec.Option("quality")
	if !ok || o.Name != "quality" || o.Type != spool.TypeInt || o.Default != 80 {
		t.Errorf("Option(quality) = %+v, %v", o, ok)
	}
	if o, ok := spec.Option("codec"); ok {
		t.Errorf("Option(codec) = %+v, true; want false", o)
	}
}

func TestKindSpecJSON(t *testing.T) {
	t.Parallel()
	got, err := json.Marshal(builtin(t, "thumbnails"))
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"kind":"thumbnails",` +
		`"description":"Makes evenly spaced thumbnails of a video, as a sprite and a VTT track pointing into it.",` +
		`"input":"required","options":[` +
		`{"name":"count","type":"int","description":"Number of thumbnails, spread evenly over the video.","min":1,"max":1000,"default":10},` +
		`{"name":"width","type":"int","description":"Output width in pixels. When only one side is given, the other keeps the input's aspect ratio. Defaults to the handler's thumbnail size.","min":1,"max":4096},` +
		`{"name":"height","type":"int","description":"Output height in pixels. When only one side is given, the other keeps the input's aspect ratio. Defaults to the handler's thumbnail size.","min":1,"max":4096},` +
		`{"name":"format","type":"enum","description":"Format of the sprite.","enum":["jpeg","png"],"default":"jpeg"}]}`
	if string(got) != want {
		t.Errorf("thumbnails JSON:\n got %s\nwant %s", got, want)
	}

	for _, tc := range []struct {
		kind string
		want string
	}{
		{"ingest", `"input":"required","options":[]}`},
		{"conditions", `"input":"optional","options":[{"name":"conditions","type":"list",`},
		{"http", `"input":"none","options":[`},
		{"video", `"percent":true}`},
		{"http", `"items":"string"}`},
		{"prompt", `"required":true,"min":1,"max":10000}`},
	} {
		b, err := json.Marshal(builtin(t, tc.kind))
		if err != nil || !strings.Contains(string(b), tc.want) {
			t.Errorf("%s JSON %s: missing %s (err %v)", tc.kind, b, tc.want, err)
		}
	}
	if b, _ := json.Marshal(builtin(t, "http")); strings.Contains(string(b), "check") || strings.Contains(string(b), "Check") {
		t.Errorf("http JSON mentions the Check func: %s", b)
	}

	// A client can decode the served specs back.
	b, err := json.Marshal(builtin(t, "conditions"))
	if err != nil {
		t.Fatal(err)
	}
	var back spool.KindSpec
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Input != spool.InputOptional || len(back.Options) != 1 || !back.Options[0].Required || *back.Options[0].Min != 1 {
		t.Errorf("decoded %+v", back)
	}

	if _, err := json.Marshal(spool.KindSpec{Kind: "x", Input: spool.InputRule(7)}); err == nil {
		t.Error("marshalled an unknown InputRule")
	}
	var r spool.InputRule
	if err := r.UnmarshalText([]byte("sometimes")); err == nil {
		t.Error("unmarshalled an unknown InputRule")
	}
	if s := fmt.Sprint(spool.InputNone, spool.InputRule(7)); s != "none InputRule(7)" {
		t.Errorf("InputRule strings: %q", s)
	}
}

func FuzzValidate(f *testing.F) {
	for _, s := range []string{
		`{}`, `null`, `{"width":320,"format":"png","ref":"x"}`, `{"width":"50%","height":"050%","fit":"COVER"}`,
		`{"width":320.5}`, `{"bitrate":"1.5M","background":"#abc"}`, `{"count":1e3,"format":"PNG"}`,
		`{"conditions":[{"prop":"kind","value":"video"},{"prop":"d","operator":"in","value":[1,"a"]}]}`,
		`{"conditions":[{"prop":"a","operator":"exists"},3]}`, `{"method":"post","headers":{"A":"b"},"body":{"x":[1,2.5,null]}}`,
		`{"prompt":"hi","schema":{"type":"object"}}`, `{"language":"en-US","diarization":false}`, `{"threshold":0.25}`,
		`{"layers":[{"type":"text"}],"start":0,"end":1e308}`, `{"timeout":12345678901234567890}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, useNumber := range []bool{false, true} {
			d := json.NewDecoder(bytes.NewReader(data))
			if useNumber {
				d.UseNumber()
			}
			var opts map[string]any
			if d.Decode(&opts) != nil {
				return
			}
			for _, k := range spool.BuiltinKinds() {
				spec, _ := spool.BuiltinSpec(k)
				_, ve := validate(t, spec, opts)
				if ve == nil {
					continue
				}
				o, known := spec.Option(ve.Field)
				if _, given := opts[ve.Field]; ve.Reason == "" || !given && !(known && o.Required) {
					t.Fatalf("%s %s: error %v names neither a given nor a required option", k, data, ve)
				}
			}
		}
	})
}
