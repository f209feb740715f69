/*
 * model.h - random histories for the postgres suite and the reference
 * check of the built-in read models against a fold of the store.
 */
#ifndef PG_MODEL_H
#define PG_MODEL_H

#include <stdint.h>

#include <libpq-fe.h>

#include "evstore.h"

/* Append about n events in random batches to random streams (some with
 * tabs, quotes, backslashes and non-ASCII in their names), with random
 * merge-patch payloads (nested maps, removals, arrays, floats, strings
 * with every escape). */
void model_generate(evs_store *store, uint64_t *rng, int n);
/* Append n bank events (AccountOpened once per account, then deposits,
 * withdrawals and transfers with integer amounts). */
void model_generate_bank(evs_store *store, uint64_t *rng, int n, int accounts);

/* Fail the test unless evs.events, evs.state, evs.state_history and
 * evs.state_at() equal the store (the reference fold is
 * evs_state_load()). */
void model_check_builtin(PGconn *c, evs_store *store, uint64_t *rng);

/* Text of a query's whole result (rows in the query's order), to compare
 * two databases. malloc'd. */
char *model_dump(PGconn *c, const char *sql);

/* Open (creating) a store in dir, durable sync off for speed. */
evs_store *model_open(const char *dir);

#endif
