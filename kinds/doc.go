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
//   - video transcodes, resizes and trims a video into mp4, webm or mov
//     (h264, h265, vp9, av1), and completes with the output File;
//   - audio extracts or transcodes audio into mp3, aac, ogg, opus, wav or
//     flac, and completes with the output File;
//   - thumbnails packs evenly spaced frames into one sprite image and a
//     WebVTT track pointing into it, and completes with the track's File
//     (object "track", kind "thumbnails") whose Sprite is the image's.
//   - speech extracts the input's audio (mono 16 kHz), cuts it into
//     chunks the provider accepts (at silences where it can), transcribes
//     them and stitches their timelines; it completes with {object:
//     "intelligence", kind: "speech", id, detected, language, text,
//     confidence, timeline: [{start, end, text, confidence}]}, also stored
//     as an intelligence File (JSON) that a workflow's next step gets as
//     its input;
//   - subtitles writes WebVTT or SubRip from the transcript of the speech
//     step before it in a workflow, or its own, with at most two lines of
//     42 characters a cue, cues of 1 to 7 s that do not overlap, broken at
//     punctuation, and completes with the track File (object "track",
//     kind "subtitles", language, format);
//   - chapters gives the transcript to the chat model, which answers
//     chapters in a JSON Schema; they are checked and repaired where that
//     is safe (sorted, clamped into the input, overlaps trimmed, empty
//     ones dropped, numbered from 1), else the task fails saying why, and
//     written as a json or vtt track: the output is its File (object
//     "track", kind "chapters") with chapters [{index, start, end, title}];
//   - description and outline give the chat model the transcript (when
//     the input has sound) and a few frames (of a video, or the image,
//     sampled with ffmpeg, at most 512 pixels a side): {object:
//     "intelligence", kind: "description", language, title, description,
//     tags} and {object: "intelligence", kind: "outline", language,
//     sections: [{start, end, title, points}]};
//   - prompt asks the chat model the prompt option about the same
//     material: {object: "intelligence", kind: "prompt", prompt, text},
//     or with the schema option (a JSON Schema, checked at Create, that
//     may refer to nothing outside itself) {…, data}, data checked
//     against the schema: an answer that does not match fails the task;
//   - nsfw scores frames of a video (one every 5 s, 4 to 12) or the image
//     with the Moderator, else with a chat model that sees images: {object:
//     "intelligence", kind: "nsfw", detected, nudity, sexual, violence,
//     gore, confidence, timeline: [{time, nudity, sexual, violence,
//     gore}]}, each score from 0 to 1 the highest of any frame's, detected
//     when one reaches the threshold option.
//
// Like speech, the outputs of description, outline, prompt and nsfw are
// also stored as intelligence Files, with the output carrying the File's
// id, so that a workflow's next step can read them (a conditions step on
// "<ref>.detected", an http step posting them). An http step that sends
// a POST, PUT or PATCH without a body option sends the workflow's results
// so far as JSON (outside a workflow, the task itself).
//
// The intelligence kinds ask a model only what needs one, through the
// Transcriber, ChatModel and Moderator interfaces, each with an
// OpenAI-compatible HTTP implementation (OpenAI, or a whisper.cpp,
// llama.cpp, LocalAI, vLLM or Ollama server: see OpenAIConfig). With
// nothing configured in Config, OPENAI_API_KEY and OPENAI_BASE_URL select
// them; else speech and subtitles use PocketSphinx, a local, offline and
// inaccurate transcriber from Debian's pocketsphinx and
// pocketsphinx-en-us packages, and without it they are unavailable ("no
// speech provider configured: …"); the kinds that need a chat model have
// no local one, and without one are unavailable ("no chat provider
// configured: set kinds.Config.Chat or OPENAI_API_KEY"); with a chat model
// but no transcriber, they refuse at Create a task on an audio file. A
// provider's 408, 429 and 5xx answers
// and network errors are retried (after its Retry-After, if longer than
// the backoff), other 4xx answers and malformed ones fail the task; the
// configured API key is redacted from whatever a provider says before it
// reaches an error.
//
// The media kinds run ffmpeg and ffprobe from PATH (Debian's ffmpeg
// package has every encoder they use). Without them the kinds are
// registered but unavailable: Engine.Kinds says "ffmpeg not found in PATH:
// install ffmpeg" and a started engine refuses their tasks. ffmpeg gets
// argument lists, never a shell; it reads inputs only from local files,
// so that a playlist cannot make it fetch anything; it runs in its own
// process group, killed whole when a task is cancelled, times out or the
// engine shuts down; its work files live in the engine's data directory
// and are removed on every path. Progress comes from ffmpeg's own
// -progress output. A corrupt or unsupported input fails the task (status
// failed, not error) with ffmpeg's reason. The video kind's layers
// option is not implemented, and refused at Create.
//
// With the media kinds registered, an engine whose Config.Prober is nil
// probes uploads and outputs with DefaultProber (ffprobe if in PATH, else
// spool.BasicProber), so that an uploaded mp4 gets its codec, size and
// duration without any setting.
//
//	engine, err := spool.Open(ctx, spool.Config{Path: "spool.db"})
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
//	task, err := engine.Create(ctx, spool.Request{Kind: "video", URL: "https://example.com/clip.mov",
//		Options: map[string]any{"width": 1280, "format": "mp4"}})
//
// The http kind follows the engine's network policy
// (spool.Config.AllowPrivateNetworks and AllowNetworks), checking every
// address it dials, redirects included.
package kinds
