package main

import (
	"context"
	"database/sql"
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"maragu.dev/goqite"
	"maragu.dev/goqite/jobs"
)

// goqiteSchema is schema_sqlite.sql copied verbatim from maragu.dev/goqite
// v0.4.0 (the module ships it but does not export it; go:embed cannot reach
// into another module).
//
//go:embed goqite_schema_sqlite.sql
var goqiteSchema string

func init() {
	systems["goqite"] = func() system { return &goqiteSystem{} }
	settingsNote["goqite"] = func(tuned bool) string {
		if tuned {
			return "jobs.Runner PollInterval=1ms"
		}
		return "defaults: jobs.Runner PollInterval=100ms"
	}
}

// goqiteSystem is goqite's queue with its jobs runner on database/sql.
type goqiteSystem struct {
	db     *sql.DB
	queue  *goqite.Queue
	runner *jobs.Runner

	stop    context.CancelFunc
	stopped chan struct{}
}

func (s *goqiteSystem) open(ctx context.Context, dir string, opts options, onRun func()) error {
	db, err := openSQLite(ctx, filepath.Join(dir, "goqite.db"))
	if err != nil {
		return err
	}
	s.db = db
	if _, err := db.ExecContext(ctx, goqiteSchema); err != nil {
		return err
	}

	s.queue = goqite.New(goqite.NewOpts{DB: db, Name: "jobs"})
	ro := jobs.NewRunnerOpts{Limit: opts.workers, Queue: s.queue, Log: goqiteErrLog{}}
	if opts.tuned {
		ro.PollInterval = time.Millisecond
	}
	s.runner = jobs.NewRunner(ro)
	s.runner.Register("noop", func(ctx context.Context, m []byte) error {
		onRun()
		return nil
	})
	return nil
}

// goqiteErrLog passes the runner's error messages to stderr (goqite logs
// everything at info level, including one line per job run).
type goqiteErrLog struct{}

func (goqiteErrLog) Info(msg string, args ...any) {
	if strings.HasPrefix(msg, "Error") {
		fmt.Fprintln(os.Stderr, append([]any{"goqite:", msg}, args...)...)
	}
}

func (s *goqiteSystem) enqueue(ctx context.Context) error {
	_, err := jobs.Create(ctx, s.queue, "noop", goqite.Message{})
	return err
}

func (s *goqiteSystem) enqueueBulk(ctx context.Context, n int) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for range n {
		if _, err := jobs.CreateTx(ctx, tx, s.queue, "noop", goqite.Message{}); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// start runs the jobs runner in a goroutine; Runner.Start blocks until its
// context is cancelled and then waits for running jobs.
func (s *goqiteSystem) start(ctx context.Context) error {
	ctx, s.stop = context.WithCancel(context.WithoutCancel(ctx))
	s.stopped = make(chan struct{})
	go func() {
		defer close(s.stopped)
		s.runner.Start(ctx)
	}()
	return nil
}

func (s *goqiteSystem) close(ctx context.Context) error {
	if s.stop != nil {
		s.stop()
		select {
		case <-s.stopped:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if s.db != nil {
		return s.db.Close()
	}
	return nil
}
