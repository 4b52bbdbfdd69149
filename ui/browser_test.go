package ui_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/spoolrun/spool"
)

// These tests drive a headless Chromium (Debian's chromium package) at the
// dashboard. They skip without it; CI installs it and fails on a skip.
// Set SPOOL_SCREENSHOTS to a directory to keep their screenshots, and
// SPOOL_UPDATE_DOCS=1 to rewrite docs/dashboard.png (a workflow's page).

// chromium returns the path of a Chromium or Chrome binary, or skips.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("install chromium (apt-get install -y chromium) to run the browser tests")
	return ""
}

// browser starts a headless browser for the test and returns its first
// tab's context.
func browser(t *testing.T) context.Context {
	t.Helper()
	bin := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("disable-gpu", true),
		chromedp.WindowSize(1280, 900), chromedp.UserDataDir(t.TempDir()))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		bcancel()
		acancel()
	})
	// The first call starts the browser, which lives as long as its
	// context: it gets no deadline; each later step does (see run).
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	return bctx
}

// stepTimeout bounds one step of a browser test, generously for a slow,
// shared machine, so that a hung browser fails the test rather than the
// whole run.
const stepTimeout = 3 * time.Minute

// run runs browser actions, failing the test with what was being done.
func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	start := time.Now()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Logf("%s took %s", what, d.Round(time.Second))
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// poll waits until the JavaScript expression is true. Errors count as
// false, so that it can wait across a navigation (a form's submission),
// whose old page goes away while it is being asked.
func poll(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		var last error
		for {
			ok, err := chromedp.Evaluate[bool]("!!("+expr+")")(ctx, tg)
			if err == nil && ok {
				return nil
			}
			if err != nil {
				last = err
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("wait for %s: %w (last error: %v)", expr, ctx.Err(), last)
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
}

// overview waits for the overview page.
func overview() chromedp.Action[chromedp.Void] {
	return poll(`document.querySelector("h1") && document.querySelector("h1").textContent === "Overview"`)
}

// shots returns the directory screenshots go to.
func shots(t *testing.T) string {
	if d := os.Getenv("SPOOL_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// screenshot saves the viewport as a PNG at a desktop and a phone size.
func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	for _, size := range []struct {
		suffix string
		w, h   int64
	}{{"", 1280, 860}, {"-phone", 390, 844}} {
		run(t, ctx, "resize for "+name, chromedp.EmulateViewport(size.w, size.h))
		sctx, cancel := context.WithTimeout(ctx, stepTimeout)
		png, err := chromedp.Run(sctx, chromedp.CaptureScreenshot())
		cancel()
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		p := filepath.Join(dir, name+size.suffix+".png")
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot %s (%d KB)", p, len(png)/1024)
	}
	run(t, ctx, "reset viewport", chromedp.EmulateViewport(1280, 900))
}

// TestBrowserDashboard is the first and third acceptance: log in,
// create an image task through the form and watch it reach completed in
// the list without a reload, see its output image on its page, cancel a
// running task from its page, page through 45 tasks; with screenshots.
func TestBrowserDashboard(t *testing.T) {
	bctx := browser(t)
	v := newEnv(t, nil)
	dir := shots(t)
	base := v.srv.URL

	// Log in: the overview redirects to the form, which comes back.
	run(t, bctx, "log in",
		chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), testToken),
		chromedp.Submit(chromedp.ID("token")),
		overview(),
	)

	// The list, in its own tab, must get the new task live.
	list, cancelList := chromedp.NewContext(bctx)
	defer cancelList()
	// A tab lives as long as the context of its first call: no deadline.
	if err := chromedp.Do(list); err != nil {
		t.Fatal(err)
	}
	run(t, list, "open the list",
		chromedp.Navigate(base+"/ui/tasks"),
		chromedp.WaitVisible(chromedp.ID("tasks")),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](`window.notReloaded = true`)(ctx, tg)
			return err
		}),
		poll(`document.getElementById("live-state").textContent.startsWith("Live:")`),
	)

	img := filepath.Join(t.TempDir(), "photo.png")
	if err := os.WriteFile(img, pngBytes(t, 64, 48), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, bctx, "create an image task through the form",
		chromedp.Navigate(base+"/ui/new"),
		chromedp.WaitVisible(chromedp.ID("kind")),
		chromedp.SetValue(chromedp.ID("kind"), "image"),
		poll(`document.getElementById("kind").dispatchEvent(new Event("change"))`),
		chromedp.WaitVisible(chromedp.CSS(`[id="opt.image.width"]`)),
		chromedp.SendKeys(chromedp.CSS(`[id="opt.image.width"]`), "40"),
		chromedp.SetValue(chromedp.CSS(`[id="opt.image.format"]`), "png"),
		chromedp.SendKeys(chromedp.ID("ref"), "browser"),
		chromedp.SetUploadFiles(chromedp.ID("file"), []string{img}),
		chromedp.Click(chromedp.ID("create")),
		chromedp.WaitVisible(chromedp.ID("task")),
	)
	id := eval[string](t, bctx, `document.getElementById("task").dataset.id`)
	if !strings.HasPrefix(id, "task_") {
		t.Fatalf("task page for %q", id)
	}

	run(t, list, "watch the task reach completed in the list",
		poll(`(() => { const r = document.getElementById("row-`+id+`"); return !!r && r.querySelector(".status").dataset.status === "completed"; })()`),
	)
	if !eval[bool](t, list, `window.notReloaded === true`) {
		t.Fatal("the list reloaded")
	}

	// The output image has loaded at the output File's width.
	files, err := v.e.ListFiles(context.Background(), &spool.FileListParams{TaskID: id})
	if err != nil || len(files) != 1 {
		t.Fatalf("output files %v, %v", files, err)
	}
	want := files[0].Width
	if want != 40 {
		t.Fatalf("output width %d, want 40", want)
	}
	run(t, bctx, "see the output image",
		poll(`(() => { const i = document.querySelector('img[data-role="output"]'); return !!i && i.complete && i.naturalWidth > 0; })()`))
	natural := eval[int](t, bctx, `document.querySelector('img[data-role="output"]').naturalWidth`)
	if natural != want {
		t.Fatalf("output image naturalWidth %d, want %d", natural, want)
	}
	run(t, bctx, "reload the task page for its screenshot", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("task")),
		poll(`(() => { const i = document.querySelector('img[data-role="output"]'); return !!i && i.complete && i.naturalWidth > 0; })()`))
	screenshot(t, bctx, dir, "task")

	// Cancel a running task from its page.
	slow := v.create(spool.Request{Kind: "slow", Ref: "slow"})
	run(t, bctx, "cancel a running task",
		chromedp.Navigate(base+"/ui/tasks/"+slow.ID),
		poll(`document.querySelector("#sec-summary .status").dataset.status === "processing"`),
		chromedp.Click(chromedp.ID("cancel")),
		poll(`document.querySelector("#sec-summary .status").dataset.status === "cancelled"`),
	)
	if got := v.wait(slow.ID); got.Status != spool.StatusCancelled {
		t.Fatalf("the slow task is %s, want cancelled", got.Status)
	}

	// Page through 45 tasks.
	reqs := make([]spool.Request, 45)
	for i := range reqs {
		reqs[i] = spool.Request{Kind: "echo", Ref: "page", Options: map[string]any{"n": i}}
	}
	made, err := v.e.CreateMany(context.Background(), reqs)
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	run(t, bctx, "open the first page", chromedp.Navigate(base+"/ui/tasks?ref=page"), chromedp.WaitVisible(chromedp.ID("tasks")))
	for page := 1; ; page++ {
		ids := eval[[]string](t, bctx, `Array.from(document.querySelectorAll("#tasks tbody tr")).map(r => r.dataset.id)`)
		more := eval[bool](t, bctx, `!!document.getElementById("next-page")`)
		seen = append(seen, ids...)
		if page < 3 && len(ids) != 20 || page == 3 && len(ids) != 5 {
			t.Fatalf("page %d has %d tasks", page, len(ids))
		}
		if page == 1 {
			screenshot(t, bctx, dir, "list")
		}
		if !more {
			break
		}
		if page > 3 {
			t.Fatal("more than 3 pages of 45 tasks")
		}
		run(t, bctx, "go to page "+strconv.Itoa(page+1),
			// A script's click: a mouse click lands wherever the
			// link is drawn, which a phone-sized layout moves.
			poll(`(document.getElementById("next-page").click(), true)`),
			poll(`!document.getElementById("row-`+ids[0]+`") && !!document.getElementById("tasks")`))
	}
	var want45 []string
	for _, task := range made {
		want45 = append(want45, task.ID)
	}
	slices.Sort(seen)
	slices.Sort(want45)
	if !slices.Equal(seen, want45) {
		t.Fatalf("paged through %d tasks, want the 45 made", len(seen))
	}

	for _, task := range made {
		v.wait(task.ID)
	}
	run(t, bctx, "open the overview", chromedp.Navigate(base+"/ui/"))
	run(t, bctx, "see the overview", overview(),
		poll(`document.getElementById("live-state").textContent.startsWith("Live:")`))
	// The overview follows the engine too.
	running := v.create(spool.Request{Kind: "slow", Ref: "overview"})
	run(t, bctx, "see the overview count a running task", poll(`document.getElementById("running").textContent === "1"`))
	if _, err := v.e.Cancel(context.Background(), running.ID); err != nil {
		t.Fatal(err)
	}
	run(t, bctx, "see the overview count it no more", poll(`document.getElementById("running").textContent === "0"`))
	screenshot(t, bctx, dir, "overview")
}

