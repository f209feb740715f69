/*
 * bench_aggregate.c - aggregates on libevstore: loading by replay vs from a
 * snapshot, and evs_execute() throughput, durable (issue 3, item 8).
 *
 * This is a benchmark, not a test: it asserts nothing about speed and exits
 * non-zero only when a call fails. The verdict block at the end says
 * whether each floor of issue 3 holds. The domain is the bank example
 * (examples/bank): deposits into accounts.
 *
 * Figures:
 *
 *   A1  load of one 10,000-event account (--events): pure replay (a
 *       definition without snapshot functions) vs with a snapshot every
 *       100 events. "Snapshot, average" loads the account as of each
 *       version 9,901 .. 10,000 in turn, so the replay after the snapshot
 *       is 0 to 99 events, 49.5 on average: what a load costs at a random
 *       moment of the account's life. "Snapshot, head" is the latest state
 *       right after a snapshot (no replay). The store is built with
 *       EVS_SYNC_NONE (setup, not a figure).
 *   A2  evs_execute() commands/s, EVS_SYNC_FULL (every acknowledged
 *       command is on disk), each command a deposit that loads the
 *       account, decides and appends one event expecting the loaded
 *       version: 1 thread and 16 threads against 1 account (the 16 contend
 *       for one version; conflicts are retried) and against 10,000
 *       accounts (--accounts) picked at random per command.
 *
 * Method: each figure is the median of --rounds rounds of at least
 * --seconds each; the 1- and 16-thread runs alternate within a round.
 * Everything lives in a fresh mkdtemp directory under --dir, $TMPDIR or
 * /tmp, removed at the end (--keep leaves it).
 *
 *   bench_aggregate [--quick] [--seconds S] [--rounds N] [--events N]
 *                   [--accounts N] [--threads N] [--seed N] [--dir D] [--keep]
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "bank.h"
#include "kit.h"

#define SNAPSHOT_EVERY 100
#define MAX_THREADS    64
#define TMPFS_MAGIC_   0x01021994

struct config {
	bool quick, keep;
	double seconds;
	int rounds;
	uint64_t events, accounts;
	int threads;
	uint64_t seed;
	const char *dir;
};

static const char *root; /* the scratch directory (kit_bench_root) */

/* ---- helpers ------------------------------------------------------------ */

static void check(int rc, evs_store *s, const char *what)
{
	if (rc != EVS_OK)
		kit_die("%s: %s (%s)", what, s ? evs_errmsg(s) : evs_open_errmsg(),
			evs_code_name(rc));
}

static void print_rounds(const char *who, const double *v, int n, const char *unit)
{
	char b[32];

	printf("      %-22s rounds:", who);
	for (int i = 0; i < n; i++)
		printf(" %s", kit_num(v[i], b));
	printf(" %s\n", unit);
}

static evs_store *open_store(const char *dir, int sync)
{
	evs_options o;
	evs_store *s = NULL;

	evs_options_init(&o);
	o.sync = sync;
	o.map_size = (size_t)1 << 30;
	check(evs_open(dir, &o, &s), NULL, "evs_open");
	return s;
}

static void account_name(char *out, size_t len, uint64_t i)
{
	snprintf(out, len, "account-%05" PRIu64, i);
}

/* ---- A1: loads ------------------------------------------------------------ */

/* Loads per second of `agg` for at least `secs`; at: NULL, or as of
 * positions cycling over [lo, hi]. */
static double loads_per_sec(evs_store *st, evs_aggregate *agg, double secs, bool as_of, uint64_t lo,
			    uint64_t hi, uint64_t *replayed)
{
	int64_t t0 = kit_mono_ns(), deadline = t0 + (int64_t)(secs * 1e9);
	uint64_t n = 0, p = lo;
	bank_account acc;
	evs_loaded li;

	*replayed = 0;
	do {
		for (int k = 0; k < 16; k++) {
			evs_at at = {.kind = EVS_AT_POSITION, .position = p};
			check(evs_aggregate_load(agg, "account-load", as_of ? &at : NULL, &acc,
						 &li),
			      st, "evs_aggregate_load");
			evs_aggregate_release(agg, &acc);
			*replayed += li.replayed;
			n++;
			p = p == hi ? lo : p + 1;
		}
	} while (kit_mono_ns() < deadline);
	return (double)n / ((double)(kit_mono_ns() - t0) / 1e9);
}

