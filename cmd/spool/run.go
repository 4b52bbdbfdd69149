package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/kinds"
)

const runUsage = `Usage: spool run [flags] KIND INPUT [option=value …]

Runs one task of KIND in this process, on INPUT: a local file (uploaded to
the engine's storage first), an http(s) URL, or the id of a file already in
--db (file_…). For the http kind, INPUT is the URL to request.

Options are the kind's options ("spool kinds KIND" lists them) and the
request fields filename, folder and ref. A value is read as JSON when it is a
number, true or false, an object, an array or a quoted string, else as a
string: width=64 is a number, format=jpeg a string, headers='{"a":"b"}' an
object, ref='"64"' the string 64. The engine validates them before the task
is stored; an invalid one is an error naming it.

Progress goes to stderr: a bar when stderr is a terminal, else one line per
change ("status processing", "progress 40%"). Then the final task JSON goes
to stdout, and each output file's path to stderr ("output: PATH").

Where the outputs are:
  --out DIR   copies them into DIR (made if missing) under their filenames
              (never overwriting a file); without --db or --data, the work
              directory is then removed.
  otherwise   they stay in the engine's storage, whose directory is
              --data DIR, or DB.files beside --db, or a new temporary
              directory, printed ("data: DIR"), that holds the database too.

Exit status: 0 when the task completed, 1 when it ended otherwise (failed,
error, cancelled) or could not run, 2 for a usage error or an invalid
request, 130 when interrupted (the first Ctrl-C cancels the task).

Examples:
  spool run image photo.png width=320 format=jpeg --out .
  spool run video https://example.com/clip.mp4 width=50% format=webm --out .
  spool run http https://example.com/api method=POST body='{"a":1}'
`

// run is "spool run".
func (c *cli) run(ctx context.Context, args []string) error {
	fs := c.newFlagSet("run", runUsage)
	db := fs.String("db", "", "the database file; defaults to a new one in a temporary directory")
	data := fs.String("data", "", "with --db, the directory of the files' bytes (defaults to DB.files); without, a directory for both, kept (defaults to a temporary one)")
	out := fs.String("out", "", "copy the output files into this directory, made if missing")
	timeout := fs.Duration("timeout", 0, "cancel the task if it has not finished after this long (0: no limit)")
	private := fs.Bool("allow-private-networks", false, "let URL inputs reach loopback and private addresses")
	quiet := fs.Bool("q", false, "show no progress")
	verbose := fs.Bool("v", false, "log the engine's work on stderr")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		return &usageError{msg: "want KIND INPUT [option=value …]", hint: `Run "spool run -h" for help.`}
	}
	kind, input := pos[0], pos[1]
	opts, err := parseOptions(pos[2:])
	if err != nil {
		return err
	}

	cfg, workDir, err := runConfig(*db, *data)
	if err != nil {
		return err
	}
	keepWork := false // the temporary work directory, when it holds the outputs
	defer func() {
		if workDir != "" && !keepWork {
			os.RemoveAll(workDir)
		}
	}()
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: level}))
	cfg.AllowPrivateNetworks = *private
	e, err := spool.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := e.Close(cctx); err != nil {
			fmt.Fprintf(c.stderr, "spool run: %v\n", err)
		}
	}()
	if err := kinds.Register(e, &kinds.Config{Getenv: c.getenv}); err != nil {
		return err
	}
	if err := checkKind(ctx, e, kind); err != nil {
		return err
	}
	if err := e.Start(ctx); err != nil {
		return err
	}

	body := map[string]any{"kind": kind}
	for k, v := range opts {
		body[k] = v
	}
	upload, err := c.runInput(ctx, e, kind, input, body)
	if err != nil {
		return err
	}
	req, err := requestFrom(body)
	if err != nil {
		return err
	}
	events, err := e.Subscribe(ctx)
	if err != nil {
		return err
	}
	t, err := e.Create(ctx, req)
	if err != nil {
		if upload != "" && *db != "" {
			// Keep the user's database as it was.
			_ = e.DeleteFile(context.WithoutCancel(ctx), upload)
		}
		return err
	}

	final, interrupted, err := c.follow(ctx, e, t.ID, events, *timeout, *quiet)
	if err != nil {
		return err
	}
	if err := printJSON(c.stdout, final); err != nil {
		return err
	}
	left, err := c.runOutputs(ctx, e, final, *out)
	if len(left) > 0 && workDir != "" {
		keepWork = true
		fmt.Fprintf(c.stderr, "data: %s\n", workDir)
	}
	if err != nil {
		return err
	}
	switch {
	case interrupted:
		return exitStatus(exitSignal)
	case final.Status != spool.StatusCompleted:
		msg := ""
		if final.Error != "" {
			msg = ": " + printable(final.Error)
		}
		fmt.Fprintf(c.stderr, "spool run: task %s %s%s\n", final.ID, final.Status, msg)
		return exitStatus(exitFailed)
	}
	return nil
}

