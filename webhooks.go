package spool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spoolrun/spool/internal/safehttp"
	"github.com/spoolrun/spool/webhook"
)

// WebhookConfig configures the webhook notifications of task events: each
// event of a task with a webhook_url (or, without one, of every task when
// URL is set) is POSTed there, signed per the Standard Webhooks
// specification, retried on failure, in event order per task.
type WebhookConfig struct {
	// Secrets sign every delivery ("whsec_" and base64, as
	// webhook.NewSecret makes them); all of them sign, so that a secret can
	// be rotated: add the new one, move the receivers to it, drop the old.
	// Open refuses a malformed secret, without echoing it. Defaults to
	// none, and then this engine sends no webhooks: a task's webhook_url is
	// stored, for an engine that has secrets.
	//
	// An engine with secrets reads events under the stored cursor
	// "webhooks", which its first Open stores at the newest event (earlier
	// events are not notified), so events are not pruned before they are
	// dispatched. If no engine will send
	// webhooks on this database any more, remove the cursor with
	// Store().DeleteCursor("webhooks").
	Secrets []string
	// Schedule is the wait before each retry of a failed attempt; its
	// length is the number of retries. Each wait varies by ±20%, so that
	// deliveries that failed together do not retry together. Defaults
	// (nil) to DefaultWebhookSchedule: 5s, 5m, 30m, 2h, 5h, 10h, 14h, 20h,
	// 24h after the first attempt, which is immediate. An empty, non-nil
	// Schedule makes one attempt only.
	Schedule []time.Duration
	// URL is the endpoint for the events of tasks that have no webhook_url.
	// It needs Secrets, and obeys AllowPrivateNetworks and AllowNetworks as
	// a webhook_url does. Defaults to none: only tasks with a webhook_url
	// are notified.
	URL string
	// Timeout bounds one attempt, from connecting to reading the
	// response. Defaults to 15s.
	Timeout time.Duration
	// Concurrency is the most attempts this engine makes at once. An
	// attempt mostly waits on the network, so this is well above the CPU
	// count. While tasks wait for this engine's workers (all are taken),
	// webhooks yield to them: a quarter of Concurrency at once, at least
	// one. Defaults to 32.
	Concurrency int
	// Progress sends task.progress events too. They are coalesced: a
	// progress event followed by a later event of its task among those
	// read together is not sent, and Config.ProgressInterval spaces them
	// out in the first place. Defaults to false.
	Progress bool
	// Bare sends the task JSON alone as the body, as the hosted service
	// does, instead of the Standard Webhooks envelope {"type", "timestamp",
	// "data"}. Defaults to false: the envelope.
	Bare bool
	// MaxRetryAfter caps how long a receiver's Retry-After header may
	// postpone the next attempt beyond the Schedule's wait (the longer of
	// the two is waited). Defaults to 24h.
	MaxRetryAfter time.Duration
	// Retention is how long a delivery that ended (delivered, failed or
	// disabled) is kept, with its attempts, for Engine.Deliveries. Defaults
	// to 24h. Pending deliveries are kept however old.
	Retention time.Duration
}

// DefaultWebhookSchedule returns the default waits before the retries of a
// webhook delivery: 5s, 5m, 30m, 2h, 5h, 10h, 14h, 20h, 24h.
func DefaultWebhookSchedule() []time.Duration {
	return []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour,
		5 * time.Hour, 10 * time.Hour, 14 * time.Hour, 20 * time.Hour, 24 * time.Hour}
}

func (w WebhookConfig) withDefaults() WebhookConfig {
	w.Secrets = slices.Clone(w.Secrets)
	if w.Schedule == nil {
		w.Schedule = DefaultWebhookSchedule()
	} else {
		w.Schedule = slices.Clone(w.Schedule)
	}
	if w.Timeout <= 0 {
		w.Timeout = webhook.DefaultTimeout
	}
	if w.Concurrency <= 0 {
		w.Concurrency = 32
	}
	if w.MaxRetryAfter <= 0 {
		w.MaxRetryAfter = 24 * time.Hour
	}
	if w.Retention <= 0 {
		w.Retention = 24 * time.Hour
	}
	return w
}

