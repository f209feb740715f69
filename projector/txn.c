/*
 * txn.c - one batch, one PostgreSQL transaction:
 *
 *     BEGIN
 *     COPY evs.events FROM STDIN                  (built-in: event log)
 *     the states of the batch's streams           (built-in: state.c)
 *     declared rules                              (deadletter.c)
 *     versions of temporal tables                 (history_write.c)
 *     UPDATE evs.checkpoints SET position = last WHERE position = first - 1
 *     COMMIT
 *
 * The checkpoint update names the position it expects, so a batch can
 * only ever follow the committed checkpoint: after any crash the next run
 * starts from what was committed, with no gap and no duplicate.
 */
#include <stdio.h>

#include "internal.h"

static int advance_checkpoint(struct evp__run *r, uint64_t last)
{
	char s_last[24], s_prev[24];
	const char *vals[3] = {r->name, s_last, s_prev};
	PGresult *res;
	int rc, n;

	snprintf(s_last, sizeof s_last, "%llu", (unsigned long long)last);
	snprintf(s_prev, sizeof s_prev, "%llu", (unsigned long long)r->checkpoint);
	/* the same statement announces the checkpoint to LISTEN evs_checkpoint
	 * (evs-query's min_position waiters): delivered at COMMIT, never for a
	 * batch rolled back */
	rc = evp__exec(r, PGRES_TUPLES_OK, &res,
		       "WITH u AS (UPDATE evs.checkpoints SET position = $2, updated_at = now()"
		       " WHERE projection = $1 AND position = $3 RETURNING projection, position)"
		       " SELECT pg_notify('evs_checkpoint', u.projection || ' ' || u.position)"
		       " FROM u",
		       3, vals, "could not advance the checkpoint");
	if (rc)
		return rc;
	n = PQntuples(res);
	PQclear(res);
	if (n != 1) {
		snprintf(r->err, r->errlen,
			 "checkpoint of projection \"%s\" is no longer at position %s", r->name,
			 s_prev);
		return EVP_LOCKED;
	}
	return EVP_OK;
}

/* After a failure: a COPY left open in the middle is ended first. */
static void abandon(struct evp__run *r)
{
	PGresult *x;

	if (PQstatus(r->conn) != CONNECTION_OK)
		return;
	while ((x = PQgetResult(r->conn))) {
		if (PQresultStatus(x) == PGRES_COPY_IN)
			PQputCopyEnd(r->conn, "batch abandoned");
		PQclear(x);
	}
	evp__rollback(r);
}

int evp__apply_batch(struct evp__run *r)
{
	const uint64_t first = r->batch.events[0].ev.position;
	uint64_t last, parked = 0;
	int64_t t_start = evp__now_us();
	int rc;

	if (evp__rules_set_use(r) && (rc = evp__rules_set_cut(r)))
		return rc;
	last = r->batch.events[r->batch.n - 1].ev.position;

	evp__history_reset(r->rules);
	r->set_batch = false;
	if ((rc = evp__cmd(r, "BEGIN")))
		return rc;
	if (r->builtin) {
		if ((rc = evp__write_event_log(r)) ||
		    (r->cfg->builtin_state && (rc = evp__write_states(r))))
			goto fail;
	}
	if ((r->rules && ((rc = evp__write_rules(r, &parked)) || (rc = evp__history_write(r)))) ||
	    (rc = advance_checkpoint(r, last)))
		goto fail;
	if ((rc = evp__cmd(r, "COMMIT")))
		return rc;
	if (r->cfg->on_commit)
		r->cfg->on_commit(r->cfg->commit_ctx, first, last);
	r->checkpoint = last;
	r->stats->events += r->batch.n;
	r->stats->batches++;
	r->stats->checkpoint = last;
	r->stats->dead_letters += parked;
	r->stats->set_batches += r->set_batch;
	evp__logm(r, EVS_LOG_DEBUG,
		  "applied %zu events at positions %llu..%llu (read %.1f ms, write %.1f ms)",
		  r->batch.n, (unsigned long long)first, (unsigned long long)last,
		  (double)r->collect_us / 1000.0, (double)(evp__now_us() - t_start) / 1000.0);
	return EVP_OK;
fail:
	abandon(r);
	return rc;
}
