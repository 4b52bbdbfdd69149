package spool

import (
	"context"
	"io"
	"time"
)

// Storage holds the bytes of files. Keys are slash-separated relative paths
// chosen by spool ("file_01JDQ8Z3V2K6M9XK0D1W2Y3Z4A/clip.mp4"). The default
// is a local directory (Config.DataDir); spooltest.TestStorage is the
// conformance suite for other implementations.
type Storage interface {
	// Put stores r's bytes under key atomically: a reader never sees a
	// partial file, and a crash leaves either the old bytes or the new ones.
	// It replaces an existing key.
	Put(ctx context.Context, key string, r io.Reader) (n int64, err error)
	// Open returns the bytes; a missing key is an error matching
	// fs.ErrNotExist.
	Open(ctx context.Context, key string) (io.ReadSeekCloser, error)
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// Walk calls fn for every stored key with its modification time, in no
	// particular order. The engine uses it to sweep up bytes whose record
	// was never committed.
	Walk(ctx context.Context, fn func(key string, modTime time.Time) error) error
}

// LocalPather is implemented by storages that can give a local file path
// for a key, so that programs like ffmpeg read the bytes in place instead of
// from a copy.
type LocalPather interface {
	LocalPath(key string) (string, error)
}
