package kinds

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

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
	kind     string // video, image or audio
	path     string
	duration float64 // seconds; 0 for an image or when unknown
	audio    bool    // has an audio stream
}

// probeInput reads what the model kinds need of the task's input.
func probeInput(ctx context.Context, job *spool.Job) (*media, error) {
	p, err := job.InputPath(ctx)
	if err != nil {
		return nil, err
	}
	info, err := inputInfo(ctx, job, p, true)
	if err != nil {
		return nil, err
	}
	m := &media{path: p, duration: info.duration, audio: info.audio}
	in := job.Input()
	switch {
	case in != nil && in.Kind == "image", info.video && info.duration == 0:
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

// sampleFrames returns up to n stills of the input: an image's picture, or
// n frames of a video, evenly spaced (the middle of each of n equal parts),
// each scaled down to fit maxFrameSide, as JPEG. Audio has none.
func sampleFrames(ctx context.Context, job *spool.Job, m *media, n int) ([]frame, error) {
	if m.kind == "audio" || n <= 0 {
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
	fit := fmt.Sprintf("scale=w='min(%d,iw)':h='min(%d,ih)':force_original_aspect_ratio=decrease:force_divisible_by=2,setsar=1",
		maxFrameSide, maxFrameSide)
	pattern := filepath.Join(dir, "frame-%03d.jpg")
	var (
		args    []string
		times   []float64
		produce time.Duration
	)
	if m.kind == "image" || m.duration <= 0 {
		args = append(ffInput(m.path), "-vf", fit, "-frames:v", "1")
		times = []float64{0}
	} else {
		// One decode, as thumbnails does: the first frame at or after the
		// middle of each part (selected_n counts those taken so far).
		step := m.duration / float64(n)
		args = append(ffInput(m.path), "-vf",
			fmt.Sprintf("select='gte(t,(selected_n+0.5)*%s)',%s", seconds(step), fit),
			"-frames:v", fmt.Sprint(n), "-fps_mode", "passthrough")
		for i := range n {
			times = append(times, (float64(i)+0.5)*step)
		}
		produce = time.Duration(m.duration * float64(time.Second))
	}
	args = append(args, "-map", "0:v:0", "-c:v", "mjpeg", "-q:v", "4", "-pix_fmt", "yuvj420p", "-f", "image2", pattern)
	if err := runFFmpeg(ctx, job, args, produce); err != nil {
		return nil, err
	}
	var frames []frame
	for i, at := range times {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("frame-%03d.jpg", i+1)))
		if errors.Is(err, os.ErrNotExist) {
			break // a short video gave fewer frames
		}
		if err != nil {
			return nil, fmt.Errorf("sample frames: %w", err)
		}
		frames = append(frames, frame{Time: at, Image: Image{Type: "image/jpeg", Data: b}})
	}
	if len(frames) == 0 {
		return nil, spool.Permanent(errors.New("sample frames: ffmpeg found no frame in the input"))
	}
	return frames, nil
}
