-- 0100: the employee directory's table (examples/employees, declared in
-- employees.projection). An example's migration, applied only when asked:
--   evs migrate --migrations examples/employees/migrations
-- Numbered after the product's own so that both runs apply in order.
CREATE SCHEMA employees;

CREATE TABLE employees.staff (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    role        text NOT NULL,
    address     text NOT NULL,
    joined_at   timestamptz NOT NULL,
    version     bigint NOT NULL
);

COMMENT ON SCHEMA employees IS 'the employee directory of examples/employees';
COMMENT ON TABLE employees.staff IS
  'current employees: one row per employee stream (employee-<name>), deleted when they leave';
COMMENT ON COLUMN employees.staff.id IS 'the employee''s stream id';
COMMENT ON COLUMN employees.staff.name IS 'name, as of the last NameChanged';
COMMENT ON COLUMN employees.staff.role IS 'role, as of the last RoleChanged';
COMMENT ON COLUMN employees.staff.address IS 'address, as of the last AddressChanged';
COMMENT ON COLUMN employees.staff.joined_at IS 'recorded_at of EmployeeJoined';
COMMENT ON COLUMN employees.staff.version IS 'stream version of the last event applied';

GRANT USAGE ON SCHEMA employees TO evs_analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA employees TO evs_analyst;
