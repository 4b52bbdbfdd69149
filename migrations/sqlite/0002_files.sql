-- Files: task inputs and outputs. data holds the File object (its media
-- fields); the columns beside it are what lists filter on. The bytes live in
-- the engine's Storage under storage_key.
CREATE TABLE files (
    id          TEXT PRIMARY KEY,
    task_id     TEXT NOT NULL DEFAULT '',
    storage_key TEXT NOT NULL,
    ref         TEXT NOT NULL DEFAULT '',
    folder      TEXT NOT NULL DEFAULT '',
    data        TEXT NOT NULL,
    created     INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX files_task ON files (task_id) WHERE task_id != '';
CREATE INDEX files_ref ON files (ref, id) WHERE ref != '';
CREATE INDEX files_folder ON files (folder, id) WHERE folder != '';
