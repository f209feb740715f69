/*
 * txn.c - one batch, one PostgreSQL transaction:
 *
 *     BEGIN                                       (built-in: with the COPY)
 *     COPY evs.events FROM STDIN                  (built-in: event log)
 *     the states of the batch's streams           (built-in: state.c)
 *     declared rules                              (deadletter.c)
 *     versions of temporal tables                 (history_write.c)
 *     closing UPDATEs of temporal tables, \
 *     UPDATE evs.checkpoints SET position = last  } one round trip
 *         WHERE position = first - 1,            } (pipelined)
 *     COMMIT                                     /
 *
 * The checkpoint update names the position it expects, so a batch can
 * only ever follow the committed checkpoint: after any crash the next run
 * starts from what was committed, with no gap and no duplicate.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

/*
 * The end of the batch in one round trip, pipelined: the closing UPDATE
 * of each temporal table (history_write.c), the checkpoint, COMMIT. The
 * checkpoint names the position it expects; when the row is not there
 * (another run moved it) its statement fails (a division by the count of
 * rows it updated, zero) so that the COMMIT behind it is never run: the
 * pipeline is aborted and the caller rolls the transaction back.
 */
static const char checkpoint_sql[] =
	"WITH u AS (UPDATE evs.checkpoints SET position = $2, updated_at = now()"
	" WHERE projection = $1 AND position = $3 RETURNING projection,"
	" position) SELECT 1 / (SELECT count(*)::int FROM u),"
	" (SELECT pg_notify('evs_checkpoint', u.projection || ' ' ||"
	" u.position) FROM u)";

static int finish(struct evp__run *r, uint64_t last)
{
	char s_last[24], s_prev[24], name[16];
	const char *vals[3] = {r->name, s_last, s_prev};
	int ncl = 0, i, rc = EVP_OK, got = 0;
	bool synced = false;

	snprintf(s_last, sizeof s_last, "%llu", (unsigned long long)last);
	snprintf(s_prev, sizeof s_prev, "%llu", (unsigned long long)r->checkpoint);
	if ((r->rules && (rc = evp__history_prepare_closes(r))) ||
	    (rc = evp__prepare(r, checkpoint_sql, 3, name)))
		return rc;
	if (PQenterPipelineMode(r->conn) != 1)
		return evp__pg_fail(r, NULL, "could not enter pipeline mode");
	if (r->rules)
		rc = evp__history_send_closes(r, &ncl);
	/* the same statement announces the checkpoint to LISTEN evs_checkpoint
	 * (evs-query's min_position waiters): delivered at COMMIT, never for a
	 * batch rolled back */
	if (rc == EVP_OK &&
	    ((name[0] ? PQsendQueryPrepared(r->conn, name, 3, vals, NULL, NULL, 0)
		      : PQsendQueryParams(r->conn, checkpoint_sql, 3, NULL, vals, NULL, NULL, 0)) !=
		     1 ||
	     PQsendQueryParams(r->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) != 1))
		rc = evp__pg_fail(r, NULL, "could not send the checkpoint");
	if (PQpipelineSync(r->conn) != 1 && !rc)
		rc = evp__pg_fail(r, NULL, "could not sync the pipeline");
	/* results: ncl closes, the checkpoint, COMMIT (each ended by NULL), SYNC */
	for (i = 0; !synced && i < ncl + 8;) {
		PGresult *res = PQgetResult(r->conn);
		ExecStatusType st;

		if (!res) {
			if (PQstatus(r->conn) != CONNECTION_OK) {
				if (!rc)
					rc = evp__pg_fail(r, NULL, "connection lost");
				break;
			}
			got++;
			i++;
			continue;
		}
		st = PQresultStatus(res);
		if (st == PGRES_PIPELINE_SYNC) {
			synced = true;
		} else if (st == PGRES_FATAL_ERROR && !rc) {
			const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);

			if (got == ncl && code && strcmp(code, "22012") == 0) {
				snprintf(
					r->err, r->errlen,
					"checkpoint of projection \"%s\" is no longer at position %s",
					r->name, s_prev);
				rc = EVP_LOCKED;
			} else {
				rc = got < ncl
					     ? evp__pg_fail(r, res, "could not close open versions")
				     : got == ncl
					     ? evp__pg_fail(r, res,
							    "could not advance the checkpoint")
					     : evp__pg_fail(r, res, "could not run \"COMMIT\"");
				res = NULL;
			}
		}
		PQclear(res);
	}
	if (!synced && !rc)
		rc = evp__pg_fail(r, NULL, "lost the pipeline's sync");
	if (PQexitPipelineMode(r->conn) != 1 && !rc)
		rc = evp__pg_fail(r, NULL, "could not leave pipeline mode");
	return rc;
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
	/* with the built-in models BEGIN goes with the event log's COPY */
	if (!r->builtin && (rc = evp__cmd(r, "BEGIN")))
		return rc;
	if (r->builtin) {
		if ((rc = evp__write_event_log(r)) ||
		    (r->cfg->builtin_state && (rc = evp__write_states(r))))
			goto fail;
	}
	if ((r->rules && ((rc = evp__write_rules(r, &parked)) || (rc = evp__history_write(r)))) ||
	    (rc = finish(r, last)))
		goto fail;
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
