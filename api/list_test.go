package api_test

import (
	"context"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spoolrun/spool"
)

var linkRE = regexp.MustCompile(`<([^>]+)>; rel="(\w+)"`)

// links parses a Link header into rel → path and query.
func links(t *testing.T, h string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range linkRE.FindAllStringSubmatch(h, -1) {
		u, err := url.Parse(m[1])
		if err != nil {
			t.Fatal(err)
		}
		out[m[2]] = u.RequestURI()
	}
	return out
}

// TestListPages is acceptance 3: 45 tasks in pages of 20, 20 and 5 with
// their Link headers, after cursors, and combined filters.
func TestListPages(t *testing.T) {
	v := newEnv(t, nil)
	ctx := context.Background()
	var ids []string                   // newest first
	later := time.Now().Add(time.Hour) // waiting: none runs meanwhile
	for i := range 45 {
		req := spool.Request{Kind: "echo", RunAt: later, Ref: "b"}
		if i%3 == 0 {
			req.Kind = "hold"
		}
		if i%2 == 0 {
			req.Ref = "a"
		}
		task, err := v.e.Create(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		ids = append([]string{task.ID}, ids...)
	}
	get := func(path string) ([]string, map[string]string) {
		t.Helper()
		res, b := v.do("GET", path, nil)
		if res.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, res.StatusCode, b)
		}
		var got []string
		for _, task := range decode[[]map[string]any](t, b) {
			got = append(got, task["id"].(string))
		}
		return got, links(t, res.Header.Get("Link"))
	}
	want := map[int]map[string]string{
		1: {"self": "page=1", "first": "page=1", "next": "page=2", "last": "page=3"},
		2: {"self": "page=2", "first": "page=1", "prev": "page=1", "next": "page=3", "last": "page=3"},
		3: {"self": "page=3", "first": "page=1", "prev": "page=2", "last": "page=3"},
	}
	var all []string
	for p := 1; p <= 3; p++ {
		got, ls := get("/tasks?limit=20&page=" + strconv.Itoa(p))
		if n := []int{20, 20, 5}[p-1]; len(got) != n {
			t.Fatalf("page %d has %d tasks, want %d", p, len(got), n)
		}
		if len(ls) != len(want[p]) {
			t.Errorf("page %d links %v, want %v", p, ls, want[p])
		}
		for rel, q := range want[p] {
			if ls[rel] != "/tasks?limit=20&"+q {
				t.Errorf("page %d: %s link %q, want ?limit=20&%s", p, rel, ls[rel], q)
			}
		}
		all = append(all, got...)
	}
	if !slices.Equal(all, ids) {
		t.Fatalf("pages do not list the 45 tasks newest first")
	}
	if got, ls := get("/tasks?limit=20&page=4"); len(got) != 0 || ls["prev"] != "/tasks?limit=20&page=3" {
		t.Errorf("page past the end: %v, links %v", got, ls)
	}
	if got, _ := get("/tasks"); len(got) != 20 || got[0] != ids[0] {
		t.Errorf("default page: %d tasks", len(got))
	}

	// after cursors: follow next links from the first page.
	var walked []string
	path := "/tasks?limit=20&after=" + ids[0]
	walked = append(walked, ids[0])
	for path != "" {
		got, ls := get(path)
		walked = append(walked, got...)
		path = ls["next"]
		if path != "" && !strings.Contains(path, "after=") {
			t.Fatalf("a cursor page's next link has no cursor: %s", path)
		}
	}
	if !slices.Equal(walked, ids) {
		t.Fatalf("after cursors walked %d tasks, want the 45 in order", len(walked))
	}

	// Filters combine, in pages and with cursors.
	var echoA []string
	for i := 44; i >= 0; i-- {
		if i%3 != 0 && i%2 == 0 {
			echoA = append(echoA, ids[44-i])
		}
	}
	got, ls := get("/tasks?kind=echo&ref=a&limit=10")
	if !slices.Equal(got, echoA[:10]) {
		t.Fatalf("kind=echo&ref=a gave %v, want %v", got, echoA[:10])
	}
	// A ref filter is not counted (it would read every match): no last.
	if _, hasLast := ls["last"]; ls["next"] != "/tasks?kind=echo&limit=10&page=2&ref=a" || hasLast {
		t.Errorf("filtered links %v", ls)
	}
	if _, ls := get("/tasks?kind=echo&status=waiting&limit=10"); ls["last"] != "/tasks?kind=echo&limit=10&page=3&status=waiting" {
		t.Errorf("kind and status links %v, want last page 3 of 30 tasks", ls)
	}
	rest, _ := get("/tasks?kind=echo&ref=a&limit=10&after=" + got[len(got)-1])
	if !slices.Equal(rest, echoA[10:]) {
		t.Errorf("filtered cursor gave %v, want %v", rest, echoA[10:])
	}
	if got, _ := get("/tasks?kind=hold&status=waiting&ref=b&limit=100"); len(got) != 7 {
		t.Errorf("kind=hold&status=waiting&ref=b: %d tasks, want 7", len(got))
	}
	if got, _ := get("/tasks?status=completed"); len(got) != 0 {
		t.Errorf("status=completed: %d tasks", len(got))
	}
}
