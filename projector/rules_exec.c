/*
 * rules_exec.c - run a declared projection's statements: prepared once
 * per connection, executed with an event's values as text parameters,
 * one event at a time (under the caller's savepoint) or many pipelined.
 */
#include <stdio.h>
#include <string.h>

#include <msgpack.h>

#include "rules.h"

int evp__rules_prepare(evp_rules *rules, PGconn *conn, char *err, size_t errlen)
{
	int i, j, n = 0, rc;

	for (i = 0; i < rules->nrules; i++)
		for (j = 0; j < rules->rules[i].nstmts; j++) {
			struct stmt *st = &rules->rules[i].stmts[j];
			PGresult *res;

			snprintf(st->pname, sizeof st->pname, "evs_rule_%d", n++);
			res = PQprepare(conn, st->pname, st->sql, 0, NULL);
			if (PQresultStatus(res) != PGRES_COMMAND_OK) {
				const char *m = PQresultErrorMessage(res);

				snprintf(err, errlen,
					 "could not prepare a statement for \"%s\" of \"%s\": %.*s",
					 rules->rules[i].type, rules->name, evp__msglen(m), m);
				rc = evp_retryable(conn, res) ? EVP_CONNECT : EVP_SQL;
				PQclear(res);
				return rc;
			}
			PQclear(res);
		}
	return EVP_OK;
}

const struct rule *evp__find_rule(const evp_rules *rules, const evs_str *type)
{
	int i;

	for (i = 0; i < rules->nrules; i++)
		if (strlen(rules->rules[i].type) == type->len &&
		    memcmp(rules->rules[i].type, type->ptr, type->len) == 0)
			return &rules->rules[i];
	return NULL;
}

bool evp__rules_match(const evp_rules *rules, const evs_str *type)
{
	return evp__find_rule(rules, type) != NULL;
}

static const msgpack_object *walk(const msgpack_object *o, const struct param *p)
{
	int s;

	for (s = 0; s < p->nsegs && o; s++) {
		const struct seg *g = &p->segs[s];
		const msgpack_object *next = NULL;
		uint32_t i;

		if (g->key) {
			size_t kl = strlen(g->key);

			if (o->type != MSGPACK_OBJECT_MAP)
				return NULL;
			for (i = 0; i < o->via.map.size; i++) {
				const msgpack_object *k = &o->via.map.ptr[i].key;

				if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == kl &&
				    memcmp(k->via.str.ptr, g->key, kl) == 0)
					next = &o->via.map.ptr[i].val;
			}
		} else {
			if (o->type != MSGPACK_OBJECT_ARRAY ||
			    (uint64_t)g->index >= o->via.array.size)
				return NULL;
			next = &o->via.array.ptr[g->index];
		}
		o = next;
	}
	return o;
}

static int sbuf_write(void *data, const char *p, size_t n)
{
	evs__buf_putn(data, p, n);
	return ((evs__buf *)data)->oom ? -1 : 0;
}

/* Text of a payload value; false for NULL. */
static bool value_text(evs__buf *b, const msgpack_object *o)
{
	switch (o->type) {
	case MSGPACK_OBJECT_NIL: return false;
	case MSGPACK_OBJECT_BOOLEAN: evs__buf_puts(b, o->via.boolean ? "true" : "false"); break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		evs__buf_printf(b, "%llu", (unsigned long long)o->via.u64);
		break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		evs__buf_printf(b, "%lld", (long long)o->via.i64);
		break;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64: {
		/* the shortest text that reads back as the double (the number
		 * policy, mpjson.h): 0.1 reaches a numeric column as 0.1 */
		char t[EVS__DOUBLE_LEN];

		evs__buf_putn(b, t, evs__double_text(o->via.f64, t));
		break;
	}
	case MSGPACK_OBJECT_STR: evs__buf_putn(b, o->via.str.ptr, o->via.str.size); break;
	default: {
		evs__buf mp = {0};
		msgpack_packer pk;

		msgpack_packer_init(&pk, &mp, sbuf_write);
		msgpack_pack_object(&pk, *o);
		evs__msgpack_to_json(b, mp.ptr, mp.len, 0);
		evs__buf_free(&mp);
	}
	}
	return true;
}

int evp__unpacked_init(struct unpacked *u)
{
	memset(u, 0, sizeof *u);
	return msgpack_zone_init(&u->zone, 4096) ? EVP_OK : EVP_NOMEM;
}

void evp__unpacked_free(struct unpacked *u)
{
	int k;

	msgpack_zone_destroy(&u->zone);
	for (k = 0; k < MAX_PARAMS; k++)
		evs__buf_free(&u->vals[k]);
}

