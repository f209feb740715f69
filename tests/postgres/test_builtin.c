/*
 * test_builtin.c - the built-in read models (event log, current state,
 * state history, state_at) equal a reference fold of the store after
 * random histories, projected in random batch sizes, in several runs
 * (so folds continue from states stored in PostgreSQL), and live.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <check.h>

#include "evsproj.h"
#include "model.h"
#include "kit_pg.h"

static void run_once(const char *store_dir, const char *dsn, int batch, const char *rules)
{
	evp_config cfg;
	evp_stats st;
	char err[2048];
	int rc;

	evp_config_init(&cfg);
	cfg.store_path = store_dir;
	cfg.dsn = dsn;
	cfg.migrations_dir = pgh_migrations_dir();
	cfg.batch_max = batch;
	cfg.once = true;
	cfg.rules_path = rules;
	rc = evp_run(&cfg, &st, err, sizeof err);
	ck_assert_msg(rc == EVP_OK, "evp_run: %s", err);
}

START_TEST(builtin_random_histories)
{
	uint64_t rng = kit_seed("builtin_random_histories");
	char *dir = kit_tmpdir("store"), *dsn = pgh_new_db();
	evs_store *s = model_open(dir);
	PGconn *c;
	int round;

	for (round = 0; round < 3; round++) {
		int batch = 1 + (int)(kit_rand(&rng) % (round == 0 ? 7 : 400));

		model_generate(s, &rng, 300 + (int)(kit_rand(&rng) % 500));
		fprintf(stderr, "round %d: batch %d\n", round, batch);
		run_once(dir, dsn, batch, NULL);
	}
	c = pgh_connect(dsn);
	model_check_builtin(c, s, &rng);
	{
		evs_store_info h;

		ck_assert_int_eq(evs_head(s, &h), EVS_OK);
		ck_assert_int_eq(
			pgh_int(c,
				"SELECT position FROM evs.checkpoints WHERE projection = 'builtin'"),
			(long long)h.last_position);
	}
	PQfinish(c);
	evs_close(s);
	kit_rmrf(dir);
	free(dir);
	free(dsn);
}
END_TEST

struct live {
	evp_config cfg;
	volatile sig_atomic_t stop;
	int rc;
	char err[2048];
};

static void *live_main(void *arg)
{
	struct live *l = arg;

	l->rc = evp_run(&l->cfg, NULL, l->err, sizeof l->err);
	return NULL;
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

START_TEST(builtin_live)
{
	uint64_t rng = kit_seed("builtin_live");
	char *dir = kit_tmpdir("store"), *dsn = pgh_new_db();
	evs_store *s = model_open(dir);
	struct live l;
	pthread_t th;
	PGconn *c;
	int i;
	int64_t worst = 0;

	memset(&l, 0, sizeof l);
	evp_config_init(&l.cfg);
	l.cfg.store_path = dir;
	l.cfg.dsn = dsn;
	l.cfg.migrations_dir = pgh_migrations_dir();
	l.cfg.stop = &l.stop;
	model_generate(s, &rng, 200);
	run_once(dir, dsn, 50, NULL); /* migrated and caught up */
	ck_assert_int_eq(pthread_create(&th, NULL, live_main, &l), 0);
	c = pgh_connect(dsn);
	/* one event at a time: each becomes visible within a bound */
	for (i = 0; i < 30; i++) {
		evs_store_info h;
		char sql[128];
		int64_t t0, dt;

		model_generate(s, &rng, 1);
		ck_assert_int_eq(evs_head(s, &h), EVS_OK);
		snprintf(sql, sizeof sql, "SELECT count(*) FROM evs.events WHERE position = %llu",
			 (unsigned long long)h.last_position);
		t0 = mono_ns();
		while (pgh_int(c, sql) != 1) {
			ck_assert_msg(mono_ns() - t0 < 30000000000LL,
				      "event %llu not visible after 30 s",
				      (unsigned long long)h.last_position);
		}
		dt = mono_ns() - t0;
		if (dt > worst)
			worst = dt;
	}
	fprintf(stderr, "builtin_live: worst commit-to-visible %.1f ms\n", (double)worst / 1e6);
	l.stop = 1;
	pthread_join(th, NULL);
	ck_assert_msg(l.rc == EVP_STOPPED, "%d %s", l.rc, l.err);
	model_check_builtin(c, s, &rng);
	PQfinish(c);
	evs_close(s);
	kit_rmrf(dir);
	free(dir);
	free(dsn);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		builtin_random_histories,
		builtin_live,
		NULL,
	};

	return pgh_main("builtin", 600, tests);
}
