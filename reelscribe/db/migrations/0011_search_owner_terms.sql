-- Keyword search in a large library: each owner's own posting lists.
--
-- The GIN index on tsv holds one posting list per word across every owner, so
-- a query of common words from an owner with many passages read the whole
-- library's matches (hundreds of thousands of entries at 1,000,000 passages)
-- and intersected them with the owner's rows afterwards. This index keys each
-- lexeme by its owner (md5 of the owner, a fixed 32 characters, then the
-- lexeme), which is what a (owner, tsv) GIN index from btree_gin would do;
-- btree_gin is not part of the embedded Postgres. Queries add
-- `search_owner_terms(owner, tsv) @@ <the owner's prefixed terms>` beside their
-- exact conditions (reelscribe/db/search.py), so the index narrows what is
-- read and never changes a result.
CREATE FUNCTION search_owner_terms(owner text, tsv tsvector) RETURNS tsvector
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT array_to_tsvector(ARRAY(
        SELECT md5(owner) || l FROM unnest(tsvector_to_array(tsv)) AS l)) $$;

CREATE INDEX search_passages_owner_terms_idx ON search_passages
    USING gin (search_owner_terms(owner, tsv));

-- Every keyword query names one owner: libraries up to SCAN_MAX_PASSAGES are
-- read through search_passages_owner_idx, larger ones through the index above,
-- so the library-wide index is no longer used, only written.
DROP INDEX search_passages_tsv_idx;
