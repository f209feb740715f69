/*
 * test_asof_bank.c - issue 10, "done when" #1: the declared bank read
 * model as of a time and at a position, over SQL (bank.accounts_as_of,
 * bank.accounts_at_position: contract C1) and over HTTP (evs-query
 * /models/bank/accounts/{id}?as_of= / ?at_position=), equals the C
 * aggregate of that account (examples/bank, bank_load with an evs_at)
 * for every account, closed ones included, at >= 50 random times and
 * >= 50 random positions; again after SIGKILLs of a live evs-projector
 * mid-run, after a PostgreSQL restart, and after a rebuild-and-swap.
 *
 * Times: the store records each event's time; the test reads them back
 * and picks T among them (an event's own microsecond, the one before
 * it, before the first, after the last). The read model keeps
 * microseconds (floored), so the store is asked as of the last
 * nanosecond of T's microsecond, which is what "as of T" means for both.
 * The seed is printed; EVS_TEST_SEED replays it.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "bank.h"
#include "kit_http.h"
#include "kit_pg.h"
#include "rfc3339.h"

#define ACCOUNTS 14
#define SWEEPS   50

struct fixture {
	char *dir, *dsn, rules[512];
	evs_store *store;
	bank b;
	PGconn *c;
	evsq_server *srv;
	unsigned port;
	int64_t *times; /* recorded_at of every event, ns */
	size_t ntimes;
	uint64_t head;
};

static void acct_id(char *out, size_t n, int i)
{
	snprintf(out, n, "account-%02d", i);
}

/* Random commands through the aggregate: opens, deposits, withdrawals,
 * transfers (to closed accounts too: returned), closes (emptied first). */
static void commands(struct fixture *f, uint64_t *rng, int n)
{
	char a[32], o[32], owner[32];
	int i, k;

	for (i = 0; i < n; i++) {
		int op = (int)(kit_rand(rng) % 40);
		bank_account st;

		k = (int)(kit_rand(rng) % ACCOUNTS);
		acct_id(a, sizeof a, k);
		acct_id(o, sizeof o, (int)(kit_rand(rng) % ACCOUNTS));
		if (op < 3) {
			snprintf(owner, sizeof owner, "Owner %d", k);
			(void)bank_open(&f->b, a, owner);
		} else if (op < 16) {
			(void)bank_deposit(&f->b, a, 1 + (int64_t)(kit_rand(rng) % 5000));
		} else if (op < 24) {
			(void)bank_withdraw(&f->b, a, 1 + (int64_t)(kit_rand(rng) % 3000));
		} else if (op < 39) {
			(void)bank_transfer(&f->b, a, o, 1 + (int64_t)(kit_rand(rng) % 2000), NULL);
		} else if (bank_load(&f->b, a, NULL, &st, NULL) == EVS_OK && st.opened &&
			   !st.closed) {
			if (st.balance > 0)
				(void)bank_withdraw(&f->b, a, st.balance);
			(void)bank_close(&f->b, a);
		}
	}
}

static void read_times(struct fixture *f)
{
	evs_store_info h;
	evs_iter *it;
	evs_event ev;

	ck_assert_int_eq(evs_head(f->store, &h), EVS_OK);
	f->head = h.last_position;
	free(f->times);
	f->times = calloc(f->head + 1, sizeof *f->times);
	ck_assert_ptr_nonnull(f->times);
	f->ntimes = 0;
	ck_assert_int_eq(evs_read_all(f->store, 1, EVS_FORWARD, NULL, 0, &it), EVS_OK);
	while (evs_iter_next(it, &ev) == EVS_OK)
		f->times[f->ntimes++] = ev.recorded_at;
	evs_iter_free(it);
	ck_assert_int_eq((long long)f->ntimes, (long long)f->head);
}

