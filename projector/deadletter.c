/*
 * deadletter.c - the declared rules of a batch, and failing events
 * parked in evs.dead_letters.
 *
 * A projection whose statements all run set-based (rules_set.c) runs
 * them so (setexec.c); when one fails, all of it is rolled back and the
 * batch runs one event at a time, below, to find the failing event.
 * Without dead letters the statements of the whole batch are pipelined
 * (rules_exec.c) and the first failure stops the projector with the
 * event it failed on. With them, each event's statements run under a
 * SAVEPOINT: a failure is rolled back to it and the event is parked (with
 * its SQLSTATE and message) in the same transaction as the batch.
 */
#include <stdio.h>

#include "internal.h"

static int park(struct evp__run *r, struct evp__event *e, const char *sqlstate, const char *msg)
{
	evs__buf *b = &r->dead;
	struct evp__json j;
	char pos[24];
	const char *vals[7];
	size_t stream_at, type_at;
	int rc;

	if ((rc = evp__event_json(r, e, &j)))
		return rc;
	evs__buf_reset(b);
	evs__buf_printf(b, "{\"position\":%llu,\"version\":%llu,\"type_version\":%u,\"data\":",
			(unsigned long long)e->ev.position, (unsigned long long)e->ev.version,
			e->ev.type_version);
	evs__buf_putn(b, j.data, j.data_len);
	evs__buf_puts(b, ",\"metadata\":");
	evs__buf_putn(b, j.meta, j.meta_len);
	evs__buf_puts(b, "}");
	/* stream and type as NUL-terminated texts after the event */
	stream_at = b->len + 1;
	evs__buf_putc(b, '\0');
	evs__buf_putn(b, e->ev.stream.ptr, e->ev.stream.len);
	type_at = b->len + 1;
	evs__buf_putc(b, '\0');
	evs__buf_putn(b, e->ev.type.ptr, e->ev.type.len);
	if (!evs__buf_cstr(b)) {
		snprintf(r->err, r->errlen, "out of memory");
		return EVP_NOMEM;
	}
	snprintf(pos, sizeof pos, "%llu", (unsigned long long)e->ev.position);
	vals[0] = r->name;
	vals[1] = pos;
	vals[2] = b->ptr + stream_at;
	vals[3] = b->ptr + type_at;
	vals[4] = b->ptr;
	vals[5] = sqlstate[0] ? sqlstate : NULL;
	vals[6] = msg;
	return evp__exec(r, PGRES_COMMAND_OK, NULL,
			 "INSERT INTO evs.dead_letters (projection, position, stream, type, event,"
			 " sqlstate, error) VALUES ($1, $2, $3, $4, $5, $6, $7)",
			 7, vals, "could not park event at position %s", pos);
}

static int rule_failed(struct evp__run *r, struct evp__event *e, const char *msg)
{
	struct evp__json j;

	if (evp__event_json(r, e, &j) == EVP_OK)
		snprintf(r->err, r->errlen,
			 "projection \"%s\" failed on event at position %llu (stream \"%.*s\","
			 " type \"%.*s\", data %.*s): %s",
			 r->name, (unsigned long long)e->ev.position, (int)e->ev.stream.len,
			 e->ev.stream.ptr, (int)e->ev.type.len, e->ev.type.ptr,
			 j.data_len > 200 ? 200 : (int)j.data_len, j.data, msg);
	return EVP_SQL;
}

/* One event under a savepoint; parked when its statements fail. */
static int apply_one(struct evp__run *r, struct evp__event *e, uint64_t *parked)
{
	char msg[1024], sqlstate[8] = "";
	uint32_t mark = evp__history_mark(r->rules);
	int rc;

	if ((rc = evp__cmd(r, "SAVEPOINT evs_event")))
		return rc;
	rc = evp__rules_apply(r->rules, r->conn, e, msg, sizeof msg, sqlstate, sizeof sqlstate);
	if (rc == EVP_SQL) {
		evp__logm(r, EVS_LOG_WARNING,
			  "parking event at position %llu (stream \"%.*s\", type \"%.*s\"): %s",
			  (unsigned long long)e->ev.position, (int)e->ev.stream.len,
			  e->ev.stream.ptr, (int)e->ev.type.len, e->ev.type.ptr, msg);
		evp__history_rewind(r->rules, mark);
		if ((rc = evp__cmd(r, "ROLLBACK TO SAVEPOINT evs_event")) ||
		    (rc = park(r, e, sqlstate, msg)))
			return rc;
		(*parked)++;
	} else if (rc) {
		snprintf(r->err, r->errlen, "%s", msg);
		return rc;
	}
	return evp__cmd(r, "RELEASE SAVEPOINT evs_event");
}

int evp__write_rules(struct evp__run *r, uint64_t *parked)
{
	size_t i;
	int rc;

	if (evp__rules_set_use(r)) {
		bool fallback;

		if ((rc = evp__rules_apply_set(r, &fallback)) || !fallback)
			return rc;
	}
	if (!r->cfg->dead_letter) {
		/* no savepoints needed: pipeline every statement of the batch */
		char msg[1024], sqlstate[8] = "";
		size_t failed = 0;

		rc = evp__rules_apply_many(r->rules, r->conn, r->batch.events, r->batch.n, &failed,
					   msg, sizeof msg, sqlstate, sizeof sqlstate);
		if (rc == EVP_SQL)
			return rule_failed(r, &r->batch.events[failed], msg);
		if (rc)
			snprintf(r->err, r->errlen, "%s", msg);
		return rc;
	}
	for (i = 0; i < r->batch.n; i++) {
		struct evp__event *e = &r->batch.events[i];

		if (evp__rules_match(r->rules, &e->ev.type) && (rc = apply_one(r, e, parked)))
			return rc;
	}
	return EVP_OK;
}
