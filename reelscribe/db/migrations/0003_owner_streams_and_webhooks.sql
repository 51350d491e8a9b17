-- A per-owner event order (for WatchJobs) and webhook deliveries.

-- One counter row per owner. Taking the next number locks the row until the
-- event's transaction commits, so numbers are handed out in commit order and
-- a reader that has seen N has seen everything below N.
CREATE TABLE owner_event_counters (
    owner     text   PRIMARY KEY,
    last_seq  bigint NOT NULL
);

ALTER TABLE job_events ADD COLUMN owner text;
ALTER TABLE job_events ADD COLUMN owner_seq bigint;
UPDATE job_events e SET owner = j.owner FROM jobs j WHERE j.id = e.job_id;
CREATE UNIQUE INDEX job_events_owner_seq_idx ON job_events (owner, owner_seq)
    WHERE owner_seq IS NOT NULL;

-- Outbox of webhook POSTs: written in the event's transaction, sent by workers.
CREATE TABLE webhook_deliveries (
    id              bigserial   PRIMARY KEY,
    job_id          uuid        NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    event_seq       bigint      NOT NULL,
    url             text        NOT NULL,
    body            bytea       NOT NULL,
    state           text        NOT NULL DEFAULT 'PENDING',
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    create_time     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (job_id, event_seq)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE state = 'PENDING';

-- Every attempt, for the owner to read (ListWebhookDeliveries).
CREATE TABLE webhook_attempts (
    delivery_id  bigint      NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt      integer     NOT NULL,
    time         timestamptz NOT NULL DEFAULT now(),
    http_status  integer     NOT NULL DEFAULT 0,
    delivered    boolean     NOT NULL,
    error        text        NOT NULL DEFAULT '',
    PRIMARY KEY (delivery_id, attempt)
);
