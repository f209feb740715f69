/*
 * internal.h - private (evp__) interfaces between the files of
 * libevsproj; the public one is evsproj.h.
 *
 * The projector is one struct evp__run per evp_run() call, passed to
 * files of one job each. Their call graph, lowest first (a file uses only
 * files above it):
 *
 *     pgexec.c     logging, clocks, one exec-and-check, libpq errors, locks
 *     pgarray.c    array parameters, binary where exact
 *     migrate.c    the migration runner
 *     rules_exec.c the declared statements of events (rules.c parses them)
 *     batch.c      a batch of events copied out of the store (one arena)
 *     builtin.c    COPY streaming and the event log
 *     state.c      current state and state history (merge-patch fold)
 *     history.c    history of temporal tables: DDL (history_write.c: capture, write)
 *     setfold.c, setexec.c  declared statements set-based (setexec.h)
 *     deadletter.c declared rules of a batch, failing events parked
 *     txn.c        one batch and its checkpoint in one transaction
 *     rebuild.c    shadow schema of a rebuild and the final swap
 *     session.c    connect, migrate, lock, read the checkpoint; backoff
 *     history_bulk.c  bulk mode for the history of temporal tables
 *     bulk.c       bulk mode: secondary indexes dropped, then rebuilt
 *     run.c        evp_run(): the loop, progress
 */
#ifndef EVSPROJ_INTERNAL_H
#define EVSPROJ_INTERNAL_H

#include "evsproj.h"

/* ---------------------------------------------------------------------
 * A batch (batch.c)
 *
 * Events are copied out of the store (its views end with the
 * subscription) into one arena per batch: `bytes` holds stream, type,
 * data and metadata of every event, `json` their payloads as JSON once
 * converted. Both are reset, not freed, between batches, so a batch
 * costs no allocation per event once the buffers have grown.
 * ------------------------------------------------------------------- */

struct evp__event {
	evs_event ev; /* pointers into the batch's arena */
	/* payloads as JSON: offsets into the batch's json buffer */
	size_t data_json, data_json_len;
	size_t meta_json, meta_json_len;
	bool has_json;
};

struct evp__batch {
	struct evp__event *events;
	size_t n, cap;
	evs__buf bytes; /* the events' copied fields */
	evs__buf json;  /* their payloads as JSON, converted when first needed */
};

/* An event's payloads as JSON: valid until the next conversion. */
struct evp__json {
	const char *data, *meta;
	size_t data_len, meta_len;
};

/* ---------------------------------------------------------------------
 * Rules (rules.c parses, rules_exec.c runs)
 * ------------------------------------------------------------------- */

/* Prepare on a fresh connection; run the statements of one event. */
int evp__rules_prepare(evp_rules *rules, PGconn *conn, char *err, size_t errlen);
/* EVP_OK, or EVP_SQL with err and *sqlstate (may be "") when a statement
 * failed, or EVP_CONNECT. */
int evp__rules_apply(evp_rules *rules, PGconn *conn, const struct evp__event *e, char *err,
		     size_t errlen, char *sqlstate, size_t sslen);
/* The statements of events[0..n) pipelined (see rules_exec.c); on EVP_SQL
 * *failed is the index of the event whose statement failed. */
int evp__rules_apply_many(evp_rules *rules, PGconn *conn, const struct evp__event *events, size_t n,
			  size_t *failed, char *err, size_t errlen, char *sqlstate, size_t sslen);
/* rules_set.c: whether every statement can run over many events at once
 * (then prepared in that form too); setexec.c: the batch's declared
 * statements that way. *fallback: a statement failed, everything of it
 * was rolled back: run the batch one event at a time. */
struct evp__run;
int evp__rules_plan_set(struct evp__run *r);
bool evp__rules_set_use(const struct evp__run *r);
int evp__rules_apply_set(struct evp__run *r, bool *fallback);
/* Cut the batch where its events would need too many rounds (setexec.c). */
int evp__rules_set_cut(struct evp__run *r);
/* Whether any statement applies to this event type. */
bool evp__rules_match(const evp_rules *rules, const evs_str *type);

