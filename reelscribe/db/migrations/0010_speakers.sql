-- Speakers (STAGE_DIARIZE): who speaks each segment and word, and the
-- speakers of each transcript with the names their owner gave them.
--
-- Labels are speaker numbers (1, 2, ...; NULL when speakers were not
-- labelled); names are read from `speakers` at query time, so renaming a
-- speaker changes every result and export at once without recomputing.
ALTER TABLE segments ADD COLUMN speaker_idx integer;
ALTER TABLE words ADD COLUMN speaker_idx integer;

CREATE TABLE speakers (
    job_id       uuid             NOT NULL REFERENCES transcripts (job_id) ON DELETE CASCADE,
    idx          integer          NOT NULL,
    -- What the owner named the speaker; empty shows `Speaker {idx}`.
    display_name text             NOT NULL DEFAULT '',
    speaking_s   double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, idx)
);