static double figure_loads(const struct config *cf)
{
	char dir[PATH_MAX], b1[32], b2[32], b3[32];
	evs_aggregate_def def;
	evs_aggregate *snap, *pure;
	bank bk;
	double r_pure[64], r_avg[64], r_head[64];
	uint64_t replayed;

	kit_bench_path(dir, "loads");
	evs_store *st = open_store(dir, EVS_SYNC_NONE);
	check(bank_open_handle(&bk, st, SNAPSHOT_EVERY), st, "bank handle");
	int64_t t0 = kit_mono_ns();
	check(bank_open(&bk, "account-load", "Load"), st, "open account");
	for (uint64_t i = 1; i < cf->events; i++)
		check(bank_deposit(&bk, "account-load", 1 + (int64_t)(i % 97)), st, "deposit");
	printf("building one account of %s events by evs_execute (EVS_SYNC_NONE, setup): %.1f s\n\n",
	       kit_num((double)cf->events, b1), (double)(kit_mono_ns() - t0) / 1e9);
	bank_close_handle(&bk);

	bank_account_def(&def, SNAPSHOT_EVERY);
	check(evs_aggregate_new(st, &def, &snap), st, "aggregate");
	def.snapshot_every = 0;
	def.snapshot_encode = NULL;
	def.snapshot_decode = NULL;
	check(evs_aggregate_new(st, &def, &pure), st, "aggregate");

	uint64_t last = cf->events, lo = last - SNAPSHOT_EVERY + 1;
	for (int r = 0; r < cf->rounds; r++) {
		r_pure[r] = loads_per_sec(st, pure, cf->seconds, false, 0, 0, &replayed);
		r_avg[r] = loads_per_sec(st, snap, cf->seconds, true, lo, last, &replayed);
		r_head[r] = loads_per_sec(st, snap, cf->seconds / 4, false, 0, 0, &replayed);
	}
	double p = kit_median(r_pure, (size_t)cf->rounds),
	       a = kit_median(r_avg, (size_t)cf->rounds),
	       h = kit_median(r_head, (size_t)cf->rounds);
	printf("[A1] load of one %s-event account: pure replay vs a snapshot every %d events\n",
	       kit_num((double)cf->events, b1), SNAPSHOT_EVERY);
	printf("    pure replay          %9.3f ms per load (%s loads/s)\n", 1e3 / p,
	       kit_num(p, b2));
	printf("    snapshot, average    %9.3f ms per load (%s loads/s), as of versions %s..%s\n",
	       1e3 / a, kit_num(a, b3), kit_num((double)lo, b1), kit_num((double)last, b2));
	printf("    snapshot, head       %9.3f ms per load (%s loads/s)\n", 1e3 / h,
	       kit_num(h, b1));
	print_rounds("pure loads/s", r_pure, cf->rounds, "");
	print_rounds("snapshot avg loads/s", r_avg, cf->rounds, "");
	printf("    snapshot average = %.4f of pure replay (%.0fx faster)\n\n", p / a, a / p);
	evs_aggregate_free(snap);
	evs_aggregate_free(pure);
	evs_close(st);
	return a / p;
}

/* ---- A2: execute ---------------------------------------------------------- */

struct runner {
	pthread_t th;
	bank *bk;
	uint64_t accounts; /* 1: "account-00000" only */
	uint64_t seed;
	int64_t deadline;
	uint64_t done, attempts, gave_up;
	int bad_rc;
	char bad[256];
};

static atomic_int start_flag;

static void *runner_main(void *arg)
{
	struct runner *r = arg;
	uint64_t x = r->seed | 1;
	char name[32];

	while (!atomic_load(&start_flag))
		sched_yield();
	while (kit_mono_ns() < r->deadline) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		account_name(name, sizeof name, r->accounts > 1 ? x % r->accounts : 0);
		bank_cmd c = {.op = BANK_DEPOSIT, .account = name, .amount = 1};
		evs_execute_result res;
		int rc = bank_execute(r->bk, &c, &res);
		r->attempts += res.attempts;
		if (rc == EVS_OK) {
			r->done++;
		} else if (rc == EVS_WRONG_VERSION) {
			r->gave_up++;
		} else {
			r->bad_rc = rc;
			snprintf(r->bad, sizeof r->bad, "execute on \"%s\": %s: %s", name,
				 evs_code_name(rc), evs_errmsg(r->bk->store));
			break;
		}
	}
	return NULL;
}