/* ---------------------------------------------------------------------
 * One run of the projector
 * ------------------------------------------------------------------- */

#define EVP__LOCK_CLASS 0x65767370 /* "evsp": advisory lock (class, hashtext(name)) */
#define EVP__NPREP      16         /* statements prepared per session (evp__prepare) */

/* Arrays of one statement's parameters (text[] literals), reused. */
struct evp__arrays {
	evs__buf col[9];
};

struct evp__run {
	const evp_config *cfg;
	evs_store *store;
	evp_rules *rules;
	PGconn *conn;
	const char *name;      /* checkpoint and lock name */
	const char *live_name; /* the projection's own name (differs when rebuilding) */
	char rebuild_name[EVS_MAX_NAME + 16];
	bool builtin;
	int64_t collect_us; /* time the last collect took */
	bool set_batch;     /* this batch's statements ran set-based */
	uint64_t checkpoint;
	bool bulk;            /* loading with the secondary indexes dropped */
	uint64_t bulk_target; /* ... until the checkpoint reaches this */
	evp_stats *stats;
	char *err;
	size_t errlen;
	struct evp__batch batch;
	struct evp__event **order; /* the batch sorted by (stream, position) */
	size_t order_cap;
	evs__buf copy, streams, json, dead; /* reused buffers */
	struct evp__arrays arrays;
	/* statements run every batch, prepared on this session at first use
	 * (planned once, not per batch): their text; emptied per connection */
	char *prep[EVP__NPREP];
	int nprep;
};

