/*
 * bench_projector.c - catch-up throughput of the projector beside
 * PostgreSQL's own ceiling, and live lag under a steady append rate
 * (issue 5, item 6). A benchmark, not a test: it asserts nothing about
 * speed and exits non-zero only when a call fails.
 *
 *   ./build/tests/postgres/bench_projector [--events N] [--rate R]
 *                                          [--seconds S] [--quick]
 *
 * Figures, each catch-up from an empty database (migrations applied
 * before the clock starts) of the same N-event store (bank events: ~60%
 * of them with two data fields, 100 accounts):
 *
 *   a  the event-log read model only (evs.events)
 *   b  all built-in read models (events, state, state history)
 *   c  the example projection only (examples/bank/bank.projection):
 *      bank.accounts temporal (its history written, issue 10), ledger
 *      current-only ("current ledger")
 *   c0 the same without history ("current ledger accounts"), to show
 *      what history costs
 *
 * a and b start 1M events behind, so they run in bulk mode (projector/bulk.c:
 * secondary indexes dropped, rebuilt when caught up); the clock stops
 * when evp_run returns, i.e. after the index builds. To compare without
 * bulk mode: EVS_BENCH_BULK_THRESHOLD=0. EVS_BENCH_ONLY_A /
 * EVS_BENCH_ONLY_AB stop after a / b; EVS_BENCH_ONLY_C runs the ceiling
 * and c, c0 only; EVS_BENCH_ONLY_LIVE the ceiling and the live figure;
 * EVS_BENCH_DEBUG=1 logs every batch with timestamps;
 * EVS_BENCH_BATCH_WAIT_MS=N gives the live projector --batch-wait-ms N;
 * EVS_BENCH_STORE_CACHE=DIR keeps the built store for the next runs.
 * The projector's own switches compare execution paths: EVS_PROJECTOR_NO_FOLD=1
 * (set-based rounds without folding runs of UPDATEs, projector/fold.c),
 * EVS_PROJECTOR_PER_EVENT=1 (one event at a time).
 *
 * Ceiling: binary COPY of the same rows (the evs.events columns, data
 * and metadata as jsonb) into an unindexed table, chunks of 50,000 rows
 * per transaction, rows encoded before the clock runs: what PostgreSQL
 * itself can take. Each figure is printed as events/s and as a ratio of
 * the ceiling.
 *
 * Live: an appender appends one event per call at --rate events/s
 * (EVS_SYNC_NONE, paced on an absolute schedule; deposits to the 100
 * accounts) while the projector follows (all built-in read models and
 * the bank projection with its temporal table; EVS_BENCH_LIVE_NO_RULES=1:
 * built-in models only, as before issue 10); lag of an event = the moment its
 * batch's COMMIT returned - the moment before its append was called.
 * p50/p99/max over all events of --seconds.
 *
 * The cluster is the test kit's (tests/kit/kit_pg.c) or $EVS_PG_DSN.
 */
#include <dirent.h>
#include <pthread.h>
#include <sys/resource.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <msgpack.h>

#include "evsproj.h"
#include "model.h"
#include "kit_pg.h"

static int64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what, const char *detail)
{
	fprintf(stderr, "bench_projector: %s: %s\n", what, detail);
	pgh_stop();
	exit(1);
}

static void migrate(const char *dsn)
{
	PGconn *c = PQconnectdb(dsn);
	evp_migrate_result r;
	char err[1024];

	if (PQstatus(c) != CONNECTION_OK)
		die("connect", PQerrorMessage(c));
	if (evp_migrate(c, pgh_bank_migrations(), NULL, NULL, &r, err, sizeof err) != EVP_OK)
		die("migrate", err);
	PQfinish(c);
}

static void log_stderr(void *ctx, int level, const char *message)
{
	(void)ctx;
	(void)level;
	fprintf(stderr, "%.3f projector: %s\n", (double)now_ns(CLOCK_MONOTONIC) / 1e9, message);
}

/* CPU seconds the PostgreSQL server has used: the postmaster, its live
 * children and those it reaped (a figure that the machine's other load
 * disturbs much less than the wall clock). */
static int postmaster_pid;

static double proc_cpu(int pid, bool reaped)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st, cut, cst;
	FILE *f;
	int ppid;
	size_t n;

	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	if (!(f = fopen(path, "r")))
		return 0;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	if (!(p = strrchr(buf, ')')) ||
	    sscanf(p + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu", &ppid,
		   &ut, &st, &cut, &cst) != 5)
		return 0;
	return (double)(ut + st + (reaped ? cut + cst : 0)) / (double)sysconf(_SC_CLK_TCK);
}