// validate checks the secrets (an error names a secret's position, never
// its text), the default URL against the engine's URL policy, and the
// schedule.
func (w *WebhookConfig) validate(c *Config) error {
	if _, err := webhook.ParseSecrets(w.Secrets); err != nil {
		return invalid("Config.Webhooks.Secrets", "%v", err)
	}
	if w.URL != "" {
		if len(w.Secrets) == 0 {
			return invalid("Config.Webhooks.URL", "needs Config.Webhooks.Secrets to sign deliveries with")
		}
		policy := urlPolicy{allowPrivate: c.AllowPrivateNetworks, allow: c.AllowNetworks}
		if err := policy.checkURL("Config.Webhooks.URL", w.URL, false); err != nil {
			return err
		}
	}
	for i, d := range w.Schedule {
		if d < 0 {
			return invalid("Config.Webhooks.Schedule", "step %d is negative (%s)", i, d)
		}
	}
	return nil
}

// webhookCursor names the stored cursor under which events become
// deliveries.
const webhookCursor = "webhooks"

// webhooks is a started engine's webhook machinery.
//
// Why a cursor over the events table and not a trigger that writes a
// delivery with each event: the event is already written in the change's
// transaction and kept until every stored cursor has passed it, so it is
// the durable record of the delivery to come, and the cursor's row is
// moved in the transaction that stores the deliveries made from it. A
// crash at any point loses nothing and repeats nothing (deliveries are
// keyed by event). The hot path of an engine without webhooks pays
// nothing, where a trigger would look up the task of every event; and the
// engine's default URL, which a trigger cannot know, is applied here.
type webhooks struct {
	sender *webhook.Sender
	wake   signal   // deliveries were added, or a sender slot freed
	gone   sync.Map // URL -> when it answered 410 here
	// busy is set while the sender has more due deliveries than it can
	// start: its last claim got all it asked for. The dispatcher then
	// waits for hungry, the sender's next claim that comes back short,
	// before it makes more deliveries (see dispatchLoop).
	busy   atomic.Bool
	hungry signal
}

// newWebhooks returns the machinery, or nil when the engine has no secrets.
func (e *Engine) newWebhooks() *webhooks {
	secrets, _ := webhook.ParseSecrets(e.cfg.Webhooks.Secrets) // validated by Open
	if len(secrets) == 0 {
		return nil
	}
	client := safehttp.NewClient(safehttp.Config{AllowPrivate: e.cfg.AllowPrivateNetworks,
		Allow: e.cfg.AllowNetworks, Timeout: e.cfg.Webhooks.Timeout, MaxIdleConnsPerHost: e.cfg.Webhooks.Concurrency})
	return &webhooks{sender: &webhook.Sender{Client: client.HTTPClient(), Secrets: secrets,
		Timeout: e.cfg.Webhooks.Timeout}}
}

// initWebhooks stores the webhook cursor at the newest event if there is
// none, at Open rather than Start so that the tasks created before Start
// are notified too: from then on, no event is pruned before it is
// dispatched. History from before is not notified.
func (e *Engine) initWebhooks(ctx context.Context) error {
	if e.hooks == nil {
		return nil
	}
	cursor, err := e.store.Cursor(ctx, webhookCursor)
	if err != nil || cursor != "" {
		return err
	}
	if cursor, err = e.store.LastEventID(ctx); err != nil {
		return err
	}
	if cursor == "" {
		cursor = eventID(0, time.Unix(0, 0))
	}
	return e.store.SetCursor(ctx, webhookCursor, cursor)
}

// startWebhooks starts the dispatch and send loops, if this engine sends
// webhooks.
func (e *Engine) startWebhooks(loopCtx context.Context) {
	if e.hooks == nil {
		return
	}
	e.goLoop(func() { e.dispatchLoop(loopCtx) })
	e.goLoop(func() { e.sendLoop(loopCtx) })
}

