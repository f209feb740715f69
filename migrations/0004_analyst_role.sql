-- 0004: a read-only role for analysts (NOLOGIN: grant it to login roles).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'evs_analyst') THEN
        CREATE ROLE evs_analyst NOLOGIN;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA evs TO evs_analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA evs TO evs_analyst;
GRANT EXECUTE ON FUNCTION evs.state_at(text, timestamptz) TO evs_analyst;
ALTER DEFAULT PRIVILEGES IN SCHEMA evs GRANT SELECT ON TABLES TO evs_analyst;
