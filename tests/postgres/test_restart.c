/*
 * test_restart.c - PostgreSQL restarted (crash-stopped and cleanly
 * stopped) while the projector runs live and events keep arriving: the
 * projector waits, reconnects with backoff and resumes from its
 * checkpoint; the read models end equal to the store's fold. Needs the
 * harness's own cluster (skipped with EVS_PG_DSN).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "evsproj.h"
#include "model.h"
#include "kit_pg.h"

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static long long checkpoint_of(const char *dsn)
{
	PGconn *c = PQconnectdb(dsn);
	long long v = -1;

	if (PQstatus(c) == CONNECTION_OK) {
		PGresult *r =
			PQexec(c, "SELECT position FROM evs.checkpoints WHERE projection = 'bank'");

		if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
			v = atoll(PQgetvalue(r, 0, 0));
		PQclear(r);
	}
	PQfinish(c);
	return v;
}

START_TEST(postgres_restart_mid_stream)
{
	uint64_t rng = kit_seed("postgres_restart_mid_stream");
	char *dir, *dsn, rules[512];
	evs_store *s;
	evs_store_info h;
	PGconn *c;
	pid_t pid;
	int st, round, waited = 0;

	if (!pgh_own_cluster()) {
		fprintf(stderr, "skipped: EVS_PG_DSN is set, the server is not ours to restart\n");
		return;
	}
	dir = kit_tmpdir("store");
	dsn = pgh_new_db();
	s = model_open(dir);
	snprintf(rules, sizeof rules, "%s/examples/bank/bank.projection", pgh_source_dir());
	model_generate_bank(s, &rng, 500, 6);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		execl(pgh_projector_bin(), pgh_projector_bin(), "--store", dir, "--dsn", dsn,
		      "--rules", rules, "--migrations", pgh_bank_migrations(), "--batch", "7",
		      "--retry-max-ms", "400", "--log-level", "warning", (char *)NULL);
		_exit(127);
	}
	for (round = 0; round < 4; round++) {
		sleep_ms(100 + (int)(kit_rand(&rng) % 200));
		pgh_server_stop(round % 2 ? "fast" : "immediate");
		/* events arrive while PostgreSQL is down */
		model_generate_bank(s, &rng, 150, 6);
		model_generate(s, &rng, 50);
		sleep_ms((int)(kit_rand(&rng) % 500));
		pgh_server_start();
		model_generate_bank(s, &rng, 100, 6);
	}
	ck_assert_int_eq(evs_head(s, &h), EVS_OK);
	while (checkpoint_of(dsn) != (long long)h.last_position) {
		ck_assert_msg(waited < 120000, "projector did not catch up after the restarts");
		ck_assert_int_eq(waitpid(pid, &st, WNOHANG), 0); /* still running */
		sleep_ms(50);
		waited += 50;
	}
	ck_assert_int_eq(kill(pid, SIGTERM), 0);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	c = pgh_connect(dsn);
	model_check_builtin(c, s, &rng);
	ck_assert_int_eq(
		pgh_int(c,
			"SELECT count(*) FROM bank.accounts a WHERE balance <>"
			" (SELECT coalesce(sum(amount), 0) FROM bank.ledger l WHERE l.account = a.id)"),
		0);
	ck_assert_int_eq(pgh_int(c, "SELECT count(*) FROM bank.ledger"), 500 + 4 * 250);
	pgh_release(c, s, dir, dsn);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		postgres_restart_mid_stream,
		NULL,
	};

	return pgh_main("restart", 600, tests);
}
