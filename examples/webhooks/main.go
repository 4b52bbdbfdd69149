// Command webhooks runs a task with a webhook_url pointing at a receiver in
// the same program. The receiver verifies each delivery's Standard Webhooks
// signature with webhook.Verify and prints it; the program ends once the
// task's task.completed notification has arrived. Nothing leaves loopback.
//
//	go run ./examples/webhooks
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/webhook"
)

func main() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "spool-webhooks")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// The engine and the receiver share one secret. Keep yours out of the
	// code: webhook.NewSecret makes one, Encode gives its text.
	secret, err := webhook.NewSecret()
	if err != nil {
		log.Fatal(err)
	}

	// The receiver: verify, then print. A receiver that answers 2xx has
	// taken the delivery; anything else is retried later.
	completed := make(chan struct{})
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "read error", http.StatusBadRequest)
			return
		}
		if err := webhook.Verify(r.Header, body, nil, secret); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var msg struct {
			Type string     `json:"type"`
			Data spool.Task `json:"data"`
		}
		if err := json.Unmarshal(body, &msg); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Printf("verified %-15s status=%-10s output=%s\n", msg.Type, msg.Data.Status, msg.Data.Output)
		w.WriteHeader(http.StatusNoContent)
		if msg.Type == "task.completed" {
			close(completed)
		}
	}))
	defer receiver.Close()

	engine, err := spool.Open(ctx, spool.Config{
		Path: filepath.Join(dir, "spool.db"),
		// The receiver is on loopback, which the engine refuses by
		// default: webhook endpoints must be public addresses unless
		// allowed, so that a webhook_url cannot reach into your network.
		AllowPrivateNetworks: true,
		Webhooks:             spool.WebhookConfig{Secrets: []string{secret.Encode()}},
	})
	if err != nil {
		log.Fatal(err)
	}
	engine.Register("greet", spool.HandlerFunc(func(ctx context.Context, job *spool.Job) error {
		name, _ := job.Task.Options["name"].(string)
		return job.SetOutput(map[string]string{"greeting": "hello, " + name})
	}))
	if err := engine.Start(ctx); err != nil {
		log.Fatal(err)
	}

	task, err := engine.Create(ctx, spool.Request{
		Kind:       "greet",
		WebhookURL: receiver.URL + "/hooks/spool",
		Options:    map[string]any{"name": "webhooks"},
	})
	if err != nil {
		log.Fatal(err)
	}
	select {
	case <-completed:
	case <-time.After(30 * time.Second):
		log.Fatal("no task.completed notification within 30s")
	}

	// Every attempt is recorded with the engine, once the receiver's
	// answer is in.
	var ds []*spool.Delivery
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if ds, err = engine.Deliveries(ctx, task.ID); err != nil {
			log.Fatal(err)
		}
		if len(ds) == 3 && ds[2].State != spool.DeliveryPending || time.Now().After(deadline) {
			break
		}
	}
	for _, d := range ds {
		fmt.Printf("delivery %-15s %-9s attempts=%d\n", d.Type, d.State, len(d.Attempts))
	}
	if err := engine.Close(ctx); err != nil {
		log.Fatal(err)
	}
}
