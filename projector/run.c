/*
 * run.c - evp_run(): follow the store and apply batches to PostgreSQL.
 *
 *     open the store (read-only), connect (session.c)
 *     bulk mode if far behind (bulk.c)
 *     loop: collect a batch (batch.c), apply it in one transaction
 *           (txn.c); reconnect when the server went away
 *     --once / rebuild: stop at the head seen at start (rebuild: swap in)
 *
 * The loop checks cfg->stop between batches and while waiting for
 * events, so a stop takes at most one batch. Progress is in the stats
 * (events, checkpoint, target) and reported through cfg->on_progress
 * after each batch, and logged at info level once a second.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

void evp_config_init(evp_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->builtin = true;
	cfg->builtin_state = true;
	cfg->batch_max = 10000;
	cfg->batch_wait_ms = 0;
	cfg->retry_max_ms = 5000;
	cfg->bulk_threshold = 100000;
	cfg->log_level = EVS_LOG_INFO;
}

static int run_init(struct evp__run *r)
{
	const evp_config *cfg = r->cfg;
	evs_options so;
	int rc;

	if (cfg->rules_path && (rc = evp_rules_load(cfg->rules_path, &r->rules, r->err, r->errlen)))
		return rc;
	r->name = cfg->projection ? cfg->projection
		  : r->rules      ? evp_rules_name(r->rules)
				  : "builtin";
	r->live_name = r->name;
	r->builtin = cfg->builtin;
	if (cfg->rebuild) {
		if (!r->rules || !evp_rules_schema(r->rules) || !evp_rules_tables(r->rules)) {
			snprintf(r->err, r->errlen,
				 "a rebuild needs a projection file with \"schema\" and"
				 " \"tables\" lines");
			return EVP_INVALID;
		}
		if (strlen(r->name) > EVS_MAX_NAME ||
		    strlen(evp_rules_schema(r->rules)) > EVS_MAX_NAME) {
			snprintf(r->err, r->errlen, "projection or schema name too long");
			return EVP_INVALID;
		}
		snprintf(r->rebuild_name, sizeof r->rebuild_name, "%s__rebuild", r->name);
		r->name = r->rebuild_name;
		r->builtin = false;
	}
	evs_options_init(&so);
	so.create = 0;
	so.read_only = 1;
	if (evs_open(cfg->store_path, &so, &r->store) != EVS_OK) {
		snprintf(r->err, r->errlen, "%s", evs_open_errmsg());
		return EVP_STORE;
	}
	return EVP_OK;
}

/* The session's advisory locks (session.c) go with the session, but
 * the server drops them only when the backend has exited, which is after
 * PQfinish returned: a run started right after this one (`evs project
 * --once`, then the daemon) could find its projection "already running
 * elsewhere" (seen in bench_projector, 2026-12-08). Released here, before
 * returning, whenever the connection can still take a statement (an open
 * transaction is rolled back first, as the disconnect would). */
static void release_locks(PGconn *c)
{
	if (!c || PQstatus(c) != CONNECTION_OK || PQpipelineStatus(c) != PQ_PIPELINE_OFF)
		return;
	if (PQtransactionStatus(c) == PQTRANS_INTRANS || PQtransactionStatus(c) == PQTRANS_INERROR)
		PQclear(PQexec(c, "ROLLBACK"));
	if (PQtransactionStatus(c) == PQTRANS_IDLE)
		PQclear(PQexec(c, "SELECT pg_advisory_unlock_all()"));
}

static void run_free(struct evp__run *r)
{
	int c;

	evp__batch_free(&r->batch);
	free(r->order);
	evs__buf_free(&r->copy);
	evs__buf_free(&r->streams);
	evs__buf_free(&r->json);
	evs__buf_free(&r->dead);
	for (c = 0; c < (int)(sizeof r->arrays.col / sizeof *r->arrays.col); c++)
		evs__buf_free(&r->arrays.col[c]);
	release_locks(r->conn);
	PQfinish(r->conn);
	evp__prep_reset(r);
	evs_close(r->store);
	evp_rules_free(r->rules);
}

static int read_head(struct evp__run *r, uint64_t *head)
{
	evs_store_info info;

	if (evs_head(r->store, &info) != EVS_OK) {
		snprintf(r->err, r->errlen, "could not read the store head: %s",
			 evs_errmsg(r->store));
		return EVP_STORE;
	}
	*head = info.last_position;
	return EVP_OK;
}

