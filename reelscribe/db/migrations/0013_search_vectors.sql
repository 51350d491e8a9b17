-- Semantic search in a large library: a narrow copy of the passages' vectors.
--
-- The HNSW index covers the whole library; one owner's nearest passages were
-- found by walking it and dropping other owners' rows, which for a heavy owner
-- was slow and missed most of the true neighbours (BENCHMARKS.md, bench.search).
-- search_vectors holds, per passage, what semantic search filters on (owner,
-- job, language, time), a 2-bit code of each dimension (`code`, 144 bytes,
-- see search_vector_code) and the embedding at half precision (`half`, 768
-- bytes, under half a passage row), kept equal to search_passages by the
-- trigger below and the foreign key's cascade. reelscribe/db/search_vectors.py
-- reads it for libraries over SCAN_MAX_PASSAGES: the owner's codes, closest
-- by Hamming distance, through the index below alone; those candidates
-- re-ranked by cosine of the half-precision vectors; the best of them by the
-- exact cosine of the passages' own embeddings, which is the score returned.

-- Each dimension as one of four levels, split at -t, 0 and t, written as a
-- thermometer code (below -t: 000, below 0: 001, below t: 011, above: 111) in
-- three 384-bit runs, so that the Hamming distance between two codes is the
-- sum over dimensions of how many levels apart they are: an L1 distance of
-- the quantized vectors. t = 0.0345 is the median magnitude of a component
-- of a normalised all-MiniLM-L6-v2 embedding (measured on bench.search's
-- library), so the four levels are about equally full. Against the sign alone
-- (pgvector's binary_quantize, one bit a dimension) it found the true 50
-- nearest among 1,000 candidates 99.8 % of the time instead of 90 %
-- (bench.search's heavy user, 10 queries), for a scan that takes about as long.
CREATE FUNCTION search_vector_code(embedding vector) RETURNS bit(1152)
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT (binary_quantize(embedding + array_fill(0.0345::real, ARRAY[384])::vector)::bit(384)
        || binary_quantize(embedding)::bit(384)
        || binary_quantize(embedding - array_fill(0.0345::real, ARRAY[384])::vector)::bit(384)
        )::bit(1152) $$;

CREATE TABLE search_vectors (
    job_id          uuid         NOT NULL,
    idx             integer      NOT NULL,
    owner           text         NOT NULL,
    language        text         NOT NULL,
    job_create_time timestamptz  NOT NULL,
    code            bit(1152)    NOT NULL,
    half            halfvec(384) NOT NULL,
    PRIMARY KEY (job_id, idx),
    FOREIGN KEY (job_id, idx) REFERENCES search_passages (job_id, idx) ON DELETE CASCADE
);

CREATE FUNCTION search_vectors_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO search_vectors (job_id, idx, owner, language, job_create_time, code, half)
    VALUES (NEW.job_id, NEW.idx, NEW.owner, NEW.language, NEW.job_create_time,
        search_vector_code(NEW.embedding), NEW.embedding::halfvec(384))
    ON CONFLICT (job_id, idx) DO UPDATE SET owner = EXCLUDED.owner,
        language = EXCLUDED.language, job_create_time = EXCLUDED.job_create_time,
        code = EXCLUDED.code, half = EXCLUDED.half;
    RETURN NULL;
END $$;

CREATE TRIGGER search_vectors_sync AFTER INSERT OR UPDATE ON search_passages
    FOR EACH ROW EXECUTE FUNCTION search_vectors_sync();

INSERT INTO search_vectors (job_id, idx, owner, language, job_create_time, code, half)
    SELECT job_id, idx, owner, language, job_create_time,
        search_vector_code(embedding), embedding::halfvec(384)
    FROM search_passages;

-- An owner's codes and filter columns side by side in index pages, whatever
-- order the rows were written in: the Hamming scan reads about 230 bytes a
-- passage and, once the table is vacuumed, never the table itself.
CREATE INDEX search_vectors_owner_code_idx ON search_vectors (owner)
    INCLUDE (job_id, idx, language, job_create_time, code);