// follow shows task id's progress until it finishes, and returns it. On
// SIGINT or SIGTERM (interrupted), or once timeout (if not 0) has passed,
// it cancels the task and waits for it to end.
func (c *cli) follow(ctx context.Context, e *spool.Engine, id string, events <-chan spool.Event,
	timeout time.Duration, quiet bool) (final *spool.Task, interrupted bool, err error) {
	sigCtx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	wctx := sigCtx
	if timeout > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(sigCtx, timeout)
		defer cancel()
	}
	get := func(ctx context.Context) (*spool.Task, error) { return e.Get(ctx, id) }
	final, err = watch(wctx, get, events, 100*time.Millisecond, newProgressView(c.stderr, quiet))
	if err == nil || wctx.Err() == nil {
		return final, false, err
	}
	interrupted = sigCtx.Err() != nil
	why := "timed out"
	if interrupted {
		why = "interrupted"
	}
	fmt.Fprintf(c.stderr, "spool run: %s: cancelling %s\n", why, id)
	stop() // a second Ctrl-C kills the program
	bg := context.WithoutCancel(ctx)
	if _, err := e.Cancel(bg, id); err != nil && !errors.Is(err, spool.ErrInvalidTransition) {
		return nil, interrupted, err
	}
	wait, cancel := context.WithTimeout(bg, 30*time.Second)
	defer cancel()
	final, err = e.Wait(wait, id)
	return final, interrupted, err
}

// runConfig returns the engine's Config for run, and the temporary work
// directory it made ("" when the user named the places).
func runConfig(db, data string) (spool.Config, string, error) {
	cfg := spool.Config{Path: db, DataDir: data}
	if db != "" {
		return cfg, "", nil
	}
	dir := data
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "spool-run-"); err != nil {
			return cfg, "", err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return cfg, "", err
	}
	cfg.Path = filepath.Join(dir, "spool.db")
	cfg.DataDir = filepath.Join(dir, "files")
	if data != "" {
		return cfg, "", nil
	}
	return cfg, dir, nil
}

// checkKind refuses, before any upload, a kind e does not know or cannot
// run here.
func checkKind(ctx context.Context, e *spool.Engine, kind string) error {
	var names []string
	for _, k := range e.Kinds(ctx) {
		if k.Kind == kind {
			if !k.Available {
				return fmt.Errorf("kind %s cannot run here: %s", kind, k.Reason)
			}
			return nil
		}
		if k.Available {
			names = append(names, k.Kind)
		}
	}
	return &usageError{msg: fmt.Sprintf("unknown kind %q", kind),
		hint: "Kinds this machine can run: " + strings.Join(names, ", ") + ` ("spool kinds" says why not the others).`}
}

// runInput puts input in body as url or file_id, uploading a local file.
// It returns the id of the file it uploaded, if any.
func (c *cli) runInput(ctx context.Context, e *spool.Engine, kind, input string, body map[string]any) (string, error) {
	if u, err := url.Parse(input); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		body["url"] = input
		return "", nil
	}
	f, err := os.Open(input)
	switch {
	case errors.Is(err, fs.ErrNotExist) && strings.HasPrefix(input, "file_") && !strings.ContainsAny(input, `/\.`):
		body["file_id"] = input
		return "", nil
	case err != nil:
		return "", &usageError{msg: fmt.Sprintf("input: %v", err),
			hint: "INPUT is a local file, an http(s) URL or a file id (file_…) in --db."}
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return "", usagef("input: %s is a directory", input)
	}
	if kind == spool.KindHTTP {
		return "", usagef("input: the http kind takes a URL, not a file")
	}
	file, err := e.CreateFile(ctx, f, &spool.FileParams{Filename: filepath.Base(input)})
	if err != nil {
		return "", fmt.Errorf("upload %s: %w", input, err)
	}
	body["file_id"] = file.ID
	return file.ID, nil
}

// reserved are the request fields that run's arguments set.
var reserved = []string{"kind", "url", "file_id"}

// parseOptions reads option=value arguments. A value that parses as a JSON
// number, true, false, object, array or string is that; any other is a
// string. The values are json.RawMessage, for requestFrom.
func parseOptions(args []string) (map[string]any, error) {
	opts := map[string]any{}
	for _, a := range args {
		name, value, ok := strings.Cut(a, "=")
		if !ok || name == "" {
			return nil, &usageError{msg: fmt.Sprintf("option %q: want name=value", a),
				hint: `Run "spool kinds KIND" for the kind's options.`}
		}
		if slices.Contains(reserved, name) {
			return nil, usagef("option %s: give it as the KIND or INPUT argument", name)
		}
		if _, dup := opts[name]; dup {
			return nil, usagef("option %s: given twice", name)
		}
		opts[name] = optionValue(value)
	}
	return opts, nil
}

