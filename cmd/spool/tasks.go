package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/kinds"
)

const tasksUsage = `Usage:
  spool tasks ls [flags]          the newest tasks, filtered
  spool tasks get [flags] ID      a task's JSON
  spool tasks cancel [flags] ID   cancel a task that has not finished
  spool tasks wait [flags] ID     follow a task (one bar per workflow step)
                                  until it finishes, then print its JSON

They talk to a server (--server, SPOOL_URL) speaking the hosted Tasks API
(version 2025-08-20) with --token or SPOOL_TOKEN, or read a database file
directly (--db; SPOOL_DB). Flags win over the environment; SPOOL_URL wins
over SPOOL_DB. With neither, the server is http://127.0.0.1:8080, where
"spool serve" listens by default.

wait exits 0 only when the task completed, 1 otherwise.
`

// backend is where tasks are read: a server, or a database file.
type backend interface {
	get(ctx context.Context, id string) (*spool.Task, error)
	cancel(ctx context.Context, id string) (*spool.Task, error)
	// list returns a page and the flags that list the next one, if any.
	list(ctx context.Context, p *spool.ListParams) ([]*spool.Task, string, error)
	kinds(ctx context.Context) ([]spool.KindInfo, error)
	// events wakes a watcher of task id on its changes until ctx ends,
	// or is nil.
	events(ctx context.Context, id string) <-chan spool.Event
	pollInterval() time.Duration
	close() error
}

// target holds the flags that choose a backend.
type target struct {
	server, token, db *string
}

func (c *cli) targetFlags(fs *flag.FlagSet) target {
	return target{
		server: fs.String("server", "", "the server's URL (env SPOOL_URL); defaults to http://127.0.0.1:8080"),
		token:  fs.String("token", "", "the bearer token for the server (env SPOOL_TOKEN)"),
		db:     fs.String("db", "", "read this database file instead of a server (env SPOOL_DB)"),
	}
}

// open returns the backend the flags and environment choose. local says
// what to use when none is named: an engine with no database (true, for
// kinds), or the default server.
func (c *cli) open(ctx context.Context, fs *flag.FlagSet, t target, local bool) (backend, error) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	token := *t.token
	if !set["token"] {
		token = c.getenv("SPOOL_TOKEN")
	}
	switch {
	case set["db"] && set["server"]:
		return nil, usagef("--db and --server: give one")
	case set["server"]:
		cl, err := newClient(*t.server, token)
		return httpBackend{c: cl}, err
	case set["db"]:
		return c.openDB(ctx, *t.db)
	case c.getenv("SPOOL_URL") != "":
		cl, err := newClient(c.getenv("SPOOL_URL"), token)
		return httpBackend{c: cl}, err
	case c.getenv("SPOOL_DB") != "":
		return c.openDB(ctx, c.getenv("SPOOL_DB"))
	case local:
		return c.openDB(ctx, ":memory:")
	}
	cl, err := newClient("http://127.0.0.1:8080", token)
	return httpBackend{c: cl}, err
}

// engineBackend reads a database file with an engine that is not started:
// it runs nothing, and another process (spool serve) may run the tasks.
type engineBackend struct {
	e *spool.Engine
}

func (c *cli) openDB(ctx context.Context, path string) (backend, error) {
	if path != ":memory:" {
		// Open would create an empty database: a typo must not.
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, usagef("no database at %s", path)
		}
	}
	quiet := slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	e, err := spool.Open(ctx, spool.Config{Path: path, Logger: quiet})
	if err != nil {
		return nil, err
	}
	// Registered so that kinds reports what this machine can run, and
	// options read as the handlers declare them.
	if err := kinds.Register(e, &kinds.Config{Getenv: c.getenv}); err != nil {
		e.Close(ctx)
		return nil, err
	}
	return engineBackend{e}, nil
}

func (b engineBackend) get(ctx context.Context, id string) (*spool.Task, error) {
	return b.e.Get(ctx, id)
}

func (b engineBackend) cancel(ctx context.Context, id string) (*spool.Task, error) {
	return b.e.Cancel(ctx, id)
}

func (b engineBackend) list(ctx context.Context, p *spool.ListParams) ([]*spool.Task, string, error) {
	page, err := b.e.List(ctx, p)
	if err != nil {
		return nil, "", err
	}
	if page.Next == "" {
		return page.Tasks, "", nil
	}
	if p.After == "" && p.Page > 0 {
		return page.Tasks, "--page " + strconv.Itoa(p.Page+1), nil
	}
	return page.Tasks, "--after " + page.Next, nil
}

func (b engineBackend) kinds(ctx context.Context) ([]spool.KindInfo, error) {
	return b.e.Kinds(ctx), nil
}

func (engineBackend) events(context.Context, string) <-chan spool.Event { return nil }

// pollInterval is how often the database is read: the engine running the
// task is in another process, so there is nothing to be woken by.
func (engineBackend) pollInterval() time.Duration { return 250 * time.Millisecond }

func (b engineBackend) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return b.e.Close(ctx)
}

// tasks is "spool tasks".
func (c *cli) tasks(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(c.stderr, tasksUsage)
		if len(args) == 0 {
			return exitStatus(exitUsage)
		}
		return nil
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "ls", "list":
		return c.tasksList(ctx, args)
	case "get", "cancel", "wait":
		return c.tasksOne(ctx, sub, args)
	}
	return &usageError{msg: fmt.Sprintf("unknown command %q", "tasks "+sub), hint: `Run "spool tasks -h" for help.`}
}

