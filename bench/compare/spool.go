package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spoolrun/spool"
)

func init() {
	systems["spool"] = func() system { return &spoolSystem{} }
	settingsNote["spool"] = func(bool) string {
		return "defaults (its own SQLite store: 1 write conn with group commit + 4 read conns; same pragmas)"
	}
}

// spoolSystem is the system under test, used through its public API only.
type spoolSystem struct {
	e *spool.Engine
}

func (s *spoolSystem) open(ctx context.Context, dir string, opts options, onRun func()) error {
	e, err := spool.Open(ctx, spool.Config{
		Path:        filepath.Join(dir, "spool.db"),
		Concurrency: opts.workers,
		Logger:      slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	s.e = e
	e.Register("noop", spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
		onRun()
		return nil
	}))
	return nil
}

func (s *spoolSystem) enqueue(ctx context.Context) error {
	_, err := s.e.Create(ctx, spool.Request{Kind: "noop"})
	return err
}

func (s *spoolSystem) enqueueBulk(ctx context.Context, n int) error {
	reqs := make([]spool.Request, n)
	for i := range reqs {
		reqs[i] = spool.Request{Kind: "noop"}
	}
	_, err := s.e.CreateMany(ctx, reqs)
	return err
}

func (s *spoolSystem) start(ctx context.Context) error { return s.e.Start(ctx) }

func (s *spoolSystem) close(ctx context.Context) error {
	if s.e == nil {
		return nil
	}
	return s.e.Close(ctx)
}
