-- 0003: current entity state per stream (the JSON merge patch fold of the
-- stream's events' data) and its history with validity intervals
-- [valid_from, valid_to); valid_to is NULL for the current state.
CREATE TABLE evs.state (
    stream      text COLLATE "C" PRIMARY KEY,
    data        jsonb NOT NULL,
    version     bigint NOT NULL,
    position    bigint NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE TABLE evs.state_history (
    stream      text COLLATE "C" NOT NULL,
    version     bigint NOT NULL,
    position    bigint NOT NULL,
    valid_from  timestamptz NOT NULL,
    valid_to    timestamptz,
    data        jsonb NOT NULL
);
-- The key, and "state of S at T" as one backward scan of it: the row with
-- the greatest (valid_from, version) at or before T. (version alone is
-- unique per stream too; valid_from never decreases as it grows, so one
-- index serves both and the projector's writes maintain only this one.)
CREATE UNIQUE INDEX state_history_at ON evs.state_history (stream, valid_from, version);

-- The state of a stream as of a time: NULL if it had no events then.
CREATE FUNCTION evs.state_at(p_stream text, p_at timestamptz)
RETURNS jsonb LANGUAGE sql STABLE STRICT AS $$
    SELECT h.data FROM evs.state_history h
     WHERE h.stream = p_stream AND h.valid_from <= p_at
     ORDER BY h.valid_from DESC, h.version DESC
     LIMIT 1
$$;
