/*
 * lookup.c - state lookups through the pool (current, as of a time, at a
 * position), answered exactly as the batcher answers them: the same
 * statements (batch.c sends arrays of many, this file arrays of one) and
 * the same answer from a row (evsq__state_answer), so an answer never
 * depends on the path it took.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

unsigned evsq__state_answer(const PGresult *r, int row, int kind, const char *stream,
			    evs__buf *body)
{
	char msg[512];

	body->len = 0;
	if (!PQgetisnull(r, row, 1)) {
		/* the state's doubles as the store prints them (jsonb prints
		 * 1e300 as 301 digits); the envelope's integers are copied */
		evsq__json_numbers(body, PQgetvalue(r, row, 1), (size_t)PQgetlength(r, row, 1));
		evs__buf_putc(body, '\n');
		return 200;
	}
	if (kind == EVSQ__J_CURRENT || strcmp(PQgetvalue(r, row, 2), "t"))
		snprintf(msg, sizeof msg, "stream \"%.200s\" not found", stream);
	else
		snprintf(msg, sizeof msg, "stream \"%.200s\" has no events at or before %s", stream,
			 kind == EVSQ__J_AS_OF ? "as_of" : "at_position");
	evsq__error(body, "not_found", msg);
	return 404;
}

void evsq__array1(evs__buf *b, const char *s)
{
	b->len = 0;
	evs__buf_putc(b, '{');
	evp_array_elem(b, s, strlen(s));
	evs__buf_putc(b, '}');
}

unsigned evsq__lookup(const evsq__ctx *ctx, int kind, const char *stream, int64_t arg,
		      evs__buf *body)
{
	static const enum evsq__stmt stmts[] = {[EVSQ__J_CURRENT] = EVSQ__S_CURRENT_N,
						[EVSQ__J_AS_OF] = EVSQ__S_AS_OF_N,
						[EVSQ__J_AT] = EVSQ__S_AT_POSITION_N};
	char sqlstate[6], err[1024], argv[32];
	evs__buf streams = {0};
	const char *params[3];
	PGresult *r;
	unsigned status;
	int rc;

	evsq__array1(&streams, stream);
	snprintf(argv, sizeof argv, "{%lld}", (long long)arg);
	if (!evs__buf_cstr(&streams)) {
		evsq__error(body, "internal", "out of memory");
		return 500;
	}
	params[0] = ctx->projection;
	params[1] = streams.ptr;
	params[2] = argv;
	rc = evsq__pool_exec(ctx->pool, stmts[kind], kind == EVSQ__J_CURRENT ? 2 : 3, params, &r,
			     sqlstate, err, sizeof err);
	evs__buf_free(&streams);
	if (rc)
		return evsq__db_error(body, rc, sqlstate, err);
	if (PQntuples(r) != 1) {
		PQclear(r);
		evsq__error(body, "internal", "lookup returned no row");
		return 500;
	}
	status = evsq__state_answer(r, 0, kind, stream, body);
	PQclear(r);
	return status;
}
