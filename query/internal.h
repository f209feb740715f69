/*
 * internal.h - cross-file internals of libevsquery (evsq__ names).
 */
#ifndef EVSQ_INTERNAL_H
#define EVSQ_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <libpq-fe.h>

#include "evsproj.h" /* evs__buf */
#include "utf8.h"
#include "evsq.h"

/* ---- PostgreSQL pool (pool.c) ----
 * A fixed number of connections, connected lazily, each with the service's
 * statements prepared. A request borrows one for one statement. */

enum evsq__stmt {
	EVSQ__S_CHECKPOINT,
	EVSQ__S_CURRENT_N,     /* $1 projection, $2 text[] streams */
	EVSQ__S_AS_OF_N,       /* $1 projection, $2 text[] streams, $3 int8[] times (us) */
	EVSQ__S_AT_POSITION_N, /* $1 projection, $2 text[] streams, $3 int8[] positions */
	EVSQ__S_HISTORY,
	EVSQ__S_EVENTS,
	EVSQ__S_COUNT
};

/* A statement: its prepared name (in pg_prepared_statements and in
 * PostgreSQL's logs) beside its text. Prepared on every session (pool.c,
 * batch.c); the table is in pool.c, indexed by enum evsq__stmt. */
struct evsq__stmt_def {
	const char *name;
	const char *sql;
};
extern const struct evsq__stmt_def evsq__stmts[EVSQ__S_COUNT];

typedef struct evsq__pool evsq__pool;

/* A session with the statement_timeout set and every statement prepared,
 * or NULL (logged). Blocks up to the connect timeout (5 s). */
PGconn *evsq__connect(const char *dsn, long statement_timeout_ms, evs_log_fn log, void *log_ctx);

int evsq__pool_open(const char *dsn, int size, long statement_timeout_ms, evs_log_fn log,
		    void *log_ctx, evsq__pool **out);
void evsq__pool_close(evsq__pool *pool);
/* Run a prepared statement (text parameters). EVSQ_OK with *res (the
 * caller PQclear()s it), EVSQ_UNAVAILABLE (PostgreSQL unreachable, after
 * one reconnect), or EVSQ_SQL with err filled and *sqlstate (5 chars). */
int evsq__pool_exec(evsq__pool *pool, enum evsq__stmt stmt, int nparams, const char *const *params,
		    PGresult **res, char *sqlstate, char *err, size_t errlen);

/* The same for SQL text (not prepared: parsed and planned per call), for
 * statements made at run time from catalog names (read models). Values
 * only as parameters; identifiers quoted with PQescapeIdentifier. */
int evsq__pool_query(evsq__pool *pool, const char *sql, int nparams, const char *const *params,
		     PGresult **res, char *sqlstate, char *err, size_t errlen);

/* ---- jobs: requests answered off the HTTP threads (batch.c, work.c) ----
 * An HTTP thread suspends the connection, hands a job over and goes on
 * with other connections; the thread that answers the job fills status
 * and body and calls done() (which resumes the connection). */

enum evsq__job_kind {
	EVSQ__J_CURRENT, /* batch.c: current state of stream */
	EVSQ__J_AS_OF,   /* batch.c: state of stream as of as_of_us */
	EVSQ__J_AT,      /* state after global position at (workers only) */
	EVSQ__J_RUN,     /* work.c: run(job) on a worker thread */
	EVSQ__J_SQL      /* batch.c: one of many keys of the statement sql */
};

typedef struct evsq__job {
	struct evsq__job *next;
	int kind;
	int attempts;
	const char *stream; /* borrowed: valid until done() */
	int64_t as_of_us;   /* microseconds since the Unix epoch */
	void (*run)(struct evsq__job *job);
	void (*done)(struct evsq__job *job);
	unsigned status;
	evs__buf body;
	/* EVSQ__J_SQL (a declared table's key as of a time, model_fast.c):
	 * the statement, with $1 projection, $2 text[] keys (stream), $3
	 * timestamptz[] times (when); lookups of the same statement and
	 * projection share one execution. Its answer from row `row` of the
	 * result (column 0 the key's ordinal); a batch that fails goes to
	 * the workers, which answer like any request of its route. */
	const char *sql, *projection, *when;
	unsigned (*answer)(struct evsq__job *job, const PGresult *r, int row);
	/* what the fast path holds for the request, freed when it ends */
	void *fast;
	void (*fast_free)(void *fast);
} evsq__job;

/* The batcher of one HTTP event loop (batch.c): state lookups queued by
 * the loop's handlers, sent as one statement per idle connection, answered
 * when the result arrives. Used by its loop's thread only. */
