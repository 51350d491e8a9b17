-- What a web page said about its media (title, uploader, claimed length,
-- chapters), for URL jobs whose URL is a page (reelscribe.pages); NULL otherwise.
ALTER TABLE jobs ADD COLUMN source_page jsonb;
