-- The broker queue a job's messages go to, so that a worker's reconciler
-- only re-sends messages of jobs on its own queue (several deployments, or
-- test runs, may share one database).
ALTER TABLE jobs ADD COLUMN queue text;
