/*
 * streams.c - GET /streams/{id}/state|history|events: parameters,
 * read-your-writes wait, statement, JSON answer.
 *
 * The stream id is the decoded path between "/streams/" and the last
 * "/state", "/history" or "/events", so ids may contain '/' (send %2F or a
 * plain '/'). Answers (positions are global store positions):
 *
 *   state:   {"stream", "position": checkpoint, "version", "event_position",
 *             "valid_from"|"updated_at", "valid_to", "data"}
 *   history: {"stream", "position", "states": [{version, event_position,
 *             valid_from, valid_to, data}], "next_after_version"}
 *   events:  {"stream", "position", "events": [{...}], "next_after_version"}
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>

#include "internal.h"

void evsq__error(evs__buf *body, const char *code, const char *msg)
{
	body->len = 0;
	evs__buf_puts(body, "{\"error\":");
	evsq__json_str(body, code);
	evs__buf_puts(body, ",\"message\":");
	evsq__json_str(body, msg);
	evs__buf_puts(body, "}\n");
}

enum kind { K_STATE, K_HISTORY, K_EVENTS };

struct args {
	const char *allowed[6]; /* NULL-terminated */
	const char *bad;        /* first unknown parameter */
};

static enum MHD_Result check_arg(void *cls, enum MHD_ValueKind kind, const char *key,
				 const char *value)
{
	struct args *a = cls;
	int i;

	(void)kind;
	(void)value;
	for (i = 0; a->allowed[i]; i++)
		if (!strcmp(key, a->allowed[i]))
			return MHD_YES;
	a->bad = key;
	return MHD_NO;
}

static int64_t getll(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static void put_ts(evs__buf *b, const char *key, const PGresult *r, int row, int col)
{
	evs__buf_printf(b, ",\"%s\":", key);
	if (PQgetisnull(r, row, col))
		evs__buf_puts(b, "null");
	else
		evsq__json_str(b, PQgetvalue(r, row, col));
}

static void put_raw(evs__buf *b, const char *key, const PGresult *r, int row, int col)
{
	evs__buf_printf(b, ",\"%s\":", key);
	evs__buf_puts(b, PQgetisnull(r, row, col) ? "null" : PQgetvalue(r, row, col));
}

static void put_text(evs__buf *b, const char *key, const PGresult *r, int row, int col)
{
	evs__buf_printf(b, ",\"%s\":", key);
	if (PQgetisnull(r, row, col))
		evs__buf_puts(b, "null");
	else
		evsq__json_str(b, PQgetvalue(r, row, col));
}

static unsigned db_error(evs__buf *body, int rc, const char *sqlstate, const char *err)
{
	if (rc == EVSQ_UNAVAILABLE) {
		evsq__error(body, "unavailable", err);
		return 503;
	}
	if (!strncmp(sqlstate, "22", 2)) { /* data exception: a value PostgreSQL refused */
		evsq__error(body, "bad_request", err);
		return 400;
	}
	if (!strcmp(sqlstate, "57014")) {
		evsq__error(body, "unavailable", "statement timed out");
		return 503;
	}
	evsq__error(body, "internal", err);
	return 500;
}

/* Wait until the checkpoint reaches min: woken by the projector's
 * NOTIFY (watch.c), bounded by the configured wait. 0 when reached,
 * else the status. */
unsigned evsq__wait_position(const evsq__ctx *ctx, const char *projection, int64_t min,
			     evs__buf *body)
{
	return evsq__watch_wait(ctx, projection, min, body);
}

unsigned evsq__state_answer(const PGresult *r, int row, int kind, const char *stream, evs__buf *body)
{
	char msg[512];

	body->len = 0;
	if (!PQgetisnull(r, row, 1)) {
		evs__buf_puts(body, PQgetvalue(r, row, 1));
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

/* One lookup through the pool: the batcher's statement with arrays of
 * one, so both paths answer alike. */
static unsigned lookup(const evsq__ctx *ctx, int kind, const char *stream, int64_t arg,
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
		return db_error(body, rc, sqlstate, err);
	if (PQntuples(r) != 1) {
		PQclear(r);
		evsq__error(body, "internal", "lookup returned no row");
		return 500;
	}
	status = evsq__state_answer(r, 0, kind, stream, body);
	PQclear(r);
	return status;
}

static unsigned state(const evsq__ctx *ctx, struct MHD_Connection *conn, const char *stream,
		      evs__buf *body)
{
	const char *as_of = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "as_of");
	const char *at = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "at_position");
	const char *source = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "source");
	bool from_store = false;
	char msg[512];
	int64_t pos = 0;
	unsigned status;

	if (source && !strcmp(source, "store")) {
		if (!ctx->store) {
			evsq__error(
				body, "bad_request",
				"source=store is not served here: start evs-query with --store");
			return 400;
		}
		from_store = true;
	} else if (source && strcmp(source, "read_model")) {
		snprintf(msg, sizeof msg,
			 "invalid source \"%.100s\": expected \"read_model\" or \"store\"", source);
		evsq__error(body, "bad_request", msg);
		return 400;
	}
	if (as_of && at) {
		evsq__error(body, "bad_request", "as_of and at_position exclude each other");
		return 400;
	}
	if (as_of) {
		if (!evsq__rfc3339_valid(as_of)) {
			snprintf(msg, sizeof msg,
				 "invalid as_of \"%.100s\": expected an RFC 3339 date-time such as "
				 "2024-05-01T12:00:00Z",
				 as_of);
			evsq__error(body, "bad_request", msg);
			return 400;
		}
		if (from_store)
			return evsq__state_from_store(ctx->store, stream, as_of, -1, body);
		return lookup(ctx, EVSQ__J_AS_OF, stream, evsq__rfc3339_us(as_of), body);
	}
	if (at) {
		if (!evsq__parse_u63(at, &pos)) {
			snprintf(msg, sizeof msg,
				 "invalid at_position \"%.100s\": expected a non-negative integer",
				 at);
			evsq__error(body, "bad_request", msg);
			return 400;
		}
		if (from_store)
			return evsq__state_from_store(ctx->store, stream, NULL, pos, body);
		/* the state after N is only known once N is projected */
		if ((status = evsq__wait_position(ctx, ctx->projection, pos, body)))
			return status;
		return lookup(ctx, EVSQ__J_AT, stream, pos, body);
	}
	if (from_store)
		return evsq__state_from_store(ctx->store, stream, NULL, -1, body);
	return lookup(ctx, EVSQ__J_CURRENT, stream, 0, body);
}

