// Package kinds implements handlers for spool's built-in task kinds, and a
// Prober that asks ffprobe for the properties of video and audio files.
//
// Register registers every kind this package implements:
//
//   - ingest stores the input (a url, downloaded through the engine's
//     SSRF-safe client, or a file_id) and completes with its file record as
//     the output;
//   - http sends an HTTP request to the task's url and completes with the
//     response's status, headers and body;
//   - image makes an image from an image or from a video's frame at start:
//     resized (width, height, fit, position, background), turned upright
//     per its EXIF orientation, as jpeg, png, gif, webp or avif. JPEG, PNG,
//     GIF and WebP inputs and JPEG, PNG and GIF outputs need no ffmpeg;
//     without it, a started engine refuses at Create only the image tasks
//     that need it (webp or avif output, a video input), naming the field.
//     The output is the new image's file record.
//
// The other built-in kinds (video, audio, thumbnails, …) are not
// implemented yet and stay unregistered, so that Engine.Kinds reports them
// as "no handler registered" rather than pretending to run them.
//
// The engine's Prober is fixed when it is opened, so Register cannot
// change it: pass DefaultProber in the Config to get durations, frame
// rates and codecs of video and audio inputs when ffprobe is installed.
//
//	engine, err := spool.Open(ctx, spool.Config{
//		Path:   "spool.db",
//		Prober: kinds.DefaultProber(), // ffprobe if in PATH, else spool.BasicProber
//	})
//	if err != nil {
//		return err
//	}
//	defer engine.Close(ctx)
//	if err := kinds.Register(engine, nil); err != nil { // before Start
//		return err
//	}
//	if err := engine.Start(ctx); err != nil {
//		return err
//	}
//	task, err := engine.Create(ctx, spool.Request{Kind: "ingest", URL: "https://example.com/clip.mp4"})
//
// The http kind follows the engine's network policy
// (spool.Config.AllowPrivateNetworks and AllowNetworks), checking every
// address it dials, redirects included.
package kinds