typedef struct evsq__batcher evsq__batcher;
struct pollfd;

/* wake_fd: the loop's eventfd, written when a session is connected;
 * workers: where lookups of a failed EVSQ__J_SQL batch go. */
typedef struct evsq__workers evsq__workers;
int evsq__batcher_new(const char *dsn, int connections, int depth, long statement_timeout_ms,
		      const char *projection, int wake_fd, evsq__workers *workers, evs_log_fn log,
		      void *log_ctx, evsq__batcher **out);
/* Answers what is queued or in flight with 503 (done() called), frees. */
void evsq__batcher_free(evsq__batcher *b);
void evsq__batcher_submit(evsq__batcher *b, evsq__job *job);
/* Send the queued lookups on idle connections (starting a connect on
 * another thread if needed): how many it answered at once (503/500),
 * whose connections the loop must let MHD resume now rather than at its
 * next wake-up. */
int evsq__batcher_pump(evsq__batcher *b);
/* Fill one pollfd per connection (fd -1 when idle): the count. */
int evsq__batcher_pollfds(evsq__batcher *b, struct pollfd *fds);
/* After poll(): read results, answer their lookups (done()). */
void evsq__batcher_ready(evsq__batcher *b, const struct pollfd *fds);
/* Statements sent and lookups answered so far (for /metrics). */
void evsq__batcher_stats(evsq__batcher *b, unsigned long long *batches,
			 unsigned long long *lookups);

/* Workers: threads running jobs that block (waits, pages, the store). */

int evsq__workers_start(int threads, evsq__workers **out);
/* Run the queued jobs and join the threads; jobs submitted after this
 * are answered 503 at once (the HTTP threads may still hand some over). */
void evsq__workers_stop(evsq__workers *w);
/* Stop (if not yet) and free, once nothing can submit any more. */
void evsq__workers_free(evsq__workers *w);
void evsq__workers_submit(evsq__workers *w, evsq__job *job);

/* ---- state lookups (lookup.c) ---- */

/* The answer to a state lookup of kind EVSQ__J_* from row `row` of
 * EVSQ__S_CURRENT_N, _AS_OF_N or _AT_POSITION_N (columns: ordinal, answer
 * JSON, known): the status, with the JSON body. */
unsigned evsq__state_answer(const PGresult *r, int row, int kind, const char *stream,
			    evs__buf *body);
/* A PostgreSQL text array literal of one element. */
void evsq__array1(evs__buf *b, const char *s);

/* ---- errors (answer.c) ---- */

/* {"error": code, "message": msg} */
void evsq__error(evs__buf *body, const char *code, const char *msg);
/* 404 no_database: the service runs without --dsn (store routes only). */
unsigned evsq__no_database(evs__buf *body);
/* PostgreSQL's message without "ERROR:  " and past its first line. */
void evsq__pg_message(char *out, size_t n, const char *err);
/* The answer to a failed statement (rc and sqlstate from
 * evsq__pool_exec/_query): 503 unavailable (unreachable, timeout), 400
 * bad_request (class 22: a value the column's type refuses; 42883: no
 * equality for a filtered column's type), 500 otherwise. */
unsigned evsq__db_error(evs__buf *body, int rc, const char *sqlstate, const char *err);

/* ---- query parameters of a request (args.c) ---- */

struct MHD_Connection;

#define EVSQ__MAX_ARGS 64

typedef struct evsq__args {
	struct evsq__arg {
		const char *key, *value; /* MHD's, valid for the request */
	} a[EVSQ__MAX_ARGS];
	int n;
} evsq__args;

/* Read the request's parameters into *a, refusing (false, msg filled) a
 * zero byte in a name or value, more than EVSQ__MAX_ARGS, a name given
 * twice, a name without a value, then (allowed not NULL; NULL-terminated)
 * a name not in allowed. */
bool evsq__args_read(struct MHD_Connection *conn, const char *const *allowed, evsq__args *a,
		     char *msg, size_t msglen);
/* The same as an answer: 0, or 400 bad_request with the body. */
unsigned evsq__args_check(struct MHD_Connection *conn, const char *const *allowed, evsq__args *a,
			  evs__buf *body);
/* The same, except that the names in repeatable (NULL-terminated, or
 * NULL) may be given more than once (issue 12: type=, category=, tag=). */
bool evsq__args_read_multi(struct MHD_Connection *conn, const char *const *allowed,
			   const char *const *repeatable, evsq__args *a, char *msg, size_t msglen);
