package main

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
)

func init() {
	systems["river"] = func() system { return &riverSystem{} }
	settingsNote["river"] = func(tuned bool) string {
		if tuned {
			return "FetchCooldown=1ms FetchPollInterval=1ms (River's minimums)"
		}
		return "defaults: FetchCooldown=100ms FetchPollInterval=1s"
	}
}

// riverSystem is River with its SQLite driver (riversqlite) on database/sql.
type riverSystem struct {
	db     *sql.DB
	client *river.Client[*sql.Tx]
}

type riverNoopArgs struct{}

func (riverNoopArgs) Kind() string { return "noop" }

type riverNoopWorker struct {
	river.WorkerDefaults[riverNoopArgs]
	onRun func()
}

func (w *riverNoopWorker) Work(ctx context.Context, job *river.Job[riverNoopArgs]) error {
	w.onRun()
	return nil
}

func (s *riverSystem) open(ctx context.Context, dir string, opts options, onRun func()) error {
	db, err := openSQLite(ctx, filepath.Join(dir, "river.db"))
	if err != nil {
		return err
	}
	s.db = db

	driver := riversqlite.New(db)
	migrator, err := rivermigrate.New(driver, nil)
	if err != nil {
		return err
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return err
	}

	workers := river.NewWorkers()
	river.AddWorker(workers, &riverNoopWorker{onRun: onRun})
	cfg := &river.Config{
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: opts.workers}},
		Workers: workers,
		// River logs at info level on start/stop; keep warnings and errors.
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if opts.tuned {
		cfg.FetchCooldown = river.FetchCooldownMin
		cfg.FetchPollInterval = river.FetchPollIntervalMin
	}
	s.client, err = river.NewClient(driver, cfg)
	return err
}

func (s *riverSystem) enqueue(ctx context.Context) error {
	_, err := s.client.Insert(ctx, riverNoopArgs{}, nil)
	return err
}

func (s *riverSystem) enqueueBulk(ctx context.Context, n int) error {
	params := make([]river.InsertManyParams, n)
	for i := range params {
		params[i] = river.InsertManyParams{Args: riverNoopArgs{}}
	}
	_, err := s.client.InsertManyFast(ctx, params)
	return err
}

func (s *riverSystem) start(ctx context.Context) error { return s.client.Start(ctx) }

func (s *riverSystem) close(ctx context.Context) error {
	var errs []error
	if s.client != nil {
		// Stop returns nil at once for a client that was never started.
		stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		errs = append(errs, s.client.Stop(stopCtx))
	}
	if s.db != nil {
		errs = append(errs, s.db.Close())
	}
	return errors.Join(errs...)
}
