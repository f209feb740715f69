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
		pgh_project_once(dir, dsn, NULL, batch);
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
	pgh_release(c, s, dir, dsn);
}
END_TEST

START_TEST(builtin_live)
{
	uint64_t rng = kit_seed("builtin_live");
	char *dir = kit_tmpdir("store"), *dsn = pgh_new_db();
	evs_store *s = model_open(dir);
	pgh_live l;
	PGconn *c;
	int i;
	int64_t worst = 0;

	pgh_live_init(&l, dir, dsn);
	model_generate(s, &rng, 200);
	pgh_project_once(dir, dsn, NULL, 50); /* migrated and caught up */
	pgh_live_start(&l);
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
		t0 = kit_mono_ns();
		while (pgh_int(c, sql) != 1) {
			ck_assert_msg(kit_mono_ns() - t0 < 30000000000LL,
				      "event %llu not visible after 30 s",
				      (unsigned long long)h.last_position);
		}
		dt = kit_mono_ns() - t0;
		if (dt > worst)
			worst = dt;
	}
	fprintf(stderr, "builtin_live: worst commit-to-visible %.1f ms\n", (double)worst / 1e6);
	ck_assert_msg(pgh_live_stop(&l) == EVP_STOPPED, "%d %s", l.rc, l.err);
	model_check_builtin(c, s, &rng);
	pgh_release(c, s, dir, dsn);
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
