package api_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/api"
)

// Example mounts the API in a program's own mux with one line and creates
// a task over HTTP as a client of the hosted API would.
func Example() {
	ctx := context.Background()
	engine, err := spool.Open(ctx, spool.Config{Path: ":memory:"})
	if err != nil {
		log.Fatal(err)
	}
	defer engine.Close(ctx)
	engine.Register("greet", spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
		return job.SetOutput(map[string]any{"greeting": "hello"})
	}))
	if err := engine.Start(ctx); err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.Handle("/", api.NewHandler(engine, &api.Options{
		Tokens: []api.Token{{Name: "web", Secret: "secret-1"}},
		Logger: slog.New(slog.DiscardHandler),
	}))
	srv := httptest.NewServer(mux) // in production: api.NewServer(addr, mux).ListenAndServe()
	defer srv.Close()

	req, _ := http.NewRequest("POST", srv.URL+"/tasks", strings.NewReader(`{"kind": "greet", "ref": "hi"}`))
	req.Header.Set("Authorization", "Bearer secret-1")
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	fmt.Println(res.StatusCode, strings.HasPrefix(res.Header.Get("Location"), srv.URL+"/tasks/task_"))
	// Output: 201 true
}
