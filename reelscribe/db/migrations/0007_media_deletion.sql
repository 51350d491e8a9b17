-- Uploaded media can be deleted (DeleteMedia) while the jobs made from it stay:
-- a job keeps naming its media, as a reference that may dangle, so the
-- foreign key goes. Stages that need the file again find no media row and end
-- the job FAILED with MEDIA_MISSING.
ALTER TABLE jobs DROP CONSTRAINT IF EXISTS jobs_media_id_fkey;
-- DeleteMedia refuses while a queued or running job uses the media.
CREATE INDEX jobs_media_idx ON jobs (media_id) WHERE media_id IS NOT NULL;
-- Storage quotas sum an owner's uploads in progress; the sweeper finds the
-- oldest ones.
CREATE INDEX uploads_partial_idx ON uploads (update_time) WHERE media_id IS NULL;
