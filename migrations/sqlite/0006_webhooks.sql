-- Webhook deliveries (issue 10). The engine turns events into deliveries
-- by reading the events table under the stored cursor 'webhooks' (see
-- webhooks.go for why not a trigger): an event is the durable record of
-- its delivery until the cursor passes it, and PruneEvents keeps every
-- event a stored cursor has not passed. A delivery row then keeps what
-- the event recorded of the change (status, progress, error, attempt), so
-- the event may be pruned; the payload is the task row with those fields,
-- built when it is sent, as Events builds an event's task.
--
-- One delivery per event (seq is the event's). `due` is when a sender may
-- next take the delivery: set only on the oldest pending delivery of each
-- task (its head), so a task's later deliveries wait, without a claim
-- having to look at them; while a sender holds it, `due` is the end of
-- its lease. NULL once the delivery is delivered, failed or disabled, and
-- on a task's queued deliveries.
CREATE TABLE deliveries (
    seq         INTEGER PRIMARY KEY,
    event_time  INTEGER NOT NULL,
    task_id     TEXT NOT NULL,
    type        TEXT NOT NULL,
    url         TEXT NOT NULL,
    ev_status   TEXT NOT NULL,
    ev_progress INTEGER NOT NULL,
    ev_error    TEXT NOT NULL,
    ev_attempt  INTEGER NOT NULL,
    state       TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    due         INTEGER,
    lease_owner TEXT,
    created     INTEGER NOT NULL,
    updated     INTEGER NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (due) WHERE due IS NOT NULL;
CREATE INDEX deliveries_task ON deliveries (task_id, seq);

CREATE TABLE delivery_attempts (
    seq         INTEGER NOT NULL REFERENCES deliveries (seq) ON DELETE CASCADE,
    n           INTEGER NOT NULL,
    time        INTEGER NOT NULL,
    status_code INTEGER NOT NULL,
    latency     INTEGER NOT NULL,
    error       TEXT NOT NULL,
    PRIMARY KEY (seq, n)
) WITHOUT ROWID;

-- Endpoints disabled by a 410 Gone, until re-enabled.
CREATE TABLE webhook_endpoints (
    url      TEXT PRIMARY KEY,
    disabled INTEGER NOT NULL,
    reason   TEXT NOT NULL
) WITHOUT ROWID;
