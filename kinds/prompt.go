package kinds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/spoolrun/spool"
)

// promptHandler runs the prompt kind: the user's prompt, with the input's
// transcript and frames as describeHandler gathers them, goes to the chat
// model (the model option, when given, instead of the configured one).
//
// The output is {object: "intelligence", kind: "prompt", prompt, text};
// with the schema option, {object, kind, prompt, data}, data being the
// answer as JSON, checked against the schema: an answer that does not
// match fails the task. Create refuses a schema that does not compile.
// The output is also stored as an intelligence File, whose id it carries.
type promptHandler struct{ chatBase }

func newPrompt(enc *encoders, chat ChatModel, speech Transcriber) *promptHandler {
	return &promptHandler{chatBase{handlerBase: handlerBase{enc: enc}, chat: chat, speech: speech}}
}

// promptOutput is the prompt kind's output.
type promptOutput struct {
	Object string          `json:"object"`
	Kind   string          `json:"kind"`
	Prompt string          `json:"prompt"`
	Text   *string         `json:"text,omitempty"`
	Data   json.RawMessage `json:"data,omitempty"`
}

// Spec is the built-in prompt spec, with the schema option checked at
// Create: it must be a JSON Schema that compiles, referring to nothing
// outside itself.
func (h *promptHandler) Spec() *spool.KindSpec {
	s, _ := spool.BuiltinSpec(spool.KindPrompt)
	for i := range s.Options {
		if s.Options[i].Name == "schema" {
			s.Options[i].Check = func(v any) error {
				_, err := userSchema(v)
				return err
			}
		}
	}
	return s
}

// userSchema compiles the schema option.
func userSchema(v any) (*schema, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("is not JSON: %w", err)
	}
	s, err := compileSchema(b)
	if err != nil {
		return nil, fmt.Errorf("is not a usable JSON Schema: %s", oneLine(err.Error()))
	}
	return s, nil
}

const promptSystem = "You answer a request about media from what you are given of it: the transcript " +
	"of its speech and pictures from it. Base the answer on them; say so when they do not tell."

func (h *promptHandler) Handle(ctx context.Context, job *spool.Job) error {
	prompt, _ := job.String("prompt")
	if strings.TrimSpace(prompt) == "" {
		return spool.Permanent(errors.New("prompt is empty"))
	}
	var s *schema
	if v, ok := job.Task.Options["schema"]; ok && v != nil {
		var err error
		if s, err = userSchema(v); err != nil {
			return spool.Permanent(fmt.Errorf("schema %w", err))
		}
	}
	mat, err := h.gather(ctx, job, framesPerTask)
	if err != nil {
		return err
	}
	model, _ := job.String("model")
	req := &ChatRequest{System: promptSystem, Images: mat.images(), Model: model,
		Prompt: mat.describe() + "\nRequest: " + prompt}
	out := &promptOutput{Object: "intelligence", Kind: spool.KindPrompt, Prompt: prompt}
	if s == nil {
		resp, err := h.chat.Chat(ctx, req)
		if err != nil {
			return err
		}
		text := strings.TrimSpace(resp.Text)
		if text == "" {
			return spool.Permanent(errors.New("model's answer is empty"))
		}
		out.Text = &text
		_, err = storeIntelligence(ctx, job, spool.KindPrompt, out)
		return err
	}
	req.Prompt += "\nAnswer in JSON that follows the given schema."
	var data json.RawMessage
	if err := askJSON(ctx, h.chat, req, "answer", s, &data); err != nil {
		return err
	}
	out.Data = data
	_, err = storeIntelligence(ctx, job, spool.KindPrompt, out)
	return err
}