static pid_t spawn_projector(const struct fixture *f, int batch, bool once, bool rebuild)
{
	char b[16];
	pid_t pid;

	snprintf(b, sizeof b, "%d", batch);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		const char *argv[] = {pgh_projector_bin(),
				      "--store",
				      f->dir,
				      "--dsn",
				      f->dsn,
				      "--rules",
				      f->rules,
				      "--migrations",
				      pgh_bank_migrations(),
				      "--batch",
				      b,
				      "--log-level",
				      "warning",
				      once      ? "--once"
				      : rebuild ? "--rebuild"
						: NULL,
				      rebuild && once ? "--rebuild" : NULL,
				      NULL};

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

static void check_http(const struct fixture *f, const char *id, const char *q,
		       const bank_account *want)
{
	char target[256];
	http_answer a;
	json_object *row, *v;

	snprintf(target, sizeof target, "/models/bank/accounts/%s?%s", id, q);
	http_get(f->port, target, NULL, &a);
	if (!want->opened) {
		ck_assert_msg(a.status == 404, "%s: %ld %s", target, a.status, a.body);
		http_answer_free(&a);
		return;
	}
	ck_assert_msg(a.status == 200, "%s: %ld %s", target, a.status, a.body);
	ck_assert_int_eq(http_int(&a, "position"), (long long)f->head);
	ck_assert(json_object_object_get_ex(a.json, "row", &row));
	ck_assert(json_object_object_get_ex(row, "balance", &v));
	ck_assert_msg(json_object_get_int64(v) == want->balance, "%s: balance %s, aggregate %lld",
		      target, json_object_get_string(v), (long long)want->balance);
	ck_assert(json_object_object_get_ex(row, "owner", &v));
	ck_assert_str_eq(json_object_get_string(v), want->owner);
	ck_assert(json_object_object_get_ex(row, "open", &v));
	ck_assert_msg(json_object_get_boolean(v) == !want->closed, "%s: open", target);
	http_answer_free(&a);
}

/* Every account at `at` through the aggregate, SQL (fn, param) and HTTP
 * (q): equal. */
static void compare(const struct fixture *f, const evs_at *at, const char *fn, const char *param,
		    const char *q)
{
	const char *params[1] = {param};
	char sql[256], id[32];
	PGresult *r;
	int i, j, rows, opened = 0;

	snprintf(sql, sizeof sql,
		 "SELECT id, owner, balance::text, open FROM bank.%s($1) ORDER BY id", fn);
	r = PQexecParams(f->c, sql, 1, NULL, params, NULL, NULL, 0);
	ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s", PQerrorMessage(f->c));
	rows = PQntuples(r);
	for (i = 0; i < ACCOUNTS; i++) {
		bank_account st;

		acct_id(id, sizeof id, i);
		ck_assert_int_eq(bank_load((bank *)&f->b, id, at, &st, NULL), EVS_OK);
		for (j = 0; j < rows && strcmp(PQgetvalue(r, j, 0), id); j++)
			;
		if (!st.opened) {
			ck_assert_msg(j == rows, "%s(%s): %s has a row before it opened", fn, param,
				      id);
		} else {
			opened++;
			ck_assert_msg(j < rows, "%s(%s): no row for %s", fn, param, id);
			ck_assert_msg(atoll(PQgetvalue(r, j, 2)) == st.balance &&
					      !strchr(PQgetvalue(r, j, 2), '.'),
				      "%s(%s): %s balance %s, aggregate %lld", fn, param, id,
				      PQgetvalue(r, j, 2), (long long)st.balance);
			ck_assert_str_eq(PQgetvalue(r, j, 1), st.owner);
			ck_assert_str_eq(PQgetvalue(r, j, 3), st.closed ? "f" : "t");
		}
		check_http(f, id, q, &st);
	}
	ck_assert_int_eq(rows, opened);
	PQclear(r);
}

/* SWEEPS random times and SWEEPS random positions. */
static void sweep(struct fixture *f, uint64_t *rng, const char *when)
{
	int s, closed = 0;
	evs__buf pg = {0};
	char q[128], pos[32], text[EVS__TIME_LEN];

	read_times(f);
	ck_assert_int_eq(pgh_int(f->c, "SELECT position FROM evs.checkpoints"
				       " WHERE projection = 'bank'"),
			 (long long)f->head);
	for (s = 0; s < SWEEPS; s++) {
		uint64_t k = kit_rand(rng) % (f->ntimes + 2);
		int64_t us;
		evs_at at = {EVS_AT_TIME, 0, 0};

		if (k == f->ntimes)
			us = f->times[0] / 1000 - 1 - (int64_t)(kit_rand(rng) % 1000000);
		else if (k == f->ntimes + 1)
			us = f->times[f->ntimes - 1] / 1000 + (int64_t)(kit_rand(rng) % 1000000);
		else
			us = f->times[k] / 1000 - (int64_t)(kit_rand(rng) % 2);
		at.time = us * 1000 + 999;
		pg.len = 0;
		evs__time_pg_text(&pg, at.time);
		ck_assert(evs__buf_cstr(&pg));
		evs__time_format(at.time, text);
		snprintf(q, sizeof q, "as_of=%s", text);
		compare(f, &at, "accounts_as_of", pg.ptr, q);
	}
	for (s = 0; s < SWEEPS; s++) {
		evs_at at = {EVS_AT_POSITION, 0, kit_rand(rng) % (f->head + 1)};

		snprintf(pos, sizeof pos, "%llu", (unsigned long long)at.position);
		snprintf(q, sizeof q, "at_position=%s", pos);
		compare(f, &at, "accounts_at_position", pos, q);
	}
	evs__buf_free(&pg);
	closed = (int)pgh_int(f->c, "SELECT count(*) FROM bank.accounts WHERE NOT open");
	fprintf(stderr,
		"asof_bank %s: %d times and %d positions over %d accounts (%d closed now), "
		"head %llu\n",
		when, SWEEPS, SWEEPS, ACCOUNTS, closed, (unsigned long long)f->head);
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL); /* a random moment to kill at, not a wait for anything */
}

