package spool

import (
	"context"
	"slices"
	"time"
)

// heartbeatLoop renews this engine's leases, stops handlers whose task was
// cancelled or taken away by another process, and recovers the tasks of
// dead engines.
func (e *Engine) heartbeatLoop(ctx context.Context) {
	t := time.NewTicker(e.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		e.mu.Lock()
		before := make([]*run, 0, len(e.held))
		ids := make([]string, 0, len(e.held))
		for id, r := range e.held {
			if r.claimed {
				before = append(before, r)
				ids = append(ids, id)
			}
		}
		e.mu.Unlock()
		held, err := e.store.Heartbeat(ctx, &e.inst, time.Now().Add(e.cfg.LeaseDuration), ids)
		if err != nil {
			if ctx.Err() == nil {
				e.log.Error("spool: heartbeat", "err", err)
			}
			continue
		}
		for _, r := range before {
			if !slices.Contains(held, r.task.ID) {
				r.cancel(e.lostCause(ctx, r.task.ID))
			}
		}
		if err := e.recover(ctx); err != nil && ctx.Err() == nil {
			e.log.Error("spool: recover tasks", "err", err)
		}
	}
}

// lostCause tells why a running task is no longer held by this engine:
// cancelled by another process, or taken back after its lease ran out.
func (e *Engine) lostCause(ctx context.Context, id string) error {
	if t, err := e.store.GetTask(ctx, id); err == nil && t.Status == StatusCancelled {
		return ErrCancelled
	}
	return ErrLeaseLost
}

// recover takes back the tasks of engines that are gone and of leases that
// ran out. On this host an engine is gone when its process is: a busy
// process whose heartbeat waits behind other writers is still alive. On
// another host it is gone when its heartbeat is stale. A hung process's
// tasks come back when their leases run out.
func (e *Engine) recover(ctx context.Context) error {
	insts, err := e.store.Instances(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	stale := now.Add(-max(5*e.cfg.HeartbeatInterval, 5*time.Second))
	var dead []string
	for _, in := range insts {
		switch {
		case in.ID == e.inst.ID:
		case in.Host == e.inst.Host:
			// The same pid from before this process started was a process
			// that is gone (pids are reused, in containers often).
			if in.PID != e.inst.PID && !processAlive(in.PID) ||
				in.PID == e.inst.PID && in.Started.Before(processStart) {
				dead = append(dead, in.ID)
			}
		case in.Heartbeat.Before(stale):
			dead = append(dead, in.ID)
		}
	}
	// Expired leases are looked for now and then; dead engines at once.
	if len(dead) == 0 && now.Sub(e.leaseCheck) < e.cfg.LeaseDuration/4 {
		return nil
	}
	e.leaseCheck = now
	n, err := e.store.Recover(ctx, dead, now)
	if err != nil {
		return err
	}
	if n > 0 {
		e.log.Info("spool: recovered tasks of stopped engines", "tasks", n, "engines", len(dead))
		e.changed.notify()
		e.poke()
	}
	return nil
}
