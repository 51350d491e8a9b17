-- Keyword top-k in a large library: a narrow copy of the passages' words.
--
-- A passage row carries its 384-dimension embedding inline (about 1.6 kB of
-- its 2 kB), so reading a few thousand passages to rank a common word reads a
-- few thousand pages. search_terms holds what keyword search filters and ranks
-- on (owner, job, language, time, tsvector; about 200 bytes a row), kept equal
-- to search_passages by the trigger below and the foreign key's cascade.
-- reelscribe/db/search_topk.py reads it for libraries over SCAN_MAX_PASSAGES
-- and fetches text and times only for the rows it returns.
CREATE TABLE search_terms (
    job_id          uuid        NOT NULL,
    idx             integer     NOT NULL,
    owner           text        NOT NULL,
    language        text        NOT NULL,
    job_create_time timestamptz NOT NULL,
    tsv             tsvector    NOT NULL,
    PRIMARY KEY (job_id, idx),
    FOREIGN KEY (job_id, idx) REFERENCES search_passages (job_id, idx) ON DELETE CASCADE
);

CREATE FUNCTION search_terms_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO search_terms (job_id, idx, owner, language, job_create_time, tsv)
    VALUES (NEW.job_id, NEW.idx, NEW.owner, NEW.language, NEW.job_create_time, NEW.tsv)
    ON CONFLICT (job_id, idx) DO UPDATE SET owner = EXCLUDED.owner,
        language = EXCLUDED.language, job_create_time = EXCLUDED.job_create_time,
        tsv = EXCLUDED.tsv;
    RETURN NULL;
END $$;

CREATE TRIGGER search_terms_sync AFTER INSERT OR UPDATE ON search_passages
    FOR EACH ROW EXECUTE FUNCTION search_terms_sync();

INSERT INTO search_terms (job_id, idx, owner, language, job_create_time, tsv)
    SELECT job_id, idx, owner, language, job_create_time, tsv FROM search_passages;

-- Each owner's words, as migration 0011 keys them (search_owner_terms).
CREATE INDEX search_terms_owner_terms_idx ON search_terms
    USING gin (search_owner_terms(owner, tsv));

-- Each owner's repeated words. A passage's ts_rank_cd for the query's terms
-- OR-ed is at most 0.1 for each position where a query term occurs (generated
-- tsvectors carry only the default weight D, 0.1), so passages in which no
-- query term occurs twice score at most 0.1 per distinct query term they
-- hold; the passages with a repeated query term are found here and ranked
-- apart (search_topk.py).
CREATE FUNCTION search_owner_repeats(owner text, tsv tsvector) RETURNS tsvector
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT array_to_tsvector(ARRAY(
        SELECT md5(owner) || u.lexeme FROM unnest(tsv) AS u
        WHERE cardinality(u.positions) > 1)) $$;

CREATE INDEX search_terms_owner_repeats_idx ON search_terms
    USING gin (search_owner_repeats(owner, tsv));

-- Ranking ties are broken by (job_id, idx): a tier of a common word is read in
-- that order and stops after the rows it needs.
CREATE INDEX search_terms_owner_key_idx ON search_terms (owner, job_id, idx);
