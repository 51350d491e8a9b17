-- Languages per segment, assumed languages and job warnings (issue 15).
--
-- Each segment carries the language detected in its window and the model's
-- probability of it (0 when requested or assumed, never invented), and
-- whether an English-only model probably heard another language there.
ALTER TABLE chunk_segments
    ADD COLUMN language                 text             NOT NULL DEFAULT '',
    ADD COLUMN language_probability     double precision NOT NULL DEFAULT 0,
    ADD COLUMN other_language_suspected boolean          NOT NULL DEFAULT false;

ALTER TABLE segments
    ADD COLUMN language                 text             NOT NULL DEFAULT '',
    ADD COLUMN language_probability     double precision NOT NULL DEFAULT 0,
    ADD COLUMN other_language_suspected boolean          NOT NULL DEFAULT false;

-- `languages`: [{"language": "de", "share": 0.6}, ...], largest first.
ALTER TABLE transcripts
    ADD COLUMN language_assumed boolean NOT NULL DEFAULT false,
    ADD COLUMN languages        jsonb   NOT NULL DEFAULT '[]';

-- `warnings`: [{"code": "OTHER_LANGUAGE_SUSPECTED", "message": "..."}, ...].
ALTER TABLE jobs ADD COLUMN warnings jsonb NOT NULL DEFAULT '[]';