// dispatchLoop turns events into deliveries, whenever something was
// committed here and every PollInterval (for other processes' events).
//
// It makes deliveries only as fast as the sender takes them: while the
// sender is busy (more deliveries due than it can start), it waits until
// the sender runs short. Making rows that cannot be sent yet would only
// take the one writer from the tasks' own changes: in a burst of tasks
// with webhooks it halved the drain. The events wait behind the cursor,
// as durable as the deliveries they become; each task's deliveries keep
// their order, since events are dispatched in order.
func (e *Engine) dispatchLoop(ctx context.Context) {
	poll := time.NewTicker(e.cfg.PollInterval)
	defer poll.Stop()
	p := &DispatchParams{Cursor: webhookCursor, URL: e.cfg.Webhooks.URL, Progress: e.cfg.Webhooks.Progress,
		Limit: dispatchBatch}
	for {
		hungry := e.hooks.hungry.wait() // before busy: a notify after the check is not missed
		if e.hooks.busy.Load() {
			select {
			case <-ctx.Done():
				return
			case <-hungry:
			}
		}
		changed := e.changed.wait()
		p.Now = time.Now()
		n, made, err := e.store.DispatchDeliveries(ctx, p)
		if err != nil && ctx.Err() == nil {
			e.log.Error("spool: dispatch webhook deliveries", "err", err)
		}
		if made > 0 {
			e.hooks.wake.notify()
		}
		if err == nil && n == dispatchBatch {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-poll.C:
		}
		// Each dispatch is a write: while commits follow each other, let
		// a few gather rather than write once per commit.
		select {
		case <-ctx.Done():
			return
		case <-time.After(dispatchPause):
		}
	}
}

// dispatchPause is the least time between two dispatches: a delivery
// starts at most this much later than its event, and a busy engine
// dispatches at most 100 times a second.
const dispatchPause = 10 * time.Millisecond

// dispatchBatch is the most events one dispatch reads. A dispatch is one
// write, which the tasks' own changes wait behind: with 1000 the drain
// with webhooks was 65-66% of the plain drain, with 128 69-82%.
const dispatchBatch = 128

// sendLoop claims due deliveries and sends each in a goroutine of its own,
// at most Webhooks.Concurrency at once. It claims up to Concurrency more
// than it can start, held in a queue, so that a freed slot starts the
// next delivery at once rather than after a claim's commit: a claim is a
// write, and waiting for one per delivery made the writer's latency the
// sender's. A held delivery waits about one round of attempts, well
// within its lease; one held too near its lease's end is let go unsent.
func (e *Engine) sendLoop(ctx context.Context) {
	conc := e.cfg.Webhooks.Concurrency
	lease := e.cfg.Webhooks.Timeout + e.cfg.LeaseDuration
	slots := make(chan struct{}, conc)
	var waiting tasksWaiting
	var queue []*Delivery
	defer func() {
		for range cap(slots) {
			slots <- struct{}{} // every send has returned
		}
		e.releaseDeliveries(ctx, queue)
	}()
	poll := time.NewTicker(e.cfg.PollInterval)
	defer poll.Stop()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		woken := e.hooks.wake.wait()
		short := false
		limit := conc
		if waiting.check(ctx, e) {
			limit = yielding(conc)
		}
		if want := 2*limit - len(slots) - len(queue); want > limit/2 || len(queue) == 0 && want > 0 {
			claimed, err := e.store.ClaimDeliveries(ctx, e.inst.ID, time.Now(), lease, want)
			if err != nil && ctx.Err() == nil {
				e.log.Error("spool: claim webhook deliveries", "err", err)
			}
			queue = append(queue, claimed...)
			short = len(claimed) < want
			e.hooks.busy.Store(!short)
			if short {
				e.hooks.hungry.notify()
			}
		}
		for len(queue) > 0 && len(slots) < limit {
			d := queue[0]
			queue = queue[1:]
			if time.Until(d.Next) < e.cfg.Webhooks.Timeout+time.Second {
				// Held too long (slots busy with slow endpoints): its lease
				// could end mid-attempt and another engine take it. Let the
				// lease run out; it is claimed again then.
				continue
			}
			slots <- struct{}{}
			go func() {
				defer func() {
					<-slots
					e.hooks.wake.notify()
				}()
				// A task's next delivery follows on this goroutine, leased
				// when this one was recorded.
				for d != nil {
					d = e.attemptDelivery(ctx, d, lease)
				}
			}()
		}
		timer.Stop()
		if short {
			next, err := e.store.NextDelivery(ctx)
			if err != nil && ctx.Err() == nil {
				e.log.Error("spool: next webhook delivery", "err", err)
			}
			if !next.IsZero() {
				timer.Reset(max(time.Until(next), time.Millisecond))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-woken:
		case <-timer.C:
		case <-poll.C:
		}
	}
}