void evp__unpack_event(struct unpacked *u, const evs_event *ev)
{
	size_t off = 0;

	msgpack_zone_clear(&u->zone);
	if (msgpack_unpack(ev->data, ev->data_len, &off, &u->zone, &u->data) !=
	    MSGPACK_UNPACK_SUCCESS)
		u->data.type = MSGPACK_OBJECT_NIL;
	off = 0;
	if (msgpack_unpack(ev->metadata, ev->metadata_len, &off, &u->zone, &u->meta) !=
	    MSGPACK_UNPACK_SUCCESS)
		u->meta.type = MSGPACK_OBJECT_NIL;
}

/* Fill u->pv with the statement's parameter values (NULL = SQL NULL). */
int evp__bind_params(struct unpacked *u, const struct stmt *st, const evs_event *ev)
{
	int k;

	for (k = 0; k < st->nparams; k++) {
		const struct param *p = &st->params[k];
		evs__buf *b = &u->vals[k];
		bool present = true;

		b->len = 0;
		switch (p->field) {
		case F_STREAM: evs__buf_putn(b, ev->stream.ptr, ev->stream.len); break;
		case F_TYPE: evs__buf_putn(b, ev->type.ptr, ev->type.len); break;
		case F_VERSION: evs__buf_printf(b, "%llu", (unsigned long long)ev->version); break;
		case F_POSITION:
			evs__buf_printf(b, "%llu", (unsigned long long)ev->position);
			break;
		case F_TYPE_VERSION: evs__buf_printf(b, "%u", ev->type_version); break;
		case F_RECORDED_AT: evs__time_pg_text(b, ev->recorded_at); break;
		case F_OCCURRED_AT:
			present = ev->occurred_at != 0;
			if (present)
				evs__time_pg_text(b, ev->occurred_at);
			break;
		case F_EVENT_ID: evp_uuid_text(b, ev->id); break;
		case F_CORRELATION_ID:
			present = !evp_uuid_is_nil(ev->correlation_id);
			if (present)
				evp_uuid_text(b, ev->correlation_id);
			break;
		case F_CAUSATION_ID:
			present = !evp_uuid_is_nil(ev->causation_id);
			if (present)
				evp_uuid_text(b, ev->causation_id);
			break;
		case F_DATA:
		case F_METADATA: {
			const msgpack_object *o = walk(p->field == F_DATA ? &u->data : &u->meta, p);

			present = o && value_text(b, o);
			break;
		}
		}
		if (!evs__buf_cstr(b))
			return EVP_NOMEM;
		u->pv[k] = present ? b->ptr : NULL;
	}
	return EVP_OK;
}

static int result_error(PGconn *conn, PGresult *res, char *err, size_t errlen, char *sqlstate,
			size_t sslen)
{
	const char *m = res ? PQresultErrorMessage(res) : "";
	const char *ss = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	if (!m[0])
		m = PQerrorMessage(conn);
	snprintf(err, errlen, "%.*s", evp__msglen(m), m);
	snprintf(sqlstate, sslen, "%s", ss ? ss : "");
	return evp_retryable(conn, res) ? EVP_CONNECT : EVP_SQL;
}

static int capture(evp_rules *rules, const struct stmt *st, const PGresult *res,
		   const evs_event *ev, char *err, size_t errlen)
{
	int rc = evp__history_capture(rules, st, res, ev->position, ev->recorded_at);

	if (rc == EVP_NOMEM)
		snprintf(err, errlen, "out of memory");
	else if (rc)
		snprintf(err, errlen, "the rows a statement returned do not match its table");
	return rc;
}

int evp__rules_apply(evp_rules *rules, PGconn *conn, const struct evp__event *e, char *err,
		     size_t errlen, char *sqlstate, size_t sslen)
{
	const struct rule *ru = evp__find_rule(rules, &e->ev.type);
	struct unpacked u;
	int j, rc = EVP_OK;

	sqlstate[0] = '\0';
	if (!ru)
		return EVP_OK;
	if (evp__unpacked_init(&u) != EVP_OK) {
		snprintf(err, errlen, "out of memory");
		return EVP_NOMEM;
	}
	evp__unpack_event(&u, &e->ev);
	for (j = 0; j < ru->nstmts && rc == EVP_OK; j++) {
		const struct stmt *st = &ru->stmts[j];
		PGresult *res;

		if (evp__bind_params(&u, st, &e->ev) != EVP_OK) {
			snprintf(err, errlen, "out of memory");
			rc = EVP_NOMEM;
			break;
		}
		res = PQexecPrepared(conn, st->pname, st->nparams, u.pv, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK &&
		    PQresultStatus(res) != PGRES_TUPLES_OK)
			rc = result_error(conn, res, err, errlen, sqlstate, sslen);
		else if (PQresultStatus(res) == PGRES_TUPLES_OK)
			rc = capture(rules, st, res, &e->ev, err, errlen);
		PQclear(res);
	}
	evp__unpacked_free(&u);
	return rc;
}

