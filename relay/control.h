/*
 * control.h - what evs-relay and "evs relay" share: the names and values
 * of a sink's records in the store's checkpoints (evs_checkpoint_*), so
 * an operator sees and changes a sink's state through the store while the
 * daemon runs, from any process on the host.
 *
 * Records of sink NAME (names: 1..RLY_MAX_SINK_NAME of [A-Za-z0-9._-]):
 *
 *   relay/NAME             the position up to which the sink acknowledged
 *                          every event that passes its filter (the daemon
 *                          is its only writer, besides a reset it applies)
 *   relay/NAME#state       low byte: RLY_RUNNING, RLY_PAUSED or RLY_DEAD;
 *                          bits 8..23: a detail (the HTTP status that
 *                          disabled a webhook, 410); absent = running
 *   relay/NAME#reset       the position a requested reset goes back (or on) to
 *   relay/NAME#reset-seq   requests made (incremented by "evs relay reset"
 *                          after it wrote #reset)
 *   relay/NAME#reset-done  the request the daemon applied last
 *
 * A reset is a request, not a write of relay/NAME, so that it never races
 * the daemon's own checkpoint writes: the daemon sees reset-seq differ
 * from reset-done, moves its position to #reset, writes relay/NAME and
 * then reset-done. A daemon that is not running applies it when it starts.
 */
#ifndef RLY_CONTROL_H
#define RLY_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evstore.h"

#define RLY_MAX_SINK_NAME 64
#define RLY_KEY_MAX       (RLY_MAX_SINK_NAME + 32)

enum rly_state { RLY_RUNNING = 0, RLY_PAUSED = 1, RLY_DEAD = 2 };

/* The state's word ("running", "paused", "dead"). */
const char *rly_state_name(int state);
/* Is name a valid sink name? If not, *why says why. */
bool rly_sink_name_ok(const char *name, const char **why);
/* "relay/NAME" + suffix ("" or "#state", ...) into out[RLY_KEY_MAX]. */
void rly_key(char out[RLY_KEY_MAX], const char *sink, const char *suffix);

typedef struct rly_control {
	bool exists;       /* relay/NAME is there (the sink has run) */
	uint64_t position; /* relay/NAME */
	int state;         /* enum rly_state */
	unsigned detail;
	uint64_t reset_to, reset_seq, reset_done;
} rly_control;

/* Read a sink's records: EVS_OK or the store's failure code. */
int rly_control_read(evs_store *store, const char *sink, rly_control *c);
/* Write #state. */
int rly_control_set_state(evs_store *store, const char *sink, int state, unsigned detail);
/* Request a reset to position (what "evs relay reset --to" does). */
int rly_control_request_reset(evs_store *store, const char *sink, uint64_t position);

#endif
