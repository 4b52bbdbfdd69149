package main

import (
	"encoding/json"
	"image/jpeg"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spoolrun/spool"
)

// outputLine is run's line for an output file on stderr.
var outputLine = regexp.MustCompile(`(?m)^output: (.+)$`)

// checkImageRun checks the result of "spool run image in.png width=64
// format=jpeg": a completed task on stdout, plain progress lines, and a
// 64-pixel-wide JPEG where it says the output is. It returns that path.
func checkImageRun(t *testing.T, r result) string {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit status %d, stderr:\n%s", r.code, r.stderr)
	}
	var task spool.Task
	if err := json.Unmarshal([]byte(r.stdout), &task); err != nil {
		t.Fatalf("stdout is not the task JSON: %v\n%s", err, r.stdout)
	}
	if task.Status != spool.StatusCompleted || task.Kind != "image" {
		t.Fatalf("task %s %s, want a completed image task", task.Kind, task.Status)
	}
	var out spool.File
	if err := json.Unmarshal(task.Output, &out); err != nil || out.Width != 64 || out.Type != "image/jpeg" {
		t.Fatalf("output %s (%v), want a 64 px wide JPEG", task.Output, err)
	}
	// Not a terminal: plain lines, no escape codes or carriage returns.
	if strings.ContainsAny(r.stderr, "\x1b\r") {
		t.Errorf("progress output has terminal control characters:\n%q", r.stderr)
	}
	for _, want := range []string{"status completed\n", "progress 100%\n"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks the plain line %q:\n%s", want, r.stderr)
		}
	}
	for line := range strings.Lines(r.stderr) {
		if !regexp.MustCompile(`^(status [a-z]+|progress \d+%|output: .+|data: .+)\n$`).MatchString(line) {
			t.Errorf("unexpected line on stderr: %q", line)
		}
	}
	m := outputLine.FindStringSubmatch(r.stderr)
	if m == nil {
		t.Fatalf("stderr names no output file:\n%s", r.stderr)
	}
	f, err := os.Open(m[1])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := jpeg.DecodeConfig(f)
	if err != nil || cfg.Width != 64 {
		t.Fatalf("output file %s: %+v, %v; want a 64 px wide JPEG", m[1], cfg, err)
	}
	return m[1]
}

// Acceptance 9: spool run image in.png width=64 format=jpeg prints a
// completed output, its progress in plain lines when not on a terminal.
func TestRunImage(t *testing.T) {
	dir := t.TempDir()
	in := writePNG(t, dir, 200, 100)
	out := filepath.Join(dir, "out")
	r := runCLI(t, nil, "run", "image", in, "width=64", "format=jpeg", "--out", out)
	if p := checkImageRun(t, r); p != filepath.Join(out, "in.jpg") {
		t.Errorf("output at %s, want it copied to %s", p, filepath.Join(out, "in.jpg"))
	}
	// A second run does not overwrite the first one's output: it fails,
	// and says where its own output is instead.
	r = runCLI(t, nil, "run", "image", in, "width=64", "format=jpeg", "--out", out)
	if r.code != exitFailed || !strings.Contains(r.stderr, "exists") {
		t.Fatalf("run into an --out holding the output: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	m := outputLine.FindStringSubmatch(r.stderr)
	if m == nil || strings.HasPrefix(m[1], out) {
		t.Fatalf("stderr does not say where the uncopied output is:\n%s", r.stderr)
	}
	if _, err := os.Stat(m[1]); err != nil {
		t.Fatalf("the uncopied output is not kept: %v", err)
	}
}

// Acceptance 9 through the built program, whose stderr is a pipe; without
// --out, the output stays in the database's storage, beside --db.
func TestRunImageBinary(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	in := writePNG(t, dir, 200, 100)
	db := filepath.Join(dir, "run.db")
	cmd := exec.Command(bin, "run", "--db", db, "image", in, "width=64", "format=jpeg")
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	p := checkImageRun(t, result{stdout: stdout.String(), stderr: stderr.String(), code: code})
	if !strings.HasPrefix(p, db+".files"+string(filepath.Separator)) {
		t.Errorf("output at %s, want it under %s.files", p, db)
	}
}

// Bad command lines fail with a clear message and a non-zero status, and
// leave nothing behind.
func TestRunBadInput(t *testing.T) {
	dir := t.TempDir()
	in := writePNG(t, dir, 40, 20)
	tests := []struct {
		name string
		args []string
		code int
		want string // in stderr
	}{
		{"unknown kind", []string{"run", "imag", in}, exitUsage, `unknown kind "imag"`},
		{"kind without provider", []string{"run", "chapters", in}, exitFailed, "kind chapters cannot run here"},
		{"wrong option type", []string{"run", "image", in, "width=abc"}, exitUsage, "invalid width"},
		{"option out of range", []string{"run", "image", in, "width=100000"}, exitUsage, "invalid width"},
		{"option not in enum", []string{"run", "image", in, "format=bmp"}, exitUsage, "invalid format"},
		{"unknown option", []string{"run", "image", in, "colour=red"}, exitUsage, "colour"},
		{"option without value", []string{"run", "image", in, "width"}, exitUsage, `option "width": want name=value`},
		{"option given twice", []string{"run", "image", in, "width=1", "width=2"}, exitUsage, "given twice"},
		{"reserved option", []string{"run", "image", in, "url=http://x"}, exitUsage, "give it as the KIND or INPUT"},
		{"missing file", []string{"run", "image", filepath.Join(dir, "nope.png")}, exitUsage, "no such file"},
		{"directory", []string{"run", "image", dir}, exitUsage, "is a directory"},
		{"unknown file id", []string{"run", "image", "file_01JDQ8Z3V2K6M9XK0D1W2Y3Z4A"}, exitUsage, "file_id"},
		{"not an image", []string{"run", "image", filepath.Join(dir, "notes.txt")}, exitFailed, ""},
		{"no input", []string{"run", "image"}, exitUsage, "want KIND INPUT"},
		{"bad flag", []string{"run", "--nope", "image", in}, exitUsage, "flag provided but not defined"},
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not an image\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, nil, append([]string{tt.args[0], "--data", filepath.Join(tmp, tt.name)}, tt.args[1:]...)...)
			if r.code != tt.code {
				t.Errorf("exit status %d, want %d; stderr:\n%s", r.code, tt.code, r.stderr)
			}
			if !strings.Contains(r.stderr, tt.want) {
				t.Errorf("stderr lacks %q:\n%s", tt.want, r.stderr)
			}
			if tt.code == exitUsage && r.stdout != "" {
				t.Errorf("stdout not empty:\n%s", r.stdout)
			}
		})
	}
}

