/*
 * pm_internal.h - what the process-manager files share (evs__pm names):
 * pm_inst.c (names, ids, the instance state and its fold), pm_step.c (one
 * step), pm_run.c (the runner), pm_admin.c (operators). Not public.
 */
#ifndef EVS_PM_INTERNAL_H
#define EVS_PM_INTERNAL_H

#include <msgpack.h>

#include "agg_internal.h"
#include "evstore_pm.h"

/* Library event types of an instance stream (data formats in pm_inst.c). */
#define EVS__PM_STARTED      "pm.Started"
#define EVS__PM_ISSUED       "pm.CommandIssued"
#define EVS__PM_REJECTED     "pm.CommandRejected"
#define EVS__PM_TIMER_SET    "pm.TimerSet"
#define EVS__PM_TIMER_CANCEL "pm.TimerCancelled"
#define EVS__PM_TIMER_FIRED  "pm.TimerFired"
#define EVS__PM_COMPENSATING "pm.Compensating"
#define EVS__PM_COMPLETED    "pm.Completed"
#define EVS__PM_FAILED       "pm.Failed"
#define EVS__PM_PARKED       "pm.Parked"

#define EVS__PM_CP_MAX 256 /* checkpoint names: EVS_MAX_NAME + NUL */

/* An undo command recorded by pm.CommandIssued: one block, strings
 * NUL-terminated, data after them. */
typedef struct evs__pm_undo {
	char *aggregate, *stream, *type;
	void *data;
	size_t len;
} evs__pm_undo;

typedef struct evs__pm_timer {
	char name[EVS_PM_MAX_NAME + 1];
	int64_t due;
} evs__pm_timer;

/* The state of an instance as the library folds it; the definition's
 * state follows at evs__pm_user(). */
typedef struct evs__pm_inst {
	uint64_t last_input; /* highest input position recorded */
	int status;          /* enum evs_pm_status */
	size_t ntimers;
	evs__pm_timer timers[EVS_PM_MAX_TIMERS];
	evs__pm_undo *undo;
	size_t nundo, capundo;
} evs__pm_inst;

#define EVS__PM_USER_OFF ((sizeof(evs__pm_inst) + 15) & ~(size_t)15)

static inline void *evs__pm_user(evs__pm_inst *i)
{
	return (unsigned char *)i + EVS__PM_USER_OFF;
}

struct evs_pm {
	evs_store *s;
	evs_pm_def def; /* def.name points at name; def.aggregates at aggs */
	char name[EVS_PM_MAX_NAME + 1];
	evs_aggregate **aggs;
	char **types;            /* copies of def.types (def.types points here) */
	evs_aggregate *inst_agg; /* the instance stream as an aggregate */
	size_t inst_size;        /* EVS__PM_USER_OFF + def.state_size */
};

/* ---- pm_inst.c ---------------------------------------------------------- */

/* 1..EVS_PM_MAX_NAME bytes of [a-z0-9_.] (timers also A-Z and '-'). */
bool evs__pm_name_ok(const char *name, bool timer);
/* 1..EVS_PM_MAX_INSTANCE bytes of UTF-8 without NUL or '/'. */
bool evs__pm_instance_ok(const char *instance);
/* "pm:<manager>-<instance>" into out (EVS__PM_CP_MAX bytes). */
void evs__pm_stream(const evs_pm *pm, const char *instance, char *out);
/* Checkpoint names of pm_run/pm_admin (EVS__PM_CP_MAX bytes). */
void evs__pm_cp_parked(const char *manager, const char *instance, char *out);
void evs__pm_cp_resume(const char *manager, const char *instance, char *out);
void evs__pm_cp_timer(const char *manager, int64_t due, const char *instance, const char *timer,
		      char *out);
/* Parse a timer row name after "pm/<manager>/timer/". */
bool evs__pm_parse_timer(const char *rest, size_t len, int64_t *due, char *instance, char *timer);
/* Which partition of `partitions` an instance belongs to. */
unsigned evs__pm_partition(const char *instance, unsigned partitions);
/* A deterministic id (UUIDv8 layout) from the manager, the instance, the
 * input key and two indexes. */
void evs__pm_id(uint8_t out[16], const char *manager, const char *instance, const char *key,
		uint32_t a, uint32_t b);

/* The internal aggregate definition of instance streams. */
int evs__pm_inst_def(evs_pm *pm, evs_aggregate **out);
/* Fold one instance event into the library's part and the definition's. */
int evs__pm_inst_apply(void *ctx, void *state, const evs_event *ev);