// TestBrowserWorkflow is the second acceptance: a workflow's page,
// opened while it runs, shows its tree with each step's final status.
func TestBrowserWorkflow(t *testing.T) {
	bctx := browser(t)
	v := newEnv(t, nil)
	run(t, bctx, "log in",
		chromedp.Navigate(v.srv.URL+"/ui/login"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), testToken),
		chromedp.Submit(chromedp.ID("token")),
		overview(),
	)
	in := v.upload(50, 40)
	wf := v.create(spool.Request{Kind: "workflow", FileID: in.ID, Workflow: []spool.Step{
		{Kind: "image", Ref: "small", Options: map[string]any{"width": 20, "format": "png"},
			Next: []spool.Step{{Kind: "echo", Ref: "after-small"}}},
		{Kind: "conditions", Ref: "is-big", Options: map[string]any{"conditions": []any{
			map[string]any{"prop": "width", "operator": "gt", "value": 1000}}},
			Next: []spool.Step{{Kind: "echo", Ref: "when-big"}}},
		{Kind: "slow", Ref: "stuck"},
	}})
	run(t, bctx, "open the workflow", chromedp.Navigate(v.srv.URL+"/ui/tasks/"+wf.ID), chromedp.WaitVisible(chromedp.ID("sec-tree")))
	// The slow step runs until cancelled: cancel it once the page shows
	// it processing, so that the workflow ends.
	step := func(path string) string {
		return `document.querySelector('li[data-step="` + path + `"] > .status').dataset.status`
	}
	run(t, bctx, "see the slow step running", poll(step("workflow[2]")+` === "processing"`))
	fresh, err := v.e.Get(context.Background(), wf.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range fresh.Workflow {
		if s.Ref == "stuck" {
			if _, err := v.e.Cancel(context.Background(), s.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := map[string]string{
		"workflow[0]": "completed", "workflow[0].next[0]": "completed",
		"workflow[1]": "completed", "workflow[1].next[0]": "skipped",
		"workflow[2]": "cancelled",
	}
	for path, status := range want {
		run(t, bctx, fmt.Sprintf("see %s %s", path, status), poll(step(path)+` === "`+status+`"`))
	}
	final := v.wait(wf.ID)
	run(t, bctx, "see the workflow's own status", poll(`document.querySelector("#sec-summary .status").dataset.status === "`+string(final.Status)+`"`))
	cond := eval[string](t, bctx, `document.querySelector('li[data-step="workflow[1]"] .condlist').textContent`)
	if !strings.Contains(cond, "✗ width gt 1000") {
		t.Errorf("condition shown as %q", cond)
	}
	dir := shots(t)
	screenshot(t, bctx, dir, "workflow")
	if os.Getenv("SPOOL_UPDATE_DOCS") != "" {
		b, err := os.ReadFile(filepath.Join(dir, "workflow.png"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("..", "docs", "dashboard.png"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
