-- 0005: tables of the example domain's declared projection (bank, see
-- projector/bank.projection): accounts with balances and a ledger of
-- every movement.
CREATE SCHEMA bank;

CREATE TABLE bank.accounts (
    id          text PRIMARY KEY,
    owner       text NOT NULL,
    balance     numeric NOT NULL DEFAULT 0,
    open        boolean NOT NULL DEFAULT true,
    opened_at   timestamptz NOT NULL,
    version     bigint NOT NULL
);

CREATE TABLE bank.ledger (
    position      bigint PRIMARY KEY,
    account       text NOT NULL,
    kind          text NOT NULL,
    amount        numeric NOT NULL,
    counterparty  text,
    recorded_at   timestamptz NOT NULL
);
CREATE INDEX ledger_account ON bank.ledger (account, position);

GRANT USAGE ON SCHEMA bank TO evs_analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA bank TO evs_analyst;