/* Commands/s of n threads for `secs`; *conflicts gets retried rounds. */
static double run_execs(bank *bk, int n, uint64_t accounts, double secs, uint64_t seed,
			uint64_t *conflicts, uint64_t *gave_up)
{
	static struct runner rs[MAX_THREADS];
	uint64_t done = 0, attempts = 0;
	int64_t t0;

	atomic_store(&start_flag, 0);
	for (int i = 0; i < n; i++) {
		memset(&rs[i], 0, sizeof rs[i]);
		rs[i].bk = bk;
		rs[i].accounts = accounts;
		rs[i].seed = seed * 64 + (uint64_t)i + 1;
		if (pthread_create(&rs[i].th, NULL, runner_main, &rs[i]) != 0)
			kit_die("pthread_create failed");
	}
	t0 = kit_mono_ns();
	for (int i = 0; i < n; i++)
		rs[i].deadline = t0 + (int64_t)(secs * 1e9);
	atomic_store(&start_flag, 1);
	*gave_up = 0;
	for (int i = 0; i < n; i++) {
		pthread_join(rs[i].th, NULL);
		if (rs[i].bad_rc)
			kit_die("%s", rs[i].bad);
		done += rs[i].done;
		attempts += rs[i].attempts;
		*gave_up += rs[i].gave_up;
	}
	double el = (double)(kit_mono_ns() - t0) / 1e9;
	*conflicts = attempts - done - *gave_up;
	return (double)done / el;
}

static double figure_execute(const struct config *cf)
{
	char dir[PATH_MAX], name[32], b1[32], b2[32];
	bank bk;
	double one1[64], many1[64], oneN[64], manyN[64];
	uint64_t conf, gave, conf_many1 = 0, gave_many1 = 0, conf_manyN = 0;

	/* setup: the accounts, opened without syncs; then reopened durable */
	kit_bench_path(dir, "execute");
	evs_store *st = open_store(dir, EVS_SYNC_NONE);
	check(bank_open_handle(&bk, st, SNAPSHOT_EVERY), st, "bank handle");
	int64_t t0 = kit_mono_ns();
	for (uint64_t i = 0; i < cf->accounts; i++) {
		account_name(name, sizeof name, i);
		check(bank_open(&bk, name, "Bench"), st, "open account");
	}
	printf("opening %s accounts (EVS_SYNC_NONE, setup): %.1f s\n\n",
	       kit_num((double)cf->accounts, b1), (double)(kit_mono_ns() - t0) / 1e9);
	bank_close_handle(&bk);
	evs_close(st);

	st = open_store(dir, EVS_SYNC_FULL);
	check(bank_open_handle(&bk, st, SNAPSHOT_EVERY), st, "bank handle");
	int n = cf->threads;
	for (int r = 0; r < cf->rounds; r++) {
		uint64_t s = cf->seed + (uint64_t)r * 4;
		if (r % 2 == 0) {
			oneN[r] = run_execs(&bk, 1, 1, cf->seconds, s, &conf, &gave);
			manyN[r] = run_execs(&bk, n, 1, cf->seconds, s + 1, &conf, &gave);
			conf_many1 += conf;
			gave_many1 += gave;
			one1[r] = run_execs(&bk, 1, cf->accounts, cf->seconds, s + 2, &conf, &gave);
			many1[r] =
				run_execs(&bk, n, cf->accounts, cf->seconds, s + 3, &conf, &gave);
			conf_manyN += conf;
		} else {
			many1[r] =
				run_execs(&bk, n, cf->accounts, cf->seconds, s + 3, &conf, &gave);
			conf_manyN += conf;
			one1[r] = run_execs(&bk, 1, cf->accounts, cf->seconds, s + 2, &conf, &gave);
			manyN[r] = run_execs(&bk, n, 1, cf->seconds, s + 1, &conf, &gave);
			conf_many1 += conf;
			gave_many1 += gave;
			oneN[r] = run_execs(&bk, 1, 1, cf->seconds, s, &conf, &gave);
		}
	}
	double a = kit_median(oneN, (size_t)cf->rounds), b = kit_median(manyN, (size_t)cf->rounds),
	       c = kit_median(one1, (size_t)cf->rounds), d = kit_median(many1, (size_t)cf->rounds);
	printf("[A2] evs_execute() durable (EVS_SYNC_FULL), each command a deposit: load, decide, "
	       "append expecting the loaded version\n");
	printf("    1 account,   1 thread  %8s commands/s  (%.2f ms per command)\n", kit_num(a, b1),
	       1e3 / a);
	printf("    1 account,  %2d threads %8s commands/s  = %.1fx; %s version conflicts "
	       "retried, %s gave up\n",
	       n, kit_num(b, b1), b / a, kit_num((double)conf_many1, b2),
	       kit_num((double)gave_many1, name));
	printf("    %s accounts, 1 thread  %8s commands/s\n", kit_num((double)cf->accounts, b2),
	       kit_num(c, b1));
	printf("    %s accounts, %2d threads %8s commands/s  = %.1fx the 1-thread figure "
	       "(%s conflicts)\n",
	       kit_num((double)cf->accounts, b2), n, kit_num(d, b1), d / c,
	       kit_num((double)conf_manyN, name));
	print_rounds("1 account, 1 thread", oneN, cf->rounds, "/s");
	print_rounds("1 account, N threads", manyN, cf->rounds, "/s");
	print_rounds("N accounts, 1 thread", one1, cf->rounds, "/s");
	print_rounds("N accounts, N threads", many1, cf->rounds, "/s");
	printf("\n");
	bank_close_handle(&bk);
	evs_close(st);
	return d / c;
}