START_TEST(asof_bank_vs_aggregate)
{
	uint64_t rng = kit_seed("asof_bank_vs_aggregate");
	const char *settings[3];
	char rules_opt[600];
	struct fixture f;
	int kills, behind = 0;

	memset(&f, 0, sizeof f);
	f.dir = kit_tmpdir("store");
	f.dsn = pgh_new_db();
	snprintf(f.rules, sizeof f.rules, "%s/examples/bank/bank.projection", pgh_source_dir());
	{
		evs_options o;

		evs_options_init(&o);
		ck_assert_int_eq(evs_open(f.dir, &o, &f.store), EVS_OK);
	}
	ck_assert_int_eq(bank_open_handle(&f.b, f.store, 7), EVS_OK);
	commands(&f, &rng, 600);
	ck_assert_int_eq(wait_exit(spawn_projector(&f, 17, true, false)), 0);
	f.c = pgh_connect(f.dsn);
	snprintf(rules_opt, sizeof rules_opt, "rules=%s", f.rules);
	settings[0] = rules_opt;
	settings[1] = "min_position_wait_ms=200";
	settings[2] = NULL;
	f.srv = http_server(f.dsn, settings);
	f.port = evsq_server_port(f.srv);
	sweep(&f, &rng, "first catch-up");

	/* a live projector killed at random moments while commands go on */
	for (kills = 0; kills < 8; kills++) {
		pid_t pid = spawn_projector(&f, 1 + (int)(kit_rand(&rng) % 9), false, false);
		evs_store_info h;

		commands(&f, &rng, 40);
		sleep_ms((int)(kit_rand(&rng) % 60));
		ck_assert_int_eq(kill(pid, SIGKILL), 0);
		ck_assert_int_eq(wait_exit(pid), 128 + SIGKILL);
		ck_assert_int_eq(evs_head(f.store, &h), EVS_OK);
		behind += pgh_int(f.c, "SELECT position FROM evs.checkpoints"
				       " WHERE projection = 'bank'") < (long long)h.last_position;
	}
	fprintf(stderr, "asof_bank: %d SIGKILLs, %d of them behind the head\n", kills, behind);
	ck_assert_int_eq(wait_exit(spawn_projector(&f, 13, true, false)), 0);
	sweep(&f, &rng, "after SIGKILLs");

	/* PostgreSQL restarted between batches */
	if (pgh_own_cluster()) {
		PQfinish(f.c);
		commands(&f, &rng, 60);
		pgh_server_stop("fast");
		pgh_server_start();
		f.c = pgh_connect(f.dsn);
		ck_assert_int_eq(wait_exit(spawn_projector(&f, 11, true, false)), 0);
		sweep(&f, &rng, "after a PostgreSQL restart");
	}

	/* rebuilt from position 0 into the shadow schema, swapped in */
	commands(&f, &rng, 40);
	ck_assert_int_eq(wait_exit(spawn_projector(&f, 19, false, true)), 0);
	ck_assert_int_eq(
		pgh_int(f.c, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'bank\\_\\_%'"),
		0);
	sweep(&f, &rng, "after a rebuild and swap");

	evsq_server_stop(f.srv);
	bank_close_handle(&f.b);
	free(f.times);
	pgh_release(f.c, f.store, f.dir, f.dsn);
}
END_TEST

/* A page of target (with '?' already) after `after` (NULL: the first). */
static json_object *page(const struct fixture *f, const char *target, long lim, const char *after,
			 http_answer *a)
{
	char url[512], *esc = after ? http_escape(after) : NULL;
	json_object *v;

	snprintf(url, sizeof url, "%s&limit=%ld%s%s", target, lim, esc ? "&after=" : "",
		 esc ? esc : "");
	free(esc);
	http_get(f->port, url, NULL, a);
	ck_assert_msg(a->status == 200, "%s: %ld %s", url, a->status, a->body);
	ck_assert_int_eq(http_int(a, "position"), (long long)f->head);
	ck_assert(json_object_object_get_ex(a->json, "next_after", &v));
	return v;
}

/* Listings at a position and as of a time, paged with random limits,
 * hold exactly the aggregate's opened accounts; a key's /history pages
 * are its stream's events, each version ending where the next begins;
 * the parameters are refused like everywhere else. */
START_TEST(asof_bank_listings_history)
{
	uint64_t rng = kit_seed("asof_bank_listings_history");
	static const char *const bad[] = {
		"as_of=",
		"at_position=",
		"as_of=2000-13-01T00:00:00Z",
		"as_of=0000-06-01T00:00:00Z",
		"as_of=2000-01-01T00:00:00.1234567891Z",
		"at_position=-1",
		"at_position=99999999999999999999",
		"at_position=1x",
		"as_of=2000-01-01T00:00:00Z&at_position=1",
		"as_of=2000-01-01T00:00:00Z&as_of=2001-01-01T00:00:00Z",
		"as_of",
		"at_position=1%00",
		"asof=2000-01-01T00:00:00Z",
	};
	const char *settings[3];
	char rules_opt[600], target[256], id[32], text[EVS__TIME_LEN];
	struct fixture f;
	http_answer a;
	size_t i;
	int round;

	memset(&f, 0, sizeof f);
	f.dir = kit_tmpdir("store");
	f.dsn = pgh_new_db();
	snprintf(f.rules, sizeof f.rules, "%s/examples/bank/bank.projection", pgh_source_dir());
	{
		evs_options o;

		evs_options_init(&o);
		ck_assert_int_eq(evs_open(f.dir, &o, &f.store), EVS_OK);
	}
	ck_assert_int_eq(bank_open_handle(&f.b, f.store, 0), EVS_OK);
	commands(&f, &rng, 500);
	ck_assert_int_eq(wait_exit(spawn_projector(&f, 23, true, false)), 0);
	f.c = pgh_connect(f.dsn);
	read_times(&f);
	snprintf(rules_opt, sizeof rules_opt, "rules=%s", f.rules);
	settings[0] = rules_opt;
	settings[1] = "min_position_wait_ms=100";
	settings[2] = NULL;
	f.srv = http_server(f.dsn, settings);
	f.port = evsq_server_port(f.srv);

	for (round = 0; round < 12; round++) {
		evs_at at = {EVS_AT_POSITION, 0, kit_rand(&rng) % (f.head + 1)};
		char *after = NULL, last[32] = "";
		int seen = 0, want = 0, k;

		if (round % 2) {
			at.kind = EVS_AT_TIME;
			at.time = f.times[kit_rand(&rng) % f.ntimes] / 1000 * 1000 + 999;
			evs__time_format(at.time, text);
			snprintf(target, sizeof target, "/models/bank/accounts?as_of=%s", text);
		} else {
			snprintf(target, sizeof target, "/models/bank/accounts?at_position=%llu",
				 (unsigned long long)at.position);
		}
		for (k = 0; k < ACCOUNTS; k++) {
			bank_account st;

			acct_id(id, sizeof id, k);
			ck_assert_int_eq(bank_load(&f.b, id, &at, &st, NULL), EVS_OK);
			want += st.opened;
		}
		for (;;) {
			json_object *next = page(&f, target, 1 + (long)(kit_rand(&rng) % 5), after,
						 &a),
				    *rows, *row, *v;

			free(after);
			after = NULL;
			ck_assert(json_object_object_get_ex(a.json, "rows", &rows));
			for (i = 0; i < json_object_array_length(rows); i++) {
				bank_account st;

				row = json_object_array_get_idx(rows, i);
				ck_assert(json_object_object_get_ex(row, "id", &v));
				snprintf(id, sizeof id, "%s", json_object_get_string(v));
				ck_assert_msg(strcmp(id, last) > 0, "%s: %s after %s", target, id,
					      last);
				snprintf(last, sizeof last, "%s", id);
				ck_assert_int_eq(bank_load(&f.b, id, &at, &st, NULL), EVS_OK);
				ck_assert_msg(st.opened, "%s: %s before it opened", target, id);
				ck_assert(json_object_object_get_ex(row, "balance", &v));
				ck_assert_int_eq(json_object_get_int64(v), st.balance);
				ck_assert(json_object_object_get_ex(row, "open", &v));
				ck_assert(json_object_get_boolean(v) == !st.closed);
				seen++;
			}
			if (!json_object_is_type(next, json_type_null))
				after = strdup(json_object_get_string(next));
			http_answer_free(&a);
			if (!after)
				break;
		}
		ck_assert_msg(seen == want, "%s: %d rows, aggregate %d accounts", target, seen,
			      want);
	}

	/* histories: the stream's events, in order, chained */
	for (int k = 0; k < ACCOUNTS; k++) {
		char *after = NULL;
		long long prev_to = -1;
		uint64_t n = 0;
		evs_iter *it;
		evs_event ev;
		evs_stream_info sh;

		acct_id(id, sizeof id, k);
		if (evs_stream_head(f.store, id, &sh) != EVS_OK) {
			snprintf(target, sizeof target, "/models/bank/accounts/%s/history", id);
			http_expect_error(f.port, target, 404, "not_found");
			continue;
		}
		ck_assert_int_eq(evs_read_stream(f.store, id, 1, EVS_FORWARD, 0, &it), EVS_OK);
		snprintf(target, sizeof target, "/models/bank/accounts/%s/history?min_position=1",
			 id);
		for (;;) {
			json_object *next = page(&f, target, 1 + (long)(kit_rand(&rng) % 4), after,
						 &a),
				    *vs, *v, *x;

			free(after);
			after = NULL;
			ck_assert(json_object_object_get_ex(a.json, "versions", &vs));
			for (i = 0; i < json_object_array_length(vs); i++) {
				v = json_object_array_get_idx(vs, i);
				ck_assert_int_eq(evs_iter_next(it, &ev), EVS_OK);
				n++;
				ck_assert(json_object_object_get_ex(v, "valid_from_position", &x));
				ck_assert_int_eq(json_object_get_int64(x), (long long)ev.position);
				if (prev_to >= 0)
					ck_assert_int_eq(prev_to, (long long)ev.position);
				ck_assert(json_object_object_get_ex(v, "valid_to_position", &x));
				prev_to = json_object_is_type(x, json_type_null)
						  ? -2
						  : json_object_get_int64(x);
				ck_assert(json_object_object_get_ex(v, "row", &x));
				ck_assert(json_object_object_get_ex(x, "version", &x));
				ck_assert_int_eq(json_object_get_int64(x), (long long)n);
			}
			if (!json_object_is_type(next, json_type_null))
				after = strdup(json_object_get_string(next));
			http_answer_free(&a);
			if (!after)
				break;
		}
		ck_assert_int_eq(prev_to, -2); /* the last version is current */
		ck_assert_int_eq((long long)n, (long long)sh.version);
		ck_assert_int_eq(evs_iter_next(it, &ev), EVS_END);
		evs_iter_free(it);
	}

	/* refusals, alike for a key, a listing and (where they apply) history */
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(target, sizeof target, "/models/bank/accounts/account-01?%s", bad[i]);
		http_expect_error(f.port, target, 400, "bad_request");
		snprintf(target, sizeof target, "/models/bank/accounts?%s", bad[i]);
		http_expect_error(f.port, target, 400, "bad_request");
		snprintf(target, sizeof target, "/models/bank/accounts/account-01/history?%s",
			 bad[i]);
		http_expect_error(f.port, target, 400, "bad_request");
	}
	http_expect_error(f.port, "/models/bank/accounts/account-01/history?limit=0", 400,
			  "bad_request");
	http_expect_error(f.port, "/models/bank/accounts/account-01/history?after=x", 400,
			  "bad_request");
	/* a current-only table has no past */
	http_get(f.port, "/models/bank/ledger?as_of=2000-01-01T00:00:00Z", NULL, &a);
	ck_assert_msg(a.status == 400 && strstr(http_str(&a, "message"),
						"keeps no history (declared \"current\""),
		      "%ld %s", a.status, a.body);
	http_answer_free(&a);
	/* a position not projected yet: the answer waits, then says so */
	snprintf(target, sizeof target, "/models/bank/accounts/account-01?at_position=%llu",
		 (unsigned long long)f.head + 1);
	http_expect_error(f.port, target, 409, "projection_behind");
	/* far times: nobody in 1500 (before the store's int64 ns), everyone
	 * as now in 9999 */
	http_expect_error(f.port, "/models/bank/accounts/account-01?as_of=1500-01-01T00:00:00Z",
			  404, "not_found");
	http_expect_error(f.port,
			  "/models/bank/accounts/account-01?as_of=0001-01-01T00:59:59%2B01:00", 400,
			  "bad_request");
	http_get_ok(f.port, "/models/bank/accounts?as_of=9999-12-31T23:59:59.999999999Z&limit=100",
		    &a);
	ck_assert_int_eq(
		(long long)json_object_array_length(json_object_object_get(a.json, "rows")),
		pgh_int(f.c, "SELECT count(*) FROM bank.accounts"));
	http_answer_free(&a);
	/* before anything: nobody */
	http_expect_error(f.port, "/models/bank/accounts/account-01?as_of=1970-01-01T00:00:00Z",
			  404, "not_found");
	http_get_ok(f.port, "/models/bank/accounts?at_position=0", &a);
	ck_assert_int_eq(json_object_array_length(json_object_object_get(a.json, "rows")), 0);
	http_answer_free(&a);

	/* a temporal table whose history is not there (yet): 503, named */
	pgh_exec(f.c, "DROP TABLE bank.accounts_history CASCADE");
	http_get(f.port, "/models/bank/accounts/account-01?at_position=1", NULL, &a);
	ck_assert_msg(a.status == 503 && strstr(http_str(&a, "message"),
						"\"bank.accounts_history\": the projector creates"),
		      "%ld %s", a.status, a.body);
	http_answer_free(&a);

	evsq_server_stop(f.srv);
	bank_close_handle(&f.b);
	free(f.times);
	pgh_release(f.c, f.store, f.dir, f.dsn);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {asof_bank_vs_aggregate, asof_bank_listings_history, NULL};

	return http_main("asof_bank", 1800, tests);
}
