-- Derived results of a transcript (summaries, chapters, importance, answers'
-- sources, translations, romanization), highlights with their clips, and the
-- cost of every stage.

-- One row per (job, kind, provider): kind is `analysis`, `translation:<lang>`
-- or `romanization`. Rows expire (a cache), except when a job stage wrote them.
CREATE TABLE analyses (
    job_id       uuid        NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    kind         text        NOT NULL,
    provider     text        NOT NULL,
    payload      jsonb       NOT NULL,
    tokens       bigint      NOT NULL DEFAULT 0,
    create_time  timestamptz NOT NULL DEFAULT now(),
    expire_time  timestamptz,
    PRIMARY KEY (job_id, kind, provider)
);

CREATE TABLE highlights (
    job_id          uuid        NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    idx             integer     NOT NULL,
    start_s         double precision NOT NULL,
    end_s           double precision NOT NULL,
    score           double precision NOT NULL,
    reason          text        NOT NULL,
    text            text        NOT NULL,
    clip_blob_key   text,
    clip_size_bytes bigint      NOT NULL DEFAULT 0,
    clip_mime_type  text        NOT NULL DEFAULT '',
    captions_srt    text        NOT NULL DEFAULT '',
    PRIMARY KEY (job_id, idx)
);

-- What a job cost, per stage: rows are replaced when a stage is retried.
-- Kept when the job is deleted (owner and day are copied here) so that the
-- daily totals do not change after the fact.
CREATE TABLE job_costs (
    job_id        uuid        NOT NULL,
    stage         text        NOT NULL,
    owner         text        NOT NULL,
    day           date        NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')::date,
    audio_minutes double precision NOT NULL DEFAULT 0,
    cpu_seconds   double precision NOT NULL DEFAULT 0,
    tokens        bigint      NOT NULL DEFAULT 0,
    cost_usd      double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, stage)
);
CREATE INDEX job_costs_owner_day_idx ON job_costs (owner, day);
CREATE INDEX job_costs_day_idx ON job_costs (day);
