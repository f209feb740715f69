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

typedef struct evsq__ctx {
	evsq__pool *pool;
	evs_store *store; /* source=store, or NULL */
	const char *projection;
	long min_position_wait_ms;
	long page_max;
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

#endif
