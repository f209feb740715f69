-- 0001: the projector's bookkeeping: one checkpoint per projection, and the
-- dead-letter table for events a projection's SQL failed on.
CREATE TABLE evs.checkpoints (
    projection  text PRIMARY KEY,
    position    bigint NOT NULL DEFAULT 0 CHECK (position >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE evs.dead_letters (
    id          bigserial PRIMARY KEY,
    projection  text NOT NULL,
    position    bigint NOT NULL,
    stream      text NOT NULL,
    type        text NOT NULL,
    event       jsonb NOT NULL,
    sqlstate    text,
    error       text NOT NULL,
    parked_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (projection, position)
);