// tasksWaiting tells the sender whether tasks wait for this engine's
// workers, so that it yields to them.
type tasksWaiting struct {
	checked time.Time
	waiting bool
}

// check reports whether tasks wait. The scheduler knows when none can
// (the last claim drained the queue); when it cannot tell (the last claim
// took as many as there were free workers, and none is free since), a
// task of this engine's kinds due now decides, looked up at most every
// PollInterval so that the drain pays nothing for it.
func (w *tasksWaiting) check(ctx context.Context, e *Engine) bool {
	if !e.sched.busy() {
		return false
	}
	if time.Since(w.checked) < e.cfg.PollInterval {
		return w.waiting
	}
	w.checked = time.Now()
	next, err := e.store.NextDue(ctx, e.kinds)
	w.waiting = err != nil || !next.IsZero() && !next.After(w.checked)
	return w.waiting
}

// yielding is how many attempts at once the sender makes, of conc, while
// tasks wait for this engine's workers. Webhooks yield to tasks: an
// attempt costs CPU time at both ends, and a sender making all it may took
// half the machine from the tasks in a burst (BENCHMARKS.md). Deliveries
// then lag, durably and in order, and catch up once the queue drains.
func yielding(conc int) int { return max(1, conc/4) }

// releaseDeliveries lets go of claimed deliveries that were never tried
// (the engine is closing), due at once for whichever engine runs next.
func (e *Engine) releaseDeliveries(ctx context.Context, ds []*Delivery) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	for _, d := range ds {
		if _, err := e.store.RecordDelivery(rctx, &DeliveryRecord{ID: d.ID, Owner: e.inst.ID,
			State: DeliveryPending, Next: time.Now()}); err != nil {
			e.log.Error("spool: let go of webhook delivery", "delivery", d.ID, "err", err)
		}
	}
}

// attemptDelivery sends a claimed delivery once and records the attempt
// and what follows: delivered, disabled (410), another try later, or
// failed for good once the Schedule is used up. It returns the task's next
// delivery, leased to this engine, when this one ended and one is waiting.
func (e *Engine) attemptDelivery(ctx context.Context, d *Delivery, lease time.Duration) *Delivery {
	cfg := &e.cfg.Webhooks
	rec := &DeliveryRecord{ID: d.ID, Owner: e.inst.ID}
	var (
		res *webhook.Result
		err error
	)
	start := time.Now()
	if at, ok := e.hooks.gone.Load(d.URL); ok && d.Next.Add(-lease).Before(at.(time.Time)) {
		// The endpoint answered 410 after this delivery was claimed (the
		// store disabled the others): send it nothing more.
		rec.State = DeliveryDisabled
		return e.recordDelivery(ctx, d, rec)
	}
	if d.Task == nil {
		err = errors.New("task deleted before its webhook was sent")
	} else {
		res, err = e.hooks.sender.Send(ctx, webhook.Message{ID: d.ID, URL: d.URL, Body: e.webhookBody(d)})
	}
	now := time.Now()
	if d.Task != nil && ctx.Err() != nil && (res == nil || res.StatusCode == 0) {
		// Shutting down mid-attempt: let it go, due at once for the next
		// engine, and count no attempt.
		rec.State, rec.Next = DeliveryPending, now
	} else {
		a := &DeliveryAttempt{Time: start, Latency: now.Sub(start)}
		if err != nil {
			a.Error = err.Error()
		}
		if res != nil {
			a.StatusCode, a.Latency = res.StatusCode, res.Latency
		}
		rec.Attempt = a
		switch {
		case res == nil, errors.Is(err, safehttp.ErrForbiddenAddress):
			// Unsendable (the address policy refuses the endpoint): no
			// retry would do better.
			rec.State = DeliveryFailed
		case res.Outcome() == webhook.Delivered:
			rec.State = DeliveryDelivered
		case res.Outcome() == webhook.Gone:
			rec.State, rec.Disable = DeliveryDisabled, "410 Gone answered to "+d.ID
			e.hooks.gone.Store(d.URL, now)
		default:
			if err == nil {
				a.Error = fmt.Sprintf("HTTP %d", res.StatusCode)
				if res.StatusCode >= 300 && res.StatusCode < 400 {
					a.Error += " (redirects are not followed)"
				}
				if ex := res.Excerpt; ex != "" {
					a.Error += ": " + ex[:min(len(ex), 200)]
				}
			}
			if d.Attempted >= len(cfg.Schedule) {
				rec.State = DeliveryFailed
				break
			}
			step := cfg.Schedule[d.Attempted]
			wait := time.Duration(float64(step) * (0.8 + 0.4*rand.Float64()))
			if ra := min(res.RetryAfter, cfg.MaxRetryAfter); ra > wait {
				wait = ra
			}
			rec.State, rec.Next = DeliveryPending, now.Add(wait)
		}
	}
	if rec.State != DeliveryPending && ctx.Err() == nil {
		rec.Lease = lease
	}
	if rec.Attempt != nil {
		e.observeDelivery(rec.State, rec.Attempt.Latency)
	}
	return e.recordDelivery(ctx, d, rec)
}

