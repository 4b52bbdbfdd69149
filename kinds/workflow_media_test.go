package kinds_test

import (
	"encoding/json"
	"testing"

	"github.com/spoolrun/spool"
)

// TestVideoWorkflowChain: a workflow of the media kinds on real ffmpeg. A
// video step's output file is what its next steps get: thumbnails of the
// transcode and an image of one of its frames, at its size, not the
// input's; a condition on the input's probed duration lets an audio step
// run.
func TestVideoWorkflowChain(t *testing.T) {
	needFFmpeg(t)
	e := newEngine(t, spool.Config{}, nil)
	in := upload(t, e, smallClip(t))
	var steps []spool.Step
	if err := json.Unmarshal([]byte(`[
		{"kind": "video", "width": 160, "ref": "small", "next": [
			{"kind": "thumbnails", "count": 4, "width": 80},
			{"kind": "image", "start": 1, "format": "png", "ref": "still"}]},
		{"kind": "conditions", "conditions": [{"prop": "duration", "operator": "gte", "value": "3.5"}],
		 "next": [{"kind": "audio", "format": "mp3", "ref": "sound"}]}]`), &steps); err != nil {
		t.Fatal(err)
	}
	wf := runLong(t, e, spool.Request{Kind: "workflow", FileID: in, Workflow: steps})
	if wf.Status != spool.StatusCompleted {
		t.Fatalf("workflow %s: %s; results %+v", wf.Status, wf.Error, wf.Results)
	}
	page, err := e.List(t.Context(), &spool.ListParams{ParentID: wf.ID, Limit: 100})
	if err != nil || page.Total != 5 {
		t.Fatalf("steps: %v, %v; want 5", page, err)
	}
	byRef := map[string]*spool.Task{}
	var thumbs *spool.Task
	for _, s := range page.Tasks {
		if r, _ := s.Options["ref"].(string); r != "" {
			byRef[r] = s
		}
		if s.Kind == "thumbnails" {
			thumbs = s
		}
	}
	video := outputFile(t, byRef["small"])
	if video.Width != 160 || video.Kind != "video" {
		t.Fatalf("video output %+v, want 160 wide", video)
	}
	for _, s := range []*spool.Task{thumbs, byRef["still"]} {
		if s.Input == nil || s.Input.ID != video.ID {
			t.Errorf("%s step's input = %+v, want the video step's output %s", s.Kind, s.Input, video.ID)
		}
	}
	if still := outputFile(t, byRef["still"]); still.Width != 160 || still.Height != 90 {
		t.Errorf("still %dx%d, want the transcode's 160x90", still.Width, still.Height)
	}
	track := outputFile(t, thumbs)
	if track.Object != "track" || track.Count != 4 || track.Sprite == nil {
		t.Errorf("thumbnails output %+v, want a track of 4 with its sprite", track)
	}
	sound := outputFile(t, byRef["sound"])
	if sound.Kind != "audio" || byRef["sound"].Input.ID != in {
		t.Errorf("audio step: output %+v, input %+v; want audio made from the workflow's input", sound, byRef["sound"].Input)
	}
}
