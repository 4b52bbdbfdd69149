package spool_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/spooltest"
)

// TestJobTempDir: a handler's work directory is in the data directory and
// goes when the handler returns, whatever the outcome.
func TestJobTempDir(t *testing.T) {
	dataDir := t.TempDir()
	e := openFile(t, spool.Config{DataDir: dataDir, MaxAttempts: 1})
	var dirs []string
	e.Register("work", spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
		dir, err := job.TempDir()
		if err != nil {
			return err
		}
		again, _ := job.TempDir()
		if again != dir || !strings.HasPrefix(dir, filepath.Join(dataDir, ".tmp")+string(filepath.Separator)) {
			return spool.Permanent(errors.New("temp dir " + dir + " then " + again))
		}
		dirs = append(dirs, dir)
		if err := os.WriteFile(filepath.Join(dir, "out.bin"), []byte("x"), 0o600); err != nil {
			return err
		}
		if fail, _ := job.Bool("fail"); fail {
			return errors.New("failing on purpose")
		}
		return nil
	}))
	if err := e.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	for _, fail := range []bool{false, true} {
		task := spooltest.CreateAndWait(t, e, spool.Request{Kind: "work", Options: map[string]any{"fail": fail}})
		if (task.Status == spool.StatusCompleted) == fail {
			t.Fatalf("task %s (%s)", task.Status, task.Error)
		}
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("work dir %s after the handler returned: %v", d, err)
		}
	}
}

// proberHandler supplies a prober, as the kinds package's media handlers do.
type proberHandler struct{ p spool.Prober }

func (proberHandler) Handle(context.Context, *spool.Job) error { return nil }
func (h proberHandler) Prober() spool.Prober                   { return h.p }

// TestHandlerSuppliesProber: a registered handler's prober is used when
// Config.Prober is nil, and only then.
func TestHandlerSuppliesProber(t *testing.T) {
	mark := func(codec string) spool.Prober {
		return spool.ProberFunc(func(ctx context.Context, p string) (*spool.File, error) {
			f, err := spool.BasicProber().Probe(ctx, p)
			if f != nil {
				f.Codec = codec
			}
			return f, err
		})
	}
	for _, c := range []struct {
		user spool.Prober
		want string
	}{{nil, "handler"}, {mark("user"), "user"}} {
		e := openFile(t, spool.Config{Prober: c.user})
		e.Register("probed", proberHandler{mark("handler")})
		e.Register("other", proberHandler{mark("second")})
		f, err := e.CreateFile(ctxT(t), strings.NewReader("hello"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if f.Codec != c.want {
			t.Errorf("Config.Prober %v: probed by %q, want %q", c.user != nil, f.Codec, c.want)
		}
	}
}

// TestKindSpecCheck: a kind's Check sees the options with defaults and
// blames the field it names, or "options".
func TestKindSpecCheck(t *testing.T) {
	spec := &spool.KindSpec{Kind: "k", Options: []spool.OptionSpec{
		{Name: "a", Type: spool.TypeInt, Default: 1}, {Name: "b", Type: spool.TypeInt}}}
	spec.Check = func(opts map[string]any) error {
		switch {
		case opts["a"] == nil:
			return errors.New("default not filled")
		case opts["b"] == int64(2):
			return &spool.ValidationError{Field: "b", Reason: "must not be 2"}
		case opts["b"] == int64(3):
			return errors.New("a and b disagree")
		}
		return nil
	}
	for b, field := range map[int]string{1: "", 2: "b", 3: "options"} {
		_, err := spec.Validate(map[string]any{"b": b})
		var ve *spool.ValidationError
		switch {
		case field == "" && err != nil:
			t.Errorf("b=%d: %v", b, err)
		case field != "" && (!errors.As(err, &ve) || ve.Field != field):
			t.Errorf("b=%d: %v, want a validation error on %s", b, err, field)
		}
	}
}
