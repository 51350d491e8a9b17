-- Uploads in progress kept in S3 (reelscribe.s3partials), so any server can
-- resume them: the multipart upload the file is assembled in, the media id
-- (and so the key) it completes at, and the running SHA-256 of the durable
-- bytes; NULL for uploads kept as a partial file on a server's disk.
ALTER TABLE uploads
    ADD COLUMN pending_media_id uuid NOT NULL DEFAULT gen_random_uuid(),
    ADD COLUMN multipart_id text,
    ADD COLUMN hash_state bytea;

-- The durable pieces of such an upload, in file order: multipart parts
-- (part_number, etag) and the small staged objects (object_key) that wait
-- until enough bytes arrived to fold them into a part.
CREATE TABLE upload_pieces (
    owner        text   NOT NULL,
    upload_id    text   NOT NULL,
    offset_bytes bigint NOT NULL,
    size_bytes   bigint NOT NULL,
    part_number  integer,
    etag         text,
    object_key   text,
    PRIMARY KEY (owner, upload_id, offset_bytes),
    FOREIGN KEY (owner, upload_id) REFERENCES uploads (owner, upload_id) ON DELETE CASCADE,
    CHECK ((part_number IS NULL) <> (object_key IS NULL))
);
