/*
 * test_crash.c - the evs-projector process: SIGKILL at random moments
 * (at least 20 times, while events keep arriving) ends with read models
 * identical to a clean run and no duplicate effect, also during a bulk
 * load (indexes dropped, rebuilt when caught up); a second instance of
 * a projection is refused; SIGTERM stops it cleanly and promptly.
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

static char rules_path[512];

static pid_t spawn(const char *store, const char *dsn, int batch, bool once, const char *extra)
{
	char b[16];
	pid_t pid;

	snprintf(b, sizeof b, "%d", batch);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		const char *argv[20];
		int i = 0;

		argv[i++] = pgh_projector_bin();
		argv[i++] = "--store";
		argv[i++] = store;
		argv[i++] = "--dsn";
		argv[i++] = dsn;
		if (!extra || !strstr(extra, "--rules")) { /* a flag may be given once */
			argv[i++] = "--rules";
			argv[i++] = rules_path;
		}
		argv[i++] = "--migrations";
		argv[i++] = pgh_bank_migrations();
		argv[i++] = "--batch";
		argv[i++] = b;
		argv[i++] = "--log-level";
		argv[i++] = "warning";
		if (once)
			argv[i++] = "--once";
		if (extra) { /* space-separated options */
			char *copy = strdup(extra), *save = NULL, *tok;

			for (tok = strtok_r(copy, " ", &save); tok && i < 19;
			     tok = strtok_r(NULL, " ", &save))
				argv[i++] = tok;
		}
		argv[i] = NULL;
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static int wait_exit(pid_t pid)
{
	int st;

	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static const char *const dumps[] = {
	"SELECT * FROM evs.events ORDER BY position",
	"SELECT * FROM evs.state ORDER BY stream COLLATE \"C\"",
	"SELECT * FROM evs.state_history ORDER BY stream COLLATE \"C\", version",
	"SELECT * FROM bank.accounts ORDER BY id",
	"SELECT * FROM bank.ledger ORDER BY position",
	/* temporal table: byte-identical history after the kills (issue 10) */
	"SELECT * FROM bank.accounts_history ORDER BY id, valid_from_position",
	"SELECT count(*) FROM bank.accounts_history WHERE valid_to_position IS NULL",
	"SELECT projection, position FROM evs.checkpoints ORDER BY projection",
	"SELECT count(*) FROM evs.dead_letters",
};

START_TEST(projector_sigkill)
{
	uint64_t rng = kit_seed("projector_sigkill");
	char *dir = kit_tmpdir("store"), *dsn_a = pgh_new_db(), *dsn_b = pgh_new_db();
	evs_store *s = model_open(dir);
	PGconn *a, *b;
	int kills = 0, midstream = 0, round;
	size_t i;
	evp_migrate_result mr;
	char err[1024];

	a = pgh_connect(dsn_a);
	ck_assert_int_eq(evp_migrate(a, pgh_bank_migrations(), NULL, NULL, &mr, err, sizeof err),
			 EVP_OK);
	model_generate_bank(s, &rng, 1500, 12);
	model_generate(s, &rng, 300);
	for (round = 0; kills < 25; round++) {
		pid_t pid = spawn(dir, dsn_a, 1 + (int)(kit_rand(&rng) % 10), false, NULL);
		evs_store_info h;
		int st;

		sleep_ms(5 + (int)(kit_rand(&rng) % 150));
		/* new events keep arriving between the kills */
		model_generate_bank(s, &rng, 60, 12);
		ck_assert_int_eq(kill(pid, SIGKILL), 0);
		st = wait_exit(pid);
		ck_assert_msg(st == 128 + SIGKILL, "projector exited with %d before the kill", st);
		kills++;
		ck_assert_int_eq(evs_head(s, &h), EVS_OK);
		if (pgh_int(a, "SELECT coalesce((SELECT position FROM evs.checkpoints"
			       " WHERE projection = 'bank'), 0)") < (long long)h.last_position)
			midstream++;
	}
	PQfinish(a);
	fprintf(stderr, "projector_sigkill: %d kills, %d of them behind the head\n", kills,
		midstream);
	ck_assert_int_ge(midstream, 20);
	ck_assert_int_eq(wait_exit(spawn(dir, dsn_a, 100, true, NULL)), 0);
	ck_assert_int_eq(wait_exit(spawn(dir, dsn_b, 1000, true, NULL)), 0);

	a = pgh_connect(dsn_a);
	b = pgh_connect(dsn_b);
	for (i = 0; i < sizeof dumps / sizeof *dumps; i++) {
		char *x = model_dump(a, dumps[i]), *y = model_dump(b, dumps[i]);

		ck_assert_msg(strcmp(x, y) == 0, "after kills, \"%s\" differs from a clean run",
			      dumps[i]);
		free(x);
		free(y);
	}
	model_check_builtin(a, s, &rng);
	/* balances equal the sum of the ledger: no movement applied twice */
	ck_assert_int_eq(
		pgh_int(a,
			"SELECT count(*) FROM bank.accounts a WHERE balance <>"
			" (SELECT coalesce(sum(amount), 0) FROM bank.ledger l WHERE l.account = a.id)"),
		0);
	PQfinish(a);
	pgh_release(b, s, dir, dsn_a);
	free(dsn_b);
}
END_TEST

/* The bulk path: started far behind (--bulk-threshold 200), the projector
 * loads with the built-in models' secondary indexes dropped and builds
 * them when caught up. SIGKILL at random moments, many of them during
 * the bulk load (indexes missing), then a run to the head: the read models
 * and the indexes equal a clean run without bulk mode. */
static const char bulk_indexes_missing[] =
	"SELECT (to_regclass('evs.events_stream') IS NULL"
	" OR to_regclass('evs.state_history_at') IS NULL"
	" OR to_regclass('evs.state_history_bulk_open') IS NOT NULL"
	" OR to_regclass('bank.accounts_history_at') IS NULL"
	" OR to_regclass('bank.accounts_history_bulk_open') IS NOT NULL)::int";

START_TEST(projector_bulk_sigkill)
{
	uint64_t rng = kit_seed("projector_bulk_sigkill");
	char *dir = kit_tmpdir("store"), *dsn_a = pgh_new_db(), *dsn_b = pgh_new_db();
	evs_store *s = model_open(dir);
	PGconn *a, *b, *pin;
	int kills = 0, in_bulk = 0, round;
	size_t i;
	evp_migrate_result mr;
	char err[1024];
	static const char *const more[] = {
		"SELECT indexname, indexdef FROM pg_indexes WHERE schemaname IN ('evs', 'bank')"
		" ORDER BY indexname",
		/* the history's primary key is back after its bulk load */
		"SELECT conrelid::regclass, conname, pg_get_constraintdef(oid) FROM pg_constraint"
		" WHERE connamespace IN ('evs'::regnamespace, 'bank'::regnamespace)"
		" ORDER BY conname",
	};

	a = pgh_connect(dsn_a);
	ck_assert_int_eq(evp_migrate(a, pgh_bank_migrations(), NULL, NULL, &mr, err, sizeof err),
			 EVP_OK);
	model_generate_bank(s, &rng, 3000, 12);
	model_generate(s, &rng, 600);
	pin = pgh_connect(dsn_a);
	for (round = 0; kills < 25; round++) {
		pid_t pid = spawn(dir, dsn_a, 5 + (int)(kit_rand(&rng) % 50), false,
				  "--bulk-threshold=200");
		int st;

		if (round == 0) {
			/* The first 5 kills land in the bulk load for sure, not by
			 * the speed of the machine (a quiet one finished it
			 * between most kills: 7 of 25 in one CI run). Once the
			 * load began (its partial index exists: 3,600 events
			 * behind, it cannot have ended yet), a session holds ROW
			 * EXCLUSIVE on evs.state_history until the 5th kill: the
			 * batches go on (their writes take the same mode), but
			 * the load's end can neither build state_history_at nor
			 * drop the partial index, so the load cannot end. */
			static const char begun[] =
				"SELECT (to_regclass('evs.state_history_bulk_open')"
				" IS NOT NULL)::int";
			int64_t waited = 0;

			while (!pgh_int(pin, begun)) {
				ck_assert_msg(waited < 60000, "no bulk load within 60 s");
				sleep_ms(1);
				waited++;
			}
			pgh_exec(pin, "BEGIN");
			pgh_exec(pin, "LOCK TABLE evs.state_history IN ROW EXCLUSIVE MODE");
			ck_assert_msg(pgh_int(pin, begun),
				      "the bulk load ended before it could be held");
		}
		sleep_ms(5 + (int)(kit_rand(&rng) % 150));
		/* new events keep arriving between the kills, now and then
		 * enough to be far behind again */
		model_generate_bank(s, &rng, round % 5 == 4 ? 400 : 40, 12);
		ck_assert_int_eq(kill(pid, SIGKILL), 0);
		st = wait_exit(pid);
		ck_assert_msg(st == 128 + SIGKILL, "projector exited with %d before the kill", st);
		kills++;
		if (pgh_int(a, bulk_indexes_missing))
			in_bulk++;
		if (round <= 4) {
			/* the dead projector's session may wait on the held
			 * lock (and hold the projection's advisory lock with
			 * it): end it, as a dead client's would end. Asked
			 * through a, outside a transaction: pin's transaction
			 * would see one snapshot of pg_stat_activity. */
			char others[200], sql[512];
			int64_t waited = 0;

			snprintf(others, sizeof others,
				 "FROM pg_stat_activity WHERE backend_type = 'client backend'"
				 " AND datname = current_database() AND pid <> pg_backend_pid()"
				 " AND pid <> %d",
				 PQbackendPID(pin));
			snprintf(sql, sizeof sql, "SELECT count(pg_terminate_backend(pid)) %s",
				 others);
			pgh_int(a, sql);
			/* gone, and its advisory locks with it */
			snprintf(sql, sizeof sql,
				 "SELECT (SELECT count(*) %s) + (SELECT count(*) FROM pg_locks"
				 " WHERE locktype = 'advisory' AND database = (SELECT oid FROM"
				 " pg_database WHERE datname = current_database()))",
				 others);
			while (pgh_int(a, sql) > 0) {
				ck_assert_msg(waited < 60000, "a dead projector's session stays");
				sleep_ms(1);
				waited++;
			}
		}
		if (round == 4)
			pgh_exec(pin, "COMMIT"); /* the bulk load may end from now on */
	}
	PQfinish(pin);
	fprintf(stderr, "projector_bulk_sigkill: %d kills, %d of them during a bulk load\n", kills,
		in_bulk);
	ck_assert_int_ge(in_bulk, 5);
	PQfinish(a);
	ck_assert_int_eq(wait_exit(spawn(dir, dsn_a, 100, true, "--bulk-threshold=200")), 0);
	ck_assert_int_eq(wait_exit(spawn(dir, dsn_b, 1000, true, "--bulk-threshold=0")), 0);

	a = pgh_connect(dsn_a);
	b = pgh_connect(dsn_b);
	ck_assert_int_eq(pgh_int(a, bulk_indexes_missing), 0);
	for (i = 0; i < sizeof dumps / sizeof *dumps + 2; i++) {
		const char *q = i < sizeof dumps / sizeof *dumps
					? dumps[i]
					: more[i - sizeof dumps / sizeof *dumps];
		char *x = model_dump(a, q), *y = model_dump(b, q);

		ck_assert_msg(strcmp(x, y) == 0,
			      "after kills in bulk, \"%s\" differs from a clean run", q);
		free(x);
		free(y);
	}
	model_check_builtin(a, s, &rng);
	/* a run from far behind again (a fresh database) ends with the
	 * indexes too, and the same read models */
	PQfinish(b);
	free(dsn_b);
	dsn_b = pgh_new_db();
	ck_assert_int_eq(wait_exit(spawn(dir, dsn_b, 100, true, "--bulk-threshold=1")), 0);
	b = pgh_connect(dsn_b);
	for (i = 0; i < sizeof dumps / sizeof *dumps + 2; i++) {
		const char *q = i < sizeof dumps / sizeof *dumps
					? dumps[i]
					: more[i - sizeof dumps / sizeof *dumps];
		char *x = model_dump(a, q), *y = model_dump(b, q);

		ck_assert_msg(strcmp(x, y) == 0, "bulk from 0: \"%s\" differs from a clean run", q);
		free(x);
		free(y);
	}
	PQfinish(a);
	pgh_release(b, s, dir, dsn_a);
	free(dsn_b);
}
END_TEST

START_TEST(projector_second_instance_refused)
{
	uint64_t rng = kit_seed("projector_second_instance_refused");
	char *dir = kit_tmpdir("store"), *dsn = pgh_new_db();
	evs_store *s = model_open(dir);
	PGconn *c;
	pid_t first, second;
	int64_t waited = 0;

	model_generate_bank(s, &rng, 50, 3);
	first = spawn(dir, dsn, 10, false, NULL);
	c = pgh_connect(dsn);
	/* wait until the first one holds its lock and caught up */
	while (pgh_int(c, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
			  " AND objid = hashtext('bank')::oid") < 1) {
		ck_assert_msg(waited < 60000, "first projector never took its lock");
		sleep_ms(20);
		waited += 20;
	}
	second = spawn(dir, dsn, 10, true, NULL);
	ck_assert_int_eq(wait_exit(second), 3);
	/* another projection may run, but not a second writer of the
	 * built-in read models */
	ck_assert_int_eq(wait_exit(spawn(dir, dsn, 10, true, "--projection=other")), 3);
	{
		char path[512], opts[600];
		FILE *f;

		snprintf(path, sizeof path, "%s/other.projection", dir);
		ck_assert_ptr_nonnull(f = fopen(path, "w"));
		fputs("projection other\n", f);
		fclose(f);
		snprintf(opts, sizeof opts, "--rules=%s --builtin=false", path);
		ck_assert_int_eq(wait_exit(spawn(dir, dsn, 10, true, opts)), 0);
	}
	ck_assert_int_eq(kill(first, SIGTERM), 0);
	ck_assert_int_eq(wait_exit(first), 0);
	pgh_release(c, s, dir, dsn);
}
END_TEST

START_TEST(projector_sigterm)
{
	uint64_t rng = kit_seed("projector_sigterm");
	char *dir = kit_tmpdir("store"), *dsn = pgh_new_db();
	evs_store *s = model_open(dir);
	PGconn *c;
	pid_t pid;
	struct timespec t0, t1;
	double secs;

	model_generate_bank(s, &rng, 3000, 10);
	pid = spawn(dir, dsn, 5, false, NULL);
	sleep_ms(300);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(kill(pid, SIGTERM), 0);
	ck_assert_int_eq(wait_exit(pid), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	fprintf(stderr, "projector_sigterm: stopped in %.3f s\n", secs);
	/* a liveness bound (it stops at the batch in hand, not after the
	 * backlog), generous for a loaded machine under the sanitizers */
	ck_assert_msg(secs < 30.0, "SIGTERM took %.3f s", secs);
	/* what it committed is consistent; a later run finishes the job */
	ck_assert_int_eq(wait_exit(spawn(dir, dsn, 500, true, NULL)), 0);
	c = pgh_connect(dsn);
	model_check_builtin(c, s, &rng);
	pgh_release(c, s, dir, dsn);
}
END_TEST

static int run_evs(const char *const *args)
{
	const char *bindir = getenv("EVS_BIN_DIR");
	char path[512];
	const char *argv[24];
	pid_t pid;
	int i;

	ck_assert_ptr_nonnull(bindir);
	snprintf(path, sizeof path, "%s/evs", bindir);
	argv[0] = path;
	for (i = 0; args[i] && i < 22; i++)
		argv[i + 1] = args[i];
	argv[i + 1] = NULL;
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		execv(path, (char *const *)argv);
		_exit(127);
	}
	return wait_exit(pid);
}

START_TEST(cli_migrate_and_project)
{
	uint64_t rng = kit_seed("cli_migrate_and_project");
	char *dir = kit_tmpdir("store"), *dsn = pgh_new_db();
	evs_store *s = model_open(dir);
	evs_store_info h;
	PGconn *c;

	model_generate_bank(s, &rng, 200, 4);
	{
		const char *a[] = {"migrate", "--dsn", dsn, "--migrations", pgh_bank_migrations(),
				   NULL};

		ck_assert_int_eq(run_evs(a), 0);
		ck_assert_int_eq(run_evs(a), 0); /* nothing to do */
	}
	{
		const char *a[] = {"--store", dir,        "project", "--once", "--dsn", dsn,
				   "--rules", rules_path, "--batch", "64",     NULL};

		ck_assert_int_eq(run_evs(a), 0);
	}
	{
		const char *a[] = {"--store", dir,       "project", "--once", "--dsn",
				   dsn,       "--batch", "0",       NULL};

		ck_assert_int_eq(run_evs(a), 2); /* bad usage */
	}
	ck_assert_int_eq(evs_head(s, &h), EVS_OK);
	c = pgh_connect(dsn);
	ck_assert_int_eq(
		pgh_int(c, "SELECT position FROM evs.checkpoints WHERE projection = 'bank'"),
		(long long)h.last_position);
	ck_assert_int_eq(pgh_int(c, "SELECT count(*) FROM bank.ledger"), 200);
	pgh_release(c, s, dir, dsn);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		projector_sigkill, projector_bulk_sigkill,  projector_second_instance_refused,
		projector_sigterm, cli_migrate_and_project, NULL,
	};

	snprintf(rules_path, sizeof rules_path, "%s/examples/bank/bank.projection",
		 pgh_source_dir());
	return pgh_main("crash", 600, tests);
}
