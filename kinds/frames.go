package kinds

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/spoolrun/spool"
)

// maxFrameSide bounds a sampled frame's width and height: a vision model
// sees little more in a larger one (OpenAI's low-detail mode reads 512×512)
// and every pixel is paid for in upload and tokens.
const maxFrameSide = 512

// frame is a still sampled from the input for a model to look at.
type frame struct {
	Time  float64 // seconds into the input; 0 for an image
	Image Image   // a JPEG at most maxFrameSide on a side
}

// media is what the model kinds know of their input: what it holds and
// how long it is.
type media struct {
	// kind is video, image or audio; or transcript for the transcript of
	// a speech task whose media cannot be had, which has no pictures.
	kind     string
	path     string
	duration float64 // seconds; 0 for an image or when unknown
	audio    bool    // has an audio stream (a transcript counts)
}

// probeInput reads what the model kinds need of the task's input. In a
// workflow, a step after a speech step gets the speech step's result as
// its input: the media is then the speech step's input, and the transcript
// comes from the speech step (see jobTranscript).
func probeInput(ctx context.Context, job *spool.Job) (*media, error) {
	if in := job.Input(); in != nil && in.Object == "intelligence" {
		return speechMedia(ctx, job, in)
	}
	p, info, err := inputInfo(ctx, job, true)
	if err != nil {
		return nil, err
	}
	kind := ""
	if in := job.Input(); in != nil {
		kind = in.Kind
	}
	return mediaOf(p, kind, info)
}

// mediaOf classifies the media at p, whose record says it is of kind.
func mediaOf(p, kind string, info *mediaInfo) (*media, error) {
	m := &media{path: p, duration: info.duration, audio: info.audio}
	switch {
	case kind == "image", info.video && info.duration == 0:
		m.kind, m.duration = "image", 0
	case info.video:
		m.kind = "video"
	case info.audio:
		m.kind = "audio"
	default:
		return nil, spool.Permanent(errors.New("input has neither video nor audio"))
	}
	return m, nil
}

// speechMedia returns the media of a step whose input is a speech result:
// the input of the speech step before it, copied to the job's directory,
// or, without one (a speech File given by file_id), the transcript alone.
func speechMedia(ctx context.Context, job *spool.Job, in *spool.File) (*media, error) {
	if in.Kind != spool.KindSpeech {
		return nil, spool.Permanent(fmt.Errorf("input is the result of a %s task, not media or a transcript", in.Kind))
	}
	up, err := job.Upstream(ctx, spool.KindSpeech)
	switch {
	case errors.Is(err, spool.ErrNotFound):
		return &media{kind: "transcript", audio: true}, nil
	case err != nil:
		return nil, err
	case up.Input == nil || up.Input.ID == "" || up.Input.Object == "intelligence":
		return &media{kind: "transcript", audio: true}, nil
	}
	p, err := copyFile(ctx, job, up.Input.ID)
	if err != nil {
		return nil, err
	}
	info, err := probeMedia(ctx, p)
	if err != nil {
		return nil, err
	}
	return mediaOf(p, up.Input.Kind, info)
}

// noun names the media in what a model is asked.
func (m *media) noun() string {
	if m.kind == "transcript" {
		return "recording"
	}
	return m.kind
}

// copyFile copies a stored file into the job's directory.
func copyFile(ctx context.Context, job *spool.Job, id string) (string, error) {
	_, r, err := job.Engine().OpenFile(ctx, id)
	if errors.Is(err, spool.ErrNotFound) {
		return "", spool.Permanent(fmt.Errorf("read the speech step's input: %w", err))
	}
	if err != nil {
		return "", fmt.Errorf("read the speech step's input: %w", err)
	}
	defer r.Close()
	p, err := workPath(job, "media-"+id)
	if err != nil {
		return "", err
	}
	f, err := os.Create(p)
	if err != nil {
		return "", fmt.Errorf("copy the speech step's input: %w", err)
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("copy the speech step's input: %w", err)
	}
	return p, nil
}

// sampleFrames returns up to n stills of the input: an image's picture, or
// n frames of a video, evenly spaced (the middle of each of n equal parts),
// each scaled down to fit maxFrameSide, as JPEG. Audio has none.
//
// One ffmpeg opens the video once per frame, each input seeking to its
// frame's time, so that only the frames' surroundings are decoded, not
// the whole video: a frame of an hour's video costs what one of a
// minute's does.
func sampleFrames(ctx context.Context, job *spool.Job, m *media, n int) ([]frame, error) {
	if m.kind != "video" && m.kind != "image" || n <= 0 {
		return nil, nil
	}
	dir, err := job.TempDir()
	if err != nil {
		return nil, err
	}
	dir, err = os.MkdirTemp(dir, "frames-")
	if err != nil {
		return nil, fmt.Errorf("sample frames: %w", err)
	}
	defer os.RemoveAll(dir)
	times := []float64{0}
	if m.kind == "video" && m.duration > 0 {
		times = make([]float64, n)
		for i := range n {
			times[i] = (float64(i) + 0.5) * m.duration / float64(n)
		}
	}
	var args, outs []string
	for _, at := range times {
		if at > 0 {
			args = append(args, "-ss", seconds(math.Round(at*1000)/1000))
		}
		args = append(args, ffInput(m.path)...)
	}
	fit := fmt.Sprintf("scale=w='min(%d,iw)':h='min(%d,ih)':force_original_aspect_ratio=decrease:force_divisible_by=2,setsar=1",
		maxFrameSide, maxFrameSide)
	for i := range times {
		out := filepath.Join(dir, fmt.Sprintf("frame-%03d.jpg", i))
		outs = append(outs, out)
		args = append(args, "-map", fmt.Sprintf("%d:v:0", i), "-vf", fit, "-frames:v", "1",
			"-c:v", "mjpeg", "-q:v", "4", "-pix_fmt", "yuvj420p", "-f", "image2", "-update", "1", out)
	}
	if err := runFFmpeg(ctx, job, args, 0); err != nil {
		return nil, err
	}
	var frames []frame
	for i, out := range outs {
		b, err := os.ReadFile(out)
		if errors.Is(err, os.ErrNotExist) {
			continue // a seek past the last frame: the others will do
		}
		if err != nil {
			return nil, fmt.Errorf("sample frames: %w", err)
		}
		frames = append(frames, frame{Time: math.Round(times[i]*1000) / 1000, Image: Image{Type: "image/jpeg", Data: b}})
	}
	if len(frames) == 0 {
		return nil, spool.Permanent(errors.New("sample frames: ffmpeg found no frame in the input"))
	}
	return frames, nil
}
