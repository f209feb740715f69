/*
 * pool.c - a fixed pool of PostgreSQL connections with the service's
 * statements prepared on each. Connections are made lazily and remade
 * after a failure, so PostgreSQL being away is an ordinary state: requests
 * get EVSQ_UNAVAILABLE (503) until it is back.
 *
 * Every statement reads the checkpoint of the projection in the same
 * statement as the rows (one snapshot), so the position an answer names is
 * exactly the one its rows reflect. All values are parameters.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define TS(col)    "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
#define CHECKPOINT "(SELECT position FROM evs.checkpoints WHERE projection = $2)"
/* the checkpoint of projection $1 as a one-row table (p; 0 before any) */
#define CHECKPOINT_P                                                                        \
	"(SELECT coalesce((SELECT position FROM evs.checkpoints WHERE projection = $1), 0)" \
	" AS p)"

/* What the state is, said in every answer: the RFC 7386 JSON merge-patch
 * fold of the stream's events' data, a generic convenience, never the
 * domain's state (that is a declared read model's row: /models). */
#define FOLD "'json_merge_patch' AS fold"

/* The answer of a lookup in the history (h), as the columns answer JSON
 * (row_to_json of a, compact, in this order) and known. */
#define HISTORY_ANSWER                                                   \
	"CASE WHEN h.version IS NOT NULL THEN row_to_json(a)::text END," \
	" CASE WHEN h.version IS NOT NULL THEN true"                     \
	"  ELSE EXISTS (SELECT 1 FROM evs.state s WHERE s.stream = q.stream) END"
#define HISTORY_ROW                                                                  \
	" CROSS JOIN LATERAL (SELECT q.stream, c.p AS position, h.version,"          \
	"  h.position AS event_position, " TS("h.valid_from") " AS valid_from, " TS( \
		"h.valid_to") " AS valid_to, " FOLD ", h.data) a"

/* The statements, each as {prepared name, SQL}. $1 stream, $2
 * projection, then per statement (unless said otherwise). */
/* clang-format off */
const struct evsq__stmt_def evsq__stmts[EVSQ__S_COUNT] = {
	[EVSQ__S_CHECKPOINT] = {"evsq_checkpoint",
		"SELECT position FROM evs.checkpoints WHERE projection = $1"},
	/* State lookups for many streams in one statement (batch.c; the
	 * workers send arrays of one). Columns: the element's ordinal (1-based),
	 * the answer as JSON made by PostgreSQL (NULL: nothing at that time),
	 * whether the stream exists at all. */
	[EVSQ__S_CURRENT_N] = {"evsq_current_n",
		"SELECT q.i, CASE WHEN s.stream IS NOT NULL THEN row_to_json(a)::text END,"
		" s.stream IS NOT NULL"
		" FROM unnest($2::text[]) WITH ORDINALITY q(stream, i)"
		" CROSS JOIN " CHECKPOINT_P " c"
		" LEFT JOIN evs.state s ON s.stream = q.stream"
		" CROSS JOIN LATERAL (SELECT q.stream, c.p AS position, s.version,"
		"  s.position AS event_position, " TS("s.updated_at") " AS updated_at, " FOLD ", s.data) a"},
	/* $3 int8[] times, microseconds since the epoch */
	[EVSQ__S_AS_OF_N] = {"evsq_as_of_n",
		"SELECT q.i, " HISTORY_ANSWER
		" FROM unnest($2::text[], $3::int8[]) WITH ORDINALITY q(stream, us, i)"
		" CROSS JOIN " CHECKPOINT_P " c"
		" LEFT JOIN LATERAL (SELECT x.version, x.position, x.valid_from, x.valid_to, x.data"
		"  FROM evs.state_history x WHERE x.stream = q.stream"
		"   AND x.valid_from <= timestamptz 'epoch' + q.us * interval '1 microsecond'"
		"  ORDER BY x.valid_from DESC, x.version DESC LIMIT 1) h ON true"
		HISTORY_ROW},
	/* $3 int8[] positions; within a stream position grows with
	 * (valid_from, version): the backward scan of the key stops at the
	 * first row at or before the position */
	[EVSQ__S_AT_POSITION_N] = {"evsq_at_position_n",
		"SELECT q.i, " HISTORY_ANSWER
		" FROM unnest($2::text[], $3::int8[]) WITH ORDINALITY q(stream, pos, i)"
		" CROSS JOIN " CHECKPOINT_P " c"
		" LEFT JOIN LATERAL (SELECT x.version, x.position, x.valid_from, x.valid_to, x.data"
		"  FROM evs.state_history x WHERE x.stream = q.stream AND x.position <= q.pos"
		"  ORDER BY x.valid_from DESC, x.version DESC LIMIT 1) h ON true"
		HISTORY_ROW},
	/* $3 after version, $4 limit. Columns: checkpoint, known, version,
	 * position, valid_from, valid_to, data; one row with NULLs when the
	 * page is empty */
	[EVSQ__S_HISTORY] = {"evsq_history",
		"SELECT " CHECKPOINT ", EXISTS (SELECT 1 FROM evs.state s WHERE s.stream = $1),"
		" h.version, h.position, " TS("h.valid_from") ", " TS("h.valid_to") ", h.data::text"
		" FROM (VALUES (1)) v LEFT JOIN LATERAL"
		" (SELECT * FROM evs.state_history x WHERE x.stream = $1 AND x.version > $3::bigint"
		"  ORDER BY x.valid_from, x.version LIMIT $4::int) h ON true"},
	/* $3 after version, $4 limit. Columns: checkpoint, known, position,
	 * version, type, type_version, recorded_at, recorded_at_ns,
	 * occurred_at, event_id, correlation_id, causation_id, metadata, data,
	 * producer, tags (JSON) */
	[EVSQ__S_EVENTS] = {"evsq_events",
		"SELECT " CHECKPOINT ", EXISTS (SELECT 1 FROM evs.state s WHERE s.stream = $1),"
		" e.position, e.version, e.type, e.type_version, " TS("e.recorded_at") ","
		" e.recorded_at_ns, " TS("e.occurred_at") ", e.event_id::text,"
		" e.correlation_id::text, e.causation_id::text, e.metadata::text, e.data::text,"
		" e.producer, to_json(e.tags)::text"
		" FROM (VALUES (1)) v LEFT JOIN LATERAL"
		" (SELECT * FROM evs.events x WHERE x.stream = $1 AND x.version > $3::bigint"
		"  ORDER BY x.position LIMIT $4::int) e ON true"},
};
/* clang-format on */