/* ---- main ----------------------------------------------------------------- */

static void usage(FILE *f)
{
	fputs("usage: bench_aggregate [--quick] [--seconds S] [--rounds N] [--events N]\n"
	      "                       [--accounts N] [--threads N] [--seed N] [--dir D] "
	      "[--keep]\n",
	      f);
}

int main(int argc, char **argv)
{
	struct config cf = {
		.seconds = 2, .rounds = 3, .events = 10000, .accounts = 10000, .threads = 16};
	static const struct option opts[] = {{"quick", no_argument, NULL, 'q'},
					     {"seconds", required_argument, NULL, 's'},
					     {"rounds", required_argument, NULL, 'r'},
					     {"events", required_argument, NULL, 'e'},
					     {"accounts", required_argument, NULL, 'a'},
					     {"threads", required_argument, NULL, 't'},
					     {"seed", required_argument, NULL, 'S'},
					     {"dir", required_argument, NULL, 'd'},
					     {"keep", no_argument, NULL, 'k'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	struct timespec ts;
	int c;

	clock_gettime(CLOCK_REALTIME, &ts);
	cf.seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 20);
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'q': cf.quick = true; break;
		case 's': cf.seconds = atof(optarg); break;
		case 'r': cf.rounds = atoi(optarg); break;
		case 'e': cf.events = strtoull(optarg, NULL, 10); break;
		case 'a': cf.accounts = strtoull(optarg, NULL, 10); break;
		case 't': cf.threads = atoi(optarg); break;
		case 'S': cf.seed = strtoull(optarg, NULL, 10); break;
		case 'd': cf.dir = optarg; break;
		case 'k': cf.keep = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (cf.quick) {
		cf.seconds = 0.2;
		cf.rounds = 1;
		cf.events = 1000;
		cf.accounts = 500;
	}
	if (cf.rounds < 1 || cf.rounds > 64 || cf.seconds <= 0 || cf.events <= SNAPSHOT_EVERY ||
	    cf.accounts < 2 || cf.threads < 2 || cf.threads > MAX_THREADS) {
		usage(stderr);
		return 2;
	}
	root = kit_bench_root("bench_aggregate", cf.dir, "bench-aggregate", cf.keep);

	struct statfs sf;
	printf("bench_aggregate: libevstore %s, %ld CPUs, directory %s", EVS_VERSION_STRING,
	       sysconf(_SC_NPROCESSORS_ONLN), root);
	if (statfs(root, &sf) == 0 && (unsigned long)sf.f_type == TMPFS_MAGIC_)
		printf("  WARNING: tmpfs, fsync costs nothing; durable figures are meaningless");
	printf("\n");
	kit_print_load("at start");
	printf("seed:    %" PRIu64 " (--seed %" PRIu64 ")\n", cf.seed, cf.seed);
	printf("options: events %" PRIu64 ", accounts %" PRIu64 ", threads %d, seconds %.2f per "
	       "round, rounds %d (median)%s\n\n",
	       cf.events, cf.accounts, cf.threads, cf.seconds, cf.rounds,
	       cf.quick ? ", --quick" : "");

	double load_speedup = figure_loads(&cf);
	double exec_scale = figure_execute(&cf);

	kit_print_load("at end");
	printf("verdict: floors of issue 3%s\n",
	       cf.quick ? " (--quick: sizes too small to judge)" : "");
	printf("  load with a snapshot every 100 <= 1/20 of pure replay   1/%-6.0f   %s\n",
	       load_speedup, load_speedup >= 20 ? "ok" : "BELOW");
	printf("  %d threads, distinct aggregates >= 5x one thread        %6.1fx    %s\n",
	       cf.threads, exec_scale, exec_scale >= 5 ? "ok" : "BELOW");
	kit_bench_cleanup();
	return 0;
}
