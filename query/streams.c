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

enum kind { K_STATE, K_HISTORY, K_EVENTS };

/* The parameters each endpoint takes (args.c refuses any other). */
static const char *const allowed[][5] = {
	[K_STATE] = {"min_position", "as_of", "at_position", "source", NULL},
	[K_HISTORY] = {"min_position", "after_version", "limit", NULL},
	[K_EVENTS] = {"min_position", "after_version", "limit", NULL},
};

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

/* An integer column, or a jsonb column written from msgpack (data,
 * metadata), whose doubles are written as the store prints them (jsonb
 * prints 1e300 as 301 digits; integers are copied as they are). */
static void put_raw(evs__buf *b, const char *key, const PGresult *r, int row, int col)
{
	evs__buf_printf(b, ",\"%s\":", key);
	if (PQgetisnull(r, row, col))
		evs__buf_puts(b, "null");
	else
		evsq__json_numbers(b, PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col));
}

static void put_text(evs__buf *b, const char *key, const PGresult *r, int row, int col)
{
	evs__buf_printf(b, ",\"%s\":", key);
	if (PQgetisnull(r, row, col))
		evs__buf_puts(b, "null");
	else
		evsq__json_str(b, PQgetvalue(r, row, col));
}

static unsigned state(const evsq__ctx *ctx, const evsq__args *args, const char *stream,
		      evs__buf *body)
{
	const char *as_of = evsq__arg(args, "as_of");
	const char *at = evsq__arg(args, "at_position");
	const char *source = evsq__arg(args, "source");
	bool from_store = false;
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
		return evsq__bad_param(body, "source", source, "\"read_model\" or \"store\"");
	}
	if (as_of && at) {
		evsq__error(body, "bad_request", "as_of and at_position exclude each other");
		return 400;
	}
	if (as_of) {
		if (!evsq__rfc3339_valid(as_of))
			return evsq__bad_param(
				body, "as_of", as_of,
				"an RFC 3339 date-time such as 2024-05-01T12:00:00Z");
		if (from_store)
			return evsq__state_from_store(ctx->store, stream, as_of, -1, body);
		return evsq__lookup(ctx, EVSQ__J_AS_OF, stream, evsq__rfc3339_us(as_of), body);
	}
	if (at) {
		if (!evsq__parse_u63(at, &pos))
			return evsq__bad_param(body, "at_position", at, "a non-negative integer");
		if (from_store)
			return evsq__state_from_store(ctx->store, stream, NULL, pos, body);
		/* the state after N is only known once N is projected */
		if ((status = evsq__watch_wait(ctx, ctx->projection, pos, body)))
			return status;
		return evsq__lookup(ctx, EVSQ__J_AT, stream, pos, body);
	}
	if (from_store)
		return evsq__state_from_store(ctx->store, stream, NULL, -1, body);
	return evsq__lookup(ctx, EVSQ__J_CURRENT, stream, 0, body);
}

static unsigned listing(const evsq__ctx *ctx, const evsq__args *args, const char *stream,
			enum kind kind, evs__buf *body)
{
	const char *after = evsq__arg(args, "after_version");
	const char *lim = evsq__arg(args, "limit");
	char after_s[24], lim_s[24], sqlstate[6], err[1024], msg[512];
	const char *params[4] = {stream, ctx->projection, after_s, lim_s};
	int64_t a = 0, l = 100, last = -1;
	PGresult *r;
	int rc, i, rows;

	if (after && !evsq__parse_u63(after, &a))
		return evsq__bad_param(body, "after_version", after, "a non-negative integer");
	if (lim && (!evsq__parse_u63(lim, &l) || l < 1 || l > ctx->page_max)) {
		snprintf(msg, sizeof msg, "an integer from 1 to %ld", ctx->page_max);
		return evsq__bad_param(body, "limit", lim, msg);
	}
	snprintf(after_s, sizeof after_s, "%lld", (long long)a);
	snprintf(lim_s, sizeof lim_s, "%lld", (long long)l);
	rc = evsq__pool_exec(ctx->pool, kind == K_HISTORY ? EVSQ__S_HISTORY : EVSQ__S_EVENTS, 4,
			     params, &r, sqlstate, err, sizeof err);
	if (rc)
		return evsq__db_error(body, rc, sqlstate, err);
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
			put_text(body, "producer", r, i, 14);
			put_raw(body, "tags", r, i, 15);
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

char *evsq__streams_fast(const evsq__ctx *ctx, struct MHD_Connection *conn, const char *rest,
			 evsq__job *job)
{
	static const char *const fast[] = {"as_of", "min_position", NULL};
	evsq__args args;
	char msg[8];
	size_t len;
	const char *as_of, *minp;
	int64_t min, cur;

	if (!ctx->pool || !ends_with(rest, strlen(rest), "/state", &len) ||
	    !evs__utf8_text((const uint8_t *)rest, strlen(rest)))
		return NULL;
	/* anything malformed or beyond these two: the workers explain */
	if (!evsq__args_read(conn, fast, &args, msg, sizeof msg))
		return NULL;
	/* read-your-writes already satisfied: the watcher's cache (never
	 * ahead of the committed checkpoint) reaches N, and the batch reads a
	 * checkpoint at least as new */
	minp = evsq__arg(&args, "min_position");
	if (minp && (!evsq__parse_u63(minp, &min) ||
		     !evsq__watch_position(ctx->watch, ctx->projection, &cur) || cur < min))
		return NULL;
	as_of = evsq__arg(&args, "as_of");
	if (as_of) {
		if (!evsq__rfc3339_valid(as_of))
			return NULL;
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
	evsq__args args;
	enum kind kind;
	char *stream;
	unsigned status;

	if (ends_with(rest, n, "/state", &len)) {
		kind = K_STATE;
	} else if (ends_with(rest, n, "/history", &len)) {
		kind = K_HISTORY;
	} else if (ends_with(rest, n, "/events", &len)) {
		kind = K_EVENTS;
	} else {
		evsq__error(body, "not_found",
			    "no such resource: expected /streams/{id}/state, "
			    "/streams/{id}/history or /streams/{id}/events");
		return 404;
	}
	if ((status = evsq__args_check(conn, allowed[kind], &args, body)))
		return status;
	/* without a read-model database only the store answers (and no
	 * min_position: it is the projection's) */
	if (!ctx->pool &&
	    (kind != K_STATE || !evsq__arg(&args, "source") ||
	     strcmp(evsq__arg(&args, "source"), "store") || evsq__arg(&args, "min_position")))
		return evsq__no_database(body);
	status = evsq__watch_min_position(ctx, ctx->projection, evsq__arg(&args, "min_position"),
					  body);
	if (status)
		return status;
	if (!evs__utf8_text((const uint8_t *)rest, strlen(rest))) {
		evsq__error(body, "bad_request", "the stream id is not valid UTF-8");
		return 400;
	}
	stream = strndup(rest, len);
	if (!stream) {
		evsq__error(body, "internal", "out of memory");
		return 500;
	}
	status = kind == K_STATE ? state(ctx, &args, stream, body)
				 : listing(ctx, &args, stream, kind, body);
	free(stream);
	return status;
}