/* Statements made at run time (evsq__pool_query: read models, the
 * catalog) are prepared on first use per connection and kept, up to
 * QCACHE per connection (the rest run unprepared): a lookup then costs
 * no parse and no plan, like the fixed statements. Their names are
 * "evsq_q<n>"; the cache goes with its connection. */
#define QCACHE 64

struct slot {
	PGconn *conn;
	bool busy;
	char *q[QCACHE]; /* SQL text of evsq_q<i> */
	int nq;
};

static void forget_prepared(struct slot *s)
{
	int i;

	for (i = 0; i < s->nq; i++)
		free(s->q[i]);
	s->nq = 0;
}

/* The name of sql prepared on s (preparing it when there is room), or
 * NULL: run it unprepared. */
static const char *prepared(struct slot *s, const char *sql, char name[24])
{
	PGresult *r;
	int i;

	for (i = 0; i < s->nq; i++)
		if (!strcmp(s->q[i], sql)) {
			snprintf(name, 24, "evsq_q%d", i);
			return name;
		}
	if (s->nq == QCACHE)
		return NULL;
	snprintf(name, 24, "evsq_q%d", s->nq);
	r = PQprepare(s->conn, name, sql, 0, NULL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		/* run unprepared: its error (or success) is then the answer */
		PQclear(r);
		return NULL;
	}
	PQclear(r);
	if (!(s->q[s->nq] = strdup(sql))) {
		/* no memory to remember it: forget it on the server too */
		char dealloc[40];

		snprintf(dealloc, sizeof dealloc, "DEALLOCATE %s", name);
		PQclear(PQexec(s->conn, dealloc));
		return NULL;
	}
	s->nq++;
	return name;
}

struct evsq__pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char *dsn;
	long statement_timeout_ms;
	int size;
	struct slot *slots;
	evs_log_fn log;
	void *log_ctx;
};

static void logf_(evs_log_fn log, void *log_ctx, int level, const char *fmt, const char *a,
		  const char *b)
{
	char msg[1024];

	if (!log)
		return;
	snprintf(msg, sizeof msg, fmt, a, b);
	log(log_ctx, level, msg);
}

int evsq__pool_open(const char *dsn, int size, long statement_timeout_ms, evs_log_fn log,
		    void *log_ctx, evsq__pool **out)
{
	evsq__pool *p = calloc(1, sizeof *p);

	if (!p)
		return EVSQ_NOMEM;
	p->dsn = strdup(dsn);
	p->slots = calloc((size_t)size, sizeof *p->slots);
	if (!p->dsn || !p->slots)
		goto fail;
	p->size = size;
	p->statement_timeout_ms = statement_timeout_ms;
	p->log = log;
	p->log_ctx = log_ctx;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	*out = p;
	return EVSQ_OK;
fail:
	free(p->slots);
	free(p->dsn);
	free(p);
	return EVSQ_NOMEM;
}

void evsq__pool_close(evsq__pool *p)
{
	int i;

	if (!p)
		return;
	for (i = 0; i < p->size; i++) {
		if (p->slots[i].conn)
			PQfinish(p->slots[i].conn);
		forget_prepared(&p->slots[i]);
	}
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p->slots);
	free(p->dsn);
	free(p);
}

