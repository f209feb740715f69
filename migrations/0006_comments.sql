-- 0006: COMMENT ON every built-in table, column and function, so that an
-- analyst's \d+ and any SQL client's catalogue browser explain them.
-- (0005 was the bank example's tables until issue 10; it now lives with
-- the example, examples/bank/migrations/, and databases that applied it
-- keep it.)
COMMENT ON SCHEMA evs IS 'evstore''s built-in read models and the projector''s bookkeeping';

COMMENT ON TABLE evs.checkpoints IS 'Per projection, the global position of the last event it applied (advanced in the transaction of its batch)';
COMMENT ON COLUMN evs.checkpoints.projection IS 'projection name (a declared projection''s "projection" line, or builtin)';
COMMENT ON COLUMN evs.checkpoints.position IS 'global position of the last applied event; 0 before the first';
COMMENT ON COLUMN evs.checkpoints.updated_at IS 'when the projector last advanced it (PostgreSQL''s clock)';

COMMENT ON TABLE evs.dead_letters IS 'Events a declared projection could not apply, parked with the error (projector --dead-letter)';
COMMENT ON COLUMN evs.dead_letters.id IS 'row id, in parking order';
COMMENT ON COLUMN evs.dead_letters.projection IS 'projection that failed on the event';
COMMENT ON COLUMN evs.dead_letters.position IS 'global position of the event';
COMMENT ON COLUMN evs.dead_letters.stream IS 'stream of the event';
COMMENT ON COLUMN evs.dead_letters.type IS 'event type';
COMMENT ON COLUMN evs.dead_letters.event IS 'the event: position, version, type_version, data and metadata as JSON';
COMMENT ON COLUMN evs.dead_letters.sqlstate IS 'SQLSTATE of the failure, if PostgreSQL gave one';
COMMENT ON COLUMN evs.dead_letters.error IS 'PostgreSQL''s message';
COMMENT ON COLUMN evs.dead_letters.parked_at IS 'when it was parked (PostgreSQL''s clock)';

COMMENT ON TABLE evs.events IS 'Every event of the store, one row per global position';
COMMENT ON COLUMN evs.events.position IS 'global position: gap-free, strictly increasing, assigned at commit';
COMMENT ON COLUMN evs.events.stream IS 'stream (entity) id';
COMMENT ON COLUMN evs.events.version IS '1-based version of the event in its stream';
COMMENT ON COLUMN evs.events.type IS 'event type name';
COMMENT ON COLUMN evs.events.type_version IS 'schema version of the event type';
COMMENT ON COLUMN evs.events.recorded_at IS 'store commit time, truncated to microseconds; non-decreasing in position order';
COMMENT ON COLUMN evs.events.recorded_at_ns IS 'store commit time in nanoseconds since the Unix epoch';
COMMENT ON COLUMN evs.events.occurred_at IS 'producer (business) time, when the producer gave one';
COMMENT ON COLUMN evs.events.event_id IS 'event id, the idempotency key of appends and of every consumer';
COMMENT ON COLUMN evs.events.correlation_id IS 'correlation id (tracing), if any';
COMMENT ON COLUMN evs.events.causation_id IS 'causation id (tracing), if any';
COMMENT ON COLUMN evs.events.metadata IS 'metadata as JSON';
COMMENT ON COLUMN evs.events.data IS 'payload as JSON';

COMMENT ON TABLE evs.state IS 'Generic merge-patch state per stream: the RFC 7386 fold of its events'' payloads (a convenience, not the domain''s state: see the declared projections)';
COMMENT ON COLUMN evs.state.stream IS 'stream id';
COMMENT ON COLUMN evs.state.data IS 'merge-patch fold of the stream''s payloads';
COMMENT ON COLUMN evs.state.version IS 'version of the stream''s last event';
COMMENT ON COLUMN evs.state.position IS 'global position of the stream''s last event';
COMMENT ON COLUMN evs.state.updated_at IS 'recorded_at of the stream''s last event';

COMMENT ON TABLE evs.state_history IS 'The generic merge-patch state of each stream after every event, with its validity [valid_from, valid_to)';
COMMENT ON COLUMN evs.state_history.stream IS 'stream id';
COMMENT ON COLUMN evs.state_history.version IS 'version of the event that made this state';
COMMENT ON COLUMN evs.state_history.position IS 'global position of the event that made this state';
COMMENT ON COLUMN evs.state_history.valid_from IS 'recorded_at of the event that made this state';
COMMENT ON COLUMN evs.state_history.valid_to IS 'recorded_at of the stream''s next event; NULL while current';
COMMENT ON COLUMN evs.state_history.data IS 'merge-patch fold of the stream''s payloads up to this event';

COMMENT ON FUNCTION evs.state_at(text, timestamptz) IS 'Generic merge-patch state of a stream as of a time; NULL before its first event';

COMMENT ON TABLE evs.schema_migrations IS 'Migrations applied to this database, by the runner (evs migrate, the projector at start)';
COMMENT ON COLUMN evs.schema_migrations.version IS 'NNNN of the file NNNN_name.sql';
COMMENT ON COLUMN evs.schema_migrations.name IS 'name of the file without NNNN_ and .sql';
COMMENT ON COLUMN evs.schema_migrations.checksum IS 'hex SHA-256 of the file''s bytes when applied; an edited file is refused';
COMMENT ON COLUMN evs.schema_migrations.applied_at IS 'when it was applied (PostgreSQL''s clock)';
