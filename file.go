package spool

import (
	"encoding/json"
	"time"
)

// File is a media file known to spool: a task's input or one of its outputs.
// It marshals to the file object of the hosted API. Its bytes live in the
// engine's Storage.
type File struct {
	ID          string          `json:"id,omitempty"`   // file_ + ULID; empty for a url input not yet fetched
	Object      string          `json:"object"`         // source, track or intelligence
	Kind        string          `json:"kind,omitempty"` // video, image, audio, text, json…
	Type        string          `json:"type,omitempty"` // MIME type
	Codec       string          `json:"codec,omitempty"`
	Container   string          `json:"container,omitempty"`
	Width       int             `json:"width,omitempty"`
	Height      int             `json:"height,omitempty"`
	Orientation string          `json:"orientation,omitempty"`
	Duration    float64         `json:"duration,omitempty"` // seconds
	FPS         float64         `json:"fps,omitempty"`
	Bitrate     int64           `json:"bitrate,omitempty"` // bits per second
	Filesize    int64           `json:"filesize,omitempty"`
	Language    string          `json:"language,omitempty"`
	Ref         string          `json:"ref,omitempty"`
	Folder      string          `json:"folder,omitempty"`
	Filename    string          `json:"filename,omitempty"`
	URL         string          `json:"url,omitempty"`
	Metadata    json.RawMessage `json:"metadata,omitempty"`
	Created     *time.Time      `json:"created,omitempty"`
	Updated     *time.Time      `json:"updated,omitempty"`

	// Rotation is how far, in degrees clockwise (0, 90, 180 or 270), the
	// stored picture turns for display: an image's EXIF orientation, a
	// video's rotation metadata. Width and Height are as displayed.
	Rotation int `json:"rotation,omitempty"`
	// Transparency reports an alpha channel or a transparent colour.
	Transparency bool `json:"transparency,omitempty"`
	// Animated reports an image of more than one frame (GIF, APNG, WebP).
	Animated bool `json:"animated,omitempty"`
	// Frames is the number of frames of an animated image, or of a video
	// whose container says; 0 when unknown.
	Frames int `json:"frames,omitempty"`
	// Format, Count and Sprite describe a thumbnails track (Object
	// "track", Kind "thumbnails"): the sprite's image format (jpeg or
	// png), the number of thumbnails, and the sprite image that the
	// track's cues point into. Width and Height are then one thumbnail's.
	Format string `json:"format,omitempty"`
	Count  int    `json:"count,omitempty"`
	Sprite *File  `json:"sprite,omitempty"`

	// Original is the URL a url input was downloaded from. URL holds it
	// too in the engine's records, while package api serves every file's
	// bytes at a url of its own and shows the source here.
	Original string `json:"original,omitempty"`
	// CreatedBy is who uploaded the file (FileParams.CreatedBy).
	CreatedBy string `json:"created_by,omitempty"`

	// Key is where the bytes are in the engine's Storage.
	Key string `json:"-"`
	// TaskID is the task that produced the file, if any.
	TaskID string `json:"-"`
}

// FileListParams filters and pages ListFiles. The zero value lists the 20
// newest files.
type FileListParams struct {
	Folder string
	Ref    string
	TaskID string // only the files this task produced
	// After is a cursor: the files that follow the file with this id,
	// newest first.
	After string
	// Limit is the page size, 1 to 100. Defaults to 20.
	Limit int
}
