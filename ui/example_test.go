package ui_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/api"
	"github.com/spoolrun/spool/ui"
)

// Example serves the dashboard at /ui/ beside the API, with the same
// tokens: a browser that is not logged in is sent to the login form.
func Example() {
	ctx := context.Background()
	engine, err := spool.Open(ctx, spool.Config{Path: ":memory:"})
	if err != nil {
		log.Fatal(err)
	}
	defer engine.Close(ctx)
	if err := engine.Start(ctx); err != nil {
		log.Fatal(err)
	}

	tokens := []api.Token{{Name: "web", Secret: "secret-1"}}
	quiet := slog.New(slog.DiscardHandler)
	mux := http.NewServeMux()
	mux.Handle("/ui/", ui.NewHandler(engine, &ui.Options{Tokens: tokens, Logger: quiet}))
	mux.Handle("/", api.NewHandler(engine, &api.Options{Tokens: tokens, Logger: quiet}))
	srv := httptest.NewServer(mux) // in production: api.NewServer(addr, mux).ListenAndServe()
	defer srv.Close()

	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Get(srv.URL + "/ui/tasks")
	if err != nil {
		log.Fatal(err)
	}
	res.Body.Close()
	fmt.Println(res.StatusCode, res.Header.Get("Location"))
	// Output: 303 /ui/login?next=%2Fui%2Ftasks
}