static void progress(struct evp__run *r)
{
	if (r->cfg->on_progress)
		r->cfg->on_progress(r->cfg->progress_ctx, r->stats);
}

/* Info log once a second: rate, lag in events and seconds. */
static void report(struct evp__run *r, int64_t *last_report, uint64_t *last_events)
{
	int64_t t = evp__now_ms();
	struct timespec ts;
	const evs_event *le = &r->batch.events[r->batch.n - 1].ev;
	uint64_t head;
	double lag_s;

	if (t - *last_report < 1000 || r->cfg->log_level < EVS_LOG_INFO)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	lag_s = ((double)ts.tv_sec * 1e9 + (double)ts.tv_nsec - (double)le->recorded_at) / 1e9;
	if (read_head(r, &head) != EVP_OK)
		head = r->checkpoint;
	evp__logm(r, EVS_LOG_INFO,
		  "projection \"%s\" at position %llu: %.0f events/s, lag %llu events, %.3f s",
		  r->name, (unsigned long long)r->checkpoint,
		  (double)(r->stats->events - *last_events) * 1000.0 / (double)(t - *last_report),
		  (unsigned long long)(head - r->checkpoint), lag_s);
	*last_report = t;
	*last_events = r->stats->events;
}

static int loop(struct evp__run *r)
{
	const evp_config *cfg = r->cfg;
	bool bounded = cfg->once || cfg->rebuild;
	uint64_t last_events = 0;
	int64_t last_report = evp__now_ms();
	int rc;

	for (;;) {
		if (evp__stopping(r))
			return EVP_STOPPED;
		if (r->bulk && r->checkpoint >= r->bulk_target) {
			rc = evp__bulk_end(r);
			if (rc == EVP_CONNECT && (rc = evp__reconnect(r)) == EVP_OK)
				continue;
			if (rc)
				return rc;
		}
		if (bounded && r->checkpoint >= r->stats->target)
			return EVP_OK;
		if ((rc = evp__collect(r, bounded ? r->stats->target : 0, bounded ? 1000 : 200)))
			return rc;
		if (r->batch.n == 0)
			continue;
		rc = evp__apply_batch(r);
		if (rc == EVP_CONNECT) {
			if ((rc = evp__reconnect(r)))
				return rc;
			continue;
		}
		if (rc)
			return rc;
		if (!bounded && r->checkpoint > r->stats->target)
			r->stats->target = r->checkpoint;
		progress(r);
		report(r, &last_report, &last_events);
	}
}

int evp_run(const evp_config *cfg, evp_stats *stats, char *err, size_t errlen)
{
	struct evp__run r;
	evp_stats dummy;
	int rc;

	memset(&r, 0, sizeof r);
	r.cfg = cfg;
	r.stats = stats ? stats : &dummy;
	memset(r.stats, 0, sizeof *r.stats);
	r.err = err;
	r.errlen = errlen;
	err[0] = '\0';

	/* the head is read before connecting too, so that a run stopped or
	 * given up before it connected still says where it was going */
	if ((rc = run_init(&r)) || (rc = read_head(&r, &r.stats->target)) ||
	    (rc = evp__connect(&r, false)))
		goto out;
	while ((rc = evp__bulk_decide(&r)) == EVP_CONNECT) {
		if ((rc = evp__reconnect(&r)))
			goto out;
	}
	/* after bulk_decide: a bulk load ends at or before the target */
	if (rc || (rc = read_head(&r, &r.stats->target)))
		goto out;
	r.stats->start = r.checkpoint;
	progress(&r);
	rc = loop(&r);
	if (r.bulk && rc == EVP_STOPPED)
		evp__logm(&r, EVS_LOG_WARNING,
			  "stopped during a bulk load: the built-in read models' indexes are built"
			  " at the next start");
	if (rc == EVP_OK && cfg->rebuild)
		rc = evp__swap_in(&r);
	if (rc && rc != EVP_STOPPED && !err[0])
		snprintf(err, errlen, "%s", evp_strerror(rc));
out:
	r.stats->checkpoint = r.checkpoint;
	run_free(&r);
	return rc;
}
