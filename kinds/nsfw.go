package kinds

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/spoolrun/spool"
)

// nsfwHandler runs the nsfw kind: frames sampled from a video (one every
// few seconds, 4 to 12 of them), or the image itself, are scored by the
// Moderator; without one, by the chat model asked for scores in a JSON
// Schema, when it can see images.
//
// The output is {object: "intelligence", kind: "nsfw", detected, nudity,
// sexual, violence, gore, confidence, timeline: [{time, nudity, sexual,
// violence, gore}]}: each score, from 0 to 1, is the highest of any
// frame's; detected is whether one reaches the threshold option; timeline
// has each frame's scores at its time in seconds. confidence is how sure
// the verdict is: the highest score when detected, else one minus it. The
// output is also stored as an intelligence File, whose id it carries.
type nsfwHandler struct {
	handlerBase
	mod  Moderator // nil: ask chat
	chat ChatModel // used when mod is nil
}

func newNSFW(enc *encoders, mod Moderator, chat ChatModel) *nsfwHandler {
	return &nsfwHandler{handlerBase: handlerBase{enc: enc}, mod: mod, chat: chat}
}

// errNoModeration is the Check of nsfw with neither a Moderator nor a chat
// model.
var errNoModeration = errors.New("no moderation provider configured: " + providerEnv +
	"kinds.Config.Moderation (or kinds.Config.Chat, with a vision model) in Go")

// Check says why nsfw tasks cannot run here: no provider, or no ffmpeg.
func (h *nsfwHandler) Check(ctx context.Context) error {
	if h.mod == nil && h.chat == nil {
		return errNoModeration
	}
	return h.enc.check(ctx, "mjpeg")
}

// nsfwOutput is the nsfw kind's output.
type nsfwOutput struct {
	Object     string       `json:"object"`
	Kind       string       `json:"kind"`
	Detected   bool         `json:"detected"`
	Scores                  // the highest of each
	Confidence float64      `json:"confidence"`
	Timeline   []nsfwMoment `json:"timeline"`
}

// nsfwMoment is one frame's scores.
type nsfwMoment struct {
	Time float64 `json:"time"`
	Scores
}

// defaultThreshold is the threshold option's default, for tasks stored
// before the spec filled it in.
const defaultThreshold = 0.5

func (h *nsfwHandler) Handle(ctx context.Context, job *spool.Job) error {
	threshold := defaultThreshold
	if v, ok := job.Float("threshold"); ok {
		threshold = v
	}
	if err := h.need(ctx, "mjpeg"); err != nil {
		return err
	}
	m, err := probeInput(ctx, job)
	if err != nil {
		return err
	}
	if m.kind != "video" && m.kind != "image" {
		return spool.Permanent(errors.New("input has no pictures: nsfw scores a video or an image"))
	}
	frames, err := sampleFrames(ctx, job, m, nsfwFrames(m.duration))
	if err != nil {
		return err
	}
	images := make([]Image, len(frames))
	for i, f := range frames {
		images[i] = f.Image
	}
	var scores []Scores
	if h.mod != nil {
		scores, err = h.mod.Moderate(ctx, images)
	} else {
		scores, err = chatScores(ctx, h.chat, images)
	}
	if err != nil {
		return err
	}
	if len(scores) != len(frames) {
		return spool.Permanent(fmt.Errorf("moderation answered %d scores for %d images", len(scores), len(frames)))
	}
	_, err = storeIntelligence(ctx, job, spool.KindNSFW, nsfwVerdict(frames, scores, threshold))
	return err
}

// nsfwFrames is how many frames of a video of duration seconds to score:
// one every five seconds, at least 4 and at most 12.
func nsfwFrames(duration float64) int {
	return min(max(int(duration/5), 4), 12)
}

// nsfwVerdict maps each frame's scores to the output.
func nsfwVerdict(frames []frame, scores []Scores, threshold float64) *nsfwOutput {
	out := &nsfwOutput{Object: "intelligence", Kind: spool.KindNSFW, Timeline: make([]nsfwMoment, len(frames))}
	for i, f := range frames {
		s := Scores{Nudity: unit(scores[i].Nudity), Sexual: unit(scores[i].Sexual),
			Violence: unit(scores[i].Violence), Gore: unit(scores[i].Gore)}
		out.Timeline[i] = nsfwMoment{Time: f.Time, Scores: s}
		out.Nudity, out.Sexual = max(out.Nudity, s.Nudity), max(out.Sexual, s.Sexual)
		out.Violence, out.Gore = max(out.Violence, s.Violence), max(out.Gore, s.Gore)
	}
	top := max(out.Nudity, out.Sexual, out.Violence, out.Gore)
	out.Detected = top >= threshold
	out.Confidence = 1 - top
	if out.Detected {
		out.Confidence = top
	}
	return out
}

// unit clamps a score into [0, 1]; a score that is not a number is 0.
func unit(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return min(max(v, 0), 1)
}

var nsfwSchema = mustSchema(`{
	"type": "object",
	"properties": {
		"images": {
			"type": "array",
			"items": {
				"type": "object",
				"properties": {
					"nudity": {"type": "number"},
					"sexual": {"type": "number"},
					"violence": {"type": "number"},
					"gore": {"type": "number"}
				},
				"required": ["nudity", "sexual", "violence", "gore"],
				"additionalProperties": false
			}
		}
	},
	"required": ["images"],
	"additionalProperties": false
}`)

const nsfwSystem = "You are a content moderation classifier. For each image, give the probability, " +
	"from 0 to 1, that it shows nudity, sexual content, violence and gore."

// chatScores asks a vision chat model for the images' scores, when no
// Moderator is configured.
func chatScores(ctx context.Context, chat ChatModel, images []Image) ([]Scores, error) {
	req := &ChatRequest{System: nsfwSystem, Images: images, Prompt: fmt.Sprintf("Score each of the %d attached "+
		"images, in order: the images array of the answer has exactly %d entries. Answer in JSON.", len(images), len(images))}
	var answer struct {
		Images []Scores `json:"images"`
	}
	if err := askJSON(ctx, chat, req, "scores", nsfwSchema, &answer); err != nil {
		return nil, err
	}
	return answer.Images, nil
}
