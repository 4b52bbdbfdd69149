package spool

import (
	"context"
	"time"
)

// maintainLoop prunes events that are old and delivered and webhook
// deliveries past their retention, advances the
// workflows whose last step ended without advancing them, deletes finished
// tasks past their Retention, and sweeps up file bytes that no record owns.
func (e *Engine) maintainLoop(ctx context.Context) {
	every := max(min(e.cfg.EventRetention/10, e.retentionEvery(), time.Minute), time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	var swept time.Time
	for {
		if err := e.prune(ctx); err != nil && ctx.Err() == nil {
			e.log.Error("spool: prune events", "err", err)
		}
		if err := e.repairWorkflows(ctx); err != nil && ctx.Err() == nil {
			e.log.Error("spool: advance stalled workflows", "err", err)
		}
		if err := e.pruneDeliveries(ctx); err != nil && ctx.Err() == nil {
			e.log.Error("spool: prune webhook deliveries", "err", err)
		}
		if err := e.retain(ctx); err != nil && ctx.Err() == nil {
			e.log.Error("spool: delete finished tasks past retention", "err", err)
		}
		if time.Since(swept) >= e.cfg.OrphanFileAge/2 {
			swept = time.Now()
			if n, err := e.sweep(ctx); err != nil && ctx.Err() == nil {
				e.log.Error("spool: sweep orphaned files", "err", err)
			} else if n > 0 {
				e.log.Info("spool: swept orphaned file bytes", "files", n)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// prune deletes events past their retention that every stored cursor
// (OnEvent's, a webhook sender's, a user's) has passed.
func (e *Engine) prune(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	_, err := e.store.PruneEvents(ctx, time.Now().Add(-e.cfg.EventRetention))
	return err
}
