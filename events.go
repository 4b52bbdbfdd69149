package spool

import (
	"context"
	"fmt"
	"time"
)

// eventBatch is how many events a reader takes per query.
const eventBatch = 256

// Events returns up to limit events committed after the event with id
// after ("" for the oldest kept), oldest first. Use the last event's ID as
// the next call's after. A limit of 0 means 100; at most 1000.
func (e *Engine) Events(ctx context.Context, after string, limit int) ([]*Event, error) {
	if err := e.usable(); err != nil {
		return nil, err
	}
	if limit == 0 {
		limit = 100
	}
	if limit < 0 || limit > 1000 {
		return nil, invalid("limit", "must be between 1 and 1000 (0 means 100)")
	}
	evs, err := e.store.Events(ctx, after, limit)
	if err != nil {
		return nil, fmt.Errorf("spool: events: %w", err)
	}
	return e.typedEvents(evs), nil
}

// Subscribe returns a channel of the events committed from now on, in
// commit order, until ctx ends or the engine closes. A slow reader lags
// behind, reading from the store, but misses nothing and never holds up
// the engine. The channel closes when the engine closes, possibly before
// the events of its last moments: Config.OnEvent, which Close drains, or
// Events with a stored cursor, deliver those.
func (e *Engine) Subscribe(ctx context.Context) (<-chan Event, error) {
	if err := e.usable(); err != nil {
		return nil, err
	}
	cursor, err := e.store.LastEventID(ctx)
	if err != nil {
		return nil, fmt.Errorf("spool: subscribe: %w", err)
	}
	ch := make(chan Event, eventBatch)
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(e.life, cancel)
	go func() {
		defer close(ch)
		defer stop()
		defer cancel()
		e.follow(ctx, cursor, func(ev *Event) bool {
			select {
			case ch <- *ev:
				return true
			case <-ctx.Done():
				return false
			}
		})
	}()
	return ch, nil
}

// follow reads events after cursor and passes each to fn until fn returns
// false, ctx ends or the engine closes. It returns the last event passed.
func (e *Engine) follow(ctx context.Context, cursor string, fn func(*Event) bool) string {
	poll := time.NewTicker(e.cfg.PollInterval)
	defer poll.Stop()
	for {
		changed := e.changed.wait()
		evs, err := e.store.Events(ctx, cursor, eventBatch)
		if err != nil {
			if ctx.Err() != nil {
				return cursor
			}
			e.log.Error("spool: read events", "err", err)
		}
		for _, ev := range e.typedEvents(evs) {
			if !fn(ev) {
				return cursor
			}
			cursor = ev.ID
		}
		if len(evs) == eventBatch {
			continue
		}
		select {
		case <-ctx.Done():
			return cursor
		case <-changed:
		case <-poll.C:
		}
	}
}

// initCursor returns OnEvent's stored position. The first time, it stores
// the newest event, so that a new callback does not replay history.
func (e *Engine) initCursor(ctx context.Context) (string, error) {
	c, err := e.store.Cursor(ctx, e.cfg.EventCursor)
	if err != nil || c != "" {
		return c, err
	}
	last, err := e.store.LastEventID(ctx)
	if err != nil {
		return "", err
	}
	if last == "" {
		last = eventID(0, time.Unix(0, 0))
	}
	return last, e.store.SetCursor(ctx, e.cfg.EventCursor, last)
}

// onEventLoop feeds OnEvent from cursor on and stores its position now and
// then, so that a restart resumes close to where it stopped.
func (e *Engine) onEventLoop(ctx context.Context, cursor string) {
	saved, last := cursor, time.Now()
	save := func(c string) {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := e.store.SetCursor(sctx, e.cfg.EventCursor, c); err != nil {
			e.log.Error("spool: save event cursor", "err", err)
			return
		}
		saved, last = c, time.Now()
	}
	deliver := func(ev *Event) bool {
		e.deliver(*ev)
		if time.Since(last) > time.Second {
			save(ev.ID)
		}
		return true
	}
	cursor = e.follow(ctx, cursor, deliver)
	// Closing: the workers have stopped, so deliver what they wrote.
	dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for dctx.Err() == nil {
		evs, err := e.store.Events(dctx, cursor, eventBatch)
		if err != nil {
			e.log.Error("spool: read events", "err", err)
			break
		}
		for _, ev := range e.typedEvents(evs) {
			deliver(ev)
			cursor = ev.ID
		}
		if len(evs) < eventBatch {
			break
		}
	}
	if cursor != saved {
		save(cursor)
	}
}

// deliver calls OnEvent, surviving its panics.
func (e *Engine) deliver(ev Event) {
	defer func() {
		if v := recover(); v != nil {
			e.log.Error("spool: OnEvent panicked", "event", ev.ID, "panic", v)
		}
	}()
	e.cfg.OnEvent(ev)
}
