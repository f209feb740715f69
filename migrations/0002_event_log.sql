-- 0002: the event log read model: every event, data and metadata as jsonb.
-- recorded_at is the store's commit time truncated to microseconds;
-- recorded_at_ns keeps the store's nanoseconds.
CREATE TABLE evs.events (
    position        bigint PRIMARY KEY,
    stream          text COLLATE "C" NOT NULL,
    version         bigint NOT NULL,
    type            text NOT NULL,
    type_version    integer NOT NULL,
    recorded_at     timestamptz NOT NULL,
    recorded_at_ns  bigint NOT NULL,
    occurred_at     timestamptz,
    event_id        uuid NOT NULL,
    correlation_id  uuid,
    causation_id    uuid,
    metadata        jsonb NOT NULL,
    data            jsonb NOT NULL
);
-- Events of one stream: a hash index on stream (then ORDER BY version).
-- The store already guarantees (stream, version) is unique and the
-- position key guards against a batch applied twice; a btree on (stream,
-- version) halved catch-up speed (inserts spread over every stream's
-- leaf page), the hash index costs a quarter of that.
CREATE INDEX events_stream ON evs.events USING hash (stream);
