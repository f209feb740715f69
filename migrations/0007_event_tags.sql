-- 0007: the envelope's producer and tags (issue 12) in the event log.
-- Both are filled by the projector from the store's record; events
-- projected before this migration keep NULL / '{}' (an event written
-- by a store before format 3 has neither). No index on tags: a GIN
-- index would cost every batch's COPY, and the store answers tag reads
-- from its own index (evs read --tag, evs-query --store /events?tag=);
-- an analyst who filters on tags in SQL may add
--   CREATE INDEX ON evs.events USING gin (tags);
ALTER TABLE evs.events
    ADD COLUMN producer text,
    ADD COLUMN tags text[] NOT NULL DEFAULT '{}';

COMMENT ON COLUMN evs.events.producer IS 'the service that produced the event, if it said; NULL otherwise';
COMMENT ON COLUMN evs.events.tags IS 'the event''s tags, a set in byte order (''{}'' when none)';
