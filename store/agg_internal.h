/*
 * agg_internal.h - what aggregate.c, snapshot.c and merge_patch.c share
 * (evs__ names). Nothing here is part of the public API.
 */
#ifndef EVS_AGG_INTERNAL_H
#define EVS_AGG_INTERNAL_H

#include "decision.h"
#include "internal.h"

/* The growable buffer behind evs_sink_write(); buf.limit bytes at most
 * (set it: 0 would mean the buffer's default). Passing the limit sets
 * too_large; buf.oom then means out of memory only. */
struct evs_sink {
	evs__buf buf;
	bool too_large;
};

/* A definition bound to a store (see evs_aggregate_new). */
struct evs_aggregate {
	evs_store *s;
	evs_aggregate_def def; /* def.name points at name */
	char name[EVS_MAX_NAME + 1];
	size_t name_len;
	bool snapshots; /* the definition can encode and decode */
};

/* ---- aggregate_def.c ------------------------------------------------- */

/* Check def and fill *a (no allocation: the built-in aggregate lives on
 * the stack). */
int evs__aggregate_init(evs_aggregate *a, evs_store *s, const evs_aggregate_def *def);

/* The initial state into state_size bytes (zeroed first). */
int evs__state_init(evs_aggregate *a, void *state);
void evs__state_release(evs_aggregate *a, void *state);

/* ---- snapshot.c --------------------------------------------------------- */

/*
 * Decode the newest usable snapshot of `stream` with version <= max_version
 * into `state` (initialised on entry, and again after any failed decode).
 * *version and *position stay 0 when there is none.
 */
int evs__snapshot_load(evs_aggregate *a, const char *stream, size_t slen, uint64_t max_version,
		       void *state, uint64_t *version, uint64_t *position);

/* Encode `state` (the stream at version/position) and store it in its own
 * durable write transaction. */
int evs__snapshot_store(evs_aggregate *a, const char *stream, size_t slen, uint64_t version,
			uint64_t position, const void *state);

/* ---- merge_patch.c ------------------------------------------------------ */

/* The built-in merge-patch definition (name "evs.merge-patch"). */
extern const evs_aggregate_def evs__merge_patch_def;

/* ---- aggregate.c, for process managers (pm_step.c) -------------------- */

/* A decision outside evs_execute(): new, run decide on a loaded state
 * (EVS_OK with the events, views valid until the next run or destroy;
 * EVS_REJECTED with the reason in *why; or a failure), destroy. */
evs_decision *evs__decision_new(evs_store *s);
void evs__decision_destroy(evs_decision *d);
int evs__decide(evs_aggregate *a, const void *state, const void *command, evs_decision *d,
		const evs_event_in **events, size_t *n, const char **why);

#endif /* EVS_AGG_INTERNAL_H */
