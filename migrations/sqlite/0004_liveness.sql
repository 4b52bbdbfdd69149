-- Events record the attempt, so that an event's task snapshot shows every
-- field a change sets as it was at that event (status, progress, error,
-- attempt; the output only on the completion).
ALTER TABLE events ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;

-- Instances record the boot and the PID namespace they run in: a PID on
-- the same host name means the same process only within both (containers
-- with host networking share a host name, not their PIDs).
ALTER TABLE instances ADD COLUMN boot_id TEXT NOT NULL DEFAULT '';
ALTER TABLE instances ADD COLUMN pid_ns TEXT NOT NULL DEFAULT '';

DROP TRIGGER tasks_created;
DROP TRIGGER tasks_status;
DROP TRIGGER tasks_progress;

CREATE TRIGGER tasks_created AFTER INSERT ON tasks BEGIN
    INSERT INTO events (type, task_id, status, progress, error, time, attempt)
        VALUES ('task.created', new.id, new.status, new.progress, new.error,
                MAX(new.created, COALESCE((SELECT time FROM events ORDER BY seq DESC LIMIT 1), 0)),
                new.attempt);
    INSERT INTO kind_counts (kind, pending, waiting, processing, ready, completed, failed, error, cancelled)
        VALUES (new.kind, new.status = 'pending', new.status = 'waiting', new.status = 'processing', new.status = 'ready', new.status = 'completed', new.status = 'failed', new.status = 'error', new.status = 'cancelled')
        ON CONFLICT (kind) DO UPDATE SET
            pending = pending + excluded.pending,
            waiting = waiting + excluded.waiting,
            processing = processing + excluded.processing,
            ready = ready + excluded.ready,
            completed = completed + excluded.completed,
            failed = failed + excluded.failed,
            error = error + excluded.error,
            cancelled = cancelled + excluded.cancelled;
END;

CREATE TRIGGER tasks_status AFTER UPDATE OF status ON tasks
WHEN old.status != new.status BEGIN
    INSERT INTO events (type, task_id, status, progress, error, time, attempt)
        VALUES ('task.' || new.status, new.id, new.status, new.progress, new.error,
                MAX(new.updated, COALESCE((SELECT time FROM events ORDER BY seq DESC LIMIT 1), 0)),
                new.attempt);
    UPDATE kind_counts SET
        pending = pending + (new.status = 'pending') - (old.status = 'pending'),
        waiting = waiting + (new.status = 'waiting') - (old.status = 'waiting'),
        processing = processing + (new.status = 'processing') - (old.status = 'processing'),
        ready = ready + (new.status = 'ready') - (old.status = 'ready'),
        completed = completed + (new.status = 'completed') - (old.status = 'completed'),
        failed = failed + (new.status = 'failed') - (old.status = 'failed'),
        error = error + (new.status = 'error') - (old.status = 'error'),
        cancelled = cancelled + (new.status = 'cancelled') - (old.status = 'cancelled')
    WHERE kind = new.kind;
END;

CREATE TRIGGER tasks_progress AFTER UPDATE OF progress ON tasks
WHEN old.status = new.status AND old.progress != new.progress BEGIN
    INSERT INTO events (type, task_id, status, progress, error, time, attempt)
        VALUES ('task.progress', new.id, new.status, new.progress, new.error,
                MAX(new.updated, COALESCE((SELECT time FROM events ORDER BY seq DESC LIMIT 1), 0)),
                new.attempt);
END;
