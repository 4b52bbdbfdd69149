-- Fewer b-trees per task: every one a commit touches is a page written to
-- the WAL, and every one a task's status change touches is work in the
-- hottest path (measured in BENCHMARKS.md).
--
-- * Tasks become a rowid table (below).
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

-- Tasks become a rowid table with a unique id. In a WITHOUT ROWID table a
-- row stays in its page only up to about a quarter of it (485 bytes in a
-- 2 KiB page), and a task with its input's media details and its output is
-- often longer; a rowid table keeps rows up to a page. A lookup by id now
-- takes two b-tree searches instead of one.
ALTER TABLE tasks RENAME TO tasks_0002;
CREATE TABLE tasks (
    id              TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL,
    status          TEXT NOT NULL,
    progress        INTEGER NOT NULL DEFAULT 0,
    input           TEXT,
    options         TEXT,
    output          TEXT,
    error           TEXT NOT NULL DEFAULT '',
    created_by      TEXT NOT NULL DEFAULT '',
    parent_id       TEXT REFERENCES tasks (id) ON DELETE CASCADE,
    workflow        TEXT,
    results         TEXT,
    steps           TEXT,
    url             TEXT NOT NULL DEFAULT '',
    file_id         TEXT NOT NULL DEFAULT '',
    ref             TEXT NOT NULL DEFAULT '',
    folder          TEXT NOT NULL DEFAULT '',
    webhook_url     TEXT NOT NULL DEFAULT '',
    idempotency_key TEXT,
    run_at          INTEGER NOT NULL DEFAULT 0,
    due             INTEGER,
    attempt         INTEGER NOT NULL DEFAULT 0,
    max_attempts    INTEGER NOT NULL DEFAULT 0,
    lease_owner     TEXT,
    lease_until     INTEGER,
    created         INTEGER NOT NULL,
    updated         INTEGER NOT NULL
);
INSERT INTO tasks (id, kind, status, progress, input, options, output, error, created_by,
        parent_id, workflow, results, steps, url, file_id, ref, folder, webhook_url,
        idempotency_key, run_at, due, attempt, max_attempts, lease_owner, lease_until,
        created, updated)
    SELECT id, kind, status, progress, input, options, output, error, created_by,
        -- A step whose parent is gone (deleted with foreign keys off, as
        -- the sqlite3 shell has them) keeps its row, without the parent.
        CASE WHEN parent_id IN (SELECT id FROM tasks_0002) THEN parent_id END,
        workflow, results, steps, url, file_id, ref, folder, webhook_url,
        idempotency_key, run_at, due, attempt, max_attempts, lease_owner, lease_until,
        created, updated
    FROM tasks_0002 ORDER BY id;
DROP TABLE tasks_0002;

-- One runnable index for claims of one kind and of many (above).
CREATE INDEX tasks_due ON tasks (kind, due, id) WHERE due IS NOT NULL;
CREATE INDEX tasks_kind ON tasks (kind, id);
CREATE INDEX tasks_parent ON tasks (parent_id, id) WHERE parent_id IS NOT NULL;
CREATE INDEX tasks_ref ON tasks (ref, id) WHERE ref != '';
CREATE INDEX tasks_folder ON tasks (folder, id) WHERE folder != '';
CREATE UNIQUE INDEX tasks_idempotency ON tasks (idempotency_key) WHERE idempotency_key IS NOT NULL;
-- The status index leaves out completed tasks, most of a table in time:
-- a completion then only deletes an entry. Listing completed tasks walks
-- the ids, where they are the common case. Queries on other statuses say
-- status != 'completed' so that SQLite may use the index.
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
