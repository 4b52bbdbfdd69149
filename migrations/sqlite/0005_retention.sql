-- Deleting a task (Engine.Delete, Config.Retention) deletes the files it
-- produced that no other task uses, and retention finds old finished tasks.
--
-- * The finished top-level tasks by status and finish time, for retention.
--   Only final statuses are in it, so a running task's progress writes
--   (which move updated) never touch it; workflow steps go with their
--   parent (ON DELETE CASCADE) and are left out.
-- * The tasks that take a file as file_id input, to tell whether a file is
--   still used. Only file_id tasks have an entry, and file_id never changes.
-- * The tasks whose input names a file (its JSON id) other than through
--   file_id or a url: a url task's input is its own fetched file, and a
--   file_id task's is its file_id's, both found otherwise. No task the
--   engine creates today has one, so the index costs nothing until one does.
CREATE INDEX tasks_finished ON tasks (status, updated)
    WHERE status IN ('completed', 'failed', 'error', 'cancelled') AND parent_id IS NULL;
CREATE INDEX tasks_file ON tasks (file_id) WHERE file_id != '';
CREATE INDEX tasks_input_file ON tasks (json_extract(input, '$.id'))
    WHERE input IS NOT NULL AND file_id = '' AND url = '';
