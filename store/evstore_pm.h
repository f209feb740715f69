/*
 * evstore_pm.h - process managers (sagas) on libevstore (issue 14).
 *
 * A separate public header beside evstore.h, in the same library: process
 * managers are a layer on top of the aggregate API and of evs_append_ex(),
 * used by few programs; evstore.h stays the store's contract. Same
 * conventions as evstore.h (return codes, ownership, strings).
 *
 * A process manager reacts to events of the log and drives aggregates
 * through commands. Its definition is pure callbacks, no I/O inside:
 *
 *   correlate  event -> start / continue / ignore, and the instance id
 *   decide     state + input (an event, a due timer, a rejection of one of
 *              its commands) -> its own events, commands to aggregates,
 *              timers to set or cancel, compensation, completion
 *   evolve     state + one of its own events -> state
 *
 * State is a stream per instance, "pm:<manager>-<instance>", holding the
 * manager's own events and the library's: pm.Started, pm.CommandIssued,
 * pm.CommandRejected, pm.TimerSet, pm.TimerCancelled, pm.TimerFired,
 * pm.Compensating, pm.Completed, pm.Failed, pm.Parked (formats in
 * store/pm_inst.c). Its history is read, replayed and queried as of a time
 * with the ordinary stream calls.
 *
 * One step = one evs_append_ex(): the instance's events (expected version),
 * the events every command produced on its aggregate (each loaded, decided
 * by the aggregate's own decide(), and appended expecting the loaded
 * version), timer rows set or removed and the runner's checkpoint as
 * checkpoint writes: all of it or none of it, in one group commit.
 * Every event of a step has an id derived from (manager, instance, input,
 * index), its correlation id is the input's (or, when the input has none,
 * one derived from the instance) and its causation id is the input event's
 * id; each instance event records the input position, and an input at or
 * before the last recorded one is skipped, so a step re-entered after a
 * crash or a rewound checkpoint is a no-op.
 *
 * Rejection: a command its aggregate rejects is recorded (pm.CommandRejected)
 * and handed back to decide() as an EVS_PM_REJECTION input in the same step;
 * decide() may call evs_pm_compensate(), which issues the undo commands
 * recorded with the earlier accepted commands, newest first.
 * Failure: a version conflict retries the whole step with a bounded
 * back-off; a step that keeps failing (conflicts, a callback's failure, an
 * aggregate that fails) parks its instance: later inputs of that instance
 * wait, other instances go on. evs_pm_resume() (or `evs pm resume`) asks the
 * runner to replay its inputs from where it parked.
 *
 * Timers: rows in the store's checkpoints named
 *   pm/<manager>/timer/<due: 16 hex digits>/<instance>/<timer>
 * so that evs_checkpoint_list() walks them in due order. A due timer is an
 * EVS_PM_TIMER input of an ordinary step, which removes its row: it fires
 * once in effect, after restarts too. A finished instance (completed or
 * failed) loses its timers and ignores late events and timers.
 *
 * Checkpoints of a runner: pm/<manager>/pos/<partitions>.<partition>; a
 * parked instance: pm/<manager>/parked/<instance> (the input position it
 * stopped at); a resume request: pm/<manager>/resume/<instance>. They are
 * the manager's own: rebuilding a read model never re-runs a manager.
 */
#ifndef EVSTORE_PM_H
#define EVSTORE_PM_H

#include <evstore.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EVS_PM_MAX_NAME     32  /* manager and timer names: [a-z0-9_.], timers also [A-Z] */
#define EVS_PM_MAX_INSTANCE 128 /* instance ids: UTF-8 without NUL or '/' */
#define EVS_PM_MAX_COMMANDS 16  /* commands of one step (all rounds) */
#define EVS_PM_MAX_TIMERS   16  /* active timers of one instance */
#define EVS_PM_MAX_ROUNDS   8   /* rejection rounds of one step */

/*
 * A command as an aggregate commanded by a process manager receives it:
 * its decide() gets a `const evs_command *` as `command`. The same shape
 * serves services calling evs_execute() on such an aggregate directly.
 */
typedef struct evs_command {
	const char *type; /* required, 1..EVS_MAX_NAME bytes ("ReserveStock") */
	const void *data; /* msgpack map; NULL = empty map */
	size_t data_len;
} evs_command;

enum evs_pm_route { EVS_PM_IGNORE = 0, EVS_PM_START = 1, EVS_PM_CONTINUE = 2 };
enum evs_pm_input_kind { EVS_PM_EVENT = 1, EVS_PM_TIMER = 2, EVS_PM_REJECTION = 3 };
enum evs_pm_status {
	EVS_PM_NEW = 0,          /* not started */
	EVS_PM_RUNNING = 1,      /* started */
	EVS_PM_COMPENSATING = 2, /* evs_pm_compensate() was called */
	EVS_PM_COMPLETED = 3,    /* finished: evs_pm_complete() */
	EVS_PM_FAILED = 4        /* finished: evs_pm_fail() */
};

