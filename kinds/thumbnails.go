package kinds

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"time"

	"github.com/spoolrun/spool"
)

// thumbnailsHandler runs the thumbnails kind with ffmpeg: count frames,
// evenly spaced (the middle of each of count equal parts of the video),
// each scaled to width and height, packed row by row into one sprite image
// (jpeg or png) of ceil(sqrt(count)) columns, and a WebVTT track with one
// cue per part pointing at the frame's region of the sprite
// ("sprite.jpg#xywh=x,y,w,h").
//
// The output is the track's File (object "track", kind "thumbnails", with
// format, count, width and height of one thumbnail) whose sprite field is
// the sprite's File. The cues name the sprite by its filename, so serve
// the two side by side. Without width and height a thumbnail is 160 pixels
// wide; with one, the other keeps the aspect ratio; with both, the frame
// is cropped to fill them (cover).
type thumbnailsHandler struct{ handlerBase }

func newThumbnails(enc *encoders) *thumbnailsHandler {
	return &thumbnailsHandler{handlerBase{enc: enc}}
}

// defaultThumbWidth is a thumbnail's width when neither side is given.
const defaultThumbWidth = 160

// Check says why thumbnails tasks cannot run here: ffmpeg or ffprobe
// missing, or its JPEG and PNG encoders.
func (h *thumbnailsHandler) Check(ctx context.Context) error {
	return h.enc.check(ctx, "mjpeg", "png")
}

func (h *thumbnailsHandler) Handle(ctx context.Context, job *spool.Job) error {
	format, _ := job.String("format")
	if format == "" {
		format = "jpeg"
	}
	count := 10
	if n, ok := job.Int("count"); ok {
		count = int(n)
	}
	if err := h.need(ctx, map[string]string{"jpeg": "mjpeg", "png": "png"}[format]); err != nil {
		return err
	}
	p, info, err := inputInfo(ctx, job, false)
	switch {
	case err != nil:
		return err
	case !info.video || info.width == 0 || info.height == 0:
		return spool.Permanent(errors.New("input has no video stream"))
	case info.duration <= 0:
		return spool.Permanent(errors.New("input has no duration: thumbnails need a video, not a still image"))
	}
	tw, th, scale := thumbSize(job, info)
	cols := int(math.Ceil(math.Sqrt(float64(count))))
	rows := (count + cols - 1) / cols
	ext := map[string]string{"jpeg": "jpg", "png": "png"}[format]
	sprite, err := workPath(job, "sprite."+ext)
	if err != nil {
		return err
	}
	// One decode: the first frame at or after the middle of each part
	// (selected_n counts the frames taken so far), scaled, split into the
	// tiled sprite and a null output whose progress counts them.
	step := info.duration / float64(count)
	graph := fmt.Sprintf("[0:v]select='gte(t,(selected_n+0.5)*%s)',trim=end_frame=%d,%s,split=2[s][p];[s]tile=%dx%d[t]",
		seconds(step), count, scale, cols, rows)
	args := append(ffInput(p), "-filter_complex", graph,
		"-map", "[t]", "-frames:v", "1", "-c:v", map[string]string{"jpeg": "mjpeg", "png": "png"}[format])
	if format == "jpeg" {
		args = append(args, "-q:v", "3", "-pix_fmt", "yuvj420p")
	}
	args = append(args, "-f", "image2", "-update", "1", sprite, "-map", "[p]", "-f", "null", "-")
	produce := time.Duration(info.duration * float64(time.Second))
	if err := runFFmpeg(ctx, job, args, produce); err != nil {
		return err
	}
	base := strings.TrimSuffix(outputName(job, "vtt"), ".vtt")
	spriteFile, err := job.CreateFileFromPath(ctx, sprite, &spool.File{Filename: base + "-sprite." + ext})
	if err != nil {
		return err
	}
	vtt, err := workPath(job, "thumbnails.vtt")
	if err != nil {
		return err
	}
	if err := os.WriteFile(vtt, thumbnailsVTT(spriteFile.Filename, count, cols, tw, th, info.duration), 0o644); err != nil {
		return fmt.Errorf("write thumbnails track: %w", err)
	}
	track, err := job.CreateFileFromPath(ctx, vtt, &spool.File{
		Object: "track", Kind: "thumbnails", Type: "text/vtt", Filename: base + ".vtt",
		Format: format, Count: count, Width: tw, Height: th, Sprite: spriteFile,
	})
	if err != nil {
		return err
	}
	return job.SetOutput(track)
}

// thumbSize returns one thumbnail's size and the filter that makes it.
func thumbSize(job *spool.Job, info *mediaInfo) (w, h int, filter string) {
	wi, wok := job.Int("width")
	hi, hok := job.Int("height")
	aspect := float64(info.width) / float64(info.height)
	switch {
	case wok && hok:
		w, h = int(wi), int(hi)
		return w, h, fmt.Sprintf("scale=%d:%d:force_original_aspect_ratio=increase,crop=%d:%d,setsar=1", w, h, w, h)
	case hok:
		h = int(hi)
		w = max(int(math.Round(float64(h)*aspect)), 1)
	default:
		w = defaultThumbWidth
		if wok {
			w = int(wi)
		}
		h = max(int(math.Round(float64(w)/aspect)), 1)
	}
	return w, h, fmt.Sprintf("scale=%d:%d,setsar=1", w, h)
}

// thumbnailsVTT writes the track: cue i covers the i-th of count equal
// parts of the video and points at tile i of the sprite.
func thumbnailsVTT(sprite string, count, cols, w, h int, duration float64) []byte {
	var b strings.Builder
	b.WriteString("WEBVTT\n")
	for i := range count {
		start := duration * float64(i) / float64(count)
		end := duration * float64(i+1) / float64(count)
		fmt.Fprintf(&b, "\n%s --> %s\n%s#xywh=%d,%d,%d,%d\n",
			vttTime(start), vttTime(end), sprite, (i%cols)*w, (i/cols)*h, w, h)
	}
	return []byte(b.String())
}

// vttTime writes seconds as WebVTT's HH:MM:SS.mmm.
func vttTime(s float64) string {
	ms := int64(math.Round(s * 1000))
	return fmt.Sprintf("%02d:%02d:%02d.%03d", ms/3600000, ms/60000%60, ms/1000%60, ms%1000)
}