static unsigned listing(const evsq__ctx *ctx, struct MHD_Connection *conn, const char *stream,
			enum kind kind, evs__buf *body)
{
	const char *after =
		MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "after_version");
	const char *lim = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "limit");
	char after_s[24], lim_s[24], sqlstate[6], err[1024], msg[512];
	const char *params[4] = {stream, ctx->projection, after_s, lim_s};
	int64_t a = 0, l = 100, last = -1;
	PGresult *r;
	int rc, i, rows;

	if (after && !evsq__parse_u63(after, &a)) {
		snprintf(msg, sizeof msg,
			 "invalid after_version \"%.100s\": expected a non-negative integer",
			 after);
		evsq__error(body, "bad_request", msg);
		return 400;
	}
	if (lim && (!evsq__parse_u63(lim, &l) || l < 1 || l > ctx->page_max)) {
		snprintf(msg, sizeof msg,
			 "invalid limit \"%.100s\": expected an integer from 1 to %ld", lim,
			 ctx->page_max);
		evsq__error(body, "bad_request", msg);
		return 400;
	}
	snprintf(after_s, sizeof after_s, "%lld", (long long)a);
	snprintf(lim_s, sizeof lim_s, "%lld", (long long)l);
	rc = evsq__pool_exec(ctx->pool, kind == K_HISTORY ? EVSQ__S_HISTORY : EVSQ__S_EVENTS, 4,
			     params, &r, sqlstate, err, sizeof err);
	if (rc)
		return db_error(body, rc, sqlstate, err);
	rows = PQntuples(r);
	if (rows < 1 || !strcmp(PQgetvalue(r, 0, 1), "f")) {
		snprintf(msg, sizeof msg, "stream \"%.200s\" not found", stream);
		evsq__error(body, "not_found", msg);
		PQclear(r);
		return 404;
	}
	body->len = 0;
	evs__buf_puts(body, "{\"stream\":");
	evsq__json_str(body, stream);
	evs__buf_printf(body, ",\"position\":%lld,\"%s\":[", (long long)getll(r, 0, 0),
		       kind == K_HISTORY ? "states" : "events");
	for (i = 0; i < rows && !PQgetisnull(r, i, 2); i++) {
		evs__buf_puts(body, i ? ",{" : "{");
		if (kind == K_HISTORY) {
			last = getll(r, i, 2);
			evs__buf_printf(body, "\"version\":%lld,\"event_position\":%lld",
				       (long long)last, (long long)getll(r, i, 3));
			put_ts(body, "valid_from", r, i, 4);
			put_ts(body, "valid_to", r, i, 5);
			put_raw(body, "data", r, i, 6);
		} else {
			last = getll(r, i, 3);
			evs__buf_printf(body, "\"position\":%lld,\"version\":%lld",
				       (long long)getll(r, i, 2), (long long)last);
			put_text(body, "type", r, i, 4);
			put_raw(body, "type_version", r, i, 5);
			put_ts(body, "recorded_at", r, i, 6);
			put_raw(body, "recorded_at_ns", r, i, 7);
			put_ts(body, "occurred_at", r, i, 8);
			put_text(body, "event_id", r, i, 9);
			put_text(body, "correlation_id", r, i, 10);
			put_text(body, "causation_id", r, i, 11);
			put_raw(body, "metadata", r, i, 12);
			put_raw(body, "data", r, i, 13);
		}
		evs__buf_putc(body, '}');
	}
	evs__buf_puts(body, "],\"next_after_version\":");
	if (i == l && last >= 0)
		evs__buf_printf(body, "%lld", (long long)last);
	else
		evs__buf_puts(body, "null");
	evs__buf_puts(body, "}\n");
	PQclear(r);
	return 200;
}