/* pgexec.c */
void evp__logm(const struct evp__run *r, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int64_t evp__now_ms(void);
int64_t evp__now_us(void);
bool evp__stopping(const struct evp__run *r);
/* Sleep ms in short slices, returning early when asked to stop. */
void evp__nap(const struct evp__run *r, int ms);
/* Length of a libpq message without its trailing newlines. */
int evp__msglen(const char *msg);
/* err = "<what>: <libpq's message>" (of res, else of conn), PQclear(res);
 * EVP_CONNECT when the failure is retryable, else EVP_SQL. */
int evp__pg_error(PGconn *conn, PGresult *res, const char *what, char *err, size_t errlen);
/* Fill r->err with "<what>: <libpq's message>", PQclear(res); EVP_CONNECT
 * when the failure is retryable, else EVP_SQL. */
int evp__pg_fail(struct evp__run *r, PGresult *res, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Run sql (with n text parameters when vals is not NULL) and expect the
 * status `want`: EVP_OK and the result in *out (the caller's to PQclear;
 * cleared when out is NULL), or a failure as evp__pg_fail with the
 * message "could not <fmt...>". */
int evp__exec(struct evp__run *r, ExecStatusType want, PGresult **out, const char *sql, int n,
	      const char *const *vals, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
/* evp__exec of a statement run every batch, prepared on this session the
 * first time (pgexec.c: planned once, not per batch). */
int evp__exec_prep(struct evp__run *r, ExecStatusType want, PGresult **out, const char *sql, int n,
		   const char *const *vals, const char *what);
/* The name of sql prepared on this session (prepared now, outside a
 * pipeline, when it is not yet): EVP_OK and name, or a failure. */
int evp__prepare(struct evp__run *r, const char *sql, int n, char name[16]);
/* Forget the statements prepared on the session that ended. */
void evp__prep_reset(struct evp__run *r);
/* A command without parameters or result. */
int evp__cmd(struct evp__run *r, const char *sql);
/* A command with quoted identifiers a (and b, if not NULL) for its %s. */
int evp__cmd_ident(struct evp__run *r, const char *fmt, const char *a, const char *b);
/* ROLLBACK what a failure left open, if the connection is still up. */
void evp__rollback(struct evp__run *r);
/* pg_try_advisory_lock(EVP__LOCK_CLASS, hashtext(name)): *taken. */
int evp__try_lock(struct evp__run *r, const char *name, bool *taken);

/* batch.c */
void evp__batch_free(struct evp__batch *b);
/* Collect up to batch_max events after the checkpoint (up to target when
 * not 0), waiting first_wait_ms for the first. */
int evp__collect(struct evp__run *r, uint64_t target, int first_wait_ms);
/* The payloads of e as JSON (converted on first use). */
int evp__event_json(struct evp__run *r, struct evp__event *e, struct evp__json *out);

/* builtin.c: COPY streaming and the event log */
int evp__copy_begin(struct evp__run *r, const char *sql);
/* Send what rows holds when it is large (or when `all`), and empty it. */
int evp__copy_flush(struct evp__run *r, evs__buf *rows, bool all);
int evp__copy_end(struct evp__run *r, evs__buf *rows, const char *what);
int evp__write_event_log(struct evp__run *r);

/* state.c */
int evp__write_states(struct evp__run *r);

/* history.c, history_write.c: temporal tables (contract at the top of
 * history.c). Setup: tables, indexes, functions of the rules' temporal
 * tables in schema (idempotent). Write: the batch's versions, before its
 * checkpoint. Mark / rewind: captures taken back with a savepoint. */
int evp__history_setup(struct evp__run *r, const char *schema);
int evp__history_write(struct evp__run *r);
int evp__history_prepare_closes(struct evp__run *r);
int evp__history_send_closes(struct evp__run *r, int *n);
uint32_t evp__history_mark(const evp_rules *rules);
void evp__history_rewind(evp_rules *rules, uint32_t mark);
void evp__history_reset(evp_rules *rules);

/* deadletter.c */
int evp__write_rules(struct evp__run *r, uint64_t *parked);

/* txn.c */
int evp__apply_batch(struct evp__run *r);

/* rebuild.c */
void evp__shadow_schema(const struct evp__run *r, char *out, size_t n);
int evp__shadow_prepare(struct evp__run *r);
int evp__swap_in(struct evp__run *r);

/* session.c */
/* A connection with our notice receiver; NULL when out of memory. */
PGconn *evp__pg_open(struct evp__run *r, int64_t deadline_ms);
int evp__connect(struct evp__run *r, bool reconnecting);
/* After a lost connection: drop it and connect again (with backoff). */
int evp__reconnect(struct evp__run *r);

/* history_bulk.c: bulk mode for the history of temporal tables (called
 * by bulk.c; the scheme at its top). any: the rules have one. missing:
 * an index or key of a history is missing or the partial index present
 * (sets *missing, never clears it). begin / end: in the caller's
 * transaction. side_sql: the at-index builds, for a second connection;
 * build: the primary keys' indexes, each its own transaction. */
bool evp__history_bulk_any(const struct evp__run *r);
int evp__history_bulk_missing(struct evp__run *r, bool *missing);
int evp__history_bulk_begin(struct evp__run *r);
void evp__history_bulk_side_sql(struct evp__run *r, evs__buf *b);
int evp__history_bulk_build(struct evp__run *r);
int evp__history_bulk_end(struct evp__run *r);

/* pgarray.c: an array parameter built element by element, binary when
 * every element converts exactly (see there), else text; reused. */
struct evp__array {
	evs__buf txt, bin;
	Oid elem;
	bool binary, nulls;
	uint32_t n;
};
void evp__array_start(struct evp__array *a, Oid elem);
/* v[0, n), or NULL */
void evp__array_add(struct evp__array *a, const char *v, size_t n);
/* The parameter: value, length and format for PQsendQueryPrepared. */
int evp__array_finish(struct evp__array *a, const char **val, int *len, int *fmt);
void evp__array_free(struct evp__array *a);

/* bulk.c */
int evp__bulk_decide(struct evp__run *r);
int evp__bulk_end(struct evp__run *r);

#endif