// recordDelivery records rec and returns the task's next delivery, if
// handed on.
func (e *Engine) recordDelivery(ctx context.Context, d *Delivery, rec *DeliveryRecord) *Delivery {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	next, err := e.store.RecordDelivery(rctx, rec)
	if err != nil {
		e.log.Error("spool: record webhook delivery", "delivery", d.ID, "err", err)
	}
	return next
}

// webhookBody is the Standard Webhooks envelope of a delivery, or with
// Webhooks.Bare the task JSON alone.
func (e *Engine) webhookBody(d *Delivery) []byte {
	data, err := json.Marshal(e.typed(d.Task))
	if err != nil {
		// Task's MarshalJSON fails only on values no store returns.
		data = []byte("null")
	}
	if e.cfg.Webhooks.Bare {
		return data
	}
	// Built by hand: marshalling data again as a json.RawMessage would
	// validate and compact it a second time.
	typ, _ := json.Marshal(d.Type)
	b := make([]byte, 0, len(data)+96)
	b = append(b, `{"type":`...)
	b = append(b, typ...)
	b = append(b, `,"timestamp":"`...)
	b = d.EventTime.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","data":`...)
	b = append(b, data...)
	return append(b, '}')
}

// Deliveries returns the webhook deliveries of a task's events, oldest
// first, each with its state and every attempt recorded. A task without
// deliveries (no webhook_url, or its deliveries pruned after
// WebhookConfig.Retention) has none; that is not an error.
func (e *Engine) Deliveries(ctx context.Context, taskID string) ([]*Delivery, error) {
	if err := e.usable(); err != nil {
		return nil, err
	}
	ds, err := e.store.Deliveries(ctx, taskID)
	if err != nil {
		return nil, fmt.Errorf("spool: deliveries: %w", err)
	}
	for _, d := range ds {
		d.Task = e.typed(d.Task)
	}
	return ds, nil
}

// WebhookEndpoints lists the endpoints disabled because they answered
// 410 Gone. Their deliveries end disabled, unsent, until
// EnableWebhookEndpoint.
func (e *Engine) WebhookEndpoints(ctx context.Context) ([]*WebhookEndpoint, error) {
	if err := e.usable(); err != nil {
		return nil, err
	}
	eps, err := e.store.WebhookEndpoints(ctx)
	if err != nil {
		return nil, fmt.Errorf("spool: webhook endpoints: %w", err)
	}
	return eps, nil
}

// EnableWebhookEndpoint enables an endpoint that a 410 Gone disabled:
// events from then on are sent to it again. Deliveries disabled meanwhile
// stay unsent.
func (e *Engine) EnableWebhookEndpoint(ctx context.Context, url string) error {
	if err := e.usable(); err != nil {
		return err
	}
	if err := e.store.EnableEndpoint(ctx, url); err != nil {
		return fmt.Errorf("spool: enable webhook endpoint: %w", err)
	}
	return nil
}

// pruneDeliveries deletes deliveries that ended longer than
// Webhooks.Retention ago.
func (e *Engine) pruneDeliveries(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	_, err := e.store.PruneDeliveries(ctx, time.Now().Add(-e.cfg.Webhooks.Retention))
	return err
}