/* msgpack helpers: an sbuffer packer for the library's event data. */
typedef struct evs__pm_mp {
	msgpack_sbuffer sb;
	msgpack_packer pk;
} evs__pm_mp;
void evs__pm_mp_init(evs__pm_mp *m);
void evs__pm_mp_free(evs__pm_mp *m);
void evs__pm_mp_str(evs__pm_mp *m, const char *s);
void evs__pm_mp_kv_str(evs__pm_mp *m, const char *k, const char *v);
void evs__pm_mp_kv_u64(evs__pm_mp *m, const char *k, uint64_t v);
void evs__pm_mp_kv_i64(evs__pm_mp *m, const char *k, int64_t v);
void evs__pm_mp_kv_bin(evs__pm_mp *m, const char *k, const void *p, size_t n);
/* Look a key up in a msgpack map (NULL when absent or not a map). */
const msgpack_object *evs__pm_mp_get(const msgpack_object *map, const char *key);
/* Copy a str object NUL-terminated into out (size bytes); false if it
 * is not a string or too long. */
bool evs__pm_mp_cstr(const msgpack_object *o, char *out, size_t size);

/* ---- pm_step.c: the step under construction --------------------------- */

typedef struct evs__pm_blk {
	struct evs__pm_blk *next;
	max_align_t data[];
} evs__pm_blk;

typedef struct evs__pm_cmd {
	const char *agg, *stream;
	evs_command c;
	bool has_undo;
	const char *uagg, *ustream;
	evs_command u;
} evs__pm_cmd;

typedef struct evs__pm_part {
	evs_aggregate *agg;
	const char *stream;
	uint64_t expected;
	evs_event_in *ev;
	size_t n;
} evs__pm_part;

typedef struct evs__pm_cpw {
	char name[EVS__PM_CP_MAX];
	uint64_t pos;
	int remove;
} evs__pm_cpw;

typedef struct evs__pm_rej {
	evs__pm_cmd c;
	const char *reason;
} evs__pm_rej;

#define EVS__PM_MAX_CPS (EVS_PM_MAX_TIMERS * 3 + 4)

struct evs_pm_step {
	evs_pm *pm;
	evs__pm_inst *inst;
	const char *instance;
	const char *stream;
	uint64_t base_version;
	char key[EVS__PM_CP_MAX];
	uint64_t input_pos;
	uint8_t corr[16], cause[16];
	int err;
	evs__pm_blk *arena;
	void *meta;
	size_t meta_len;
	evs_event_in ev[256];
	size_t nev;
	evs__pm_part parts[EVS_PM_MAX_COMMANDS];
	size_t nparts;
	size_t ncommands;
	evs__pm_cmd pending[EVS_PM_MAX_COMMANDS];
	size_t npending;
	evs__pm_rej rejs[EVS_PM_MAX_COMMANDS];
	size_t nrejs;
	evs__pm_cpw cps[EVS__PM_MAX_CPS];
	size_t ncps;
	evs_decision *dec;
	size_t accepted, rejected;
};

void *evs__pm_alloc(evs_pm_step *st, size_t n);
void *evs__pm_dup(evs_pm_step *st, const void *p, size_t n);
const char *evs__pm_strdup(evs_pm_step *st, const char *s);
int evs__pm_fail(evs_pm_step *st, int code, const char *fmt, const char *arg);
/* Append an instance event with the step's ids and metadata, folded. */
int evs__pm_inst_emit(evs_pm_step *st, const char *type, const void *data, size_t len);
/* Emit a library event whose data m holds (m is freed). */
int evs__pm_lib_emit(evs_pm_step *st, const char *type, evs__pm_mp *m);
void evs__pm_cp_put(evs_pm_step *st, const char *name, uint64_t pos, int remove);
evs__pm_timer *evs__pm_find_timer(evs__pm_inst *in, const char *name);
evs_aggregate *evs__pm_find_agg(evs_pm *pm, const char *name);

/* ---- pm_exec.c ---------------------------------------------------------- */

/* Correlate: route and instance (validated; an invalid id is logged and
 * ignored). */
int evs__pm_route(evs_pm *pm, const evs_event *ev, char *instance);
/* A step for an event input routed to `instance`. resume: ignore the
 * parked row (replay of a resumed instance). */
int evs__pm_step_event(evs_pm *pm, const evs_event *ev, int route, const char *instance,
		       int64_t now, const char *checkpoint, bool resume, evs_pm_result *r);

#endif /* EVS_PM_INTERNAL_H */
