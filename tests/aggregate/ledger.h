/*
 * ledger.h - the test aggregate of the aggregate suites, on the public API.
 *
 * A ledger stream holds "Added" / "Taken" events, data {"c": command id,
 * "d": delta}, and decisions may add "Noted" events {"c": id} that change
 * no balance. Any other type is folded into the hash only. The state:
 *
 *   balance  sum of deltas
 *   count    events folded
 *   hash     FNV-1a over (version, type, data) of every event, in order:
 *            two states are equal only if they folded the same history
 *   cmds     ids of the commands whose first event was folded, in order
 *            (owned memory, so release and snapshots matter)
 *
 * Snapshots: msgpack [balance, count, hash, [cmds...]], format version set
 * per definition (tests use 1 and 2 to make snapshots unusable).
 */
#ifndef LEDGER_H
#define LEDGER_H

#include <stdbool.h>
#include <stdint.h>

#include "evstore.h"

typedef struct ledger {
	int64_t balance;
	uint64_t count;
	uint64_t hash;
	uint64_t *cmds;
	size_t ncmds, capcmds;
} ledger;

typedef struct ledger_cmd {
	uint64_t id;                                /* command id, > 0 */
	int64_t delta;                              /* > 0: Added; < 0: Taken, rejected if the
	                          balance would go below 0 */
	unsigned notes;                             /* extra "Noted" events in the same decision */
	bool fixed_ids;                             /* event ids derived from id (idempotent) */
	int fail;                                   /* non-zero: decide returns this code */
	int (*hook)(void *ctx, const ledger *seen); /* called first by each
	                                                 decide; non-zero is
	                                                 returned by decide */
	void *hook_ctx;
	size_t big; /* > 0: the first event's data gets a blob */
} ledger_cmd;

/* def: name "test.ledger"; snapshots when every > 0 or fmt > 0 (fmt 0 =
 * no snapshot functions at all). */
void ledger_def(evs_aggregate_def *def, uint64_t every, uint32_t fmt);

/* States equal (balance, count, hash, cmds). */
bool ledger_equal(const ledger *a, const ledger *b);
/* A short description for messages. */
const char *ledger_str(const ledger *l, char *buf, size_t len);

/* Event id of the command's i-th event when fixed_ids. */
void ledger_event_id(uint8_t id[16], uint64_t cmd, unsigned i);

/* Fold one stored event into a plain ledger (what apply does). */
int ledger_fold(ledger *l, const evs_event *ev);
void ledger_free(ledger *l);

/* Read the command id ("c") and delta ("d") of an event's data. */
bool ledger_event_fields(const evs_event *ev, uint64_t *cmd, int64_t *delta);

#endif
