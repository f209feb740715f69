-- 0002: the event log read model: every event, data and metadata as jsonb.
-- recorded_at is the store's commit time truncated to microseconds;
-- recorded_at_ns keeps the store's nanoseconds.
CREATE TABLE evs.events (
    position        bigint PRIMARY KEY,
    stream          text COLLATE "C" NOT NULL,
    version         bigint NOT NULL,
    type            text NOT NULL,
    type_version    bigint NOT NULL,     -- the store's u32
    recorded_at     timestamptz NOT NULL,
    recorded_at_ns  bigint NOT NULL,
    occurred_at     timestamptz,
    event_id        uuid NOT NULL,
    correlation_id  uuid,
    causation_id    uuid,
    metadata        jsonb NOT NULL,
    data            jsonb NOT NULL
);
-- Events of one stream: a plain btree on stream (duplicates are
-- deduplicated into posting lists; within a stream entries follow heap
-- order, i.e. position order, in practice). The store already guarantees
-- (stream, version) unique and the position key guards against a batch
-- applied twice. Measured (bench_projector, 300k events, share of the
-- binary COPY ceiling): no stream index 0.51, btree (stream) 0.38, hash
-- (stream) 0.32, btree (stream, position) 0.28, unique (stream, version)
-- about 0.25.
CREATE INDEX events_stream ON evs.events (stream);