unsigned evsq__args_check_multi(struct MHD_Connection *conn, const char *const *allowed,
				const char *const *repeatable, evsq__args *a, evs__buf *body);
/* The value of key, or NULL. */
const char *evsq__arg(const evsq__args *a, const char *key);
/* The values of a repeatable key in order: *i starts at 0; NULL after
 * the last. */
const char *evsq__arg_next(const evsq__args *a, const char *key, int *i);
/* 400 bad_request: invalid <name> "<value>": expected <expected>. */
unsigned evsq__bad_param(evs__buf *body, const char *name, const char *value, const char *expected);

/* ---- parameter syntax (params.c) ---- */

/* Strict RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM);
 * 't', 'z' and ' ' as date/time separator accepted. */
bool evsq__rfc3339_valid(const char *s);
/* Microseconds since the Unix epoch of a valid RFC 3339 date-time,
 * fractions beyond microseconds rounded to the nearest (as PostgreSQL
 * does). */
int64_t evsq__rfc3339_us(const char *s);
/* Decimal u63 without sign, spaces or leading junk. */
bool evsq__parse_u63(const char *s, int64_t *out);

/* ---- JSON writing (json.c) ---- */

/* A JSON string (quoted, escaped); bytes that are not valid UTF-8 become
 * U+FFFD. */
void evsq__json_str(evs__buf *b, const char *s);
/* Copy the JSON text s[0..n) (PostgreSQL's output of a jsonb written from
 * msgpack) to out with its doubles as the base writes them (mpjson.h):
 * jsonb prints 1e300 as 301 digits and 5e-324 as 324 decimals; these come
 * back as 1e+300 and 5e-324, as evs read prints them. Integers that fit
 * 64 bits are copied as they are. Only for values that came from msgpack:
 * a numeric column's digits are not doubles. */
void evsq__json_numbers(evs__buf *out, const char *s, size_t n);
/* The same with a choice: numbers (doubles rewritten by the policy, else
 * copied), compact (white space between tokens dropped). */
void evsq__json_copy(evs__buf *out, const char *s, size_t n, bool numbers, bool compact);

/* ---- stream endpoints (streams.c) ---- */

typedef struct evsq__models evsq__models;

typedef struct evsq__watch evsq__watch;

typedef struct evsq__ctx {
	evsq__pool *pool;
	evsq__watch *watch; /* checkpoint listener (watch.c), or NULL: poll */
	evs_store *store;   /* source=store, or NULL */
	const char *projection;
	long min_position_wait_ms;
	long page_max;
	evsq__models *models; /* declared read models (--rules), or NULL */
} evsq__ctx;

/* Answer GET /streams/<rest> (rest is the decoded path after
 * "/streams/"): the HTTP status, with the JSON body in *body. */
unsigned evsq__streams(const evsq__ctx *ctx, struct MHD_Connection *conn, const char *rest,
		       evs__buf *body);
/* GET /streams/{id}/state?source=store (store_source.c): the generic
 * state replayed from the LMDB store (evs_state_load), current, as_of (a
 * valid RFC 3339 text) or at_position (at >= 0). */
unsigned evsq__state_from_store(evs_store *store, const char *stream, const char *as_of,
				int64_t at_position, evs__buf *body);
/* One state lookup of kind EVSQ__J_CURRENT, _AS_OF (arg: microseconds)
 * or _AT (arg: position) through the pool (lookup.c): the batcher's
 * statement with arrays of one, so both paths answer alike. */
unsigned evsq__lookup(const evsq__ctx *ctx, int kind, const char *stream, int64_t arg,
		      evs__buf *body);
/* GET /streams/<rest> when it is a plain state lookup (current, or as of
 * a valid time; no other parameter but a min_position the watcher has
 * seen reached) the batcher can answer: job's kind
 * and as_of_us set, and the stream id returned (the caller frees it).
 * NULL for any other request (or no memory): the workers answer those. */
char *evsq__streams_fast(const evsq__ctx *ctx, struct MHD_Connection *conn, const char *rest,
			 evsq__job *job);

/* ---- declared read models (models.c) ---- */

/* GET /models/<rest> when it is one key of a temporal table as of a
 * time (no other parameter but a min_position the watcher has seen
 * reached; the table's and its history's catalog already cached; a text
 * key): job set up as EVSQ__J_SQL and the key returned (the caller frees
 * it). NULL for any other request: the workers answer those
 * (model_fast.c). */
char *evsq__models_fast(const evsq__ctx *ctx, struct MHD_Connection *conn, const char *rest,
			evsq__job *job);

