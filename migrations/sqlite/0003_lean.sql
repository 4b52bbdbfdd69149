-- Fewer b-trees per task: every one a commit touches is a page written to
-- the WAL, and every one a task's status change touches is work in the
-- hottest path (measured in BENCHMARKS.md).
--
-- * One runnable index, (kind, due, id), instead of two: a claim of several
--   kinds reads each kind's oldest entries and merges them, so a backlog of
--   one kind never slows the claims of another.
-- * The status index leaves out completed tasks (below).
-- * Events lose their task index: a deleted task's events are no longer
--   deleted with it but skipped when read (the reader joins the task row)
--   and pruned with the others. They lose AUTOINCREMENT too: pruning never
--   deletes the newest event, so a sequence number is never reused.
-- * Counts are one row per kind with a column per status, so that a status
--   change updates one row with one statement.

DROP TRIGGER tasks_created;
DROP TRIGGER tasks_status;
DROP TRIGGER tasks_progress;
DROP TRIGGER tasks_deleted;

DROP INDEX tasks_kind_due;
DROP INDEX tasks_due;
CREATE INDEX tasks_due ON tasks (kind, due, id) WHERE due IS NOT NULL;

-- The status index leaves out completed tasks, most of a table in time:
-- a completion then only deletes an entry. Listing completed tasks walks
-- the table by id, where they are the common case. Queries on other
-- statuses say status != 'completed' so that SQLite may use the index.
DROP INDEX tasks_status;
CREATE INDEX tasks_status ON tasks (status, id) WHERE status != 'completed';

DROP INDEX events_task;
ALTER TABLE events RENAME TO events_0001;
CREATE TABLE events (
    seq      INTEGER PRIMARY KEY,
    type     TEXT NOT NULL,
    task_id  TEXT NOT NULL,
    status   TEXT NOT NULL,
    progress INTEGER NOT NULL,
    error    TEXT NOT NULL,
    time     INTEGER NOT NULL
);
INSERT INTO events SELECT seq, type, task_id, status, progress, error, time FROM events_0001;
-- A cursor may point past every event left (all pruned): keep the sequence
-- above it with a row no task matches.
INSERT INTO events (seq, type, task_id, status, progress, error, time)
    SELECT seq, 'spool.sequence', '', '', 0, '', 0 FROM sqlite_sequence
    WHERE name IN ('events', 'events_0001') AND seq > COALESCE((SELECT MAX(seq) FROM events), 0);
DROP TABLE events_0001;

CREATE TABLE kind_counts (
    kind       TEXT PRIMARY KEY,
    pending    INTEGER NOT NULL DEFAULT 0,
    waiting    INTEGER NOT NULL DEFAULT 0,
    processing INTEGER NOT NULL DEFAULT 0,
    ready      INTEGER NOT NULL DEFAULT 0,
    completed  INTEGER NOT NULL DEFAULT 0,
    failed     INTEGER NOT NULL DEFAULT 0,
    error      INTEGER NOT NULL DEFAULT 0,
    cancelled  INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
INSERT INTO kind_counts (kind, pending, waiting, processing, ready, completed, failed, error, cancelled)
SELECT kind, SUM(CASE status WHEN 'pending' THEN n ELSE 0 END),
       SUM(CASE status WHEN 'waiting' THEN n ELSE 0 END),
       SUM(CASE status WHEN 'processing' THEN n ELSE 0 END),
       SUM(CASE status WHEN 'ready' THEN n ELSE 0 END),
       SUM(CASE status WHEN 'completed' THEN n ELSE 0 END),
       SUM(CASE status WHEN 'failed' THEN n ELSE 0 END),
       SUM(CASE status WHEN 'error' THEN n ELSE 0 END),
       SUM(CASE status WHEN 'cancelled' THEN n ELSE 0 END)
FROM task_counts GROUP BY kind;
DROP TABLE task_counts;

CREATE TRIGGER tasks_created AFTER INSERT ON tasks BEGIN
    INSERT INTO events (type, task_id, status, progress, error, time)
        VALUES ('task.created', new.id, new.status, new.progress, new.error,
                MAX(new.created, COALESCE((SELECT time FROM events ORDER BY seq DESC LIMIT 1), 0)));
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
    INSERT INTO events (type, task_id, status, progress, error, time)
        VALUES ('task.' || new.status, new.id, new.status, new.progress, new.error,
                MAX(new.updated, COALESCE((SELECT time FROM events ORDER BY seq DESC LIMIT 1), 0)));
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
    INSERT INTO events (type, task_id, status, progress, error, time)
        VALUES ('task.progress', new.id, new.status, new.progress, new.error,
                MAX(new.updated, COALESCE((SELECT time FROM events ORDER BY seq DESC LIMIT 1), 0)));
END;

CREATE TRIGGER tasks_deleted AFTER DELETE ON tasks BEGIN
    UPDATE kind_counts SET
        pending = pending - (old.status = 'pending'),
        waiting = waiting - (old.status = 'waiting'),
        processing = processing - (old.status = 'processing'),
        ready = ready - (old.status = 'ready'),
        completed = completed - (old.status = 'completed'),
        failed = failed - (old.status = 'failed'),
        error = error - (old.status = 'error'),
        cancelled = cancelled - (old.status = 'cancelled')
    WHERE kind = old.kind;
END;