func (c *cli) tasksList(ctx context.Context, args []string) error {
	fs := c.newFlagSet("tasks ls", "Usage: spool tasks ls [flags]\n\nLists tasks, newest first: a table, or with --json the hosted API's bare array.\n")
	t := c.targetFlags(fs)
	var p spool.ListParams
	status := fs.String("status", "", "only tasks with this status")
	fs.StringVar(&p.Kind, "kind", "", "only tasks of this kind")
	fs.StringVar(&p.ParentID, "parent", "", "only the steps of this workflow task")
	fs.StringVar(&p.Ref, "ref", "", "only tasks with this ref")
	fs.StringVar(&p.Folder, "folder", "", "only tasks with this folder")
	fs.IntVar(&p.Limit, "limit", 20, "tasks per page, 1 to 100")
	fs.IntVar(&p.Page, "page", 0, "the page, from 1")
	fs.StringVar(&p.After, "after", "", "the tasks after this task id (a cursor, instead of --page)")
	asJSON := fs.Bool("json", false, "print the page as a JSON array")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if p.Page > 0 && p.After != "" {
		return usagef("--page and --after: give one")
	}
	p.Status = spool.Status(*status)
	b, err := c.open(ctx, fs, t, false)
	if err != nil {
		return err
	}
	defer b.close()
	ts, next, err := b.list(ctx, &p)
	if err != nil {
		return err
	}
	if *asJSON {
		if ts == nil {
			ts = []*spool.Task{}
		}
		err = printJSON(c.stdout, ts)
	} else {
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tKIND\tSTATUS\tPROGRESS\tCREATED\tERROR")
		for _, t := range ts {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d%%\t%s\t%s\n", t.ID, t.Kind, t.Status, t.Progress,
				t.Created.Local().Format(time.DateTime), oneLine(t.Error, 60))
		}
		err = tw.Flush()
	}
	if err != nil {
		return err
	}
	if next != "" {
		fmt.Fprintf(c.stderr, "more: the same with %s\n", next)
	}
	return nil
}

// oneLine shortens s to one line of at most n characters.
func oneLine(s string, n int) string {
	r := []rune(printable(s))
	for i, c := range r {
		if c == '\n' || c == '\r' {
			r = r[:i]
			break
		}
	}
	if len(r) > n {
		r = append(r[:n-1], '…')
	}
	return string(r)
}

// printable replaces the control characters of text from elsewhere (a
// task's error quotes what a server answered) with U+FFFD, so that none
// reaches a terminal as an escape sequence; newlines and tabs stay.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r != '\n' && r != '\t' && unicode.IsControl(r) {
			return '\uFFFD'
		}
		return r
	}, s)
}

func (c *cli) tasksOne(ctx context.Context, sub string, args []string) error {
	usage := fmt.Sprintf("Usage: spool tasks %s [flags] ID\n", sub)
	fs := c.newFlagSet("tasks "+sub, usage)
	t := c.targetFlags(fs)
	var timeout *time.Duration
	var quiet *bool
	if sub == "wait" {
		timeout = fs.Duration("timeout", 0, "give up after this long (0: no limit); the task goes on")
		quiet = fs.Bool("q", false, "show no progress")
	}
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return &usageError{msg: "want one task ID", hint: trimNL(usage)}
	}
	id := pos[0]
	b, err := c.open(ctx, fs, t, false)
	if err != nil {
		return err
	}
	defer b.close()
	var task *spool.Task
	switch sub {
	case "get":
		task, err = b.get(ctx, id)
	case "cancel":
		task, err = b.cancel(ctx, id)
		if _, remote := errors.AsType[*apiError](err); !remote && errors.Is(err, spool.ErrInvalidTransition) {
			err = fmt.Errorf("task %s has already finished: %w", id, err)
		}
	case "wait":
		return c.tasksWait(ctx, b, id, *timeout, *quiet)
	}
	if err != nil {
		return err
	}
	return printJSON(c.stdout, task)
}

// trimNL is s without its trailing newline, for a hint.
func trimNL(s string) string {
	if n := len(s); n > 0 && s[n-1] == '\n' {
		return s[:n-1]
	}
	return s
}

// tasksWait follows a task until it finishes, prints it, and fails unless
// it completed. Ctrl-C stops waiting; the task goes on.
func (c *cli) tasksWait(ctx context.Context, b backend, id string, timeout time.Duration, quiet bool) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	get := func(ctx context.Context) (*spool.Task, error) { return b.get(ctx, id) }
	t, err := watch(ctx, get, b.events(ctx, id), b.pollInterval(), newProgressView(c.stderr, quiet))
	if err != nil {
		if t != nil && ctx.Err() != nil {
			fmt.Fprintf(c.stderr, "spool tasks wait: stopped waiting: %s is %s\n", id, t.Status)
			return exitStatus(exitFailed)
		}
		return err
	}
	if err := printJSON(c.stdout, t); err != nil {
		return err
	}
	if t.Status != spool.StatusCompleted {
		fmt.Fprintf(c.stderr, "spool tasks wait: task %s %s\n", t.ID, t.Status)
		return exitStatus(exitFailed)
	}
	return nil
}