static double server_cpu(void)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	double sum;

	if (!postmaster_pid || !d) {
		if (d)
			closedir(d);
		return 0;
	}
	sum = proc_cpu(postmaster_pid, true);
	while ((de = readdir(d))) {
		char path[64], buf[512], *p;
		int pid = atoi(de->d_name), ppid = 0;
		FILE *f;
		size_t n;

		if (pid <= 0)
			continue;
		snprintf(path, sizeof path, "/proc/%d/stat", pid);
		if (!(f = fopen(path, "r")))
			continue;
		n = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[n] = '\0';
		if ((p = strrchr(buf, ')')) && sscanf(p + 2, "%*c %d", &ppid) == 1 &&
		    ppid == postmaster_pid)
			sum += proc_cpu(pid, false);
	}
	closedir(d);
	return sum;
}

static void find_postmaster(const char *dsn)
{
	PGconn *c = PQconnectdb(dsn);
	PGresult *r = PQexec(c, "SELECT pg_backend_pid()");
	char path[64], buf[512], *p;
	FILE *f;
	size_t n;

	if (PQresultStatus(r) == PGRES_TUPLES_OK) {
		snprintf(path, sizeof path, "/proc/%s/stat", PQgetvalue(r, 0, 0));
		if ((f = fopen(path, "r"))) {
			n = fread(buf, 1, sizeof buf - 1, f);
			fclose(f);
			buf[n] = '\0';
			if ((p = strrchr(buf, ')')))
				sscanf(p + 2, "%*c %d", &postmaster_pid);
		}
	}
	PQclear(r);
	PQfinish(c);
}

static double catch_up(const char *store, const char *dsn, bool builtin, bool state,
		       const char *rules, int batch)
{
	evp_config cfg;
	evp_stats st;
	char err[2048];
	int64_t t0;
	struct rusage ru0, ru1;
	double secs, srv0;

	migrate(dsn);
	evp_config_init(&cfg);
	cfg.store_path = store;
	cfg.dsn = dsn;
	cfg.builtin = builtin;
	cfg.builtin_state = state;
	cfg.rules_path = rules;
	cfg.batch_max = batch;
	cfg.once = true;
	if (getenv("EVS_BENCH_BULK_THRESHOLD")) /* 0: no bulk mode, to compare */
		cfg.bulk_threshold = strtoull(getenv("EVS_BENCH_BULK_THRESHOLD"), NULL, 10);
	cfg.log_level = EVS_LOG_WARNING;
	cfg.log = log_stderr;
	if (getenv("EVS_BENCH_DEBUG"))
		cfg.log_level = EVS_LOG_DEBUG; /* one line per batch, with timings */
	getrusage(RUSAGE_SELF, &ru0);
	if (!postmaster_pid)
		find_postmaster(dsn);
	srv0 = server_cpu();
	t0 = now_ns(CLOCK_MONOTONIC);
	if (getenv("EVS_BENCH_DEBUG"))
		fprintf(stderr, "%.3f start\n", (double)t0 / 1e9);
	if (evp_run(&cfg, &st, err, sizeof err) != EVP_OK)
		die("evp_run", err);
	secs = (double)(now_ns(CLOCK_MONOTONIC) - t0) / 1e9;
	getrusage(RUSAGE_SELF, &ru1);
	/* where the time goes: the projector's own CPU vs the wall clock */
	printf("   (projector CPU %.2f s, server CPU %.2f s, of %.2f s wall)\n",
	       (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec -
			ru0.ru_stime.tv_sec) +
		       (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec -
				ru0.ru_stime.tv_usec) /
			       1e6,
	       server_cpu() - srv0, secs);
	return secs;
}

/* --- the ceiling: binary COPY --------------------------------------- */

static void put_i16(evs__buf *b, int v)
{
	unsigned char x[2] = {(unsigned char)(v >> 8), (unsigned char)v};

	evs__buf_putn(b, x, 2);
}

static void put_i32(evs__buf *b, int32_t v)
{
	unsigned char x[4] = {(unsigned char)((uint32_t)v >> 24),
			      (unsigned char)((uint32_t)v >> 16), (unsigned char)((uint32_t)v >> 8),
			      (unsigned char)v};

	evs__buf_putn(b, x, 4);
}