/* What decide() is asked about. Views valid during the call. */
typedef struct evs_pm_input {
	int kind;             /* enum evs_pm_input_kind */
	int status;           /* enum evs_pm_status of the instance */
	int64_t now;          /* the runner's clock (ns since the epoch) */
	const char *instance; /* the instance id */
	/* EVS_PM_EVENT: the event of the log */
	const evs_event *event;
	/* EVS_PM_TIMER: the timer's name and due time */
	const char *timer;
	int64_t due;
	/* EVS_PM_REJECTION: the rejected command, its target, the reason */
	const char *aggregate;
	const char *stream;
	const evs_command *command;
	const char *reason;
} evs_pm_input;

/* What decide() answers, filled through the calls below; they copy their
 * inputs and return EVS_OK, EVS_INVALID (the message says why; decide
 * should return that code) or EVS_NOMEM. */
typedef struct evs_pm_step evs_pm_step;

/* One of the manager's own events (type 1..EVS_MAX_NAME bytes, not
 * starting with "pm."), appended to the instance stream and folded by
 * evolve() at once, so later calls of decide() in the step see it. */
int evs_pm_emit(evs_pm_step *step, const char *type, const void *data, size_t len);
/* A command to the aggregate named `aggregate` (one of the definition's
 * aggregates) on `stream`; at most one command per stream per step. undo
 * (may be NULL) is recorded and issued by evs_pm_compensate(). */
int evs_pm_command(evs_pm_step *step, const char *aggregate, const char *stream,
		   const evs_command *command, const evs_command *undo);
/* Set (or move) timer `timer` of this instance to fire at `due`. */
int evs_pm_timer_set(evs_pm_step *step, const char *timer, int64_t due);
/* Cancel timer `timer` (nothing if it is not set). */
int evs_pm_timer_cancel(evs_pm_step *step, const char *timer);
/* Issue the recorded undo commands of the accepted commands, newest
 * first, and mark the instance compensating. */
int evs_pm_compensate(evs_pm_step *step, const char *reason);
/* Finish the instance (its timers are cancelled; later inputs are no-ops). */
int evs_pm_complete(evs_pm_step *step);
int evs_pm_fail(evs_pm_step *step, const char *reason);

typedef struct evs_pm_def {
	/* Required: 1..EVS_PM_MAX_NAME bytes of [a-z0-9_.] (copied). */
	const char *name;
	size_t state_size; /* bytes of the state, > 0 */
	void *ctx;         /* handed to every callback */

	/* The initial state (zeroed before); NULL: all zero. */
	int (*init)(void *ctx, void *state);
	/* Free what the state owns; NULL: nothing. */
	void (*release)(void *ctx, void *state);
	/* Required: route an event of the log. Return EVS_PM_START or
	 * EVS_PM_CONTINUE with the instance id written NUL-terminated into
	 * instance (EVS_PM_MAX_INSTANCE + 1 bytes), or EVS_PM_IGNORE. Starting
	 * a started instance is a no-op; continuing one never started too. */
	int (*correlate)(void *ctx, const evs_event *event, char *instance);
	/* Required: decide on an input (see evs_pm_input). EVS_OK, or a code:
	 * the step fails (and is retried, then parked). */
	int (*decide)(void *ctx, const void *state, const evs_pm_input *in, evs_pm_step *step);
	/* Required: fold one instance event (the library's pm.* events too;
	 * ignore what you do not know). During a step the event is not yet
	 * stored: position 0 and recorded_at 0. */
	int (*evolve)(void *ctx, void *state, const evs_event *event);

	/* The event types correlate() may route (copied; NULL = every
	 * type): the runner's subscription reads only these, through the
	 * store's type index, instead of decoding the whole log. */
	const char *const *types;
	size_t ntypes;

	/* The aggregates it commands (their evs_aggregate_def names are what
	 * evs_pm_command() takes); handles stay the caller's. */
	evs_aggregate *const *aggregates;
	size_t naggregates;

	/* Step attempts on version conflicts or failures before parking;
	 * 0 = EVS_DEFAULT_ATTEMPTS. */
	unsigned max_attempts;

	/* Snapshots of instance states (optional; both functions or
	 * neither), as for aggregates: encode/decode the definition's state
	 * (the library adds its own part); a step whose events carry the
	 * instance's version across a multiple of snapshot_every stores one
	 * (after its commit, from a fresh load). */
	uint32_t snapshot_version; /* >= 1 with snapshot functions */
	uint64_t snapshot_every;   /* 0 = never */
	int (*snapshot_encode)(void *ctx, const void *state, evs_sink *out);
	int (*snapshot_decode)(void *ctx, void *state, const void *data, size_t len);
} evs_pm_def;

/* A definition bound to a store; immutable, any threads may share it.
 * Free it before the aggregates it names and before the store. */
typedef struct evs_pm evs_pm;

