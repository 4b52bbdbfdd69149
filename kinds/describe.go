package kinds

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/spoolrun/spool"
)

// describeHandler runs the description and outline kinds: the input's
// transcript (when it has sound: an earlier speech step's, else the
// configured Transcriber's) and a few frames (of a video, or the image)
// go to the chat model, which answers in a JSON Schema.
//
// description's output is {object: "intelligence", kind: "description",
// language, title, description, tags}; outline's is {object:
// "intelligence", kind: "outline", language, sections: [{start, end,
// title, points}]}, sections in order and inside the input. Each is also
// stored as an intelligence File, whose id the output carries. language
// is the language option, English ("en") by default.
type describeHandler struct {
	chatBase
	kind string // description or outline
}

func newDescribe(enc *encoders, kind string, chat ChatModel, speech Transcriber) *describeHandler {
	return &describeHandler{chatBase: chatBase{handlerBase: handlerBase{enc: enc}, chat: chat, speech: speech}, kind: kind}
}

// descriptionOutput is the description kind's output.
type descriptionOutput struct {
	Object      string   `json:"object"`
	Kind        string   `json:"kind"`
	Language    string   `json:"language"`
	Title       string   `json:"title"`
	Description string   `json:"description"`
	Tags        []string `json:"tags"`
}

// outlineOutput is the outline kind's output.
type outlineOutput struct {
	Object   string    `json:"object"`
	Kind     string    `json:"kind"`
	Language string    `json:"language"`
	Sections []section `json:"sections"`
}

// section is a part of an outline.
type section struct {
	Start  float64  `json:"start"`
	End    float64  `json:"end"`
	Title  string   `json:"title"`
	Points []string `json:"points"`
}

var descriptionSchema = mustSchema(`{
	"type": "object",
	"properties": {
		"title": {"type": "string"},
		"description": {"type": "string"},
		"tags": {"type": "array", "items": {"type": "string"}}
	},
	"required": ["title", "description", "tags"],
	"additionalProperties": false
}`)

var outlineSchema = mustSchema(`{
	"type": "object",
	"properties": {
		"sections": {
			"type": "array",
			"items": {
				"type": "object",
				"properties": {
					"start": {"type": "number", "description": "seconds from the start of the media"},
					"end": {"type": "number", "description": "seconds from the start of the media"},
					"title": {"type": "string"},
					"points": {"type": "array", "items": {"type": "string"}}
				},
				"required": ["start", "end", "title", "points"],
				"additionalProperties": false
			}
		}
	},
	"required": ["sections"],
	"additionalProperties": false
}`)

const describeSystem = "You describe media from what you are given of it: the transcript of its speech " +
	"and pictures from it. Say only what they show or say; do not guess at what they do not."

// defaultWritingLanguage is what description and outline write in when
// the language option is not given.
const defaultWritingLanguage = "en"

func (h *describeHandler) Handle(ctx context.Context, job *spool.Job) error {
	mat, err := h.gather(ctx, job, framesPerTask)
	if err != nil {
		return err
	}
	lang := languageOf(job, defaultWritingLanguage)
	req := &ChatRequest{System: describeSystem, Images: mat.images()}
	if h.kind == spool.KindDescription {
		req.Prompt = mat.describe() + fmt.Sprintf("\nDescribe the %s: a title (at most 10 words), "+
			"a description of one or two paragraphs, and up to 10 tags (single words or short phrases, "+
			"lower case). Write%s. Answer in JSON.", mat.media.noun(), inLanguage(lang))
		var out descriptionOutput
		if err := askJSON(ctx, h.chat, req, "description", descriptionSchema, &out); err != nil {
			return err
		}
		out.Object, out.Kind, out.Language = "intelligence", spool.KindDescription, lang
		out.Title = strings.TrimSpace(out.Title)
		out.Description = strings.TrimSpace(out.Description)
		out.Tags = cleanTags(out.Tags)
		if out.Title == "" || out.Description == "" {
			return spool.Permanent(errors.New("model's description: its title or description is empty"))
		}
		_, err = storeIntelligence(ctx, job, spool.KindDescription, &out)
		return err
	}
	req.Prompt = mat.describe() + fmt.Sprintf("\nOutline the %s as sections in order, each with its start "+
		"and end in seconds, a heading and its main points (short sentences). Write%s. Answer in JSON.",
		mat.media.noun(), inLanguage(lang))
	var out outlineOutput
	if err := askJSON(ctx, h.chat, req, "outline", outlineSchema, &out); err != nil {
		return err
	}
	sections, err := fixSections(out.Sections, mat.media.duration)
	if err != nil {
		return spool.Permanent(fmt.Errorf("model's outline: %w", err))
	}
	out.Object, out.Kind, out.Language, out.Sections = "intelligence", spool.KindOutline, lang, sections
	_, err = storeIntelligence(ctx, job, spool.KindOutline, &out)
	return err
}

// cleanTags trims tags and drops empty ones and repeats.
func cleanTags(tags []string) []string {
	out := []string{}
	for _, t := range tags {
		t = strings.Join(strings.Fields(t), " ")
		if t != "" && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// fixSections puts an outline's sections in order inside the input, as
// fixChapters does chapters, but keeps sections that are moments (start
// equal to end, as every section of an image is): clamped to the
// duration, sorted by start, overlaps trimmed, empty points dropped. It
// fails when a section starts past the end of the input by more than
// rounding explains.
func fixSections(in []section, duration float64) ([]section, error) {
	tol := max(1, duration/100)
	out := make([]section, 0, len(in))
	for _, s := range in {
		s.Title = cleanTitle(s.Title)
		switch {
		case math.IsNaN(s.Start) || math.IsInf(s.Start, 0) || math.IsNaN(s.End) || math.IsInf(s.End, 0):
			return nil, fmt.Errorf("section %q has a time that is not a number", s.Title)
		case s.Title == "":
			continue
		case duration > 0 && s.Start > duration+tol:
			return nil, fmt.Errorf("section %q starts at %.1f s, past the end of the input (%.1f s)", s.Title, s.Start, duration)
		}
		s.Start = max(s.Start, 0)
		s.End = max(s.End, s.Start)
		if duration > 0 {
			s.Start, s.End = min(s.Start, duration), min(s.End, duration)
		} else {
			s.Start, s.End = 0, 0 // an image: no times
		}
		s.Points = cleanTags(s.Points)
		out = append(out, s)
	}
	slices.SortStableFunc(out, func(a, b section) int {
		switch {
		case a.Start < b.Start:
			return -1
		case a.Start > b.Start:
			return 1
		}
		return 0
	})
	for i := 0; i+1 < len(out); i++ {
		out[i].End = max(min(out[i].End, out[i+1].Start), out[i].Start)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("none of the %d sections has a title", len(in))
	}
	return out, nil
}
