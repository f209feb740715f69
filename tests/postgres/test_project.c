/*
 * test_project.c - the projector as a user of `evs project --once` sees
 * it (issue 16): a bulk catch-up logs no server notices above debug
 * level (it printed "NOTICE: relation ... already exists, skipping"), and
 * the progress numbers (stats start, checkpoint, target; on_progress)
 * describe the run while it goes. A checkpoint moved under a running
 * projector rolls back the batch in flight, whole (the checkpoint,
 * its closing history UPDATEs and COMMIT go in one pipeline, txn.c).
 * Runs back to back on one projection never find it locked.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "evsproj.h"
#include "model.h"
#include "kit_pg.h"

static void config_once(evp_config *cfg, const char *dir, const char *dsn, int batch)
{
	evp_config_init(cfg);
	cfg->store_path = dir;
	cfg->dsn = dsn;
	cfg->migrations_dir = pgh_migrations_dir();
	cfg->batch_max = batch;
	cfg->once = true;
}

static void cleanup(evs_store *s, char *dir, char *dsn)
{
	evs_close(s);
	kit_rmrf(dir);
	free(dir);
	free(dsn);
}

struct log_seen {
	int loud_notices; /* server messages at warning level or above */
	int quiet_notices;
	char first[512];
};

static void capture(void *ctx, int level, const char *message)
{
	struct log_seen *seen = ctx;

	if (strncmp(message, "server: ", 8) != 0)
		return;
	if (level <= EVS_LOG_WARNING) {
		if (!seen->loud_notices++)
			snprintf(seen->first, sizeof seen->first, "%s", message);
	} else {
		seen->quiet_notices++;
	}
}

START_TEST(project_bulk_is_quiet)
{
	uint64_t rng = kit_seed("project_bulk_is_quiet");
	char *dir = kit_tmpdir("store"), *dsn = pgh_new_db(), err[2048];
	struct log_seen seen;
	evs_store *s = model_open(dir);
	evp_config cfg;
	evp_stats st;
	int round, rc;

	for (round = 0; round < 2; round++) {
		model_generate(s, &rng, 300);
		memset(&seen, 0, sizeof seen);
		config_once(&cfg, dir, dsn, 50);
		cfg.bulk_threshold = 1; /* every start far behind: bulk load, then indexes */
		cfg.log = capture;
		cfg.log_ctx = &seen;
		cfg.log_level = EVS_LOG_DEBUG;
		rc = evp_run(&cfg, &st, err, sizeof err);
		ck_assert_msg(rc == EVP_OK, "evp_run: %s", err);
		ck_assert_msg(seen.loud_notices == 0, "round %d: %d server notices logged loud: %s",
			      round, seen.loud_notices, seen.first);
	}
	cleanup(s, dir, dsn);
}
END_TEST

struct progress_seen {
	int calls;
	uint64_t last_checkpoint, start, target, events;
	int bad;
};

static void on_progress(void *ctx, const evp_stats *st)
{
	struct progress_seen *p = ctx;

	if (p->calls++ == 0) {
		p->start = st->start;
		p->target = st->target;
	}
	/* monotonic, within [start, target], events = checkpoint - start */
	if (st->checkpoint < p->last_checkpoint || st->checkpoint > st->target ||
	    st->target != p->target || st->start != p->start ||
	    st->events != st->checkpoint - st->start)
		p->bad++;
	p->last_checkpoint = st->checkpoint;
	p->events = st->events;
}

START_TEST(project_progress_numbers)
{
	uint64_t rng = kit_seed("project_progress_numbers");
	char *dir = kit_tmpdir("store"), *dsn = pgh_new_db(), err[2048];
	evs_store *s = model_open(dir);
	evs_store_info head;
	struct progress_seen p;
	evp_config cfg;
	evp_stats st;
	uint64_t first_head;
	int round;

	for (round = 0; round < 2; round++) {
		model_generate(s, &rng, 200 + round * 100);
		ck_assert_int_eq(evs_head(s, &head), EVS_OK);
		if (round == 0)
			first_head = head.last_position;
		memset(&p, 0, sizeof p);
		config_once(&cfg, dir, dsn, 37);
		cfg.on_progress = on_progress;
		cfg.progress_ctx = &p;
		ck_assert_msg(evp_run(&cfg, &st, err, sizeof err) == EVP_OK, "evp_run: %s", err);
		ck_assert_int_eq(p.bad, 0);
		/* once connected, then once per batch */
		ck_assert_uint_eq(p.start, round ? first_head : 0);
		ck_assert_uint_eq(p.target, head.last_position);
		ck_assert_int_eq(p.calls, 1 + (int)st.batches);
		ck_assert_uint_eq(p.last_checkpoint, head.last_position);
		ck_assert_uint_eq(st.start, p.start);
		ck_assert_uint_eq(st.target, head.last_position);
		ck_assert_uint_eq(st.events, head.last_position - p.start);
	}
	cleanup(s, dir, dsn);
}
END_TEST