/* Load the comma-separated projection files of --rules (empty or NULL:
 * none, *out NULL). EVSQ_INVALID with err filled for a file that does not
 * load or lacks "schema"/"tables", or a projection named twice;
 * EVSQ_NOMEM. */
int evsq__models_load(const char *rules, evsq__models **out, char *err, size_t errlen);
void evsq__models_free(evsq__models *models);
/* Answer GET /models<rest> (rest: "" or the decoded path after
 * "/models", starting with '/'). */
unsigned evsq__models_serve(const evsq__ctx *ctx, struct MHD_Connection *conn, const char *rest,
			    evs__buf *body);

/* ---- the projection of the built-in models (projection.c) ---- */

/* *out (malloc'd): given when not empty, else the one --rules
 * projection's name, else "builtin"; EVSQ_INVALID (err filled) with
 * several --rules projections and none given. */
int evsq__projection_pick(const char *given, const evsq__models *ms, char **out, char *err,
			  size_t errlen);
/* EVSQ_INVALID (err filled) when PostgreSQL answers and other
 * projections have a checkpoint but this one has none; else EVSQ_OK. */
int evsq__projection_check(evsq__pool *pool, const char *projection, char *err, size_t errlen);

/* ---- checkpoint watcher (watch.c) ----
 * One thread with a dedicated session (not from the pool) that LISTENs on
 * evs_checkpoint (the projector's pg_notify at each batch COMMIT) and
 * caches the last committed checkpoint of every projection; min_position
 * waiters sleep on it. While that session is down the waiters poll. */

typedef struct evsq__watch_info {
	bool up;             /* listening; the cache is complete */
	uint64_t wakeups;    /* notifications applied */
	uint64_t reconnects; /* connection attempts after the first */
} evsq__watch_info;

/* Start the thread (it connects on its own, with backoff); EVSQ_NOMEM. */
int evsq__watch_start(const char *dsn, evs_log_fn log, void *log_ctx, evsq__watch **out);
/* Wake every waiter and let none sleep again (before stopping HTTP). */
void evsq__watch_shutdown(evsq__watch *w);
/* Stop the thread and free; NULL is fine. */
void evsq__watch_stop(evsq__watch *w);
void evsq__watch_status(evsq__watch *w, evsq__watch_info *info);
/* The cached checkpoint of projection: true and *pos when the listener is
 * up and the projection has one (never ahead of the committed one). */
bool evsq__watch_position(evsq__watch *w, const char *projection, int64_t *pos);
/* Wait until the checkpoint of projection reaches min, bounded by
 * ctx->min_position_wait_ms: 0 at once when the cache already reaches it,
 * else woken by the notification that does; at the deadline the committed
 * checkpoint is read through the pool: 0, or 409 projection_behind with
 * the position, or 503/500 with the body. ctx->watch NULL: polling. */
unsigned evsq__watch_wait(const evsq__ctx *ctx, const char *projection, int64_t min,
			  evs__buf *body);
/* A request's min_position (minp: its text, or NULL): 0 when absent or
 * reached, else 400 for a malformed one or evsq__watch_wait's answer. */
unsigned evsq__watch_min_position(const evsq__ctx *ctx, const char *projection, const char *minp,
				  evs__buf *body);

/* ---- projection lag (lag.c), for /ready and /metrics ---- */

typedef struct evsq__lag {
	bool pg_up;              /* PostgreSQL answered (even with an error) */
	bool pg_ok;              /* the checkpoint statement succeeded */
	bool has_checkpoint;     /* the projection has one */
	int64_t position;        /* committed checkpoint */
	double checkpoint_age_s; /* now - its updated_at (PostgreSQL clock) */
	bool store_ok;           /* --store given and its head read */
	int64_t head;            /* store head, read after the checkpoint */
	bool lag_known;          /* store_ok, has_checkpoint, head >= position */
	int64_t lag_events;      /* head - position */
	double lag_s;            /* age of event position + 1; 0 when caught up */
	char err[512];           /* PostgreSQL's message when !pg_ok */
	char store_err[256];     /* the store's when store given and !store_ok */
} evsq__lag;

/* The checkpoint from PostgreSQL (through the pool), then with a store
 * its head and the lag. */
void evsq__lag_measure(evsq__pool *pool, evs_store *store, const char *projection, evsq__lag *out);
/* Only the store's side, for out->position when out->has_checkpoint:
 * head, and the lag when head >= position. */
void evsq__lag_store(evs_store *store, evsq__lag *out);

#endif
