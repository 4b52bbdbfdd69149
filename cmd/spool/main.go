// Command spool is spool as one program: a server of the hosted Tasks API
// (spool serve), a runner of one task on a local file (spool run), and a
// client of either a server or a database file (spool tasks, spool kinds).
//
// Install it with
//
//	go install github.com/spoolrun/spool/cmd/spool@latest
//
// and run "spool help" for the commands. Exit status: 0 on success (for run
// and tasks wait: the task completed), 1 when the work failed (the task
// ended failed, error or cancelled; a server or database error), 2 for a
// usage error (bad flags or arguments, an invalid request).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spoolrun/spool"
	"golang.org/x/term"
)

// Exit statuses.
const (
	exitOK      = 0
	exitFailed  = 1
	exitUsage   = 2
	exitSignal  = 130 // interrupted before the work finished, as shells report SIGINT
	usageHeader = `spool runs media tasks: one binary to serve the hosted Tasks API, run one
task on a local file, or inspect tasks.

Usage:
  spool serve [flags]                      serve the Tasks API over HTTP
  spool run [flags] KIND INPUT [opt=val…]  run one task on a file or URL, here
  spool tasks ls|get|cancel|wait [flags]   list, show, cancel or follow tasks
  spool kinds [flags] [KIND]               the kinds, whether they can run, options
  spool help [COMMAND]                     this text, or a command's

Examples:
  spool run image photo.png width=320 format=jpeg --out .
  SPOOL_TOKEN=secret spool serve --db spool.db
  SPOOL_TOKEN=secret spool tasks ls --status processing

Run "spool COMMAND -h" for a command's flags.
`
)

// cli holds what a command reads and writes, so that tests run commands in
// process.
type cli struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

func main() {
	c := &cli{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	os.Exit(c.main(context.Background(), os.Args[1:]))
}

// main runs the command args names and returns the exit status.
func (c *cli) main(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(c.stderr, usageHeader)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "serve":
		err = c.serve(ctx, rest)
	case "run":
		err = c.run(ctx, rest)
	case "tasks", "task":
		err = c.tasks(ctx, rest)
	case "kinds":
		err = c.kinds(ctx, rest)
	case "help", "-h", "-help", "--help":
		if len(rest) > 0 && rest[0] != "help" {
			return c.main(ctx, []string{rest[0], "-h"})
		}
		fmt.Fprint(c.stdout, usageHeader)
		return exitOK
	case "version", "-version", "--version":
		fmt.Fprintln(c.stdout, "spool", version())
		return exitOK
	default:
		fmt.Fprintf(c.stderr, "spool: unknown command %q\n\n%s", cmd, usageHeader)
		return exitUsage
	}
	if cmd == "tasks" && len(rest) > 0 {
		cmd += " " + rest[0]
	}
	return c.exit(cmd, err)
}

// exit reports err, if any, and returns the exit status it calls for.
func (c *cli) exit(cmd string, err error) int {
	var st exitStatus
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &st):
		return int(st) // already reported
	}
	fmt.Fprintf(c.stderr, "spool %s: %s\n", cmd, strings.TrimPrefix(err.Error(), "spool: "))
	var ue *usageError
	if errors.As(err, &ue) || errors.Is(err, spool.ErrInvalidRequest) {
		if ue != nil && ue.hint != "" {
			fmt.Fprintln(c.stderr, ue.hint)
		}
		return exitUsage
	}
	return exitFailed
}

// exitStatus is an error that ends the program with that status, its
// reason already reported (a task that did not complete).
type exitStatus int

func (s exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(s)) }

// usageError is a mistake in the command line: exit status 2.
type usageError struct {
	msg  string
	hint string // a line printed after the message, such as "spool kinds lists them"
}

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// newFlagSet returns a FlagSet for a subcommand that prints its usage on
// c.stderr, and returns errors instead of exiting.
func (c *cli) newFlagSet(name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet("spool "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fmt.Fprintln(fs.Output(), "\nFlags:")
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args with fs, letting flags come after positional arguments
// too ("spool run image in.png width=64 --out ."), and returns the
// positional ones. "--" ends the flags.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for len(args) > 0 {
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &usageError{msg: err.Error(), hint: "Run \"" + fs.Name() + " -h\" for its flags."}
		}
		rest := fs.Args()
		// Parse stops at the first positional argument, or after "--".
		if used := args[:len(args)-len(rest)]; len(used) > 0 && used[len(used)-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	return pos, nil
}

// version is the module's version when built with go install, else
// "(devel)".
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// envOr returns the environment variable's value, or def when it is unset
// or empty.
func (c *cli) envOr(name, def string) string {
	if v := c.getenv(name); v != "" {
		return v
	}
	return def
}

// isTerminal reports whether w is a terminal, where progress bars are drawn.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// termWidth is the width of the terminal w, or 0.
func termWidth(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok {
		return 0
	}
	cols, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		return 0
	}
	return cols
}