/* After the first commit, another run "moves" the checkpoint. */
struct mover {
	PGconn *c;
	int commits;
};

static void move_checkpoint(void *ctx, uint64_t first, uint64_t last)
{
	struct mover *m = ctx;

	(void)first;
	(void)last;
	if (m->commits++ == 0)
		pgh_exec(m->c, "UPDATE evs.checkpoints SET position = position + 1000000"
			       " WHERE projection = 'bank'");
}

START_TEST(project_checkpoint_moved)
{
	uint64_t rng = kit_seed("project_checkpoint_moved");
	char *dir = kit_tmpdir("store"), *dsn = pgh_new_db(), err[2048], rules[1024], want[256],
	     q[256];
	evs_store *s = model_open(dir);
	struct mover m = {0};
	evp_config cfg;
	evp_stats st;
	int rc;

	/* 6 accounts, so that every batch updates accounts the one before
	 * left open in the history: the second batch has closes to send */
	model_generate_bank(s, &rng, 400, 6);
	snprintf(rules, sizeof rules, "%s/examples/bank/bank.projection", pgh_source_dir());
	config_once(&cfg, dir, dsn, 100);
	cfg.migrations_dir = pgh_bank_migrations();
	cfg.rules_path = rules;
	m.c = pgh_connect(dsn);
	cfg.on_commit = move_checkpoint;
	cfg.commit_ctx = &m;
	rc = evp_run(&cfg, &st, err, sizeof err);
	ck_assert_msg(rc == EVP_LOCKED, "evp_run: %d %s", rc, err);
	ck_assert_int_eq(m.commits, 1);
	ck_assert_uint_gt(st.checkpoint, 0);
	snprintf(want, sizeof want,
		 "checkpoint of projection \"bank\" is no longer at position %llu",
		 (unsigned long long)st.checkpoint);
	ck_assert_msg(strstr(err, want), "error: %s", err);
	/* nothing of the second batch is there: event log, ledger, history */
	snprintf(q, sizeof q,
		 "SELECT (SELECT count(*) FROM evs.events WHERE position > %llu)"
		 " + (SELECT count(*) FROM bank.ledger WHERE position > %llu)"
		 " + (SELECT count(*) FROM bank.accounts_history WHERE valid_from_position > %llu"
		 " OR valid_to_position > %llu)",
		 (unsigned long long)st.checkpoint, (unsigned long long)st.checkpoint,
		 (unsigned long long)st.checkpoint, (unsigned long long)st.checkpoint);
	ck_assert_int_eq(pgh_int(m.c, q), 0);
	ck_assert_int_eq(pgh_int(m.c, "SELECT count(*) FROM evs.events"), (long long)st.checkpoint);
	ck_assert_int_gt(pgh_int(m.c, "SELECT count(*) FROM bank.accounts_history"), 0);
	snprintf(q, sizeof q, "SELECT position FROM evs.checkpoints WHERE projection = 'bank'");
	ck_assert_int_eq(pgh_int(m.c, q), (long long)st.checkpoint + 1000000);
	PQfinish(m.c);
	cleanup(s, dir, dsn);
}
END_TEST

/* Runs back to back on one projection: each finds the lock free, the
 * one before released it before returning (run.c: the server drops a
 * session's locks only once its backend has exited, after PQfinish). */
START_TEST(project_back_to_back)
{
	uint64_t rng = kit_seed("project_back_to_back");
	char *dir = kit_tmpdir("store"), *dsn = pgh_new_db(), err[2048];
	evs_store *s = model_open(dir);
	evp_config cfg;
	evp_stats st;
	int round, rc;

	for (round = 0; round < 30; round++) {
		model_generate(s, &rng, 5);
		config_once(&cfg, dir, dsn, 100);
		rc = evp_run(&cfg, &st, err, sizeof err);
		ck_assert_msg(rc == EVP_OK, "round %d: evp_run: %d %s", round, rc, err);
	}
	cleanup(s, dir, dsn);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		project_bulk_is_quiet,
		project_progress_numbers,
		project_checkpoint_moved,
		project_back_to_back,
		NULL,
	};

	return pgh_main("pg-project", 600, tests);
}
