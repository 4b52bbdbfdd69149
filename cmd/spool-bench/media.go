package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/kinds"
)

// runVideo compares video tasks on a 2 s 640x360 clip with the same
// ffmpeg command run directly.
func runVideo(o options) (*result, error) {
	return videoOverhead(o, "640x360", 2, o.MediaReps)
}

// runVideoHD is runVideo on a 60 s 1920x1080 clip.
func runVideoHD(o options) (*result, error) {
	return videoOverhead(o, "1920x1080", 60, max(o.MediaReps/3, 1))
}

// videoOverhead times video tasks (Create to completed, the input already
// uploaded) against ffmpeg run directly with the very arguments the task's
// handler gave it, which a wrapper in PATH records on a first task. The
// runs alternate, so that a noisy machine slows both alike; the figures
// are medians.
func videoOverhead(o options, size string, seconds, reps int) (*result, error) {
	real, err := exec.LookPath("ffmpeg")
	if err != nil {
		return nil, errors.New("ffmpeg not found in PATH: install ffmpeg")
	}
	clip := filepath.Join(o.Dir, "clip.mp4")
	mk := exec.Command(real, "-nostdin", "-v", "error", "-y",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%s:rate=30:duration=%d", size, seconds),
		"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=440:duration=%d", seconds),
		"-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", clip)
	if out, err := mk.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("make clip: %w: %s", err, out)
	}

	e, err := spool.Open(ctx, spool.Config{Path: filepath.Join(o.Dir, "video.db"), Concurrency: 1})
	if err != nil {
		return nil, err
	}
	defer e.Close(ctx)
	if err := kinds.Register(e, nil); err != nil {
		return nil, err
	}
	if err := e.Start(ctx); err != nil {
		return nil, err
	}
	f, err := os.Open(clip)
	if err != nil {
		return nil, err
	}
	in, err := e.CreateFile(ctx, f, &spool.FileParams{Filename: "clip.mp4"})
	f.Close()
	if err != nil {
		return nil, err
	}
	task := func() (time.Duration, error) {
		start := time.Now()
		t, err := e.Create(ctx, spool.Request{Kind: "video", FileID: in.ID})
		if err == nil {
			t, err = e.Wait(ctx, t.ID)
		}
		if err == nil && t.Status != spool.StatusCompleted {
			err = fmt.Errorf("task %s: %s", t.Status, t.Error)
		}
		return time.Since(start), err
	}

	args, err := recordArgs(o.Dir, real, task)
	if err != nil {
		return nil, err
	}
	direct := func(i int) (time.Duration, error) {
		a := slices.Clone(args)
		a[len(a)-1] = filepath.Join(o.Dir, fmt.Sprintf("direct-%d.mp4", i))
		defer os.Remove(a[len(a)-1])
		cmd := exec.Command(real, a...)
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = io.Discard, &stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("ffmpeg: %w: %s", err, stderr.String())
		}
		return time.Since(start), nil
	}
	// The engine's runs go through a wrapper that times ffmpeg inside the
	// task, so that what the engine adds is measured within each run, not
	// only as the difference of two noisy medians.
	inner, restore, err := timeFFmpeg(o.Dir, real)
	if err != nil {
		return nil, err
	}
	defer restore()
	var engine, plain []time.Duration
	var added []float64 // per engine run: (task - its ffmpeg) / its ffmpeg
	for i := range reps {
		d, err := direct(i)
		if err != nil {
			return nil, err
		}
		plain = append(plain, d)
		if d, err = task(); err != nil {
			return nil, err
		}
		engine = append(engine, d)
		ff, err := inner()
		if err != nil {
			return nil, err
		}
		added = append(added, d.Seconds()/ff.Seconds()-1)
	}
	pe, pd := median(engine), median(plain)
	slices.Sort(added)
	return &result{N: reps, Figures: map[string]float64{"engine_s": pe.Seconds(), "ffmpeg_s": pd.Seconds()},
		Note: fmt.Sprintf("%s %ds h264: medians task %.3fs, ffmpeg alone %.3fs (%+.1f%%); within a task, the engine adds %+.1f%% to its ffmpeg (median; %+.1f%% to %+.1f%%) (%d runs each)",
			size, seconds, pe.Seconds(), pd.Seconds(), 100*(pe.Seconds()/pd.Seconds()-1),
			100*added[len(added)/2], 100*added[0], 100*added[len(added)-1], reps)}, nil
}

// timeFFmpeg puts first in PATH a wrapper named ffmpeg that runs the real
// one and logs how long the transcodes took. next returns the latest
// one's duration; restore puts PATH back.
func timeFFmpeg(dir, real string) (next func() (time.Duration, error), restore func(), err error) {
	shim := filepath.Join(dir, "timer")
	if err := os.MkdirAll(shim, 0o755); err != nil {
		return nil, nil, err
	}
	log := filepath.Join(dir, "times")
	script := fmt.Sprintf("#!/bin/sh\ns=$(date +%%s%%N)\n%s \"$@\"\nrc=$?\ne=$(date +%%s%%N)\n"+
		"case \" $* \" in *\" -progress \"*) echo $((e - s)) >> %s;; esac\nexit $rc\n", real, log)
	if err := os.WriteFile(filepath.Join(shim, "ffmpeg"), []byte(script), 0o755); err != nil {
		return nil, nil, err
	}
	path := os.Getenv("PATH")
	os.Setenv("PATH", shim+string(os.PathListSeparator)+path)
	next = func() (time.Duration, error) {
		b, err := os.ReadFile(log)
		if err != nil {
			return 0, err
		}
		lines := strings.Fields(string(b))
		if len(lines) == 0 {
			return 0, errors.New("no ffmpeg time logged")
		}
		var ns int64
		if _, err := fmt.Sscan(lines[len(lines)-1], &ns); err != nil {
			return 0, err
		}
		return time.Duration(ns), nil
	}
	return next, func() { os.Setenv("PATH", path) }, nil
}

// recordArgs runs one task with a wrapper named ffmpeg first in PATH that
// records its arguments, and returns those of the transcode.
func recordArgs(dir, real string, task func() (time.Duration, error)) ([]string, error) {
	shim := filepath.Join(dir, "shim")
	if err := os.MkdirAll(shim, 0o755); err != nil {
		return nil, err
	}
	log := filepath.Join(dir, "args")
	script := fmt.Sprintf("#!/bin/sh\nprintf '%%s\\0' \"$@\" > %s.$$\nexec %s \"$@\"\n", log, real)
	if err := os.WriteFile(filepath.Join(shim, "ffmpeg"), []byte(script), 0o755); err != nil {
		return nil, err
	}
	path := os.Getenv("PATH")
	os.Setenv("PATH", shim+string(os.PathListSeparator)+path)
	_, err := task()
	os.Setenv("PATH", path)
	if err != nil {
		return nil, err
	}
	logs, _ := filepath.Glob(log + ".*")
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err != nil {
			return nil, err
		}
		args := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
		if slices.Contains(args, "-progress") {
			return args, nil
		}
	}
	return nil, errors.New("the task ran no ffmpeg transcode through the wrapper")
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
