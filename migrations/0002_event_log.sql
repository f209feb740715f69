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
CREATE UNIQUE INDEX events_stream_version ON evs.events (stream, version);
