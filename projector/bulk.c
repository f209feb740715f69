/*
 * bulk.c - bulk mode: catch-up from far behind.
 *
 * From far behind, incremental btree inserts cost more than the rows
 * (evs.events alone: 0.51 of the COPY ceiling without its stream index,
 * 0.38 with it). Like pg_restore, bulk mode loads without the built-in
 * models' secondary indexes and builds them by sort once caught up:
 *
 *   begin, one transaction:
 *     CREATE INDEX state_history_bulk_open ON evs.state_history
 *       (stream, valid_from, version) WHERE valid_to IS NULL
 *                     (the open rows, which each batch closes: tiny)
 *     DROP INDEX evs.state_history_at, evs.events_stream
 *   batches as usual  (primary keys kept: position is a rightmost insert)
 *   end, before going live or returning (see bulk_end):
 *     CREATE INDEX IF NOT EXISTS events_stream, state_history_at
 *                     (the definitions of migrations 0002 and 0003;
 *                     the two side by side, each its own transaction)
 *     DROP INDEX IF EXISTS evs.state_history_bulk_open
 *
 * Entered at start when the checkpoint is cfg->bulk_threshold or more
 * events behind the head; ended when it reaches that head (the events
 * appended meanwhile are applied with the indexes). Each step commits
 * whole, so a crash leaves a known state: a start that finds an
 * index missing (or the partial one present) continues in bulk when still
 * far behind, and otherwise ends the bulk first. Readers get the same
 * answers meanwhile, slower (sequential scans instead of the stream and
 * state_at lookups). Stopped (SIGTERM) in bulk, the projector leaves the
 * indexes to its next start.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

static int bulk_missing(struct evp__run *r, bool *missing)
{
	PGresult *res;
	int rc;

	*missing = false;
	if (r->builtin) {
		rc = evp__exec(r, PGRES_TUPLES_OK, &res,
			       "SELECT to_regclass('evs.events_stream') IS NULL"
			       " OR to_regclass('evs.state_history_at') IS NULL"
			       " OR to_regclass('evs.state_history_bulk_open') IS NOT NULL",
			       0, NULL, "could not look up the built-in read models' indexes");
		if (rc)
			return rc;
		*missing = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		PQclear(res);
	}
	return evp__history_bulk_any(r) ? evp__history_bulk_missing(r, missing) : EVP_OK;
}

static int bulk_begin(struct evp__run *r)
{
	int rc;

	if ((rc = evp__cmd(r, "BEGIN")) ||
	    (r->builtin && r->cfg->builtin_state &&
	     ((rc = evp__cmd(r, "CREATE INDEX IF NOT EXISTS state_history_bulk_open"
				" ON evs.state_history (stream, valid_from, version)"
				" WHERE valid_to IS NULL")) ||
	      (rc = evp__cmd(r, "DROP INDEX IF EXISTS evs.state_history_at")))) ||
	    (r->builtin && (rc = evp__cmd(r, "DROP INDEX IF EXISTS evs.events_stream"))) ||
	    (evp__history_bulk_any(r) && (rc = evp__history_bulk_begin(r))) ||
	    (rc = evp__cmd(r, "COMMIT")))
		goto fail;
	r->bulk = true;
	evp__logm(r, EVS_LOG_INFO,
		  "projection \"%s\" is %llu events behind: bulk load up to position %llu with the"
		  " secondary indexes of the %s dropped (queries by stream%s are slower until"
		  " they are rebuilt)",
		  r->name, (unsigned long long)(r->bulk_target - r->checkpoint),
		  (unsigned long long)r->bulk_target,
		  !r->builtin                ? "history tables"
		  : evp__history_bulk_any(r) ? "built-in read models and history tables"
					     : "built-in read models",
		  evp__history_bulk_any(r) ? " and as-of queries" : "");
	return EVP_OK;
fail:
	evp__rollback(r);
	return rc;
}

/* The index builds run side by side: state_history_at and the history
 * tables' at-indexes on a second connection (one transaction), the rest
 * on ours (each its own transaction); the partial indexes go, and the
 * histories get their primary keys back, once all are in. Any subset of
 * them committed is a state the next start completes. Without a second
 * connection, one after the other. */