static void put_i64(evs__buf *b, int64_t v)
{
	put_i32(b, (int32_t)(uint32_t)((uint64_t)v >> 32));
	put_i32(b, (int32_t)(uint32_t)(uint64_t)v);
}

static void field_i64(evs__buf *b, int64_t v)
{
	put_i32(b, 8);
	put_i64(b, v);
}

static void field_bytes(evs__buf *b, const void *p, size_t n)
{
	put_i32(b, (int32_t)n);
	evs__buf_putn(b, p, n);
}

static void field_ts(evs__buf *b, int64_t ns)
{
	/* microseconds since 2000-01-01 */
	field_i64(b, ns / 1000 - 946684800000000LL);
}

static void field_uuid(evs__buf *b, const uint8_t id[16])
{
	if (evp_uuid_is_nil(id))
		put_i32(b, -1);
	else
		field_bytes(b, id, 16);
}

static void field_jsonb(evs__buf *b, const void *mp, size_t n, evs__buf *tmp)
{
	tmp->len = 0;
	evs__buf_putc(tmp, 1); /* jsonb binary format version */
	if (evs__msgpack_to_json(tmp, mp, n, 0) < 0)
		die("json", "malformed payload");
	field_bytes(b, tmp->ptr, tmp->len);
}

static double ceiling(evs_store *s, const char *dsn, uint64_t events)
{
	static const char hdr[] = "PGCOPY\n\377\r\n";
	PGconn *c = PQconnectdb(dsn);
	evs__buf b = {0}, tmp = {0};
	evs_iter *it;
	evs_event ev;
	uint64_t pos = 1;
	double secs = 0, srv0;

	if (PQstatus(c) != CONNECTION_OK)
		die("connect", PQerrorMessage(c));
	find_postmaster(dsn);
	srv0 = server_cpu();
	PQclear(PQexec(c, "CREATE TABLE ceiling (position bigint, stream text, version bigint,"
			  " type text, type_version bigint, recorded_at timestamptz,"
			  " recorded_at_ns bigint, occurred_at timestamptz, event_id uuid,"
			  " correlation_id uuid, causation_id uuid, metadata jsonb, data jsonb)"));
	while (pos <= events) {
		int64_t t0;
		PGresult *r;
		size_t n = 0;

		b.len = 0;
		evs__buf_putn(&b, hdr, 11);
		put_i32(&b, 0);
		put_i32(&b, 0);
		if (evs_read_all(s, pos, EVS_FORWARD, NULL, 50000, &it) != EVS_OK)
			die("read", evs_errmsg(s));
		while (evs_iter_next(it, &ev) == EVS_OK) {
			put_i16(&b, 13);
			field_i64(&b, (int64_t)ev.position);
			field_bytes(&b, ev.stream.ptr, ev.stream.len);
			field_i64(&b, (int64_t)ev.version);
			field_bytes(&b, ev.type.ptr, ev.type.len);
			field_i64(&b, (int64_t)ev.type_version);
			field_ts(&b, ev.recorded_at);
			field_i64(&b, ev.recorded_at);
			if (ev.occurred_at)
				field_ts(&b, ev.occurred_at);
			else
				put_i32(&b, -1);
			field_bytes(&b, ev.id, 16);
			field_uuid(&b, ev.correlation_id);
			field_uuid(&b, ev.causation_id);
			field_jsonb(&b, ev.metadata, ev.metadata_len, &tmp);
			field_jsonb(&b, ev.data, ev.data_len, &tmp);
			n++;
		}
		evs_iter_free(it);
		put_i16(&b, -1);
		if (b.oom)
			die("ceiling", "out of memory");
		t0 = now_ns(CLOCK_MONOTONIC);
		PQclear(PQexec(c, "BEGIN"));
		r = PQexec(c, "COPY ceiling FROM STDIN (FORMAT binary)");
		if (PQresultStatus(r) != PGRES_COPY_IN)
			die("copy", PQresultErrorMessage(r));
		PQclear(r);
		if (PQputCopyData(c, b.ptr, (int)b.len) != 1 || PQputCopyEnd(c, NULL) != 1)
			die("copy", PQerrorMessage(c));
		r = PQgetResult(c);
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			die("copy", PQresultErrorMessage(r));
		PQclear(r);
		while ((r = PQgetResult(c)))
			PQclear(r);
		PQclear(PQexec(c, "COMMIT"));
		secs += (double)(now_ns(CLOCK_MONOTONIC) - t0) / 1e9;
		pos += n;
	}
	evs__buf_free(&b);
	evs__buf_free(&tmp);
	PQfinish(c);
	printf("   (server CPU %.2f s)\n", server_cpu() - srv0);
	return secs;
}

