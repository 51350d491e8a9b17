-- The audio-minute ledger: one row per job that transcribes (cache hits and
-- child jobs transcribe nothing and have none). No foreign key to jobs:
-- deleting a job keeps its row, so deletes never give minutes back.
--
-- A row counts `reserved_s` until it is settled (the job ended), and from then
-- on `transcribed_s`: the spans of the chunks that finished transcribing,
-- added as each one finishes. What a row counts is never less than what it
-- transcribed so far.
CREATE TABLE audio_usage (
    job_id        uuid             PRIMARY KEY,
    owner         text             NOT NULL,
    -- The UTC day the job was created: its minutes count against that day.
    day           date             NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')::date,
    -- The owner's daily allowance when the job was admitted (NULL: unlimited).
    allowance_s   double precision,
    -- Probed length at creation (0 when unknown or a URL), the decoded length
    -- once the audio is decoded.
    reserved_s    double precision NOT NULL DEFAULT 0,
    transcribed_s double precision NOT NULL DEFAULT 0,
    -- When the job ended; from then on only transcribed_s counts.
    settle_time   timestamptz
);
CREATE INDEX audio_usage_owner_day_idx ON audio_usage (owner, day);
CREATE INDEX audio_usage_day_idx ON audio_usage (day);
