/*
 * lag.c - how far the projection is behind, for /ready and /metrics.
 *
 * The checkpoint (and the age of its updated_at) comes from PostgreSQL;
 * with --store, the head of the LMDB store is read AFTER it, so head >=
 * checkpoint for the store the projection follows and, when nothing moves,
 * both figures are exact. Lag in events is head - checkpoint; lag in
 * seconds is the age of the oldest event not projected yet, now -
 * recorded_at of position checkpoint + 1 (0 when caught up). Without a
 * store only PostgreSQL's side is known: the checkpoint and how long ago
 * it last moved (which is not lag: an idle system is caught up but old).
 *
 * /ready asks PostgreSQL (evsq__lag_measure); /metrics, which must stay
 * cheap and never block on the database, takes the checkpoint from the
 * watcher's cache (watch.c: the last notified one, never ahead of the
 * committed one, so the lag it shows is never less than the true lag) and
 * only the store head is read (evsq__lag_store).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

static const char checkpoint_sql[] =
	"SELECT position, extract(epoch FROM now() - updated_at)::float8"
	" FROM evs.checkpoints WHERE projection = $1";

void evsq__lag_measure(evsq__pool *pool, evs_store *store, const char *projection, evsq__lag *out)
{
	const char *params[1] = {projection};
	char sqlstate[6];
	PGresult *r;
	int rc;

	memset(out, 0, sizeof *out);
	rc = evsq__pool_query(pool, checkpoint_sql, 1, params, &r, sqlstate, out->err,
			      sizeof out->err);
	out->pg_up = rc == EVSQ_OK || rc == EVSQ_SQL;
	if (rc == EVSQ_OK) {
		out->pg_ok = true;
		if (PQntuples(r) == 1) {
			out->has_checkpoint = true;
			out->position = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
			out->checkpoint_age_s = strtod(PQgetvalue(r, 0, 1), NULL);
			if (out->checkpoint_age_s < 0)
				out->checkpoint_age_s = 0;
		}
		PQclear(r);
	}
	if (store)
		evsq__lag_store(store, out);
}

void evsq__lag_store(evs_store *store, evsq__lag *out)
{
	evs_store_info h;

	if (evs_head(store, &h) != EVS_OK) {
		snprintf(out->store_err, sizeof out->store_err, "could not read the store head: %s",
			 evs_errmsg(store));
		return;
	}
	out->store_ok = true;
	out->head = (int64_t)h.last_position;
	if (out->store_ok && out->has_checkpoint && out->head >= out->position) {
		out->lag_known = true;
		out->lag_events = out->head - out->position;
		if (out->lag_events > 0) {
			struct timespec now;
			evs_iter *it = NULL;
			evs_event ev;

			if (evs_read_all(store, (uint64_t)out->position + 1, EVS_FORWARD, NULL, 1,
					 &it) != EVS_OK ||
			    evs_iter_next(it, &ev) != EVS_OK) {
				snprintf(out->store_err, sizeof out->store_err,
					 "could not read the event at position %lld: %s",
					 (long long)out->position + 1, evs_errmsg(store));
				out->lag_known = false;
				out->store_ok = false;
				evs_iter_free(it);
				return;
			}
			clock_gettime(CLOCK_REALTIME, &now);
			out->lag_s = (double)((int64_t)now.tv_sec * 1000000000 + now.tv_nsec -
					      ev.recorded_at) /
				     1e9;
			if (out->lag_s < 0)
				out->lag_s = 0;
			evs_iter_free(it);
		}
	}
}
