package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/api"
)

// apiBody is the create body of the api workload: the seed's example
// shape, with a url input so that no file has to exist.
var apiBody = []byte(`{"url": "https://example.com/in.png", "kind": "noop", "width": 320, "format": "png", "ref": "thumbnail"}`)

const apiToken = "bench-token"

// serveAPI serves e's API on a loopback port, with request logging as
// JSON to nowhere (the formatting is paid, as in production).
func serveAPI(e *spool.Engine) (base string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	h := api.NewHandler(e, &api.Options{Tokens: []api.Token{{Name: "bench", Secret: apiToken}},
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	srv := api.NewServer(ln.Addr().String(), h)
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

// serveBare serves POST /tasks with a bare net/http handler.
func serveBare(e *spool.Engine) (base string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		var req spool.Request
		if err == nil {
			err = json.Unmarshal(b, &req)
		}
		var t *spool.Task
		if err == nil {
			t, err = e.Create(r.Context(), req)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		out, _ := json.Marshal(t)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		w.Write(out)
	})}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

func apiClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
}

// apiCall sends one request and reads the answer, checking its status.
func apiCall(c *http.Client, method, url string, body []byte, want int) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+apiToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err == nil && res.StatusCode != want {
		err = fmt.Errorf("%s %s: %d %s", method, url, res.StatusCode, b)
	}
	return b, err
}

