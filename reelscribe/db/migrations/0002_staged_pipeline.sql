-- The staged pipeline: speech regions, chunks transcribed in parallel, the
-- transcript cache key, and broker bookkeeping for the reconciler.

ALTER TABLE media ADD COLUMN duration_s double precision;
ALTER TABLE media ADD COLUMN format_name text;

-- Speech and silence regions of a job's audio (from VAD), in time order.
CREATE TABLE speech_regions (
    job_id     uuid    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    idx        integer NOT NULL,
    start_s    double precision NOT NULL,
    end_s      double precision NOT NULL,
    is_speech  boolean NOT NULL,
    PRIMARY KEY (job_id, idx)
);

-- Stretches of audio, cut at silences, each transcribed by one message.
CREATE TABLE chunks (
    job_id      uuid    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    idx         integer NOT NULL,
    start_s     double precision NOT NULL,
    end_s       double precision NOT NULL,
    state       text    NOT NULL DEFAULT 'PENDING',
    attempts    integer NOT NULL DEFAULT 0,
    message_id  text,
    PRIMARY KEY (job_id, idx)
);

-- Results of one chunk, on the original timeline, until the merge.
CREATE TABLE chunk_segments (
    job_id            uuid    NOT NULL,
    chunk_idx         integer NOT NULL,
    idx               integer NOT NULL,
    start_s           double precision NOT NULL,
    end_s             double precision NOT NULL,
    text              text    NOT NULL,
    avg_logprob       double precision NOT NULL,
    no_speech_prob    double precision NOT NULL,
    compression_ratio double precision NOT NULL,
    words             jsonb   NOT NULL,
    PRIMARY KEY (job_id, chunk_idx, idx),
    FOREIGN KEY (job_id, chunk_idx) REFERENCES chunks (job_id, idx) ON DELETE CASCADE
);

-- Language detected per chunk (the merge takes the longest-speech vote).
ALTER TABLE chunks ADD COLUMN language text;
ALTER TABLE chunks ADD COLUMN language_probability double precision;

-- Identical media + model + options → same key; scoped to the owner.
ALTER TABLE transcripts ADD COLUMN cache_key text;
CREATE INDEX transcripts_cache_idx ON transcripts (cache_key);

-- The broker message a job currently waits on (prepare or merge), so the
-- reconciler can tell a lost message from a slow one.
ALTER TABLE jobs ADD COLUMN pending_message_id text;
