package spool_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/webhook"
)

// Tasks with a webhook_url have each status change POSTed there, signed
// with the engine's secrets; the receiver checks it with webhook.Verify.
func ExampleWebhookConfig() {
	ctx := context.Background()
	secret, _ := webhook.NewSecret()
	got := make(chan string, 10)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify(r.Header, body, nil, secret); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var msg struct {
			Type string     `json:"type"`
			Data spool.Task `json:"data"`
		}
		json.Unmarshal(body, &msg)
		got <- msg.Type + " " + string(msg.Data.Status)
	}))
	defer receiver.Close()

	engine, err := spool.Open(ctx, spool.Config{
		Path:                 ":memory:",
		AllowPrivateNetworks: true, // the receiver is on loopback
		Webhooks:             spool.WebhookConfig{Secrets: []string{secret.Encode()}},
	})
	if err != nil {
		panic(err)
	}
	defer engine.Close(ctx)
	engine.Register("noop", spool.HandlerFunc(func(context.Context, *spool.Job) error { return nil }))
	if err := engine.Start(ctx); err != nil {
		panic(err)
	}
	if _, err := engine.Create(ctx, spool.Request{Kind: "noop", WebhookURL: receiver.URL}); err != nil {
		panic(err)
	}
	for range 3 {
		select {
		case b := <-got:
			fmt.Println(b)
		case <-time.After(30 * time.Second):
			fmt.Println("timed out")
			return
		}
	}
	// Output:
	// task.created pending
	// task.processing processing
	// task.completed completed
}
