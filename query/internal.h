/*
 * internal.h - cross-file internals of libevsquery (evsq__ names).
 */
#ifndef EVSQ_INTERNAL_H
#define EVSQ_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "evsproj.h" /* evp_buf */
#include "evsq.h"

/* ---- PostgreSQL pool (pool.c) ----
 * A fixed number of connections, connected lazily, each with the service's
 * statements prepared. A request borrows one for one statement. */

enum evsq__stmt {
	EVSQ__S_CHECKPOINT,
	EVSQ__S_CURRENT,
	EVSQ__S_AS_OF_TIME,
	EVSQ__S_AT_POSITION,
	EVSQ__S_HISTORY,
	EVSQ__S_EVENTS,
	EVSQ__S_COUNT
};

typedef struct evsq__pool evsq__pool;

int evsq__pool_open(const char *dsn, int size, long statement_timeout_ms, evsq_log_fn log,
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

/* ---- parameters (params.c) ---- */

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
void evsq__json_str(evp_buf *b, const char *s);

/* ---- stream endpoints (streams.c) ---- */

struct MHD_Connection;
typedef struct evsq__models evsq__models;

typedef struct evsq__ctx {
	evsq__pool *pool;
	evs_store *store; /* source=store, or NULL */
	const char *projection;
	long min_position_wait_ms;
	long page_max;
	evsq__models *models; /* declared read models (--rules), or NULL */
} evsq__ctx;

/* Answer GET /streams/<rest> (rest is the decoded path after
 * "/streams/"): the HTTP status, with the JSON body in *body. */
unsigned evsq__streams(const evsq__ctx *ctx, struct MHD_Connection *conn, const char *rest,
		       evp_buf *body);
/* GET /streams/{id}/state?source=store: the generic state replayed from
 * the LMDB store (evs_state_load), current, as_of (a valid RFC 3339 text)
 * or at_position (at >= 0). */
unsigned evsq__state_from_store(evs_store *store, const char *stream, const char *as_of,
				int64_t at_position, evp_buf *body);
/* {"error": code, "message": msg} */
void evsq__error(evp_buf *body, const char *code, const char *msg);
/* Wait until the checkpoint of projection reaches min (bounded by
 * ctx->min_position_wait_ms): 0 when reached, else the status (409
 * projection_behind, 503, ...) with its body. */
unsigned evsq__wait_position(const evsq__ctx *ctx, const char *projection, int64_t min,
			     evp_buf *body);

/* ---- declared read models (models.c) ---- */

/* Load the comma-separated projection files of --rules (empty or NULL:
 * none, *out NULL). EVSQ_INVALID with err filled for a file that does not
 * load or lacks "schema"/"tables", or a projection named twice;
 * EVSQ_NOMEM. */
int evsq__models_load(const char *rules, evsq__models **out, char *err, size_t errlen);
void evsq__models_free(evsq__models *models);
/* Answer GET /models<rest> (rest: "" or the decoded path after
 * "/models", starting with '/'). */
unsigned evsq__models_serve(const evsq__ctx *ctx, struct MHD_Connection *conn, const char *rest,
			    evp_buf *body);

#endif
