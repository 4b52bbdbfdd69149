package spool

import (
	"context"
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
		e.heartbeat(ctx)
	}
}

// heartbeat renews the leases once, then recovers what dead engines held.
// Each store call has a deadline, so that a database locked for good never
// hangs the loop. It is generous: a renewal that commits late still
// renews, counting from its commit, the leases no other engine took
// meanwhile, while one that gives up renews none.
func (e *Engine) heartbeat(ctx context.Context) {
	wait := beatWait * e.cfg.LeaseDuration
	held := e.sched.snapshot()
	ids := make([]string, 0, len(held))
	seen := make(map[string]bool, len(held))
	for _, r := range held {
		if !seen[r.task.ID] {
			seen[r.task.ID] = true
			ids = append(ids, r.task.ID)
		}
	}
	hctx, cancel := context.WithTimeout(ctx, wait)
	kept, err := e.store.Heartbeat(hctx, &e.inst, e.cfg.LeaseDuration, ids)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			e.log.Error("spool: heartbeat", "err", err)
		}
		// Without a renewal this engine cannot tell its own expired
		// leases from a dead engine's: recover nothing this time.
		return
	}
	renewed := make(map[string]bool, len(kept))
	for _, id := range kept {
		renewed[id] = true
	}
	for _, r := range held {
		if !renewed[r.task.ID] {
			r.cancel(e.lostCause(ctx, r.task.ID))
		}
	}
	rctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := e.recover(rctx); err != nil && ctx.Err() == nil {
		e.log.Error("spool: recover tasks", "err", err)
	}
}

// beatWait is how many leases a heartbeat's store calls may wait.
const beatWait = 5

// lostCause tells why a running task is no longer held by this engine:
// cancelled by another process, or taken back after its lease ran out.
func (e *Engine) lostCause(ctx context.Context, id string) error {
	if t, err := e.store.GetTask(ctx, id); err == nil && t.Status == StatusCancelled {
		return ErrCancelled
	}
	return ErrLeaseLost
}

// recover takes back the tasks of engines that are gone and of leases that
// ran out. A hung process's tasks come back when their leases run out.
func (e *Engine) recover(ctx context.Context) error {
	insts, err := e.store.Instances(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	var dead []string
	for _, in := range insts {
		if e.isDead(in, now) {
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

// isDead decides whether another engine is gone. A PID means the same
// process only on the same host, boot and PID namespace (two containers
// with host networking share a host name, not their PIDs): there, an
// engine is dead at once when its process is gone, or when its PID is this
// process's and it started before this process did (PIDs are reused, in
// containers often). Anywhere else an engine is dead when it has not
// recorded a heartbeat for a whole lease: by then its leases have run out
// anyway, and an engine busy behind another process's long write is not
// taken for dead before.
func (e *Engine) isDead(in *Instance, now time.Time) bool {
	if in.ID == e.inst.ID {
		return false
	}
	if e.sameProcessSpace(in) {
		if in.PID == e.inst.PID {
			return in.Started.Before(processStart)
		}
		return !processAlive(in.PID)
	}
	return in.Heartbeat.Before(now.Add(-e.cfg.LeaseDuration))
}

// sameProcessSpace reports whether in runs where this engine's PIDs mean
// the same processes.
func (e *Engine) sameProcessSpace(in *Instance) bool {
	return in.Host == e.inst.Host && e.inst.BootID != "" && in.BootID == e.inst.BootID &&
		e.inst.PIDNamespace != "" && in.PIDNamespace == e.inst.PIDNamespace
}