int evp__bulk_end(struct evp__run *r)
{
	int64_t t0 = evp__now_ms();
	evs__buf side_sql = {0};
	PGconn *side = NULL;
	PGresult *res;
	int rc, side_rc = EVP_OK;

	evp__logm(r, EVS_LOG_INFO, "projection \"%s\" at position %llu: building the indexes",
		  r->name, (unsigned long long)r->checkpoint);
	evs__buf_puts(&side_sql,
		      "SET client_min_messages = warning; SET maintenance_work_mem = '256MB';");
	if (r->builtin)
		evs__buf_puts(&side_sql, "CREATE UNIQUE INDEX IF NOT EXISTS state_history_at"
					 " ON evs.state_history (stream, valid_from, version);");
	if (evp__history_bulk_any(r))
		evp__history_bulk_side_sql(r, &side_sql);
	if (!evs__buf_cstr(&side_sql)) {
		snprintf(r->err, r->errlen, "out of memory");
		return EVP_NOMEM;
	}
	side = evp__pg_open(r, evp__now_ms() + 10000); /* else one after the other */
	if (PQstatus(side) != CONNECTION_OK || !PQsendQuery(side, side_sql.ptr)) {
		PQfinish(side);
		side = NULL;
	}
	if (r->builtin &&
	    ((rc = evp__cmd(r, "BEGIN")) ||
	     (rc = evp__cmd(r, "SET LOCAL maintenance_work_mem = '256MB'")) ||
	     (rc = evp__cmd(r,
			    "CREATE INDEX IF NOT EXISTS events_stream ON evs.events (stream)")) ||
	     (rc = evp__cmd(r, "COMMIT"))))
		goto fail;
	if (evp__history_bulk_any(r) && (rc = evp__history_bulk_build(r)))
		goto fail;
	if (side) {
		while ((res = PQgetResult(side))) {
			if (PQresultStatus(res) != PGRES_COMMAND_OK && side_rc == EVP_OK) {
				const char *m = PQresultErrorMessage(res);

				snprintf(r->err, r->errlen, "could not build an index: %.*s",
					 evp__msglen(m), m);
				side_rc = evp_retryable(side, res) ? EVP_CONNECT : EVP_SQL;
			}
			PQclear(res);
		}
		PQfinish(side);
		side = NULL;
		if ((rc = side_rc))
			goto fail;
	} else if ((rc = evp__cmd(r, "BEGIN")) || (rc = evp__cmd(r, side_sql.ptr)) ||
		   (rc = evp__cmd(r, "COMMIT"))) {
		goto fail;
	}
	if ((rc = evp__cmd(r, "BEGIN")) ||
	    (r->builtin &&
	     (rc = evp__cmd(r, "DROP INDEX IF EXISTS evs.state_history_bulk_open"))) ||
	    (evp__history_bulk_any(r) && (rc = evp__history_bulk_end(r))) ||
	    (rc = evp__cmd(r, "COMMIT")))
		goto fail;
	r->bulk = false;
	evs__buf_free(&side_sql);
	evp__logm(r, EVS_LOG_INFO, "indexes built in %.1f s",
		  (double)(evp__now_ms() - t0) / 1000.0);
	return EVP_OK;
fail:
	if (side) { /* cancel the side build: it rolls back */
		PGcancel *cancel = PQgetCancel(side);
		char buf[256];

		if (cancel) {
			PQcancel(cancel, buf, sizeof buf);
			PQfreeCancel(cancel);
		}
		while ((res = PQgetResult(side)))
			PQclear(res);
		PQfinish(side);
	}
	evs__buf_free(&side_sql);
	evp__rollback(r);
	return rc;
}

/* At start (built-in models, history tables): enter bulk mode when far
 * behind, or finish the bulk a crash interrupted. */
int evp__bulk_decide(struct evp__run *r)
{
	evs_store_info head;
	bool missing = false;
	int rc;

	if (!r->builtin && !evp__history_bulk_any(r))
		return EVP_OK;
	if (evs_head(r->store, &head) != EVS_OK) {
		snprintf(r->err, r->errlen, "could not read the store head: %s",
			 evs_errmsg(r->store));
		return EVP_STORE;
	}
	if ((rc = bulk_missing(r, &missing)))
		return rc;
	if (r->cfg->bulk_threshold && head.last_position > r->checkpoint &&
	    head.last_position - r->checkpoint >= r->cfg->bulk_threshold) {
		r->bulk_target = head.last_position;
		return bulk_begin(r);
	}
	if (missing) {
		evp__logm(r, EVS_LOG_INFO,
			  "projection \"%s\": an earlier bulk load was interrupted", r->name);
		return evp__bulk_end(r);
	}
	return EVP_OK;
}