/*
 * The statements of many events in libpq's pipeline mode: sent without
 * waiting, PIPE_QUERIES at a time followed by a sync, whose results are
 * read before the next chunk is sent (so neither side's socket buffer can
 * fill up and block both). The first failing statement aborts the rest of
 * the transaction; *failed is its event's index.
 */
#define PIPE_QUERIES 256

int evp__rules_apply_many(evp_rules *rules, PGconn *conn, const struct evp__event *events, size_t n,
			  size_t *failed, char *err, size_t errlen, char *sqlstate, size_t sslen)
{
	size_t qev[PIPE_QUERIES];
	const struct stmt *qst[PIPE_QUERIES];
	struct unpacked u;
	size_t i = 0;
	int rc = EVP_OK;

	sqlstate[0] = '\0';
	if (evp__unpacked_init(&u) != EVP_OK) {
		snprintf(err, errlen, "out of memory");
		return EVP_NOMEM;
	}
	if (PQenterPipelineMode(conn) != 1) {
		snprintf(err, errlen, "could not enter pipeline mode: %s", PQerrorMessage(conn));
		evp__unpacked_free(&u);
		return EVP_CONNECT;
	}
	while (i < n && rc == EVP_OK) {
		size_t sent = 0, got = 0;
		bool synced = false;

		/* send the statements of whole events, up to PIPE_QUERIES */
		for (; i < n; i++) {
			const struct rule *ru = evp__find_rule(rules, &events[i].ev.type);
			int j;

			if (!ru)
				continue;
			if (sent + (size_t)ru->nstmts > PIPE_QUERIES && sent > 0)
				break;
			evp__unpack_event(&u, &events[i].ev);
			for (j = 0; j < ru->nstmts && rc == EVP_OK; j++) {
				const struct stmt *st = &ru->stmts[j];

				if (evp__bind_params(&u, st, &events[i].ev) != EVP_OK) {
					snprintf(err, errlen, "out of memory");
					rc = EVP_NOMEM;
				} else if (PQsendQueryPrepared(conn, st->pname, st->nparams, u.pv,
							       NULL, NULL, 0) != 1) {
					rc = result_error(conn, NULL, err, errlen, sqlstate, sslen);
				} else if (sent < PIPE_QUERIES) {
					qst[sent] = st;
					qev[sent++] = i;
				}
			}
			if (rc)
				break;
		}
		if (sent == 0)
			break;
		if (PQpipelineSync(conn) != 1) {
			if (!rc)
				rc = result_error(conn, NULL, err, errlen, sqlstate, sslen);
			break;
		}
		/* results: each query's, then NULL; finally PIPELINE_SYNC */
		while (!synced) {
			PGresult *res = PQgetResult(conn);

			if (!res) {
				if (PQstatus(conn) != CONNECTION_OK) {
					if (!rc)
						rc = result_error(conn, NULL, err, errlen, sqlstate,
								  sslen);
					break;
				}
				got++;
				if (got > sent + 1) { /* never: a lost sync */
					if (!rc) {
						snprintf(err, errlen, "lost the pipeline's sync");
						rc = EVP_CONNECT;
					}
					break;
				}
				continue;
			}
			switch (PQresultStatus(res)) {
			case PGRES_PIPELINE_SYNC: synced = true; break;
			case PGRES_TUPLES_OK:
				if (!rc && got < sent) {
					rc = capture(rules, qst[got], res, &events[qev[got]].ev,
						     err, errlen);
					if (rc)
						*failed = qev[got];
				}
				break;
			case PGRES_COMMAND_OK:
			case PGRES_PIPELINE_ABORTED: break;
			default:
				if (!rc) {
					rc = result_error(conn, res, err, errlen, sqlstate, sslen);
					*failed = qev[got < sent ? got : sent - 1];
				}
			}
			PQclear(res);
		}
	}
	evp__unpacked_free(&u);
	if (PQexitPipelineMode(conn) != 1 && !rc) {
		snprintf(err, errlen, "could not leave pipeline mode: %s", PQerrorMessage(conn));
		rc = EVP_CONNECT;
	}
	return rc;
}
