/*
 * projection.c - which projection's checkpoint the built-in models'
 * answers (/streams, /ready, /metrics) state, decided at start so that
 * the defaults of the programs agree.
 *
 * The projector names its checkpoint after its --rules file's
 * "projection" line, or "builtin" without one (projector/run.c), and the
 * projection that writes the built-in models is the one run without
 * --no-builtin. evs-query takes the same default: --projection empty
 * (the default) is the name of the one --rules file, or "builtin" with
 * none; with several files it must be said (which of them writes the
 * built-in models is not in the files).
 *
 * At start, when PostgreSQL answers, a projection with no checkpoint in
 * a database where other projections have one is refused: every answer
 * would say position 0, /ready would be 503 and every min_position 409.
 * A database without checkpoints (nothing projected yet) or away is not
 * refused: its first projection may come later.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models.h"

int evsq__projection_pick(const char *given, const evsq__models *ms, char **out, char *err,
			  size_t errlen)
{
	const char *name = "builtin";
	evs__buf names = {0};
	int i;

	if (given && given[0]) {
		name = given;
	} else if (ms && ms->n == 1) {
		name = ms->m[0].name;
	} else if (ms && ms->n > 1) {
		for (i = 0; i < ms->n; i++)
			evs__buf_printf(&names, "%s\"%s\"", i ? ", " : "", ms->m[i].name);
		snprintf(err, errlen,
			 "--rules names %d projections (%s): say with --projection which one "
			 "writes the built-in read models (the one evs project runs without "
			 "--no-builtin)",
			 ms->n, evs__buf_cstr(&names) ? names.ptr : "");
		evs__buf_free(&names);
		return EVSQ_INVALID;
	}
	if (!(*out = strdup(name))) {
		snprintf(err, errlen, "out of memory");
		return EVSQ_NOMEM;
	}
	return EVSQ_OK;
}

static const char check_sql[] =
	"SELECT bool_or(projection = $1), string_agg(format('\"%s\"', projection), ', '"
	" ORDER BY projection) FROM evs.checkpoints";

int evsq__projection_check(evsq__pool *pool, const char *projection, char *err, size_t errlen)
{
	const char *params[1] = {projection};
	char sqlstate[6], pgerr[512];
	PGresult *r;
	int rc = EVSQ_OK;

	/* away, or no evs.checkpoints yet (migrations not applied): later */
	if (evsq__pool_query(pool, check_sql, 1, params, &r, sqlstate, pgerr, sizeof pgerr))
		return EVSQ_OK;
	if (!PQgetisnull(r, 0, 0) && strcmp(PQgetvalue(r, 0, 0), "t")) {
		snprintf(
			err, errlen,
			"projection \"%s\" has no checkpoint in the read-model database (it has "
			"checkpoints of %s): every answer would say position 0; start evs-query with "
			"--projection set to the checkpoint name of the projection writing the "
			"built-in read models (evs project names it after its --rules file, or "
			"builtin)",
			projection, PQgetvalue(r, 0, 1));
		rc = EVSQ_INVALID;
	}
	PQclear(r);
	return rc;
}
