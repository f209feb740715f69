/*
 * decision.h - the one core behind evs_execute() (aggregate.c, a stream's
 * version guards the decision), evs_decide() (decide.c, a query's
 * condition guards it) and the process manager's step (pm_exec.c, one
 * decide per command): the decision a decide callback fills, its verdict,
 * and the rounds decide -> append -> (lost) catch up -> decide again.
 * evs__ names; nothing here is public.
 */
#ifndef EVS_DECISION_H
#define EVS_DECISION_H

#include "internal.h"

/* What one decide callback answered: the events it emitted (each copied
 * into its own block: stream, type, producer, tags, then data and
 * metadata) or a rejection. evs_decision (aggregates) is this struct;
 * evs_dcb_decision wraps it. */
struct evs_decision {
	evs_store *s;
	evs_event_in *events;
	const char **streams; /* per event: its stream, NULL when emitted
	                         without one (aggregates: the command's) */
	void **blocks;
	size_t n, cap;
	bool rejected;
	int emit_rc; /* last failure of an emit, EVS_OK if none */
	char msg[512];
};

/* Empty d for another round (the store stays). */
void evs__decision_reset(evs_decision *d);
/* Free what d holds (d itself is the caller's). */
void evs__decision_free(evs_decision *d);

/* Copy one event (stream may be NULL) into d; a failure is also kept in
 * d->emit_rc. EVS_OK, EVS_INVALID, EVS_BAD_TYPE, EVS_EVENT_TOO_LARGE,
 * EVS_BATCH_TOO_LARGE or EVS_NOMEM, with the message set. */
int evs__decision_emit(evs_decision *d, const char *stream, const evs_event_in *ev);
/* Record a rejection (message NULL or empty: "command rejected"). */
int evs__decision_reject(evs_decision *d, const char *message);

/* The verdict on decide's return code rc: EVS_OK (d->events are to be
 * appended; none: nothing to do), EVS_REJECTED (d->msg says why: decide's
 * message, else "command rejected"), decide's own failure ("<who>: decide
 * failed: ..." unless an emit already said why), or the failure of an
 * emit that decide did not pass on (a decision is never appended in
 * part). */
int evs__decision_verdict(evs_decision *d, int rc, const char *who);

/*
 * The rounds: decide (the verdict above), append, and when the append
 * lost to another writer (it returned conflict_rc) catch the state up
 * with just what won and decide again, at most max rounds. backoff: from
 * the third round on, a short random pause before deciding again (a
 * back-off, not a synchronisation). The callbacks are the caller's, with
 * its state in ctx; a rejection's message is set on the store. Returns
 * the last round's outcome; *attempts counts the rounds.
 */
typedef struct evs__rounds {
	evs_decision *d;
	unsigned max;
	int conflict_rc; /* EVS_WRONG_VERSION or EVS_CONDITION_FAILED */
	bool backoff;
	const char *who; /* names the decider in messages */
	void *ctx;
	int (*decide)(void *ctx, evs_decision *d);
	int (*append)(void *ctx, evs_decision *d);
	int (*catch_up)(void *ctx);
} evs__rounds;

int evs__rounds_run(const evs__rounds *r, unsigned *attempts);

/* Sleep a random time of up to 100 us << round (round capped at 7), at
 * most cap_us (the back-off between conflicting rounds). */
void evs__backoff(unsigned round, uint64_t cap_us);

#endif /* EVS_DECISION_H */
