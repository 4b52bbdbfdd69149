-- Workflow steps: where a step sits in its workflow's tree
-- (workflow[0].next[1]), so that a parent can tell its steps apart and a
-- client can draw the tree. Empty for a task that is not a step.
ALTER TABLE tasks ADD COLUMN step TEXT NOT NULL DEFAULT '';