// optionValue is value as JSON: itself when it is a JSON number, boolean,
// object, array or string, else a JSON string of it ("null" is a string too).
func optionValue(value string) json.RawMessage {
	v := strings.TrimSpace(value)
	if v != "" && v != "null" && json.Valid([]byte(v)) {
		return json.RawMessage(v)
	}
	b, _ := json.Marshal(value)
	return b
}

// requestFrom decodes body as a create body, as the HTTP API would.
func requestFrom(body map[string]any) (spool.Request, error) {
	var req spool.Request
	b, err := json.Marshal(body)
	if err != nil {
		return req, err
	}
	err = json.Unmarshal(b, &req)
	return req, err
}

// runOutputs prints where t's output files are (with its steps', for a
// workflow), copying them into out when it is set. It returns the paths of
// those left in the engine's storage: all of them without out, else those
// it could not copy.
func (c *cli) runOutputs(ctx context.Context, e *spool.Engine, t *spool.Task, out string) ([]string, error) {
	files, err := taskFiles(ctx, e, t)
	if err != nil || len(files) == 0 {
		return nil, err
	}
	st, err := e.Storage()
	if err != nil {
		return nil, err
	}
	if out != "" {
		if err := os.MkdirAll(out, 0o755); err != nil {
			return nil, err
		}
	}
	var paths []string
	var errs []error
	taken := map[string]bool{}
	for _, f := range files {
		if out != "" {
			p, err := copyOut(ctx, st, f, out, taken)
			if err == nil {
				fmt.Fprintf(c.stderr, "output: %s\n", p)
				continue
			}
			// Say where the file is instead, and keep it there.
			errs = append(errs, err)
		}
		p := f.ID // a storage of another kind: the file's id is all there is
		if lp, ok := st.(spool.LocalPather); ok {
			if p, err = lp.LocalPath(f.Key); err != nil {
				return paths, err
			}
		}
		fmt.Fprintf(c.stderr, "output: %s\n", p)
		paths = append(paths, p)
	}
	return paths, errors.Join(errs...)
}

// taskFiles returns the files t produced and, for a workflow, its steps'.
func taskFiles(ctx context.Context, e *spool.Engine, t *spool.Task) ([]*spool.File, error) {
	ids := []string{t.ID}
	for _, s := range t.Workflow {
		ids = append(ids, s.ID)
	}
	var out []*spool.File
	for _, id := range ids {
		var mine []*spool.File
		after := ""
		for {
			fs, err := e.ListFiles(ctx, &spool.FileListParams{TaskID: id, After: after, Limit: 100})
			if err != nil {
				return nil, err
			}
			mine = append(mine, fs...)
			if len(fs) < 100 {
				break
			}
			after = fs[len(fs)-1].ID
		}
		// Oldest first, the order the handler made them in; steps in
		// the workflow's order.
		slices.SortFunc(mine, func(a, b *spool.File) int { return strings.Compare(a.ID, b.ID) })
		out = append(out, mine...)
	}
	return out, nil
}

// copyOut copies f's bytes into dir under its filename, refusing to
// overwrite a file there, and returns the new file's path. taken holds
// the names this run used already.
func copyOut(ctx context.Context, st spool.Storage, f *spool.File, dir string, taken map[string]bool) (string, error) {
	name := filepath.Base(f.Filename)
	if name == "." || name == "/" || name == "" {
		name = f.ID
	}
	if taken[name] {
		// Two outputs of this run with one name (two steps resizing one
		// input): the later one gets its ref, or its id, in its name.
		ext := filepath.Ext(name)
		tag := f.ID
		if r := filepath.Base(f.Ref); f.Ref != "" && r != "." && r != "/" && !taken[strings.TrimSuffix(name, ext)+"-"+r+ext] {
			tag = r
		}
		name = strings.TrimSuffix(name, ext) + "-" + tag + ext
	}
	taken[name] = true
	p := filepath.Join(dir, name)
	r, err := st.Open(ctx, f.Key)
	if err != nil {
		return "", err
	}
	defer r.Close()
	w, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("copy output %s: %s exists; remove it or choose another --out", f.ID, p)
	}
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(w, r); err != nil {
		w.Close()
		os.Remove(p)
		return "", fmt.Errorf("copy output %s: %w", f.ID, err)
	}
	if err := w.Close(); err != nil {
		os.Remove(p)
		return "", err
	}
	return p, nil
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
