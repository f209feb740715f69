/*
 * model_fast.c - one key of a declared temporal table as of a time,
 * answered by the loop's batcher (batch.c) like the /streams state
 * lookups: the lookups of one table queue while the loop's statement is
 * in flight and the next statement answers all of them, one probe of the
 * history's (key, valid_from_at) index per key:
 *
 *   SELECT q.i, <checkpoint>, r.*
 *   FROM unnest($2::text[], $3::timestamptz[]) WITH ORDINALITY q(k, at, i)
 *   LEFT JOIN LATERAL (<the version of key q.k valid at q.at>) r ON true
 *
 * with the columns of models_time.c's statement for one key, so the
 * answer is written by the same function (evsq__key_json). Why: on a
 * small machine a lookup costs PostgreSQL little; waking a worker
 * thread, its backend and the loop again per request is what costs.
 *
 * Only what the batcher can answer without blocking or failing a batch
 * goes this way: GET /models/{p}/{t}/{key}?as_of=T (and a min_position
 * the watcher has seen reached), a temporal table whose catalog and
 * history are cached (the first request, on a worker, reads them), a
 * single text or varchar key, valid UTF-8. Anything else, and any batch
 * that fails (a table changed: the workers drop the cached catalog and
 * try again), is answered by the workers as before.
 */
#include <stdlib.h>
#include <string.h>

#include "models.h"

struct fast {
	evsq__models *ms;
	const struct evsq__model *m;
	const struct evsq__table *t;
	struct evsq__tinfo *hi; /* held until the request ends */
	struct evsq__when w;
	char *key;
	evs__buf sql;
};

static void fast_free(void *arg)
{
	struct fast *f = arg;

	if (!f)
		return;
	if (f->hi)
		evsq__tinfo_release(f->ms, f->hi);
	evs__buf_free(&f->sql);
	free(f);
}

static unsigned answer(evsq__job *job, const PGresult *r, int row)
{
	struct fast *f = job->fast;

	if (PQgetisnull(r, row, 2))
		return evsq__key_missing(&job->body, f->m, f->t, job->stream, EVSQ__K_THEN, &f->w);
	evsq__key_json(&job->body, f->m, f->t, f->hi, job->stream, EVSQ__K_THEN, &f->w, r, row, 1,
		       1);
	return 200;
}

static bool text_key(const struct evsq__column *c)
{
	return !strcmp(c->type, "text") || !strncmp(c->type, "character varying", 17);
}

/* The batched statement of table ti's history hi (see the top). */
static void batch_sql(evs__buf *sql, const struct evsq__tinfo *ti, const struct evsq__tinfo *hi)
{
	evs__buf_puts(sql,
		      "SELECT q.i, (SELECT position FROM evs.checkpoints WHERE projection = $1),"
		      " r.* FROM unnest($2::text[], $3::timestamptz[]) WITH ORDINALITY"
		      " q(k, at, i) LEFT JOIN LATERAL (SELECT true");
	evsq__validity_select(sql, "x");
	evsq__row_select(sql, hi, "x", true);
	evs__buf_printf(sql,
			" FROM (SELECT * FROM %s y WHERE y.%s = q.k AND y.valid_from_at <= q.at"
			" ORDER BY y.valid_from_at DESC, y.valid_from_position DESC LIMIT 1) x"
			" WHERE x.valid_to_at IS NULL OR x.valid_to_at > q.at) r ON true",
			hi->qname, ti->cols[ti->pk[0]].quoted);
}

char *evsq__models_fast(const evsq__ctx *ctx, struct MHD_Connection *conn, const char *rest,
			evsq__job *job)
{
	static const char *const fast_args[] = {"as_of", "min_position", NULL};
	struct evsq__model *m;
	struct evsq__table *t;
	struct evsq__tinfo *ti = NULL;
	struct fast *f = NULL;
	evs__buf scratch = {0};
	const char *p, *minp;
	evsq__args a;
	size_t hlen;
	int64_t min, cur;
	char msg[8], *key;

	if (!ctx->pool || !ctx->models || !rest[0] ||
	    evsq__models_find(ctx->models, rest + 1, &m, &t, &p, NULL) != EVSQ__P_TABLE ||
	    p[0] != '/' || !p[1] || evsq__history_key(p + 1, &hlen) || t->current_only ||
	    !evs__utf8_text((const uint8_t *)p, strlen(p)))
		return NULL;
	/* anything malformed or beyond these two: the workers explain */
	if (!evsq__args_read(conn, fast_args, &a, msg, sizeof msg) || !evsq__arg(&a, "as_of"))
		return NULL;
	minp = evsq__arg(&a, "min_position");
	if (minp && (!evsq__parse_u63(minp, &min) ||
		     !evsq__watch_position(ctx->watch, m->name, &cur) || cur < min))
		return NULL;
	if (!(f = calloc(1, sizeof *f)))
		return NULL;
	f->ms = ctx->models;
	f->m = m;
	f->t = t;
	if (evsq__when_read(ctx, m->name, &a, &f->w, &scratch) || f->w.kind != EVSQ__W_AS_OF ||
	    !(ti = evsq__tinfo_cached(ctx->models, t)) || ti->npk != 1 ||
	    !text_key(&ti->cols[ti->pk[0]]) ||
	    !(f->hi = evsq__tinfo_cached(ctx->models, t->history)) || !evsq__has_validity(f->hi))
		goto no;
	batch_sql(&f->sql, ti, f->hi);
	if (!evs__buf_cstr(&f->sql) || !(key = strdup(p + 1)))
		goto no;
	evsq__tinfo_release(ctx->models, ti);
	evs__buf_free(&scratch);
	job->kind = EVSQ__J_SQL;
	job->sql = f->sql.ptr;
	job->projection = m->name;
	job->when = f->w.value;
	job->answer = answer;
	job->fast = f;
	job->fast_free = fast_free;
	return key;
no:
	if (ti)
		evsq__tinfo_release(ctx->models, ti);
	evs__buf_free(&scratch);
	fast_free(f);
	return NULL;
}
