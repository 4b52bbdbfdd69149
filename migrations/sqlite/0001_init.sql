-- Tasks. Times are Unix nanoseconds (UTC). JSON columns hold the wire forms.
-- WITHOUT ROWID: the id is the only key, so a lookup by id is one b-tree
-- search, not two.
CREATE TABLE tasks (
    id              TEXT PRIMARY KEY,
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
    -- due is when the task becomes runnable; NULL unless it is pending or
    -- waiting on a time. The claim reads only the partial indexes on it.
    due             INTEGER,
    attempt         INTEGER NOT NULL DEFAULT 0,
    max_attempts    INTEGER NOT NULL DEFAULT 0,
    lease_owner     TEXT,
    lease_until     INTEGER,
    created         INTEGER NOT NULL,
    updated         INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX tasks_due ON tasks (due, id) WHERE due IS NOT NULL;
CREATE INDEX tasks_kind_due ON tasks (kind, due, id) WHERE due IS NOT NULL;
CREATE INDEX tasks_status ON tasks (status, id);
CREATE INDEX tasks_kind ON tasks (kind, id);
CREATE INDEX tasks_parent ON tasks (parent_id, id) WHERE parent_id IS NOT NULL;
CREATE INDEX tasks_ref ON tasks (ref, id) WHERE ref != '';
CREATE INDEX tasks_folder ON tasks (folder, id) WHERE folder != '';
CREATE UNIQUE INDEX tasks_idempotency ON tasks (idempotency_key) WHERE idempotency_key IS NOT NULL;

-- Events: the outbox. seq orders them by commit; AUTOINCREMENT so that a
-- deleted last event's seq is never reused under a reader's cursor. The task
-- snapshot is the task row with the event's status, progress and error.
CREATE TABLE events (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    type     TEXT NOT NULL,
    task_id  TEXT NOT NULL,
    status   TEXT NOT NULL,
    progress INTEGER NOT NULL,
    error    TEXT NOT NULL,
    time     INTEGER NOT NULL
);
CREATE INDEX events_task ON events (task_id);

-- Counts by kind and status, kept by triggers, so that Stats and list
-- totals do not scan a million finished rows.
CREATE TABLE task_counts (
    kind   TEXT NOT NULL,
    status TEXT NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (kind, status)
) WITHOUT ROWID;

-- The events and counts are written by triggers so that every write path,
-- in this process or another, records them in the same transaction. An
-- event's time never goes below the previous event's, so that event ids
-- (a ULID of the time and the seq) sort in commit order.
CREATE TRIGGER tasks_created AFTER INSERT ON tasks BEGIN
    INSERT INTO events (type, task_id, status, progress, error, time)
        VALUES ('task.created', new.id, new.status, new.progress, new.error,
                MAX(new.created, COALESCE((SELECT time FROM events ORDER BY seq DESC LIMIT 1), 0)));
    INSERT INTO task_counts (kind, status, n) VALUES (new.kind, new.status, 1)
        ON CONFLICT (kind, status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER tasks_status AFTER UPDATE OF status ON tasks
WHEN old.status != new.status BEGIN
    INSERT INTO events (type, task_id, status, progress, error, time)
        VALUES ('task.' || new.status, new.id, new.status, new.progress, new.error,
                MAX(new.updated, COALESCE((SELECT time FROM events ORDER BY seq DESC LIMIT 1), 0)));
    UPDATE task_counts SET n = n - 1 WHERE kind = old.kind AND status = old.status;
    INSERT INTO task_counts (kind, status, n) VALUES (new.kind, new.status, 1)
        ON CONFLICT (kind, status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER tasks_progress AFTER UPDATE OF progress ON tasks
WHEN old.status = new.status AND old.progress != new.progress BEGIN
    INSERT INTO events (type, task_id, status, progress, error, time)
        VALUES ('task.progress', new.id, new.status, new.progress, new.error,
                MAX(new.updated, COALESCE((SELECT time FROM events ORDER BY seq DESC LIMIT 1), 0)));
END;

CREATE TRIGGER tasks_deleted AFTER DELETE ON tasks BEGIN
    DELETE FROM events WHERE task_id = old.id;
    UPDATE task_counts SET n = n - 1 WHERE kind = old.kind AND status = old.status;
END;

-- Running engines. A processing task's lease_owner is one of these; an
-- instance whose heartbeat stops has its tasks taken back.
CREATE TABLE instances (
    id        TEXT PRIMARY KEY,
    host      TEXT NOT NULL,
    pid       INTEGER NOT NULL,
    started   INTEGER NOT NULL,
    heartbeat INTEGER NOT NULL
);

-- Named event cursors (OnEvent, webhook sender): where a reader resumes.
CREATE TABLE cursors (
    name TEXT PRIMARY KEY,
    seq  INTEGER NOT NULL
);
