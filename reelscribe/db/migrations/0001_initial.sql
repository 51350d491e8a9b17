-- Jobs, their event logs, uploaded media and transcripts.
-- Every row that belongs to a user carries `owner` (the token subject), and
-- every query filters on it: tenancy is enforced in SQL.

CREATE TABLE media (
    id           uuid PRIMARY KEY,
    owner        text        NOT NULL,
    filename     text        NOT NULL,
    size_bytes   bigint      NOT NULL CHECK (size_bytes >= 0),
    sha256       text        NOT NULL,
    blob_key     text        NOT NULL,
    create_time  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX media_owner_idx ON media (owner, create_time DESC);

-- Uploads in progress, addressable by a client-chosen id so they can resume.
CREATE TABLE uploads (
    owner         text        NOT NULL,
    upload_id     text        NOT NULL,
    filename      text        NOT NULL,
    size_bytes    bigint      NOT NULL,
    sha256        text        NOT NULL DEFAULT '',
    stored_bytes  bigint      NOT NULL DEFAULT 0,
    media_id      uuid        REFERENCES media (id) ON DELETE SET NULL,
    create_time   timestamptz NOT NULL DEFAULT now(),
    update_time   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner, upload_id)
);

CREATE TABLE jobs (
    id               uuid PRIMARY KEY,
    owner            text        NOT NULL,
    request_id       text,
    request_hash     text,
    media_id         uuid        REFERENCES media (id),
    source_uri       text,
    parent_id        uuid        REFERENCES jobs (id) ON DELETE CASCADE,
    options          jsonb       NOT NULL DEFAULT '{}',
    labels           jsonb       NOT NULL DEFAULT '{}',
    state            text        NOT NULL,
    stage            text        NOT NULL,
    progress         double precision NOT NULL DEFAULT 0,
    message          text        NOT NULL DEFAULT '',
    error_reason     text,
    error_message    text,
    error_stage      text,
    cancel_requested boolean     NOT NULL DEFAULT false,
    attempts         integer     NOT NULL DEFAULT 0,
    cache_hit        boolean     NOT NULL DEFAULT false,
    media_duration_s double precision,
    last_event_seq   bigint      NOT NULL DEFAULT 0,
    create_time      timestamptz NOT NULL DEFAULT now(),
    update_time      timestamptz NOT NULL DEFAULT now(),
    start_time       timestamptz,
    end_time         timestamptz
);
-- Idempotent creation (AIP-155): one job per (owner, request_id).
CREATE UNIQUE INDEX jobs_request_idx ON jobs (owner, request_id) WHERE request_id IS NOT NULL;
-- Keyset pagination of a user's jobs, newest first.
CREATE INDEX jobs_owner_list_idx ON jobs (owner, create_time DESC, id DESC);
-- The reconciler looks for unfinished jobs.
CREATE INDEX jobs_active_idx ON jobs (state) WHERE state IN ('QUEUED', 'RUNNING');

-- Ordered, append-only log per job. `event` is a serialized reelscribe.v1.JobEvent,
-- so a replay sends exactly the bytes live subscribers received.
CREATE TABLE job_events (
    job_id       uuid        NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq          bigint      NOT NULL,
    kind         text        NOT NULL,
    terminal     boolean     NOT NULL DEFAULT false,
    create_time  timestamptz NOT NULL DEFAULT now(),
    event        bytea       NOT NULL,
    PRIMARY KEY (job_id, seq)
);

CREATE TABLE transcripts (
    job_id               uuid PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    language             text        NOT NULL,
    language_probability double precision NOT NULL DEFAULT 0,
    duration_s           double precision NOT NULL DEFAULT 0,
    text                 text        NOT NULL,
    model                text        NOT NULL,
    create_time          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE segments (
    job_id                  uuid    NOT NULL REFERENCES transcripts (job_id) ON DELETE CASCADE,
    idx                     integer NOT NULL,
    start_s                 double precision NOT NULL,
    end_s                   double precision NOT NULL,
    text                    text    NOT NULL,
    confidence              double precision NOT NULL DEFAULT 0,
    avg_logprob             double precision NOT NULL DEFAULT 0,
    no_speech_prob          double precision NOT NULL DEFAULT 0,
    low_confidence          boolean NOT NULL DEFAULT false,
    suspected_hallucination boolean NOT NULL DEFAULT false,
    PRIMARY KEY (job_id, idx)
);

CREATE TABLE words (
    job_id       uuid    NOT NULL,
    segment_idx  integer NOT NULL,
    idx          integer NOT NULL,
    start_s      double precision NOT NULL,
    end_s        double precision NOT NULL,
    text         text    NOT NULL,
    probability  double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, segment_idx, idx),
    FOREIGN KEY (job_id, segment_idx) REFERENCES segments (job_id, idx) ON DELETE CASCADE
);