/* --- live lag -------------------------------------------------------- */

struct live {
	evs_store *store;
	atomic_int connected; /* the live projector reported its first progress */
	uint64_t base;        /* head before the run */
	int64_t *started;     /* [i]: realtime ns before appending base+1+i */
	int64_t *lag;         /* [i]: ns */
	size_t n;
	int rate;
	atomic_size_t appended;
	volatile sig_atomic_t stop;
};

static void on_commit(void *ctx, uint64_t first, uint64_t last)
{
	struct live *l = ctx;
	int64_t t = now_ns(CLOCK_REALTIME);
	uint64_t p;

	for (p = first; p <= last; p++)
		if (p > l->base && p - l->base - 1 < l->n)
			l->lag[p - l->base - 1] = t - l->started[p - l->base - 1];
}

static void on_progress(void *ctx, const evp_stats *st)
{
	struct live *l = ctx;

	(void)st;
	atomic_store(&l->connected, 1);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* p50 / p99 / max of each second of the run (events by append time):
 * where in the run the lag is; into out (printed after the totals). From
 * l->lag as the window left it: before 2026-12-07 (session 4) this ran
 * after kit_percentile had sorted l->lag, so each "second" was a fifth of
 * the sorted lags, a smooth climb whatever the run did. */
static void per_second(const struct live *l, char out[1024])
{
	size_t per = (size_t)l->rate, i, j, len;
	int64_t *v = malloc(per * sizeof *v);

	out[0] = '\0';
	if (!v)
		return;
	snprintf(out, 1024, "   per second (p50 / p99 / max ms):");
	for (i = 0; i < l->n; i += per) {
		size_t n = i + per <= l->n ? per : l->n - i;

		for (j = 0; j < n; j++)
			v[j] = l->lag[i + j];
		qsort(v, n, sizeof *v, cmp_i64);
		len = strlen(out);
		snprintf(out + len, 1024 - len, " %.0f/%.0f/%.0f", (double)v[n / 2] / 1e6,
			 (double)v[n * 99 / 100] / 1e6, (double)v[n - 1] / 1e6);
	}
	len = strlen(out);
	snprintf(out + len, 1024 - len, "\n");
	free(v);
}

/* What else the server ran during the window, and what the projector's
 * backend waited on, by a poll every 25 ms of pg_stat_activity: the
 * autovacuum workers seen (table and seconds seen); the projector's
 * session while a statement runs, by wait event ("CPU": running or
 * runnable, no wait event; "IO:DataFileExtend": extending a table's file,
 * ...); samples with the checkpointer writing; the checkpoints that
 * started; and the most the kernel held as dirty page cache (Dirty in
 * /proc/meminfo: the writes of a catch-up on a cluster with fsync=off
 * are flushed by the kernel later, while the live window runs). Each
 * sample is 25 ms, so "IO:DataFileExtend 4" is about 100 ms spent
 * extending files. The 2026-12-08 diagnosis of the spikes after a
 * catch-up (BENCHMARKS.md, "Issue 10, live lag after a catch-up") read
 * these from the server's log and a sampler; now every run prints them. */
struct watch {
	const char *dsn;
	volatile sig_atomic_t stop;
	char seen[4096];  /* autovacuum */
	char waits[1024]; /* the projector's backend, the checkpointer, the kernel */
};

struct tally {
	char names[64][128];
	int counts[64], n;
};

static void tally_add(struct tally *t, const char *name)
{
	int k;

	for (k = 0; k < t->n && strcmp(t->names[k], name) != 0; k++)
		;
	if (k == t->n && t->n < 64) {
		snprintf(t->names[t->n], sizeof *t->names, "%s", name);
		t->counts[t->n++] = 0;
	}
	if (k < t->n)
		t->counts[k]++;
}

static long dirty_kb(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	long kb = -1;

	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "Dirty: %ld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

static long checkpoints(PGconn *c)
{
	PGresult *r = PQexec(c, "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter");
	long n = PQresultStatus(r) == PGRES_TUPLES_OK ? atol(PQgetvalue(r, 0, 0)) : -1;

	PQclear(r);
	return n;
}

static void *watcher(void *arg)
{
	struct watch *w = arg;
	PGconn *c = PQconnectdb(w->dsn);
	struct tally av = {0}, wt = {0};
	long ck0 = checkpoints(c), dirty_max = -1, d;
	int i, k, samples = 0, ckw = 0;
	size_t l;

	while (!w->stop && PQstatus(c) == CONNECTION_OK) {
		PGresult *r = PQexec(
			c,
			"SELECT backend_type, CASE WHEN backend_type = 'client backend' THEN"
			" coalesce(wait_event_type || ':' || wait_event, 'CPU') ELSE"
			" CASE WHEN backend_type = 'autovacuum worker' THEN query ELSE"
			" coalesce(wait_event, '') END END FROM pg_stat_activity WHERE pid <>"
			" pg_backend_pid() AND ((backend_type = 'autovacuum worker' AND query <> '')"
			" OR backend_type = 'checkpointer' OR (backend_type = 'client backend' AND"
			" datname = current_database() AND state = 'active'))");
		struct timespec ts = {0, 25000000};

		samples++;
		for (i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r); i++) {
			const char *type = PQgetvalue(r, i, 0), *what = PQgetvalue(r, i, 1);

			if (strcmp(type, "autovacuum worker") == 0)
				tally_add(&av, what);
			else if (strcmp(type, "checkpointer") == 0)
				ckw += strcmp(what, "CheckpointWriteDelay") == 0 ||
				       strcmp(what, "DataFileWrite") == 0;
			else
				tally_add(&wt, what);
		}
		PQclear(r);
		if ((d = dirty_kb()) > dirty_max)
			dirty_max = d;
		nanosleep(&ts, NULL);
	}
	w->seen[0] = '\0';
	for (k = 0; k < av.n; k++) {
		l = strlen(w->seen);
		snprintf(w->seen + l, sizeof w->seen - l, "%s%s (%.1f s)", k ? ", " : "",
			 av.names[k], av.counts[k] / 40.0);
	}
	snprintf(w->waits, sizeof w->waits,
		 "%d samples of 25 ms; checkpointer writing in %d, checkpoints started %ld;"
		 " dirty page cache up to %ld MB; projector's statements:",
		 samples, ckw, checkpoints(c) - ck0, dirty_max / 1024);
	for (k = 0; k < wt.n; k++) {
		l = strlen(w->waits);
		snprintf(w->waits + l, sizeof w->waits - l, " %s %d", wt.names[k], wt.counts[k]);
	}
	PQfinish(c);
	return NULL;
}

static void *appender(void *arg)
{
	struct live *l = arg;
	int64_t t0 = now_ns(CLOCK_MONOTONIC), period = 1000000000LL / l->rate;
	size_t i;

	for (i = 0; i < l->n; i++) {
		int64_t due = t0 + (int64_t)i * period, now;
		char data[32], stream[32];
		msgpack_sbuffer sb;
		msgpack_packer pk;
		evs_event_in in = {0};

		while ((now = now_ns(CLOCK_MONOTONIC)) < due) {
			struct timespec ts = {0, (long)(due - now)};

			nanosleep(&ts, NULL);
		}
		snprintf(stream, sizeof stream, "account-%zu", i % 100);
		(void)data;
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		msgpack_pack_map(&pk, 1);
		msgpack_pack_str(&pk, 6);
		msgpack_pack_str_body(&pk, "amount", 6);
		msgpack_pack_uint64(&pk, 1 + i % 1000);
		in.type = "MoneyDeposited";
		in.data = sb.data;
		in.data_len = sb.size;
		l->started[i] = now_ns(CLOCK_REALTIME);
		if (evs_append(l->store, stream, EVS_ANY, &in, 1, NULL) != EVS_OK)
			die("append", evs_errmsg(l->store));
		msgpack_sbuffer_destroy(&sb);
		atomic_store(&l->appended, i + 1);
	}
	return NULL;
}

struct runner {
	evp_config cfg;
	char err[2048];
	int rc;
};

static void *run_projector(void *arg)
{
	struct runner *r = arg;

	r->rc = evp_run(&r->cfg, NULL, r->err, sizeof r->err);
	return NULL;
}

/* One window of --seconds at --rate with a live projector (started
 * before the clock), after whatever ran before it. */
static void live_window(const char *dir, const char *dsn, evs_store *s, const char *rules, int rate,
			int seconds, const char *when)
{
	struct live l;
	int64_t p50, p99;
	char buf[1024];
	struct runner r;
	struct watch w;
	pthread_t ta, tp, tw;
	evs_store_info h;
	size_t i;
	int64_t t0;

	memset(&l, 0, sizeof l);
	memset(&r, 0, sizeof r);
	memset(&w, 0, sizeof w);
	w.dsn = dsn;
	if (evs_head(s, &h) != EVS_OK)
		die("head", evs_errmsg(s));
	l.store = s;
	l.base = h.last_position;
	l.rate = rate;
	l.n = (size_t)rate * (size_t)seconds;
	l.started = calloc(l.n, sizeof *l.started);
	l.lag = calloc(l.n, sizeof *l.lag);
	if (!l.started || !l.lag)
		die("live", "out of memory");
	for (i = 0; i < l.n; i++)
		l.lag[i] = -1;
	evp_config_init(&r.cfg);
	r.cfg.store_path = dir;
	r.cfg.dsn = dsn;
	r.cfg.rules_path = rules;
	r.cfg.log_level = EVS_LOG_WARNING;
	r.cfg.log = log_stderr;
	if (getenv("EVS_BENCH_DEBUG"))
		r.cfg.log_level = EVS_LOG_DEBUG; /* one line per batch, with timings */
	if (getenv("EVS_BENCH_BATCH_WAIT_MS"))   /* to compare with another --batch-wait-ms */
		r.cfg.batch_wait_ms = atoi(getenv("EVS_BENCH_BATCH_WAIT_MS"));
	r.cfg.stop = &l.stop;
	r.cfg.on_commit = on_commit;
	r.cfg.commit_ctx = &l;
	/* the live projector starts (connects, prepares, plans) before the
	 * clock: appends begin once it reported its first progress */
	r.cfg.on_progress = on_progress;
	r.cfg.progress_ctx = &l;
	pthread_create(&tp, NULL, run_projector, &r);
	t0 = now_ns(CLOCK_MONOTONIC);
	while (!atomic_load(&l.connected) && r.rc == 0 &&
	       now_ns(CLOCK_MONOTONIC) - t0 < 120000000000LL) {
		struct timespec ts = {0, 1000000};

		nanosleep(&ts, NULL);
	}
	pthread_create(&tw, NULL, watcher, &w);
	pthread_create(&ta, NULL, appender, &l);
	pthread_join(ta, NULL);
	t0 = now_ns(CLOCK_MONOTONIC);
	while (l.lag[l.n - 1] < 0 && now_ns(CLOCK_MONOTONIC) - t0 < 60000000000LL) {
		struct timespec ts = {0, 10000000};

		nanosleep(&ts, NULL);
	}
	l.stop = 1;
	w.stop = 1;
	pthread_join(tp, NULL);
	pthread_join(tw, NULL);
	if (r.rc != EVP_STOPPED)
		die("live projector", r.err);
	for (i = 0; i < l.n; i++)
		if (l.lag[i] < 0)
			die("live", "an event was never projected");
	per_second(&l, buf); /* before kit_percentile sorts l.lag in place */
	p50 = kit_percentile(l.lag, l.n, 50);
	p99 = kit_percentile(l.lag, l.n, 99);
	printf("live lag at %d events/s for %d s (%zu events, all built-in models%s), %s:"
	       " p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
	       rate, seconds, l.n, r.cfg.rules_path ? " and bank with history" : "", when,
	       (double)p50 / 1e6, (double)p99 / 1e6, (double)kit_percentile(l.lag, l.n, 100) / 1e6);
	printf("%s", buf);
	printf("   autovacuum during the window: %s\n", w.seen[0] ? w.seen : "none");
	printf("   server during the window: %s\n", w.waits);
	printf("verdict: live p99 < 50 ms %s: %s\n", when, p99 < 50000000 ? "yes" : "NO");
	fflush(stdout);
	free(l.started);
	free(l.lag);
}

/* Seconds until no autovacuum worker has run for a second (at most
 * limit). */
static double autovacuum_idle(const char *dsn, int limit)
{
	PGconn *c = PQconnectdb(dsn);
	int64_t t0 = now_ns(CLOCK_MONOTONIC);
	int quiet = 0;

	while (PQstatus(c) == CONNECTION_OK && quiet < 10 &&
	       now_ns(CLOCK_MONOTONIC) - t0 < (int64_t)limit * 1000000000) {
		PGresult *r = PQexec(c, "SELECT count(*) FROM pg_stat_activity WHERE backend_type ="
					" 'autovacuum worker' AND query <> ''");
		struct timespec ts = {0, 100000000};

		quiet = PQresultStatus(r) == PGRES_TUPLES_OK && atoi(PQgetvalue(r, 0, 0)) == 0
				? quiet + 1
				: 0;
		PQclear(r);
		nanosleep(&ts, NULL);
	}
	PQfinish(c);
	return (double)(now_ns(CLOCK_MONOTONIC) - t0) / 1e9;
}

/* Catch up the whole store (bulk mode), then two windows: right after
 * the catch-up (autovacuum of the loaded tables runs beside it, as on a
 * real server) and once autovacuum is idle. */
static void live_lag(const char *dir, const char *dsn, evs_store *s, const char *rules, int rate,
		     int seconds)
{
	evp_config once;
	evs_store_info h;
	char err[2048], when[128];
	int64_t t0;

	if (getenv("EVS_BENCH_LIVE_NO_RULES")) /* to compare */
		rules = NULL;
	if (evs_head(s, &h) != EVS_OK)
		die("head", evs_errmsg(s));
	migrate(dsn);
	evp_config_init(&once);
	once.store_path = dir;
	once.dsn = dsn;
	once.rules_path = rules;
	once.log_level = EVS_LOG_WARNING;
	once.once = true;
	t0 = now_ns(CLOCK_MONOTONIC);
	if (evp_run(&once, NULL, err, sizeof err) != EVP_OK)
		die("evp_run", err);
	printf("   (live: caught up %llu events in %.1f s)\n", (unsigned long long)h.last_position,
	       (double)(now_ns(CLOCK_MONOTONIC) - t0) / 1e9);
	snprintf(when, sizeof when, "right after catching up %llu events",
		 (unsigned long long)h.last_position);
	live_window(dir, dsn, s, rules, rate, seconds, when);
	printf("   (autovacuum idle after %.1f s more)\n", autovacuum_idle(dsn, 300));
	live_window(dir, dsn, s, rules, rate, seconds, "once autovacuum is idle");
}

/* The bank projection with every table current-only, next to the store. */
static char *current_only(const char *dir, const char *rules)
{
	FILE *in = fopen(rules, "r"), *out;
	char line[1024], *path;

	if (!in || asprintf(&path, "%s.current.projection", dir) < 0 || !(out = fopen(path, "w")))
		die("projection", "could not copy the bank projection");
	while (fgets(line, sizeof line, in))
		fputs(strcmp(line, "current ledger\n") == 0 ? "current ledger accounts\n" : line,
		      out);
	fclose(in);
	if (fclose(out) != 0)
		die("projection", "could not write the copy");
	return path;
}

static int events = 1000000, rate = 5000, seconds = 10, batch = 10000;

/* The bench's store (seeded: the same every run), in dir. With
 * EVS_BENCH_STORE_CACHE=DIR, a copy of DIR/bank-<events> when there is
 * one, else built and copied there for the next runs (building 1M
 * events takes minutes on a loaded machine). */
static evs_store *open_store(const char *dir)
{
	const char *cache = getenv("EVS_BENCH_STORE_CACHE");
	char tpl[512], cmd[4096];
	uint64_t rng = 42;
	evs_store *s;

	snprintf(tpl, sizeof tpl, "%s/bank-%d", cache ? cache : "", events);
	if (cache && access(tpl, F_OK) == 0) {
		snprintf(cmd, sizeof cmd, "cp -a '%s/.' '%s/'", tpl, dir);
		if (system(cmd) != 0)
			die("store cache", cmd);
		printf("copied the store of %d bank events from %s\n", events, tpl);
		fflush(stdout);
		return model_open(dir);
	}
	s = model_open(dir);
	printf("building a store of %d bank events...\n", events);
	fflush(stdout);
	model_generate_bank(s, &rng, events - 100, 100);
	if (cache) {
		evs_close(s);
		snprintf(cmd, sizeof cmd,
			 "mkdir -p '%s.tmp' && cp -a '%s/.' '%s.tmp/' && mv '%s.tmp' '%s'", tpl,
			 dir, tpl, tpl, tpl);
		if (system(cmd) != 0)
			die("store cache", cmd);
		s = model_open(dir);
	}
	return s;
}

/* Runs inside a Check runner (no fork) because the shared helpers use
 * ck_assert. */
START_TEST(bench)
{
	char *dir, *dsn, rules[512], *current = NULL;
	evs_store *s;
	double c, a = 0, b = 0, p, p0;
	bool only_c = getenv("EVS_BENCH_ONLY_C") != NULL;

	snprintf(rules, sizeof rules, "%s/examples/bank/bank.projection", pgh_source_dir());
	dir = kit_tmpdir("bench");
	s = open_store(dir);

	c = ceiling(s, (dsn = pgh_new_db()), (uint64_t)events);
	free(dsn);
	printf("ceiling: binary COPY into an unindexed table: %.0f events/s (%.2f s)\n", events / c,
	       c);
	fflush(stdout);
	current = current_only(dir, rules);
	if (getenv("EVS_BENCH_ONLY_LIVE")) { /* the live figure alone, after the same catch-up */
		live_lag(dir, (dsn = pgh_new_db()), s, rules, rate, seconds);
		free(dsn);
		goto out;
	}
	if (only_c)
		goto declared;
	a = catch_up(dir, (dsn = pgh_new_db()), true, false, NULL, batch);
	free(dsn);
	printf("a  event log:              %9.0f events/s  %.2f of the ceiling (%.2f s)\n",
	       events / a, c / a, a);
	fflush(stdout);
	if (getenv("EVS_BENCH_ONLY_A")) { /* profiling the event log alone */
		evs_close(s);
		kit_rmrf(dir);
		free(dir);
		return;
	}
	b = catch_up(dir, (dsn = pgh_new_db()), true, true, NULL, batch);
	free(dsn);
	printf("b  all built-in models:    %9.0f events/s  %.2f of the ceiling (%.2f s)\n",
	       events / b, c / b, b);
	fflush(stdout);
	if (getenv("EVS_BENCH_ONLY_AB")) { /* profiling the built-in models */
		evs_close(s);
		kit_rmrf(dir);
		free(dir);
		return;
	}
declared:
	p = catch_up(dir, (dsn = pgh_new_db()), false, false, rules, batch);
	free(dsn);
	printf("c  bank with history:      %9.0f events/s  %.2f of the ceiling (%.2f s)\n",
	       events / p, c / p, p);
	fflush(stdout);
	p0 = catch_up(dir, (dsn = pgh_new_db()), false, false, current, batch);
	free(dsn);
	printf("c0 bank without history:   %9.0f events/s  %.2f of the ceiling (%.2f s)\n",
	       events / p0, c / p0, p0);
	if (!only_c)
		printf("verdict: event log >= 40%% of the ceiling: %s; all built-in >= 20%%: %s\n",
		       c / a >= 0.40 ? "yes" : "NO", c / b >= 0.20 ? "yes" : "NO");
	printf("verdict: bank with history >= 25%% of the ceiling: %s (goal 50%%: %s)\n",
	       c / p >= 0.25 ? "yes" : "NO", c / p >= 0.5 ? "yes" : "no");
	fflush(stdout);
	if (!only_c) {
		live_lag(dir, (dsn = pgh_new_db()), s, rules, rate, seconds);
		free(dsn);
	}
out:
	unlink(current);
	free(current);
	evs_close(s);
	kit_rmrf(dir);
	free(dir);
}
END_TEST

int main(int argc, char **argv)
{
	Suite *su;
	TCase *tc;
	SRunner *sr;
	int i, failed;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick")) {
			events = 20000;
			seconds = 2;
		} else if (!strcmp(argv[i], "--events") && i + 1 < argc) {
			events = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--rate") && i + 1 < argc) {
			rate = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
			seconds = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--batch") && i + 1 < argc) {
			batch = atoi(argv[++i]);
		} else {
			fprintf(stderr,
				"usage: bench_projector [--events N] [--rate R] [--seconds S]"
				" [--batch N] [--quick]\n");
			return 2;
		}
	}
	if (events < 1000 || rate < 1 || seconds < 1 || batch < 1) {
		fprintf(stderr, "bench_projector: bad argument\n");
		return 2;
	}
	pgh_start();
	su = suite_create("bench");
	tc = tcase_create("bench");
	tcase_set_timeout(tc, 3600);
	tcase_add_test(tc, bench);
	suite_add_tcase(su, tc);
	sr = srunner_create(su);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	pgh_stop();
	return failed ? 1 : 0;
}
