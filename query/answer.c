/*
 * answer.c - error answers shared by every endpoint: the error body, and
 * the answer to a failed statement, in PostgreSQL's voice.
 *
 *   {"error": code, "message": text}
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

unsigned evsq__no_database(evs__buf *body)
{
	evsq__error(body, "no_database",
		    "no read-model database is configured (evs-query was started without --dsn):"
		    " served here are /health, /ready, /metrics, /events (by index),"
		    " /events/stream and /streams/{id}/state?source=store");
	return 404;
}

void evsq__error(evs__buf *body, const char *code, const char *msg)
{
	body->len = 0;
	evs__buf_puts(body, "{\"error\":");
	evsq__json_str(body, code);
	evs__buf_puts(body, ",\"message\":");
	evsq__json_str(body, msg);
	evs__buf_puts(body, "}\n");
}

void evsq__pg_message(char *out, size_t n, const char *err)
{
	size_t len;

	if (!strncmp(err, "ERROR:  ", 8))
		err += 8;
	len = strcspn(err, "\n");
	snprintf(out, n, "%.*s", (int)len, err);
}

unsigned evsq__db_error(evs__buf *body, int rc, const char *sqlstate, const char *err)
{
	char msg[1024];

	evsq__pg_message(msg, sizeof msg, err);
	if (rc == EVSQ_UNAVAILABLE) {
		evsq__error(body, "unavailable", msg);
		return 503;
	}
	if (rc == EVSQ_NOMEM) {
		evsq__error(body, "internal", "out of memory");
		return 500;
	}
	/* 22: a value PostgreSQL could not take for the column's type;
	 * 42883: no equality for the type of a filtered column (json) */
	if (!strncmp(sqlstate, "22", 2) || !strcmp(sqlstate, "42883")) {
		evsq__error(body, "bad_request", msg);
		return 400;
	}
	if (!strcmp(sqlstate, "57014")) {
		evsq__error(body, "unavailable", "statement timed out");
		return 503;
	}
	evsq__error(body, "internal", msg);
	return 500;
}