PGconn *evsq__connect(const char *dsn, long statement_timeout_ms, evs_log_fn log, void *log_ctx)
{
	const char *keys[] = {"connect_timeout", "application_name", "dbname", NULL};
	const char *vals[] = {"5", "evs-query", dsn, NULL};
	char setting[64];
	const char *sv[1];
	PGconn *c = PQconnectdbParams(keys, vals, 1);
	PGresult *r;
	int i;

	if (!c)
		return NULL;
	if (PQstatus(c) != CONNECTION_OK) {
		logf_(log, log_ctx, EVS_LOG_WARNING,
		      "could not connect to the read-model database: %s%s", PQerrorMessage(c), "");
		goto fail;
	}
	snprintf(setting, sizeof setting, "%ld", statement_timeout_ms);
	sv[0] = setting;
	/* Generic plans: every statement here is an index lookup whose plan
	 * does not depend on the values, and a custom plan per execution (what
	 * the plan cache keeps choosing for the batch statements, whose array
	 * sizes vary) costs more than the lookups themselves. */
	r = PQexecParams(c,
			 "SELECT set_config('statement_timeout', $1, false),"
			 " set_config('plan_cache_mode', 'force_generic_plan', false)",
			 1, NULL, sv, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		PQclear(r);
		goto fail;
	}
	PQclear(r);
	for (i = 0; i < EVSQ__S_COUNT; i++) {
		const char *name = evsq__stmts[i].name;

		r = PQprepare(c, name, evsq__stmts[i].sql, 0, NULL);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			logf_(log, log_ctx, EVS_LOG_ERROR, "could not prepare \"%s\": %s", name,
			      PQresultErrorMessage(r));
			PQclear(r);
			goto fail;
		}
		PQclear(r);
	}
	return c;
fail:
	PQfinish(c);
	return NULL;
}

/* One statement on a borrowed connection: the prepared one named name,
 * or (name NULL) the SQL text sql, parsed each time. */
static int run(evsq__pool *p, const char *name, const char *sqltext, int nparams,
	       const char *const *params, PGresult **res, char *sqlstate, char *err, size_t errlen)
{
	struct slot *s = NULL;
	int i, attempt, rc = EVSQ_UNAVAILABLE;

	*res = NULL;
	strcpy(sqlstate, "00000");
	pthread_mutex_lock(&p->mu);
	for (;;) {
		for (i = 0; i < p->size; i++)
			if (!p->slots[i].busy) {
				s = &p->slots[i];
				break;
			}
		if (s)
			break;
		pthread_cond_wait(&p->cv, &p->mu);
	}
	s->busy = true;
	pthread_mutex_unlock(&p->mu);

	snprintf(err, errlen, "could not connect to the read-model database");
	for (attempt = 0; attempt < 2; attempt++) {
		PGresult *r;
		const char *st, *qname;
		char qbuf[24];

		if (!s->conn || PQstatus(s->conn) != CONNECTION_OK) {
			if (s->conn)
				PQfinish(s->conn);
			forget_prepared(s);
			s->conn =
				evsq__connect(p->dsn, p->statement_timeout_ms, p->log, p->log_ctx);
			if (!s->conn)
				break;
		}
		if (!name && (qname = prepared(s, sqltext, qbuf)))
			r = PQexecPrepared(s->conn, qname, nparams, params, NULL, NULL, 0);
		else if (name)
			r = PQexecPrepared(s->conn, name, nparams, params, NULL, NULL, 0);
		else
			r = PQexecParams(s->conn, sqltext, nparams, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(r) == PGRES_TUPLES_OK) {
			*res = r;
			rc = EVSQ_OK;
			break;
		}
		st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		if (PQstatus(s->conn) != CONNECTION_OK || !st || !strncmp(st, "08", 2) ||
		    !strncmp(st, "57P", 3)) {
			/* the server went away: one fresh connection, then 503 */
			snprintf(err, errlen, "read-model database unavailable: %s",
				 PQerrorMessage(s->conn));
			PQclear(r);
			PQfinish(s->conn);
			s->conn = NULL;
			forget_prepared(s);
			continue;
		}
		snprintf(sqlstate, 6, "%s", st);
		snprintf(err, errlen, "%s", PQresultErrorMessage(r));
		PQclear(r);
		rc = EVSQ_SQL;
		break;
	}

	pthread_mutex_lock(&p->mu);
	s->busy = false;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return rc;
}

int evsq__pool_exec(evsq__pool *p, enum evsq__stmt stmt, int nparams, const char *const *params,
		    PGresult **res, char *sqlstate, char *err, size_t errlen)
{
	return run(p, evsq__stmts[stmt].name, NULL, nparams, params, res, sqlstate, err, errlen);
}

int evsq__pool_query(evsq__pool *p, const char *sql, int nparams, const char *const *params,
		     PGresult **res, char *sqlstate, char *err, size_t errlen)
{
	return run(p, NULL, sql, nparams, params, res, sqlstate, err, errlen);
}