func TestOptionValue(t *testing.T) {
	tests := []struct{ in, want string }{
		{"64", `64`},
		{"-1.5", `-1.5`},
		{"1e3", `1e3`},
		{"true", `true`},
		{"false", `false`},
		{`{"a":"b"}`, `{"a":"b"}`},
		{`[1,2]`, `[1,2]`},
		{`"64"`, `"64"`},
		{"jpeg", `"jpeg"`},
		{"50%", `"50%"`},
		{"null", `"null"`},
		{"", `""`},
		{"0x10", `"0x10"`},
		{"{not json", `"{not json"`},
		{"a b", `"a b"`},
	}
	for _, tt := range tests {
		if got := string(optionValue(tt.in)); got != tt.want {
			t.Errorf("optionValue(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestParseInterleaved(t *testing.T) {
	tests := []struct {
		args    []string
		pos     []string
		out, db string
	}{
		{[]string{"image", "in.png", "width=64"}, []string{"image", "in.png", "width=64"}, "", ""},
		{[]string{"--out", "o", "image", "in.png"}, []string{"image", "in.png"}, "o", ""},
		{[]string{"image", "in.png", "width=64", "--out", "o", "-db=d"}, []string{"image", "in.png", "width=64"}, "o", "d"},
		{[]string{"image", "--", "-in.png", "--out"}, []string{"image", "-in.png", "--out"}, "", ""},
		{[]string{"image", "-", "x=1"}, []string{"image", "-", "x=1"}, "", ""},
	}
	for _, tt := range tests {
		c := &cli{stderr: &syncBuffer{}}
		fs := c.newFlagSet("t", "")
		out := fs.String("out", "", "")
		db := fs.String("db", "", "")
		pos, err := parse(fs, tt.args)
		if err != nil {
			t.Errorf("parse(%q): %v", tt.args, err)
			continue
		}
		if strings.Join(pos, "|") != strings.Join(tt.pos, "|") || *out != tt.out || *db != tt.db {
			t.Errorf("parse(%q) = %q out=%q db=%q, want %q out=%q db=%q", tt.args, pos, *out, *db, tt.pos, tt.out, tt.db)
		}
	}
}

// Two outputs of one run with the same filename are both copied to --out:
// the later one under its ref.
func TestRunWorkflowOutNames(t *testing.T) {
	dir := t.TempDir()
	in := writePNG(t, dir, 60, 30)
	out := filepath.Join(dir, "out")
	steps := `[{"kind": "image", "width": 32, "ref": "small"}, {"kind": "image", "width": 16, "ref": "tiny"}]`
	r := runCLI(t, nil, "run", "workflow", in, "workflow="+steps, "--out", out)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	for _, name := range []string{"in.png", "in-tiny.png"} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Errorf("%s not copied: %v\n%s", name, err, r.stderr)
		}
	}
}

// --timeout cancels a task still running then: the final JSON says
// cancelled, and the exit status is 1.
func TestRunTimeoutCancels(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer slow.Close()
	r := runCLI(t, nil, "run", "--data", t.TempDir(), "--allow-private-networks", "--timeout", "500ms", "http", slow.URL)
	if r.code != exitFailed {
		t.Fatalf("exit %d, want %d\n%s", r.code, exitFailed, r.stderr)
	}
	var task spool.Task
	if err := json.Unmarshal([]byte(r.stdout), &task); err != nil || task.Status != spool.StatusCancelled {
		t.Fatalf("final task %+v (%v), want cancelled\n%s", task.Status, err, r.stdout)
	}
	if !strings.Contains(r.stderr, "timed out: cancelling") {
		t.Errorf("stderr does not say why it cancelled:\n%s", r.stderr)
	}
}