// parallel runs n calls of fn spread over g goroutines and returns the
// calls per second and the latencies' p50 and p99.
func parallel(n, g int, fn func(i int) error) (rate, p50, p99 float64, err error) {
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	start := time.Now()
	for w := range g {
		wg.Go(func() {
			for i := w; i < n; i += g {
				t0 := time.Now()
				if err := fn(i); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	if err, _ := firstErr.Load().(error); err != nil {
		return 0, 0, 0, err
	}
	p50, p99 = percentiles(lat)
	return float64(n) / el.Seconds(), p50, p99, nil
}

// runAPI measures POST /tasks and GET /tasks/{id} over loopback with 1 and
// 8 clients, beside in-process Create (decoding the same JSON body) and
// Get from as many goroutines.
func runAPI(o options) (*result, error) {
	e, err := open(o, "api", spool.Config{})
	if err != nil {
		return nil, err
	}
	defer closeAll(e)
	base, stop, err := serveAPI(e)
	if err != nil {
		return nil, err
	}
	defer stop()
	// A bare net/http handler around Create, for the cost of the api
	// package itself: decode, Create, encode, nothing else.
	bare, stopBare, err := serveBare(e)
	if err != nil {
		return nil, err
	}
	defer stopBare()
	c := apiClient()
	fig := map[string]float64{}
	var ids []string
	var mu sync.Mutex
	for _, g := range []int{1, 8} {
		inproc := func(int) error {
			var req spool.Request
			if err := json.Unmarshal(apiBody, &req); err != nil {
				return err
			}
			t, err := e.Create(ctx, req)
			if err == nil {
				mu.Lock()
				ids = append(ids, t.ID)
				mu.Unlock()
			}
			return err
		}
		overHTTP := func(int) error {
			_, err := apiCall(c, "POST", base+"/tasks", apiBody, http.StatusCreated)
			return err
		}
		overBare := func(int) error {
			_, err := apiCall(c, "POST", bare+"/tasks", apiBody, http.StatusCreated)
			return err
		}
		// Alternate the sides twice, keeping the better run of each: the
		// machine is shared and noisy.
		for _, side := range []struct {
			name string
			fn   func(int) error
		}{{"create", inproc}, {"post", overHTTP}, {"barepost", overBare}, {"create", inproc}, {"post", overHTTP}, {"barepost", overBare}} {
			rate, p50, _, err := parallel(o.N, g, side.fn)
			if err != nil {
				return nil, err
			}
			k := fmt.Sprintf("%s%d", side.name, g)
			if rate > fig[k+"/s"] {
				fig[k+"/s"], fig[k+"_p50"] = rate, p50
			}
		}
		for _, side := range []struct {
			name string
			fn   func(int) error
		}{{"get", func(int) error {
			_, err := e.Get(ctx, ids[rand.IntN(len(ids))])
			return err
		}}, {"httpget", func(int) error {
			_, err := apiCall(c, "GET", base+"/tasks/"+ids[rand.IntN(len(ids))], nil, http.StatusOK)
			return err
		}}} {
			rate, p50, _, err := parallel(o.N, g, side.fn)
			if err != nil {
				return nil, err
			}
			fig[fmt.Sprintf("%s%d/s", side.name, g)], fig[fmt.Sprintf("%s%d_p50", side.name, g)] = rate, p50
		}
	}
	fig["post8/create8"] = fig["post8/s"] / fig["create8/s"]
	fig["barepost8/create8"] = fig["barepost8/s"] / fig["create8/s"]
	return &result{N: o.N, Figures: fig, Note: "post8/create8 = POST /tasks with 8 clients over in-process Create from 8 goroutines, both decoding the same JSON"}, nil
}

// runAPIList measures GET /tasks through the API with o.ScaleRows tasks
// stored: the first page and an after cursor deep in the table, for each
// filter and some combinations.
func runAPIList(o options) (*result, error) {
	path := filepath.Join(o.Dir, "apilist.db")
	store, err := spool.OpenSQLite(ctx, path, &spool.SQLiteOptions{Synchronous: o.Sync})
	if err != nil {
		return nil, err
	}
	e, err := spool.Open(ctx, spool.Config{Store: store})
	if err != nil {
		return nil, err
	}
	e.Register("noop", spool.HandlerFunc(noop))
	e.Register("rare", spool.HandlerFunc(noop))
	// 100 refs of 1% each, 10 folders of 10% each, one task in 1,000 of
	// kind rare.
	reqs := make([]spool.Request, 1000)
	for done := 0; done < o.ScaleRows; done += len(reqs) {
		for i := range reqs {
			n := done + i
			reqs[i] = spool.Request{Kind: "noop", Ref: fmt.Sprint("r", n%100), Folder: fmt.Sprint("f", n%10)}
			if n%1000 == 999 {
				reqs[i].Kind = "rare"
			}
		}
		if _, err := e.CreateMany(ctx, reqs[:min(len(reqs), o.ScaleRows-done)]); err != nil {
			return nil, err
		}
	}
	e.Close(ctx)
	store.Close()
	// Statuses and workflow parents in bulk behind spool's back, as the
	// scale workload does: most completed, 1/32 failed, 1/1024 pending,
	// 1/1024 the steps of one workflow.
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		return nil, err
	}
	var parent, newest string
	if err := db.QueryRow(`SELECT max(id) FROM tasks`).Scan(&newest); err != nil {
		return nil, err
	}
	for _, q := range []string{
		`UPDATE tasks SET status = 'completed', progress = 100, due = NULL, attempt = 1`,
		`UPDATE tasks SET status = 'failed', error = 'x' WHERE substr(id, -1) = 'Z'`,
		`UPDATE tasks SET status = 'pending', progress = 0 WHERE substr(id, -2) = 'Y0'`,
		`SELECT id FROM tasks ORDER BY id LIMIT 1`,
		`UPDATE tasks SET parent_id = ? WHERE substr(id, -2) = 'X1'`,
	} {
		if strings.HasPrefix(q, "SELECT") {
			if err := db.QueryRow(q).Scan(&parent); err != nil {
				return nil, err
			}
			continue
		}
		var args []any
		if strings.Contains(q, "?") {
			args = []any{parent}
		}
		if _, err := db.Exec(q, args...); err != nil {
			return nil, fmt.Errorf("%s: %w", q, err)
		}
	}
	db.Close()

	store, err = spool.OpenSQLite(ctx, path, &spool.SQLiteOptions{Synchronous: o.Sync})
	if err != nil {
		return nil, err
	}
	defer store.Close()
	e, err = spool.Open(ctx, spool.Config{Store: store})
	if err != nil {
		return nil, err
	}
	defer e.Close(ctx)
	base, stop, err := serveAPI(e)
	if err != nil {
		return nil, err
	}
	defer stop()
	c := apiClient()
	filters := []string{"", "status=completed", "status=failed", "status=pending", "kind=noop", "kind=rare",
		"ref=r7", "folder=f3", "parent_id=" + parent, "kind=rare&status=failed", "ref=r7&status=failed",
		"folder=f9&kind=rare", "ref=r7&folder=f7&status=completed"}
	fig := map[string]float64{}
	var worst []string
	for _, f := range filters {
		first := base + "/tasks?limit=20&" + f
		b, err := apiCall(c, "GET", first, nil, http.StatusOK)
		if err != nil {
			return nil, err
		}
		// A cursor in the middle of the filter's matches: the id of the
		// last task of a page 1/3 deep (page=N itself is an OFFSET).
		var page []struct{ ID string }
		if err := json.Unmarshal(b, &page); err != nil {
			return nil, fmt.Errorf("GET %s: %v", first, err)
		}
		cursor := newest // a filter without matches: a cursor at the top
		if len(page) > 0 {
			cursor = page[len(page)-1].ID
		}
		for range 20 {
			b, err := apiCall(c, "GET", base+"/tasks?limit=100&"+f+"&after="+cursor, nil, http.StatusOK)
			if err != nil {
				return nil, err
			}
			page = page[:0]
			if json.Unmarshal(b, &page) != nil || len(page) < 100 {
				break
			}
			cursor = page[len(page)-1].ID
		}
		name := f
		if name == "" {
			name = "none"
		}
		name = strings.ReplaceAll(strings.ReplaceAll(name, "parent_id="+parent, "parent_id"), "&", "+")
		for _, side := range []struct{ key, url string }{{"first", first}, {"after", first + "&after=" + cursor}} {
			_, p50, p99, err := parallel(200, 1, func(int) error {
				_, err := apiCall(c, "GET", side.url, nil, http.StatusOK)
				return err
			})
			if err != nil {
				return nil, err
			}
			fig[name+"."+side.key+"_p50"], fig[name+"."+side.key+"_p99"] = p50, p99
			if p99 > float64(5*time.Millisecond) {
				worst = append(worst, name+"."+side.key)
			}
		}
	}
	note := fmt.Sprintf("%d tasks: 100 refs, 10 folders, 1/1000 kind rare, 1/32 failed, 1/1024 pending, 1/1024 steps of one workflow; GET /tasks?limit=20 over loopback", o.ScaleRows)
	if len(worst) > 0 {
		note += "; over 5ms at p99: " + strings.Join(worst, ", ")
	}
	return &result{N: o.ScaleRows, Figures: fig, Note: note}, nil
}

// extraFigures lists a result's figures that format does not print
// itself, sorted, for the api workloads' many.
func extraFigures(r *result, known []string) []string {
	var ks []string
	for k := range r.Figures {
		if !contains(known, k) {
			ks = append(ks, k)
		}
	}
	sort.Strings(ks)
	return ks
}
