/*
 * model_table.c - what the /models answers (models.c, models_time.c)
 * share about one declared table: its catalog entry for a lookup by key,
 * a statement run with one retry when the table changed under the cached
 * catalog (DDL: dropped, renamed, altered), and the answer's head.
 */
#include <stdio.h>
#include <string.h>

#include "models.h"

unsigned evsq__table_missing(evs__buf *body, const struct evsq__model *m,
			     const struct evsq__table *t)
{
	char msg[768];

	snprintf(msg, sizeof msg,
		 "table \"%.200s.%.200s\" of read model \"%.200s\" is not in the read-model "
		 "database (migrations not applied, or dropped)",
		 m->schema, t->name, m->name);
	evsq__error(body, "unavailable", msg);
	return 503;
}

void evsq__put_head(evs__buf *b, const struct evsq__model *m, const struct evsq__table *t,
		    const PGresult *r, int row, int col)
{
	b->len = 0;
	evs__buf_puts(b, "{\"projection\":");
	evsq__json_str(b, m->name);
	evs__buf_puts(b, ",\"table\":");
	evsq__json_str(b, t->name);
	evs__buf_printf(b, ",\"position\":%s",
			PQgetisnull(r, row, col) ? "0" : PQgetvalue(r, row, col));
}

/* The table changed twice under one request (DDL in progress): as
 * transient as PostgreSQL being away. */
static unsigned changed(evs__buf *body, const struct evsq__model *m, const struct evsq__table *t,
			const char *err)
{
	char msg[1280], pg[512];

	evsq__pg_message(pg, sizeof pg, err);
	snprintf(msg, sizeof msg,
		 "table \"%.200s.%.200s\" of read model \"%.200s\" changed while being read: "
		 "%s",
		 m->schema, t->name, m->name, pg);
	evsq__error(body, "unavailable", msg);
	return 503;
}

static bool schema_changed(const char *sqlstate)
{
	/* undefined_table, undefined_column: the table was dropped,
	 * renamed or altered since its catalog was read */
	return !strcmp(sqlstate, "42P01") || !strcmp(sqlstate, "42703");
}

int evsq__run_table_query(const evsq__ctx *ctx, const struct evsq__model *m, struct evsq__table *t,
			  struct evsq__tinfo *ti, evs__buf *sql, int np, const char *const *params,
			  int attempt, PGresult **r, evs__buf *body)
{
	char sqlstate[6], err[1024];
	int rc;

	if (!evs__buf_cstr(sql)) {
		evs__buf_free(sql);
		evsq__tinfo_release(ctx->models, ti);
		return (int)evsq__db_error(body, EVSQ_NOMEM, "", "");
	}
	rc = evsq__pool_query(ctx->pool, sql->ptr, np, params, r, sqlstate, err, sizeof err);
	evs__buf_free(sql);
	if (rc == EVSQ_SQL && schema_changed(sqlstate)) {
		evsq__tinfo_forget(ctx->models, t, ti);
		evsq__tinfo_release(ctx->models, ti);
		return attempt == 0 ? EVSQ__RETRY : (int)changed(body, m, t, err);
	}
	if (rc) {
		evsq__tinfo_release(ctx->models, ti);
		return (int)evsq__db_error(body, rc, sqlstate, err);
	}
	return 0;
}

unsigned evsq__key_info(const evsq__ctx *ctx, const struct evsq__model *m, struct evsq__table *t,
			struct evsq__tinfo **out, evs__buf *body)
{
	struct evsq__tinfo *ti;
	evs__buf keys = {0};
	unsigned status = 0;
	char msg[768];
	int i, got = evsq__tinfo_get(ctx, m, t, &ti, &status, body);

	if (got == EVSQ__T_FAILED)
		return status;
	if (got == EVSQ__T_MISSING)
		return evsq__table_missing(body, m, t);
	if (ti->npk == 1) {
		*out = ti;
		return 0;
	}
	for (i = 0; i < ti->npk; i++)
		evs__buf_printf(&keys, "%s%s=...", i ? "&" : "?", ti->cols[ti->pk[i]].name);
	evs__buf_cstr(&keys);
	if (ti->npk == 0)
		snprintf(msg, sizeof msg,
			 "table \"%.200s\" of read model \"%.200s\" has no primary "
			 "key: rows are served by key only through its listing",
			 t->name, m->name);
	else
		snprintf(msg, sizeof msg,
			 "table \"%.200s\" of read model \"%.200s\" has a composite "
			 "primary key: ask /models/%.100s/%.100s%.200s",
			 t->name, m->name, m->name, t->name, keys.ptr ? keys.ptr : "");
	evs__buf_free(&keys);
	evsq__tinfo_release(ctx->models, ti);
	evsq__error(body, "bad_request", msg);
	return 400;
}