int evs_pm_new(evs_store *store, const evs_pm_def *def, evs_pm **out);
void evs_pm_free(evs_pm *pm);

/* What one call of evs_pm_handle() / evs_pm_fire() did. */
typedef struct evs_pm_result {
	int route;           /* enum evs_pm_route (EVS_PM_EVENT inputs) */
	int stepped;         /* 1: a step was committed */
	int skipped;         /* 1: already handled, finished, parked or not started */
	int parked;          /* 1: the instance was parked by this call */
	size_t commands;     /* commands accepted */
	size_t rejections;   /* commands rejected */
	unsigned attempts;   /* step attempts (1 + retries) */
	uint64_t version;    /* instance stream version after the call */
	uint64_t commit_pos; /* last position written by the step; 0 = none */
} evs_pm_result;

/*
 * Handle one event of the log as the runner does: correlate, load the
 * instance, decide, execute the commands, commit; retry, or park.
 * `checkpoint` (may be NULL) is a checkpoint name written with the
 * event's position in the transaction of the step, when the event makes
 * one (a runner writes it itself for the others). EVS_OK whatever the
 * domain did
 * (result says); failures only for what stops a runner (EVS_IO, EVS_NOMEM,
 * EVS_CORRUPT, EVS_READONLY, EVS_FULL) and EVS_INVALID (bad arguments).
 */
int evs_pm_handle(evs_pm *pm, const evs_event *event, int64_t now, const char *checkpoint,
		  evs_pm_result *result);

/* Fire timer `timer` of `instance` due at `due` (a row the runner found
 * due at `now`): an ordinary step that removes the row. */
int evs_pm_fire(evs_pm *pm, const char *instance, const char *timer, int64_t due, int64_t now,
		evs_pm_result *result);

/* ---- the runner ------------------------------------------------------ */

typedef int64_t (*evs_clock_fn)(void *ctx);

typedef struct evs_pm_progress {
	const char *manager;
	uint64_t position; /* the manager's checkpoint */
	uint64_t head;     /* the store's last position: lag = head - position */
	uint64_t steps, skipped, timers_fired, rejections, parked_now;
	uint64_t parked; /* instances parked (listed rows) */
} evs_pm_progress;

typedef struct evs_pm_run_opts {
	evs_clock_fn clock; /* NULL = CLOCK_REALTIME */
	void *clock_ctx;
	/* This runner handles the instances whose id hashes to `partition`
	 * of `partitions` (0 = 1): runners of one manager in several threads
	 * or processes share the work and their steps share group commits. */
	unsigned partitions, partition;
	int tick_ms; /* longest wait between timer and request checks; 0 = 100 */
	/* Polled every tick and between events: non-zero stops the run. */
	int (*stop)(void *ctx);
	void *stop_ctx;
	/* Called every progress_ms (0 = 10000; also logged at INFO). */
	void (*progress)(void *ctx, const evs_pm_progress *p);
	void *progress_ctx;
	int progress_ms;
	/* 1: return EVS_OK once caught up with the head and no timer is due. */
	int until_idle;
} evs_pm_run_opts;

/*
 * Run managers on their store until stop() says so: catch up from each
 * manager's checkpoint (a runner without one starts from the lowest
 * checkpoint of any other partitioning of the manager, else from 0), then
 * follow the log live (evs_subscribe), firing due timers and serving
 * resume requests. EVS_OK when stopped; failures as evs_pm_handle().
 */
int evs_pm_run(evs_pm *const *pms, size_t n, const evs_pm_run_opts *opts);

/* ---- operators ------------------------------------------------------- */

/* Call fn for every parked instance of `manager` with the input position
 * it stopped at and the reason its pm.Parked event gives (views valid
 * during the call; fn may call the library). */
int evs_pm_list_parked(evs_store *store, const char *manager,
		       int (*fn)(void *ctx, const char *instance, uint64_t position,
				 const char *reason),
		       void *ctx);
/* Ask the manager's runner to resume a parked instance.
 * EVS_NOT_FOUND when it is not parked. */
int evs_pm_resume(evs_store *store, const char *manager, const char *instance);

/* The instance's status (enum evs_pm_status) and stream version. */
int evs_pm_status(evs_pm *pm, const char *instance, int *status, uint64_t *version);

/* ---- plugins ----------------------------------------------------------- */

/*
 * `evs pm run --plugin FILE.so` loads a shared object the user builds and
 * calls its "evs_pm_plugin_open" (this type): bind the managers to the
 * store (arg: the --plugin-arg text, or NULL), put at most max of them in
 * pms and their number in *n, and keep what they need in *state. At the
 * end it calls "evs_pm_plugin_close" (state), then closes the store.
 */
typedef int (*evs_pm_plugin_open_fn)(evs_store *store, const char *arg, evs_pm **pms, size_t max,
				     size_t *n, void **state);
typedef void (*evs_pm_plugin_close_fn)(void *state);

#ifdef __cplusplus
}
#endif

#endif /* EVSTORE_PM_H */
