-- Library search: passages (segments and short windows of consecutive
-- segments) with a full-text vector and a sentence embedding.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE search_passages (
    job_id          uuid        NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    idx             integer     NOT NULL,
    owner           text        NOT NULL,
    language        text        NOT NULL,
    job_create_time timestamptz NOT NULL,
    start_s         double precision NOT NULL,
    end_s           double precision NOT NULL,
    text            text        NOT NULL,
    tsv             tsvector    GENERATED ALWAYS AS (to_tsvector('english', text)) STORED,
    embedding       vector(384) NOT NULL,
    PRIMARY KEY (job_id, idx)
);
CREATE INDEX search_passages_tsv_idx ON search_passages USING gin (tsv);
CREATE INDEX search_passages_embedding_idx ON search_passages
    USING hnsw (embedding vector_cosine_ops);
CREATE INDEX search_passages_owner_idx ON search_passages (owner, job_create_time);