static bool ends_with(const char *s, size_t n, const char *suffix, size_t *stream_len)
{
	size_t k = strlen(suffix);

	if (n <= k || memcmp(s + n - k, suffix, k))
		return false;
	*stream_len = n - k;
	return true;
}

struct fast_args {
	int n;
	bool other;
};

static enum MHD_Result count_arg(void *cls, enum MHD_ValueKind kind, const char *key,
				 const char *value)
{
	struct fast_args *a = cls;

	(void)kind;
	(void)value;
	a->n++;
	if (strcmp(key, "as_of") && strcmp(key, "min_position"))
		a->other = true;
	return MHD_YES;
}

char *evsq__streams_fast(const evsq__ctx *ctx, struct MHD_Connection *conn, const char *rest,
			 evsq__job *job)
{
	struct fast_args a = {0, false};
	size_t len;
	const char *as_of, *minp;
	int64_t min, cur;

	if (!ends_with(rest, strlen(rest), "/state", &len) || !evsq__utf8_valid(rest))
		return NULL;
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, count_arg, &a);
	if (a.other || a.n > 2)
		return NULL;
	/* read-your-writes already satisfied: the watcher's cache (never
	 * ahead of the committed checkpoint) reaches N, and the batch reads a
	 * checkpoint at least as new */
	minp = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "min_position");
	if (minp && (!evsq__parse_u63(minp, &min) ||
		     !evsq__watch_position(ctx->watch, ctx->projection, &cur) || cur < min))
		return NULL;
	as_of = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "as_of");
	if (a.n - (minp != NULL) != (as_of != NULL))
		return NULL; /* a parameter twice */
	if (as_of) {
		if (!evsq__rfc3339_valid(as_of))
			return NULL; /* the workers explain why */
		job->kind = EVSQ__J_AS_OF;
		job->as_of_us = evsq__rfc3339_us(as_of);
	} else {
		job->kind = EVSQ__J_CURRENT;
		job->as_of_us = 0;
	}
	return strndup(rest, len);
}

unsigned evsq__streams(const evsq__ctx *ctx, struct MHD_Connection *conn, const char *rest,
		       evs__buf *body)
{
	size_t n = strlen(rest), len = 0;
	struct args args = {{"min_position", NULL}, NULL};
	const char *minp;
	enum kind kind;
	char *stream;
	unsigned status;
	int64_t min;

	if (ends_with(rest, n, "/state", &len)) {
		kind = K_STATE;
		args.allowed[1] = "as_of";
		args.allowed[2] = "at_position";
		args.allowed[3] = "source";
	} else if (ends_with(rest, n, "/history", &len)) {
		kind = K_HISTORY;
		args.allowed[1] = "after_version";
		args.allowed[2] = "limit";
	} else if (ends_with(rest, n, "/events", &len)) {
		kind = K_EVENTS;
		args.allowed[1] = "after_version";
		args.allowed[2] = "limit";
	} else {
		evsq__error(body, "not_found",
			    "no such resource: expected /streams/{id}/state, "
			    "/streams/{id}/history or /streams/{id}/events");
		return 404;
	}
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, check_arg, &args);
	if (args.bad) {
		char msg[256];

		snprintf(msg, sizeof msg, "unknown parameter \"%.100s\"", args.bad);
		evsq__error(body, "bad_request", msg);
		return 400;
	}
	minp = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "min_position");
	if (minp) {
		if (!evsq__parse_u63(minp, &min)) {
			char msg[256];

			snprintf(msg, sizeof msg,
				 "invalid min_position \"%.100s\": expected a non-negative integer",
				 minp);
			evsq__error(body, "bad_request", msg);
			return 400;
		}
		if ((status = evsq__wait_position(ctx, ctx->projection, min, body)))
			return status;
	}
	if (!evsq__utf8_valid(rest)) {
		evsq__error(body, "bad_request", "the stream id is not valid UTF-8");
		return 400;
	}
	stream = strndup(rest, len);
	if (!stream) {
		evsq__error(body, "internal", "out of memory");
		return 500;
	}
	status = kind == K_STATE ? state(ctx, conn, stream, body)
				 : listing(ctx, conn, stream, kind, body);
	free(stream);
	return status;
}
