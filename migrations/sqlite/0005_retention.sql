-- Deleting a task (Engine.Delete, Config.Retention) deletes the files it
-- produced that no other task uses.
--
-- Retention needs no index of its own: it walks the ids (creation order)
-- of tasks created before its cutoff, through tasks_status for the
-- statuses in it and the id index for completed tasks. An index on the
-- finish time cost 10-15% of the drain, since every claim and completion
-- changes the columns it names.
--
-- * The tasks that take a file as file_id input, to tell whether a file is
--   still used. Only file_id tasks have an entry, and file_id never changes.
-- * The tasks whose input names a file (its JSON id) other than through
--   file_id or a url: a url task's input is its own fetched file, and a
--   file_id task's is its file_id's, both found otherwise. No task the
--   engine creates today has one, so the index costs nothing until one does.
CREATE INDEX tasks_file ON tasks (file_id) WHERE file_id != '';
CREATE INDEX tasks_input_file ON tasks (json_extract(input, '$.id'))
    WHERE input IS NOT NULL AND file_id = '' AND url = '';
