/*
 * bench_store.c - throughput and latency of libevstore, each figure beside
 * a raw-LMDB ceiling measured in the same run with the same record sizes.
 *
 * This is a benchmark, not a test: it asserts nothing about speed. It exits
 * non-zero only when a call fails (or the replay does not see every event).
 * The verdict block at the end says whether each floor of issues 2 and 15
 * holds.
 *
 * Figures (issue 2, item 6):
 *
 *   1  batched durable appends: 100 events of ~200 B data per evs_append,
 *      one thread, EVS_SYNC_FULL; ceiling: raw LMDB, 100 mdb_put
 *      (MDB_APPEND) of records as large as the store's event records per
 *      synced write transaction (default env flags, so durable).
 *   2  one event per durable call, one thread; ceiling: raw LMDB, one record
 *      per synced transaction.
 *   3  one event per durable call from 16 and 64 threads, each thread to its
 *      own stream (EVS_ANY), as a multiple of figure 2; ceiling: raw LMDB
 *      with N records per synced transaction, i.e. a perfect group commit
 *      of N appenders. Reference: plain LMDB with N threads, one record per
 *      transaction each (LMDB serialises writers; no group commit).
 *   4  full replay of an N-event store (built with EVS_SYNC_NONE, 100 events
 *      per call: setup, not a figure): evs_read_all over everything,
 *      touching each event's fields; ceiling: an MDB_NEXT cursor scan of the
 *      same store's "events" sub-database touching key and value.
 *   5  as-of lookups on that store: evs_position_at and
 *      evs_stream_version_at at random times in [first, last recorded_at],
 *      p50/p99 of per-call clock_gettime latency; ceiling: one read
 *      transaction + mdb_get of a random key of "events" + abort.
 *
 * Method: a figure is the median of --rounds rounds. In the durable
 * figures (1-3) each round gives every side --seconds, cut into SLICES
 * slices that alternate store and ceiling (ABAB, then BABA), so a burst of
 * slowness of the shared disk hits both sides alike; ratios and multiples
 * are medians of the per-round ratios. Replay rounds alternate whole
 * (CPU-bound, no disk). Beside each durable figure the bench prints the
 * events per LMDB commit (the store gives each commit its own recorded_at,
 * read back after the timed part) and the bytes the process passed to
 * write calls per commit (/proc/self/io wchar): LMDB pwrite()s every dirty
 * page, so that is the commit's write set.
 *
 * The record size of the ceilings is not assumed: a calibration store is
 * written first and its sub-databases measured with raw LMDB. A store and
 * a raw environment on the same files are never open at once in this
 * process (LMDB forbids it: closing one drops the other's locks).
 *
 * Everything lives in a fresh mkdtemp directory under --dir, $TMPDIR or
 * /tmp, removed at the end (--keep leaves it).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <lmdb.h>
#include <msgpack.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "evstore.h"
#include "kit.h"

#define DATA_SIZE     200  /* bytes of each event's data map */
#define BATCH         100  /* events per call in figure 1 */
#define BUILD_BATCH   100  /* events per call building the replay store */
#define BUILD_STREAMS 1000 /* streams of the replay store */
#define CALIB_EVENTS  1000
#define SLICES        4 /* a round alternates store and ceiling in slices */
#define RAW_MAP       ((size_t)16 << 30)
#define MAX_KEY       511
#define TMPFS_MAGIC_  0x01021994

struct config {
	bool quick;
	bool keep;
	uint64_t events;
	double seconds;
	int rounds;
	size_t lookups;
	uint64_t seed;
	const char *dir;
	unsigned blocks; /* --blocks: BLOCK_* bits, all by default */
};

/* --blocks: run only some figures (the verdict needs them all) */
enum { BLOCK_DURABLE = 1, BLOCK_DCB = 2, BLOCK_REPLAY = 4, BLOCK_TYPE = 8, BLOCK_ALL = 15 };

static const char *root; /* the scratch directory (kit_bench_root) */

/* ---- small helpers ------------------------------------------------------ */

static void check_evs(int rc, const evs_store *s, const char *what)
{
	if (rc != EVS_OK)
		kit_die("%s: %s (%s)", what, evs_errmsg(s), evs_code_name(rc));
}

static void check_mdb(int rc, const char *what)
{
	if (rc != MDB_SUCCESS)
		kit_die("%s: %s", what, mdb_strerror(rc));
}

static double secs_since(int64_t t0)
{
	return (double)(kit_mono_ns() - t0) / 1e9;
}

static void sleep_secs(double s)
{
	struct timespec ts;

	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static uint64_t rng_state;

/* The 1/5/15-minute load averages: other work on the machine skews figures. */
/* ---- the event shape ---------------------------------------------------- */

struct shape {
	msgpack_sbuffer data; /* a msgpack map of exactly DATA_SIZE bytes */
	evs_event_in event;   /* id zero: the store generates one */
	evs_event_in batch[BATCH];
	size_t key_len; /* of the store's "events" records (measured) */
	size_t val_len;
	double bytes_per_event; /* over all sub-databases (measured) */
};

static void shape_init(struct shape *sh)
{
	static char pad[256];

	memset(pad, 'x', sizeof pad);
	msgpack_sbuffer_init(&sh->data);
	for (size_t padlen = 0; padlen < sizeof pad; padlen++) {
		msgpack_packer pk;

		msgpack_sbuffer_clear(&sh->data);
		msgpack_packer_init(&pk, &sh->data, msgpack_sbuffer_write);
		msgpack_pack_map(&pk, 4);
		msgpack_pack_str_with_body(&pk, "account", 7);
		msgpack_pack_str_with_body(&pk, "acct-000042", 11);
		msgpack_pack_str_with_body(&pk, "amount", 6);
		msgpack_pack_int64(&pk, 1234567);
		msgpack_pack_str_with_body(&pk, "currency", 8);
		msgpack_pack_str_with_body(&pk, "EUR", 3);
		msgpack_pack_str_with_body(&pk, "memo", 4);
		msgpack_pack_str_with_body(&pk, pad, padlen);
		if (sh->data.size == DATA_SIZE)
			break;
	}
	if (sh->data.size != DATA_SIZE)
		kit_die("could not build a %d-byte data map", DATA_SIZE);
	memset(&sh->event, 0, sizeof sh->event);
	sh->event.type = "MoneyDeposited";
	sh->event.type_version = 1;
	sh->event.data = sh->data.data;
	sh->event.data_len = sh->data.size;
	for (int i = 0; i < BATCH; i++)
		sh->batch[i] = sh->event;
}

/* ---- raw LMDB ----------------------------------------------------------- */

struct raw {
	MDB_env *env;
	MDB_dbi dbi;
	uint64_t last; /* last key written, as a counter */
	size_t key_len, val_len;
	unsigned char *val;
};

static MDB_env *raw_env_open(const char *path, unsigned flags, size_t map)
{
	MDB_env *env;

	check_mdb(mdb_env_create(&env), "mdb_env_create");
	check_mdb(mdb_env_set_maxdbs(env, 64), "mdb_env_set_maxdbs");
	check_mdb(mdb_env_set_maxreaders(env, 256), "mdb_env_set_maxreaders");
	if (map)
		check_mdb(mdb_env_set_mapsize(env, map), "mdb_env_set_mapsize");
	if (!(flags & MDB_RDONLY) && mkdir(path, 0755) != 0 && errno != EEXIST)
		kit_die("could not create \"%s\": %s", path, strerror(errno));
	check_mdb(mdb_env_open(env, path, flags, 0644), path);
	return env;
}

static MDB_dbi raw_dbi(MDB_env *env, const char *name, unsigned flags)
{
	MDB_txn *txn;
	MDB_dbi dbi;

	check_mdb(mdb_txn_begin(env, NULL, flags & MDB_CREATE ? 0 : MDB_RDONLY, &txn),
		  "mdb_txn_begin");
	check_mdb(mdb_dbi_open(txn, name, flags, &dbi), name);
	check_mdb(mdb_txn_commit(txn), "mdb_txn_commit");
	return dbi;
}

/* A fresh durable environment (default flags) with one "events" DB. */
static void raw_create(struct raw *r, const char *path, const struct shape *sh)
{
	memset(r, 0, sizeof *r);
	r->env = raw_env_open(path, 0, RAW_MAP);
	r->dbi = raw_dbi(r->env, "events", MDB_CREATE);
	r->key_len = sh->key_len;
	r->val_len = sh->val_len;
	r->val = malloc(r->val_len);
	if (r->val == NULL)
		kit_die("out of memory");
	for (size_t i = 0; i < r->val_len; i++)
		r->val[i] = (unsigned char)kit_rand(&rng_state);
}

static void raw_destroy(struct raw *r)
{
	mdb_env_close(r->env);
	free(r->val);
}

/* One write transaction of n records; the caller holds no other txn. */
static int raw_txn(struct raw *r, size_t n)
{
	unsigned char kbuf[MAX_KEY];
	MDB_txn *txn;
	int rc;

	rc = mdb_txn_begin(r->env, NULL, 0, &txn);
	if (rc != MDB_SUCCESS)
		return rc;
	memset(kbuf, 0, r->key_len);
	for (size_t i = 0; i < n; i++) {
		uint64_t k = ++r->last;
		MDB_val key = {r->key_len, kbuf};
		MDB_val val = {r->val_len, r->val};

		for (int b = 0; b < 8; b++)
			kbuf[r->key_len - 1 - (size_t)b] = (unsigned char)(k >> (8 * b));
		rc = mdb_put(txn, r->dbi, &key, &val, MDB_APPEND);
		if (rc != MDB_SUCCESS) {
			mdb_txn_abort(txn);
			return rc;
		}
	}
	return mdb_txn_commit(txn);
}

/* ---- what a timed round measured ---------------------------------------- */

/* A round is made of slices; a sample adds its slices up. */
struct sample {
	uint64_t done;    /* events (or records) acknowledged */
	uint64_t commits; /* LMDB commits that wrote them */
	uint64_t wbytes;  /* bytes this process passed to write calls */
	double elapsed;   /* seconds */
};

static double rate_of(const struct sample *m)
{
	return m->elapsed > 0 ? (double)m->done / m->elapsed : 0;
}

/* Bytes this process (all threads) passed to write calls: LMDB writes its
 * pages with pwrite, so this is what the commits wrote. 0 if unknown. */
static uint64_t wchar_now(void)
{
	char line[128];
	uint64_t v = 0;
	FILE *f = fopen("/proc/self/io", "r");

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, "wchar:", 6) == 0)
			v = strtoull(line + 6, NULL, 10);
	fclose(f);
	return v;
}

static void add_sample(struct sample *m, uint64_t done, uint64_t commits, uint64_t w0, uint64_t w1,
		       double elapsed)
{
	m->done += done;
	m->commits += commits;
	m->wbytes += w0 && w1 >= w0 ? w1 - w0 : 0;
	m->elapsed += elapsed;
}

static double med_of(const struct sample *v, int n, int field)
{
	double x[64];

	for (int i = 0; i < n; i++)
		x[i] = field == 0      ? rate_of(&v[i])
		       : !v[i].commits ? 0
		       : field == 1    ? (double)v[i].done / (double)v[i].commits
				       : (double)v[i].wbytes / 1024.0 / (double)v[i].commits;
	return kit_median(x, (size_t)n);
}

/* Median of the per-round ratios a[i] / b[i] (paired rounds: robust to a
 * disk whose speed drifts during the run). */
static double med_ratio(const struct sample *a, const struct sample *b, int n)
{
	double x[64];

	for (int i = 0; i < n; i++)
		x[i] = rate_of(&a[i]) / rate_of(&b[i]);
	return kit_median(x, (size_t)n);
}

static void print_samples(const char *label, const struct sample *v, int n)
{
	char b[32];

	printf(" %s", label);
	for (int i = 0; i < n; i++)
		printf(" %s", kit_num(rate_of(&v[i]), b));
}

static void print_ratios(const char *label, const struct sample *a, const struct sample *b, int n)
{
	printf(" %s", label);
	for (int i = 0; i < n; i++)
		printf(" %.2f", rate_of(&a[i]) / rate_of(&b[i]));
}

static void print_commits(const char *who, const struct sample *v, int n, const char *unit)
{
	char b[32];

	printf("%s %.1f %s, %.1f KiB written, %s commits/s", who, med_of(v, n, 1), unit,
	       med_of(v, n, 2), kit_num(med_of(v, n, 0) / med_of(v, n, 1), b));
}

/* ---- raw LMDB rounds ----------------------------------------------------- */

/* Synced transactions of n records each, for at least `secs`. */
static void raw_slice(struct raw *r, size_t n, double secs, struct sample *m)
{
	uint64_t w0 = wchar_now(), done = 0, commits = 0;
	int64_t t0 = kit_mono_ns();

	do {
		check_mdb(raw_txn(r, n), "raw LMDB write transaction");
		done += n;
		commits++;
	} while (secs_since(t0) < secs);
	add_sample(m, done, commits, w0, wchar_now(), secs_since(t0));
}

/* ---- store rounds ---------------------------------------------------------- */

static uint64_t store_last(evs_store *s)
{
	evs_store_info h;

	check_evs(evs_head(s, &h), s, "evs_head");
	return h.last_position;
}

/* Commits that wrote positions (from, to]: the store gives every commit
 * its own, strictly increasing recorded_at. Outside the timed part. */
static uint64_t store_commits(evs_store *s, uint64_t from, uint64_t to)
{
	evs_iter *it;
	evs_event ev;
	int64_t last = INT64_MIN;
	uint64_t n = 0, seen = 0;
	int rc;

	if (to <= from)
		return 0;
	check_evs(evs_read_all(s, from + 1, EVS_FORWARD, NULL, to - from, &it), s, "evs_read_all");
	while ((rc = evs_iter_next(it, &ev)) == EVS_OK) {
		seen++;
		if (ev.recorded_at != last) {
			n++;
			last = ev.recorded_at;
		}
	}
	if (rc != EVS_END)
		check_evs(rc, s, "evs_iter_next");
	evs_iter_free(it);
	if (seen != to - from)
		kit_die("read %" PRIu64 " events of positions %" PRIu64 "..%" PRIu64, seen,
			from + 1, to);
	return n;
}

static void store_sample(evs_store *s, struct sample *m, uint64_t p0, uint64_t w0, uint64_t done,
			 double elapsed)
{
	uint64_t w1 = wchar_now(); /* before store_commits reads */
	uint64_t p1 = store_last(s);

	if (p1 - p0 != done)
		kit_die("%" PRIu64 " events acknowledged but the store grew by %" PRIu64, done,
			p1 - p0);
	add_sample(m, done, store_commits(s, p0, p1), w0, w1, elapsed);
}

/* One thread appending batches of n events for at least `secs`. */
static void batch_slice(evs_store *s, const char *stream, const evs_event_in *evs, size_t n,
			double secs, struct sample *m)
{
	evs_append_result res;
	uint64_t p0 = store_last(s), w0 = wchar_now(), done = 0;
	int64_t t0 = kit_mono_ns();

	do {
		check_evs(evs_append(s, stream, EVS_ANY, evs, n, &res), s, "evs_append");
		done += n;
	} while (secs_since(t0) < secs);
	store_sample(s, m, p0, w0, done, secs_since(t0));
}

/* ---- crowds of appending threads ---------------------------------------- */

struct crowd {
	pthread_barrier_t start;
	atomic_int stop;
};

struct worker {
	pthread_t thread;
	struct crowd *crowd;
	evs_store *store;
	struct raw *raw;
	const evs_event_in *event;
	char stream[64];
	uint64_t done;
	int rc;
	char msg[512];
};

static void *store_worker(void *arg)
{
	struct worker *w = arg;
	evs_append_result res;

	pthread_barrier_wait(&w->crowd->start);
	while (!atomic_load_explicit(&w->crowd->stop, memory_order_relaxed)) {
		int rc = evs_append(w->store, w->stream, EVS_ANY, w->event, 1, &res);

		if (rc != EVS_OK) {
			w->rc = rc;
			snprintf(w->msg, sizeof w->msg, "evs_append to \"%s\": %s (%s)", w->stream,
				 evs_errmsg(w->store), evs_code_name(rc));
			atomic_store(&w->crowd->stop, 1);
			break;
		}
		w->done++;
	}
	return NULL;
}

/* Plain LMDB: one record per transaction per thread. The key counter is
 * bumped inside the write transaction, which LMDB serialises already. */
static void *raw_worker(void *arg)
{
	struct worker *w = arg;

	pthread_barrier_wait(&w->crowd->start);
	while (!atomic_load_explicit(&w->crowd->stop, memory_order_relaxed)) {
		int rc = raw_txn(w->raw, 1);

		if (rc != MDB_SUCCESS) {
			w->rc = rc;
			snprintf(w->msg, sizeof w->msg, "raw LMDB write transaction: %s",
				 mdb_strerror(rc));
			atomic_store(&w->crowd->stop, 1);
			break;
		}
		w->done++;
	}
	return NULL;
}

/* n threads appending one event per call (to the store s, or one record
 * per transaction to r) for `secs`. */
static void crowd_slice(evs_store *s, struct raw *r, const evs_event_in *ev, size_t n,
			const char *tag, double secs, struct sample *m)
{
	struct crowd c;
	struct worker *w = calloc(n, sizeof *w);
	uint64_t done = 0, p0 = s ? store_last(s) : 0, w0 = wchar_now();
	int64_t t0;
	double elapsed;

	if (w == NULL)
		kit_die("out of memory");
	pthread_barrier_init(&c.start, NULL, (unsigned)n + 1);
	atomic_init(&c.stop, 0);
	for (size_t i = 0; i < n; i++) {
		w[i].crowd = &c;
		w[i].store = s;
		w[i].raw = r;
		w[i].event = ev;
		snprintf(w[i].stream, sizeof w[i].stream, "%s-%zu", tag, i);
		errno = pthread_create(&w[i].thread, NULL, s ? store_worker : raw_worker, &w[i]);
		if (errno != 0)
			kit_die("pthread_create: %s", strerror(errno));
	}
	pthread_barrier_wait(&c.start);
	t0 = kit_mono_ns();
	sleep_secs(secs);
	atomic_store(&c.stop, 1);
	for (size_t i = 0; i < n; i++)
		pthread_join(w[i].thread, NULL);
	elapsed = secs_since(t0);
	for (size_t i = 0; i < n; i++) {
		if (w[i].rc != 0)
			kit_die("%s", w[i].msg);
		done += w[i].done;
	}
	pthread_barrier_destroy(&c.start);
	free(w);
	if (s)
		store_sample(s, m, p0, w0, done, elapsed);
	else
		add_sample(m, done, done, w0, wchar_now(), elapsed);
}

/* ---- opening stores ----------------------------------------------------- */

static evs_store *store_open(const char *path, int sync)
{
	evs_options o;
	evs_store *s;
	int rc;

	evs_options_init(&o);
	o.sync = sync;
	o.create = 1;
	rc = evs_open(path, &o, &s);
	if (rc != EVS_OK)
		kit_die("evs_open \"%s\": %s (%s)", path, evs_open_errmsg(), evs_code_name(rc));
	return s;
}

/* ---- calibration: what the store writes per event ----------------------- */

static void calibrate(struct shape *sh)
{
	char path[PATH_MAX];
	evs_store *s;
	evs_append_result res;
	MDB_env *env;
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	MDB_dbi main_dbi;
	double total = 0;
	bool found = false;
	int rc;

	kit_bench_path(path, "calibrate");
	s = store_open(path, EVS_SYNC_NONE);
	for (int i = 0; i < CALIB_EVENTS / BATCH; i++)
		check_evs(evs_append(s, "acct-0001", EVS_ANY, sh->batch, BATCH, &res), s,
			  "evs_append (calibration)");
	evs_close(s);

	env = raw_env_open(path, MDB_RDONLY, 0);
	check_mdb(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), "mdb_txn_begin");
	check_mdb(mdb_dbi_open(txn, NULL, 0, &main_dbi), "mdb_dbi_open (main)");
	check_mdb(mdb_cursor_open(txn, main_dbi, &cur), "mdb_cursor_open");
	printf("store layout after %d events of %d B data in one stream (measured with raw LMDB):\n",
	       CALIB_EVENTS, DATA_SIZE);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		char name[256];
		MDB_dbi dbi;
		MDB_cursor *c2;
		MDB_val k2, v2;
		MDB_stat st;
		double kb = 0, vb = 0;
		int rc2;

		if (k.mv_size == 0 || k.mv_size >= sizeof name || memchr(k.mv_data, 0, k.mv_size))
			continue;
		memcpy(name, k.mv_data, k.mv_size);
		name[k.mv_size] = '\0';
		if (mdb_dbi_open(txn, name, 0, &dbi) != MDB_SUCCESS)
			continue; /* a plain key of the main DB */
		check_mdb(mdb_stat(txn, dbi, &st), "mdb_stat");
		check_mdb(mdb_cursor_open(txn, dbi, &c2), "mdb_cursor_open");
		for (rc2 = mdb_cursor_get(c2, &k2, &v2, MDB_FIRST); rc2 == MDB_SUCCESS;
		     rc2 = mdb_cursor_get(c2, &k2, &v2, MDB_NEXT)) {
			kb += (double)k2.mv_size;
			vb += (double)v2.mv_size;
		}
		check_mdb(rc2 == MDB_NOTFOUND ? MDB_SUCCESS : rc2, "cursor scan");
		mdb_cursor_close(c2);
		total += kb + vb;
		printf("  %-10s %7zu entries, key %5.1f B, value %6.1f B, %7.1f B per event\n",
		       name, st.ms_entries, st.ms_entries ? kb / (double)st.ms_entries : 0,
		       st.ms_entries ? vb / (double)st.ms_entries : 0, (kb + vb) / CALIB_EVENTS);
		if (strcmp(name, "events") == 0 && st.ms_entries > 0) {
			found = true;
			sh->key_len = (size_t)(kb / (double)st.ms_entries + 0.5);
			sh->val_len = (size_t)(vb / (double)st.ms_entries + 0.5);
		}
	}
	check_mdb(rc == MDB_NOTFOUND ? MDB_SUCCESS : rc, "cursor scan (main)");
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	mdb_env_close(env);
	kit_rmrf(path);

	if (!found) {
		printf("  warning: no \"events\" sub-database found; ceilings use 8 B keys, 260 B values\n");
		sh->key_len = 8;
		sh->val_len = 260;
	}
	if (sh->key_len < 8)
		sh->key_len = 8;
	if (sh->key_len > MAX_KEY)
		sh->key_len = MAX_KEY;
	sh->bytes_per_event = total / CALIB_EVENTS;
	printf("  ceilings write %zu B keys and %zu B values (one \"events\" record per event);\n"
	       "  the store writes %.0f B of keys and values per event over all its sub-databases\n\n",
	       sh->key_len, sh->val_len, sh->bytes_per_event);
}

/* ---- figures 1 to 3: durable appends ------------------------------------ */

struct results {
	double batch_store, batch_raw, batch_ratio;
	double single_store, single_raw, single_ratio;
	size_t crowd_n[2];
	double crowd_store[2], crowd_raw[2], crowd_multiple[2], crowd_ratio[2];
	double crowd_plain;
	double spread; /* largest max/min of a durable figure's round rates */
	double replay_store, replay_raw, replay_ratio;
	uint64_t replay_events;
	double lat_pos[2], lat_ver[2], lat_raw[2], lat_seek[2]; /* p50, p99 in us */
};

enum { RAW1, STORE1, RAW16, STORE16, RAW64, STORE64, KINDS };

static void durable(const struct config *cf, const struct shape *sh, struct results *out)
{
	char spath[PATH_MAX], rpath[PATH_MAX];
	static struct sample b[2][64], k[KINDS][64];
	struct sample plain, warm;
	char b1[32], b2[32];
	struct raw raw;
	evs_store *s;
	int R = cf->rounds;
	double slice = cf->seconds / SLICES;

	kit_bench_path(spath, "durable-store");
	kit_bench_path(rpath, "durable-raw");
	s = store_open(spath, EVS_SYNC_FULL);
	raw_create(&raw, rpath, sh);

	/* warm up both: first files, first pages */
	memset(b, 0, sizeof b);
	memset(k, 0, sizeof k);
	memset(&warm, 0, sizeof warm);
	memset(&plain, 0, sizeof plain);
	batch_slice(s, "warmup", sh->batch, BATCH, 0.05, &warm);
	raw_slice(&raw, BATCH, 0.05, &warm);

	printf("[1] batched durable appends: %d events x %d B data per evs_append, 1 thread, EVS_SYNC_FULL\n",
	       BATCH, DATA_SIZE);
	for (int i = 0; i < R; i++) {
		for (int j = 0; j < SLICES; j++) {
			if ((i + j) % 2 == 0) {
				raw_slice(&raw, BATCH, slice, &b[1][i]);
				batch_slice(s, "batch", sh->batch, BATCH, slice, &b[0][i]);
			} else {
				batch_slice(s, "batch", sh->batch, BATCH, slice, &b[0][i]);
				raw_slice(&raw, BATCH, slice, &b[1][i]);
			}
		}
	}
	out->batch_store = med_of(b[0], R, 0);
	out->batch_raw = med_of(b[1], R, 0);
	out->batch_ratio = med_ratio(b[0], b[1], R);
	printf("    evstore %s events/s  vs  raw LMDB %s records/s (%d x %zu B per synced txn)  ratio %.2f\n",
	       kit_num(out->batch_store, b1), kit_num(out->batch_raw, b2), BATCH, sh->val_len,
	       out->batch_ratio);
	printf("      rounds:");
	print_samples("evstore", b[0], R);
	print_samples("| raw", b[1], R);
	print_ratios("| ratio", b[0], b[1], R);
	printf("\n      per commit: ");
	print_commits("evstore", b[0], R, "events");
	print_commits(" | raw", b[1], R, "records");
	printf("\n\n");
	fflush(stdout);

	/* Figures 2 and 3 share rounds, so that each multiple of the 1-thread
	 * figure compares measurements taken a few seconds apart. */
	out->crowd_n[0] = 16;
	out->crowd_n[1] = 64;
	printf("    (measuring [2] and [3] in shared rounds: 1, 16 and 64 appenders and their ceilings)\n");
	fflush(stdout);
	for (int i = 0; i < R; i++) {
		for (int j = 0; j < SLICES * KINDS; j++) {
			int kind = (i * SLICES + j / KINDS) % 2 == 0 ? j % KINDS
								     : KINDS - 1 - j % KINDS;
			size_t n = kind < RAW16 ? 1 : kind < RAW64 ? 16 : 64;
			char tag[32];

			snprintf(tag, sizeof tag, "crowd%zu", n);
			if (kind % 2 == 0)
				raw_slice(&raw, n, slice, &k[kind][i]);
			else
				crowd_slice(s, NULL, &sh->event, n, tag, slice, &k[kind][i]);
		}
	}
	crowd_slice(NULL, &raw, NULL, 64, "plain", cf->seconds, &plain);
	out->crowd_plain = rate_of(&plain);

	/* A shared disk that slows down for seconds shows as rounds that
	 * disagree; the verdict warns then. */
	out->spread = 1;
	for (int kind = 0; kind < KINDS + 2; kind++) {
		const struct sample *v = kind < KINDS ? k[kind] : b[kind - KINDS];
		double lo = rate_of(&v[0]), hi = lo;

		for (int i = 1; i < R; i++) {
			lo = rate_of(&v[i]) < lo ? rate_of(&v[i]) : lo;
			hi = rate_of(&v[i]) > hi ? rate_of(&v[i]) : hi;
		}
		if (lo > 0 && hi / lo > out->spread)
			out->spread = hi / lo;
	}

	out->single_store = med_of(k[STORE1], R, 0);
	out->single_raw = med_of(k[RAW1], R, 0);
	out->single_ratio = med_ratio(k[STORE1], k[RAW1], R);
	printf("[2] one event per durable evs_append, 1 thread, EVS_SYNC_FULL\n");
	printf("    evstore %s events/s  vs  raw LMDB %s records/s (1 x %zu B per synced txn)  ratio %.2f\n",
	       kit_num(out->single_store, b1), kit_num(out->single_raw, b2), sh->val_len,
	       out->single_ratio);
	printf("      rounds:");
	print_samples("evstore", k[STORE1], R);
	print_samples("| raw", k[RAW1], R);
	print_ratios("| ratio", k[STORE1], k[RAW1], R);
	printf("\n      per commit: ");
	print_commits("evstore", k[STORE1], R, "events");
	print_commits(" | raw", k[RAW1], R, "records");
	printf("\n      = %.0f us per durable commit (evstore), %.0f us (raw LMDB)\n\n",
	       1e6 / out->single_store, 1e6 / out->single_raw);

	printf("[3] one event per durable evs_append from N threads, each to its own stream (EVS_ANY)\n");
	for (int c = 0; c < 2; c++) {
		size_t n = out->crowd_n[c];
		const struct sample *st = k[c ? STORE64 : STORE16], *rw = k[c ? RAW64 : RAW16];

		out->crowd_store[c] = med_of(st, R, 0);
		out->crowd_raw[c] = med_of(rw, R, 0);
		out->crowd_multiple[c] = med_ratio(st, k[STORE1], R);
		out->crowd_ratio[c] = med_ratio(st, rw, R);
		printf("    %2zu threads: evstore %s events/s = %.2fx the 1-thread figure  vs  raw LMDB %s records/s"
		       " (%zu records per synced txn: a perfect group commit)  ratio %.2f\n",
		       n, kit_num(out->crowd_store[c], b1), out->crowd_multiple[c],
		       kit_num(out->crowd_raw[c], b2), n, out->crowd_ratio[c]);
		printf("      rounds:");
		print_samples("evstore", st, R);
		print_samples("| raw", rw, R);
		print_ratios("| x 1-thread", st, k[STORE1], R);
		printf("\n      per commit: ");
		print_commits("evstore", st, R, "events");
		print_commits(" | raw", rw, R, "records");
		printf("\n");
	}
	printf("    reference: plain LMDB, 64 threads, one record per synced txn each: %s records/s"
	       " = %.1fx the raw 1-thread figure (LMDB serialises writers; no group commit)\n\n",
	       kit_num(out->crowd_plain, b1), out->crowd_plain / out->single_raw);
	fflush(stdout);

	evs_close(s);
	raw_destroy(&raw);
	kit_rmrf(spath);
	kit_rmrf(rpath);
}

/* ---- figures 4 and 5: replay and as-of on a big store ------------------- */

struct touch {
	uint64_t n, sum;
};

static double store_replay_round(const char *path, uint64_t expect, double secs)
{
	evs_store *s = store_open(path, EVS_SYNC_NONE);
	struct touch t = {0, 0};
	uint64_t passes = 0;
	int64_t t0 = kit_mono_ns();
	double elapsed;

	do {
		evs_iter *it;
		evs_event ev;
		uint64_t pos = 0;
		int rc;

		check_evs(evs_read_all(s, 1, EVS_FORWARD, NULL, 0, &it), s, "evs_read_all");
		while ((rc = evs_iter_next(it, &ev)) == EVS_OK) {
			if (ev.position != ++pos)
				kit_die("replay: position %" PRIu64 " where %" PRIu64
					" was expected",
					ev.position, pos);
			t.sum += ev.position + ev.version + ev.data_len + ev.type.len +
				 ev.stream.len + (uint64_t)ev.recorded_at +
				 ((const uint8_t *)ev.data)[0];
		}
		if (rc != EVS_END)
			check_evs(rc, s, "evs_iter_next");
		evs_iter_free(it);
		if (pos != expect)
			kit_die("replay saw %" PRIu64 " events, the store has %" PRIu64, pos,
				expect);
		t.n += pos;
		passes++;
	} while (secs_since(t0) < secs);
	elapsed = secs_since(t0);
	evs_close(s);
	if (t.sum == 42) /* keep the sums alive */
		putchar(' ');
	return (double)t.n / elapsed;
}

static double raw_scan_round(const char *path, uint64_t expect, double secs)
{
	MDB_env *env = raw_env_open(path, MDB_RDONLY, 0);
	MDB_dbi dbi = raw_dbi(env, "events", 0);
	struct touch t = {0, 0};
	int64_t t0 = kit_mono_ns();
	double elapsed;

	do {
		MDB_txn *txn;
		MDB_cursor *cur;
		MDB_val k, v;
		uint64_t n = 0;
		int rc;

		check_mdb(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), "mdb_txn_begin");
		check_mdb(mdb_cursor_open(txn, dbi, &cur), "mdb_cursor_open");
		for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
		     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
			n++;
			t.sum += k.mv_size + v.mv_size +
				 ((const uint8_t *)k.mv_data)[k.mv_size - 1] +
				 ((const uint8_t *)v.mv_data)[0];
		}
		check_mdb(rc == MDB_NOTFOUND ? MDB_SUCCESS : rc, "cursor scan");
		mdb_cursor_close(cur);
		mdb_txn_abort(txn);
		if (n != expect)
			kit_die("raw scan saw %" PRIu64 " records, the store has %" PRIu64, n,
				expect);
		t.n += n;
	} while (secs_since(t0) < secs);
	elapsed = secs_since(t0);
	mdb_env_close(env);
	if (t.sum == 42)
		putchar(' ');
	return (double)t.n / elapsed;
}

static void big_store(const struct config *cf, const struct shape *sh, struct results *out)
{
	char path[PATH_MAX];
	char b1[32], b2[32], b3[32];
	double st[64], rw[64], ratio[64];
	evs_store *s;
	evs_append_result res;
	evs_store_info head;
	evs_iter *it;
	evs_event ev;
	int64_t first_t, last_t, t0, *lat;
	uint64_t n = cf->events, calls, streams;
	size_t L = cf->lookups;
	int R = cf->rounds;

	kit_bench_path(path, "replay-store");
	calls = (n + BUILD_BATCH - 1) / BUILD_BATCH;
	streams = calls < BUILD_STREAMS ? calls : BUILD_STREAMS;
	printf("building a %s-event store for [4] and [5]: EVS_SYNC_NONE (setup speed, not durable), "
	       "%d events per call, %" PRIu64 " streams round-robin\n",
	       kit_num((double)n, b1), BUILD_BATCH, streams);
	fflush(stdout);
	s = store_open(path, EVS_SYNC_NONE);
	t0 = kit_mono_ns();
	for (uint64_t c = 0; c < calls; c++) {
		char stream[32];
		size_t k = c == calls - 1 && n % BUILD_BATCH ? n % BUILD_BATCH : BUILD_BATCH;

		snprintf(stream, sizeof stream, "acct-%04" PRIu64, c % streams);
		check_evs(evs_append(s, stream, EVS_ANY, sh->batch, k, &res), s,
			  "evs_append (build)");
	}
	{
		double el = secs_since(t0);

		check_evs(evs_head(s, &head), s, "evs_head");
		printf("  built in %.1f s (%s events/s); %s MiB used of a %s MiB map\n\n", el,
		       kit_num((double)n / el, b1),
		       kit_num((double)head.used_bytes / 1048576.0, b2),
		       kit_num((double)head.map_size / 1048576.0, b3));
	}
	if (head.last_position != n)
		kit_die("store head says %" PRIu64 " events, %" PRIu64 " appended",
			head.last_position, n);
	last_t = head.last_recorded_at;
	check_evs(evs_read_all(s, 1, EVS_FORWARD, NULL, 1, &it), s, "evs_read_all");
	check_evs(evs_iter_next(it, &ev), s, "evs_iter_next");
	first_t = ev.recorded_at;
	evs_iter_free(it);
	evs_close(s);

	printf("[4] full replay of %s events: evs_read_all over everything, touching position, version,"
	       " stream, type, recorded_at, data_len and data\n",
	       kit_num((double)n, b1));
	for (int i = 0; i < R; i++) {
		if (i % 2 == 0) {
			rw[i] = raw_scan_round(path, n, cf->seconds);
			st[i] = store_replay_round(path, n, cf->seconds);
		} else {
			st[i] = store_replay_round(path, n, cf->seconds);
			rw[i] = raw_scan_round(path, n, cf->seconds);
		}
	}
	out->replay_events = n;
	out->replay_store = kit_median(st, (size_t)R);
	out->replay_raw = kit_median(rw, (size_t)R);
	for (int i = 0; i < R; i++)
		ratio[i] = st[i] / rw[i];
	out->replay_ratio = kit_median(ratio, (size_t)R);
	printf("    evstore %s events/s  vs  raw LMDB cursor scan (MDB_NEXT over the store's \"events\") %s records/s"
	       "  ratio %.2f\n",
	       kit_num(out->replay_store, b1), kit_num(out->replay_raw, b2), out->replay_ratio);
	printf("      rounds: evstore");
	for (int i = 0; i < R; i++)
		printf(" %s", kit_num(st[i], b1));
	printf(" | raw");
	for (int i = 0; i < R; i++)
		printf(" %s", kit_num(rw[i], b1));
	printf(" | ratio");
	for (int i = 0; i < R; i++)
		printf(" %.2f", ratio[i]);
	printf("\n");
	printf("      = %.0f ns per event (evstore), %.0f ns per record (raw)\n\n",
	       1e9 / out->replay_store, 1e9 / out->replay_raw);
	fflush(stdout);

	printf("[5] as-of lookups on the %s-event store at random times in [first, last recorded_at]"
	       " (%.3f s span), %s calls each\n",
	       kit_num((double)n, b1), (double)(last_t - first_t) / 1e9, kit_num((double)L, b2));
	lat = malloc(L * sizeof *lat);
	if (lat == NULL)
		kit_die("out of memory");
	s = store_open(path, EVS_SYNC_NONE);
	for (size_t i = 0; i < L; i++) {
		int64_t t = first_t +
			    (int64_t)(kit_rand(&rng_state) % (uint64_t)(last_t - first_t + 1));
		uint64_t pos;
		int64_t a = kit_mono_ns();
		int rc = evs_position_at(s, t, &pos);

		lat[i] = kit_mono_ns() - a;
		check_evs(rc, s, "evs_position_at");
		if (pos == 0 || pos > n)
			kit_die("evs_position_at(%" PRId64 ") = %" PRIu64 " out of range", t, pos);
	}
	out->lat_pos[0] = (double)kit_percentile(lat, L, 50) / 1e3;
	out->lat_pos[1] = (double)kit_percentile(lat, L, 99) / 1e3;
	for (size_t i = 0; i < L; i++) {
		int64_t t = first_t +
			    (int64_t)(kit_rand(&rng_state) % (uint64_t)(last_t - first_t + 1));
		char stream[32];
		uint64_t ver, pos;
		int64_t a;
		int rc;

		snprintf(stream, sizeof stream, "acct-%04" PRIu64, kit_rand(&rng_state) % streams);
		a = kit_mono_ns();
		rc = evs_stream_version_at(s, stream, t, &ver, &pos);
		lat[i] = kit_mono_ns() - a;
		check_evs(rc, s, "evs_stream_version_at");
	}
	out->lat_ver[0] = (double)kit_percentile(lat, L, 50) / 1e3;
	out->lat_ver[1] = (double)kit_percentile(lat, L, 99) / 1e3;
	evs_close(s);

	{
		MDB_env *env = raw_env_open(path, MDB_RDONLY, 0);
		MDB_dbi dbi = raw_dbi(env, "events", 0);
		unsigned char key[8];

		for (size_t i = 0; i < L; i++) {
			uint64_t p = 1 + kit_rand(&rng_state) % n;
			MDB_val k = {sizeof key, key}, v;
			MDB_txn *txn;
			int64_t a;
			int rc;

			for (int b = 0; b < 8; b++)
				key[7 - b] = (unsigned char)(p >> (8 * b));
			a = kit_mono_ns();
			rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
			if (rc == MDB_SUCCESS) {
				rc = mdb_get(txn, dbi, &k, &v);
				mdb_txn_abort(txn);
			}
			lat[i] = kit_mono_ns() - a;
			check_mdb(rc, "raw mdb_get of a random position");
		}
		out->lat_raw[0] = (double)kit_percentile(lat, L, 50) / 1e3;
		out->lat_raw[1] = (double)kit_percentile(lat, L, 99) / 1e3;

		/* the same seek evs_position_at makes, raw: the entry before the
		 * first "time" key > t (keys: recorded_at u64 BE) */
		dbi = raw_dbi(env, "time", 0);
		for (size_t i = 0; i < L; i++) {
			int64_t t = first_t + (int64_t)(kit_rand(&rng_state) %
							(uint64_t)(last_t - first_t + 1));
			MDB_val k = {sizeof key, key}, v;
			MDB_cursor *cur;
			MDB_txn *txn;
			int64_t a;
			int rc;

			for (int b = 0; b < 8; b++)
				key[7 - b] = (unsigned char)((uint64_t)(t + 1) >> (8 * b));
			a = kit_mono_ns();
			rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
			if (rc == MDB_SUCCESS) {
				rc = mdb_cursor_open(txn, dbi, &cur);
				if (rc == MDB_SUCCESS) {
					rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
					rc = rc == MDB_NOTFOUND
						     ? mdb_cursor_get(cur, &k, &v, MDB_LAST)
					     : rc == MDB_SUCCESS
						     ? mdb_cursor_get(cur, &k, &v, MDB_PREV)
						     : rc;
					mdb_cursor_close(cur);
				}
				mdb_txn_abort(txn);
			}
			lat[i] = kit_mono_ns() - a;
			check_mdb(rc, "raw seek in \"time\"");
		}
		out->lat_seek[0] = (double)kit_percentile(lat, L, 50) / 1e3;
		out->lat_seek[1] = (double)kit_percentile(lat, L, 99) / 1e3;
		mdb_env_close(env);
	}
	free(lat);
	printf("    evs_position_at        p50 %6.2f us  p99 %6.2f us  = %4.1fx / %4.1fx the mdb_get ceiling,"
	       " %4.1fx / %4.1fx the time-index seek\n",
	       out->lat_pos[0], out->lat_pos[1], out->lat_pos[0] / out->lat_raw[0],
	       out->lat_pos[1] / out->lat_raw[1], out->lat_pos[0] / out->lat_seek[0],
	       out->lat_pos[1] / out->lat_seek[1]);
	printf("    evs_stream_version_at  p50 %6.2f us  p99 %6.2f us  = %4.1fx / %4.1fx the mdb_get ceiling\n",
	       out->lat_ver[0], out->lat_ver[1], out->lat_ver[0] / out->lat_raw[0],
	       out->lat_ver[1] / out->lat_raw[1]);
	printf("    ceiling: raw read txn + mdb_get of a random \"events\" key + abort:"
	       " p50 %6.2f us  p99 %6.2f us\n",
	       out->lat_raw[0], out->lat_raw[1]);
	printf("    time-index seek: raw read txn + cursor MDB_SET_RANGE/MDB_PREV in the store's \"time\" + abort"
	       " (what evs_position_at does): p50 %6.2f us  p99 %6.2f us\n\n",
	       out->lat_seek[0], out->lat_seek[1]);
	fflush(stdout);
	kit_rmrf(path);
}

/* ---- the verdict -------------------------------------------------------- */

static void verdict(const struct config *cf, const struct results *r)
{
	double batch = r->batch_ratio;
	double crowd = r->crowd_multiple[1];
	char b1[32], b2[32];

	printf("verdict: floors of issue 2%s\n",
	       cf->quick ? " (--quick: counts too small for the figures to mean anything)" : "");
	printf("  batched durable appends >= 0.50 x raw LMDB      %6.2f x     %s\n", batch,
	       batch >= 0.50 ? "holds" : "MISSED");
	printf("  64 durable appenders >= 10 x one appender       %6.2f x     %s\n", crowd,
	       crowd >= 10.0 ? "holds" : "MISSED");
	printf("  replay >= 3,000,000 events/s                    %s events/s   %s%s\n",
	       kit_num(r->replay_store, b1), r->replay_store >= 3e6 ? "holds" : "MISSED",
	       r->replay_events < 1000000 ? " (on fewer than 1M events)" : "");
	printf("  (no floor) single durable appends: %.2f x raw LMDB; as-of p99 %.1f us (position), "
	       "%.1f us (stream version); %s-event replay %.2f x raw scan\n",
	       r->single_ratio, r->lat_pos[1], r->lat_ver[1], kit_num((double)r->replay_events, b2),
	       r->replay_ratio);
	printf("verdict: floors of issue 15 (the journal)\n");
	printf("  64 durable appenders >= 0.50 x a perfect raw group commit  %6.2f x     %s\n",
	       r->crowd_ratio[1], r->crowd_ratio[1] >= 0.50 ? "holds" : "MISSED");
	printf("  batched durable appends >= 0.68 x raw LMDB                 %6.2f x     %s\n",
	       batch, batch >= 0.68 ? "holds" : "MISSED");
	printf("  replay and as-of no slower: reads do not touch the journal; compare "
	       "%.2f x raw scan and p99 %.1f / %.1f us with BENCHMARKS.md\n",
	       r->replay_ratio, r->lat_pos[1], r->lat_ver[1]);
	printf("  (ratios and multiples are medians of per-round ratios; rates are medians of rounds)\n");
	if (r->spread > 1.5)
		printf("  WARNING: the rounds of a durable figure differ by up to %.1fx: something else "
		       "used the disk during the run; rerun on a quiet machine before trusting them\n",
		       r->spread);
}

/* ---- issue 12 (DCB): conditional appends, 64 threads vs 1 ---------------
 *
 * Each thread decides for its own entity: it appends one event tagged
 * "dcb:<round>-<thread>" with evs_append_ex() under the condition "no
 * event with my tag after my last append" (the DCB append condition of a
 * decider that read its own history), durable (EVS_SYNC_FULL). Conditions
 * never fail here (a failure stops the run): the figure is the cost of
 * checking them inside the group commit. Rounds alternate 1 thread, 64
 * threads and 64 plain evs_append threads (the same-run ceiling); the
 * multiple is the median of the per-round rates 64 / 1. Floor: >= 10x. */

struct dcb_worker {
	pthread_t thread;
	struct crowd *crowd;
	evs_store *store;
	char tag[64];
	uint64_t done;
	int rc;
	char msg[512];
};

static void *dcb_worker_run(void *arg)
{
	struct dcb_worker *w = arg;
	const char *tags[1] = {w->tag};
	evs_query_item item = {NULL, 0, tags, 1};
	evs_query q = {&item, 1};
	evs_condition cond = {&q, 0};
	evs_event_in ev;
	evs_append_part part = {w->tag, EVS_ANY, &ev, 1};
	evs_append_result res;
	uint64_t conflict;

	memset(&ev, 0, sizeof ev);
	ev.type = "Decided";
	ev.tags = tags;
	ev.ntags = 1;
	pthread_barrier_wait(&w->crowd->start);
	while (!atomic_load_explicit(&w->crowd->stop, memory_order_relaxed)) {
		int rc = evs_append_ex(w->store, &part, 1, NULL, 0, &cond, &res, &conflict);

		if (rc != EVS_OK) {
			w->rc = rc;
			snprintf(w->msg, sizeof w->msg, "evs_append_ex (\"%s\"): %s (%s)", w->tag,
				 evs_errmsg(w->store), evs_code_name(rc));
			atomic_store(&w->crowd->stop, 1);
			break;
		}
		cond.after = res.last_position;
		w->done++;
	}
	return NULL;
}

static void dcb_slice(evs_store *s, size_t n, int round, double secs, struct sample *m)
{
	struct crowd c;
	struct dcb_worker *w = calloc(n, sizeof *w);
	uint64_t done = 0, p0 = store_last(s), w0 = wchar_now();
	int64_t t0;
	double elapsed;

	if (w == NULL)
		kit_die("out of memory");
	pthread_barrier_init(&c.start, NULL, (unsigned)n + 1);
	atomic_init(&c.stop, 0);
	for (size_t i = 0; i < n; i++) {
		w[i].crowd = &c;
		w[i].store = s;
		snprintf(w[i].tag, sizeof w[i].tag, "dcb:%d-%zu-%zu", round, n, i);
		errno = pthread_create(&w[i].thread, NULL, dcb_worker_run, &w[i]);
		if (errno != 0)
			kit_die("pthread_create: %s", strerror(errno));
	}
	pthread_barrier_wait(&c.start);
	t0 = kit_mono_ns();
	sleep_secs(secs);
	atomic_store(&c.stop, 1);
	for (size_t i = 0; i < n; i++)
		pthread_join(w[i].thread, NULL);
	elapsed = secs_since(t0);
	for (size_t i = 0; i < n; i++) {
		if (w[i].rc != 0)
			kit_die("%s", w[i].msg);
		done += w[i].done;
	}
	pthread_barrier_destroy(&c.start);
	free(w);
	store_sample(s, m, p0, w0, done, elapsed);
}

static double dcb_multiple;

static void dcb_bench(const struct config *cf, const struct shape *sh)
{
	static struct sample one[64], many[64], plain[64];
	char path[PATH_MAX], b1[32], b2[32], b3[32];
	int R = cf->rounds;
	double slice = cf->seconds / SLICES;
	evs_store *s;

	kit_bench_path(path, "dcb");
	s = store_open(path, EVS_SYNC_FULL);
	memset(one, 0, sizeof one);
	memset(many, 0, sizeof many);
	memset(plain, 0, sizeof plain);
	printf("[DCB] conditional durable appends (evs_append_ex, 1 event, condition on the "
	       "thread's own tag after its last append), EVS_SYNC_FULL\n");
	for (int i = 0; i < R; i++)
		for (int j = 0; j < SLICES; j++) {
			if ((i + j) % 2 == 0) {
				dcb_slice(s, 1, i * SLICES + j, slice, &one[i]);
				dcb_slice(s, 64, i * SLICES + j, slice, &many[i]);
				crowd_slice(s, NULL, &sh->event, 64, "dcbplain", slice, &plain[i]);
			} else {
				crowd_slice(s, NULL, &sh->event, 64, "dcbplain", slice, &plain[i]);
				dcb_slice(s, 64, i * SLICES + j, slice, &many[i]);
				dcb_slice(s, 1, i * SLICES + j, slice, &one[i]);
			}
		}
	dcb_multiple = med_ratio(many, one, R);
	printf("    64 threads %s events/s = %.2fx 1 thread (%s events/s); 64 plain evs_append "
	       "threads %s events/s: conditional = %.2fx plain\n",
	       kit_num(med_of(many, R, 0), b1), dcb_multiple, kit_num(med_of(one, R, 0), b2),
	       kit_num(med_of(plain, R, 0), b3), med_ratio(many, plain, R));
	printf("      rounds:");
	print_samples("1 thread", one, R);
	print_samples("| 64", many, R);
	print_samples("| 64 plain", plain, R);
	print_ratios("| x 1 thread", many, one, R);
	printf("\n      per commit: ");
	print_commits("64 conditional", many, R, "events");
	printf("\n    floor (issue 12): 64 threads >= 10 x 1 thread   %6.2f x     %s\n\n",
	       dcb_multiple, dcb_multiple >= 10.0 ? "holds" : "MISSED");
	fflush(stdout);
	evs_close(s);
	kit_rmrf(path);
}

/* ---- [6] issue 12: one type that is 1% of the log, by its index ------- */

/* Read every event of `type` (1% of the log) and touch it: through the
 * type index (evs_read_all with the types filter), or by today's filtered
 * scan, forced the way a caller could, with a filter of only a stream
 * prefix ("" matches every stream, so nothing indexed narrows it) and the
 * type compared on every event as the library's filter does. Returns the
 * events found; *secs the time. */
static uint64_t type_read(evs_store *s, const char *type, bool by_index, double *secs)
{
	const char *types[] = {type}, *prefixes[] = {""};
	evs_filter f = by_index ? (evs_filter){.types = types, .ntypes = 1}
				: (evs_filter){.stream_prefixes = prefixes, .nprefixes = 1};
	size_t tlen = strlen(type);
	uint64_t n = 0, sum = 0;
	evs_iter *it;
	evs_event ev;
	int64_t t0 = kit_mono_ns();
	int rc;

	check_evs(evs_read_all(s, 0, EVS_FORWARD, &f, 0, &it), s, "evs_read_all");
	while ((rc = evs_iter_next(it, &ev)) == EVS_OK) {
		if (ev.type.len != tlen || memcmp(ev.type.ptr, type, tlen) != 0)
			continue;
		n++;
		sum += ev.position + ev.version + ev.data_len + ev.stream.len;
	}
	if (rc != EVS_END)
		check_evs(rc, s, "evs_iter_next");
	evs_iter_free(it);
	*secs = secs_since(t0);
	if (sum == 0 && n)
		kit_die("impossible sum");
	return n;
}

/* The same-run ceiling of [6]: raw LMDB on the same store, no library.
 * by_get: mdb_get of each of the type's positions (what any index read
 * must do to hand the records out), touching each record's first and
 * last byte; else an MDB_NEXT scan of all "events" touching the same.
 * Returns records read; *secs the time. */
static uint64_t raw_type_read(MDB_env *env, MDB_dbi dbi, const uint64_t *pos, uint64_t npos,
			      bool by_get, double *secs)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	unsigned char key[8];
	uint64_t n = 0, sum = 0;
	int64_t t0 = kit_mono_ns();
	int rc;

	check_mdb(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), "mdb_txn_begin");
	if (by_get) {
		for (uint64_t i = 0; i < npos; i++) {
			for (int b = 0; b < 8; b++)
				key[7 - b] = (unsigned char)(pos[i] >> (8 * b));
			k.mv_size = sizeof key;
			k.mv_data = key;
			check_mdb(mdb_get(txn, dbi, &k, &v), "[6] raw mdb_get");
			sum += ((const uint8_t *)v.mv_data)[0] +
			       ((const uint8_t *)v.mv_data)[v.mv_size - 1];
			n++;
		}
	} else {
		check_mdb(mdb_cursor_open(txn, dbi, &cur), "mdb_cursor_open");
		for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
		     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
			sum += ((const uint8_t *)v.mv_data)[0] +
			       ((const uint8_t *)v.mv_data)[v.mv_size - 1];
			n++;
		}
		check_mdb(rc == MDB_NOTFOUND ? MDB_SUCCESS : rc, "[6] raw scan");
		mdb_cursor_close(cur);
	}
	mdb_txn_abort(txn);
	*secs = secs_since(t0);
	if (sum == 0 && n)
		kit_die("impossible sum");
	return n;
}

static void type_index(const struct config *cf, const struct shape *sh)
{
	char path[PATH_MAX], b1[32], b2[32], b3[32];
	evs_event_in batch[BUILD_BATCH];
	double ix[64], sc[64], ratio[64], rratio[64];
	uint64_t n = cf->events, calls = (n + BUILD_BATCH - 1) / BUILD_BATCH, want = 0;
	uint64_t *pos = malloc((calls + 1) * sizeof *pos);
	int R = cf->rounds;
	evs_store *s;

	kit_bench_path(path, "type-store");
	printf("[6] reading all events of one type that is 1%% of a %s-event log (issue 12): the type "
	       "index vs the filtered scan, same store, same run\n",
	       kit_num((double)n, b1));
	s = store_open(path, EVS_SYNC_NONE);
	for (uint64_t c = 0; c < calls; c++) {
		char stream[32];
		size_t k = c == calls - 1 && n % BUILD_BATCH ? n % BUILD_BATCH : BUILD_BATCH;

		for (size_t i = 0; i < k; i++)
			batch[i] = sh->event;
		/* one event in every 100 is the rare type, at a varying index */
		if (c % 100 < k) {
			batch[c % 100].type = "Rare";
			if (pos == NULL)
				kit_die("out of memory");
			pos[want++] = c * BUILD_BATCH + c % 100 + 1;
		}
		snprintf(stream, sizeof stream, "acct-%04" PRIu64, c % BUILD_STREAMS);
		check_evs(evs_append(s, stream, EVS_ANY, batch, k, NULL), s, "evs_append (build)");
	}
	for (int i = 0; i < R; i++) {
		double t, spent;
		uint64_t reads;

		/* each side reads the whole set again until cf->seconds / 2 */
		for (int side = 0; side < 2; side++) {
			bool by_index = (side == 0) == (i % 2 == 0);
			for (reads = 0, spent = 0; spent < cf->seconds / 2 || reads == 0; reads++) {
				if (type_read(s, "Rare", by_index, &t) != want)
					kit_die("[6] read %s events, expected %" PRIu64,
						by_index ? "index" : "scan", want);
				spent += t;
			}
			(by_index ? ix : sc)[i] = (double)reads / spent;
		}
		ratio[i] = ix[i] / sc[i];
	}
	evs_close(s);
	/* the ceiling: raw LMDB's own ratio on the same store (the store is
	 * closed: never both on one environment in one process) */
	{
		MDB_env *env = raw_env_open(path, MDB_RDONLY, 0);
		MDB_dbi dbi = raw_dbi(env, "events", 0);

		for (int i = 0; i < R; i++) {
			double t, spent, rate[2];
			uint64_t reads;

			for (int side = 0; side < 2; side++) {
				bool by_get = (side == 0) == (i % 2 == 0);
				for (reads = 0, spent = 0; spent < cf->seconds / 4 || reads == 0;
				     reads++) {
					if (raw_type_read(env, dbi, pos, want, by_get, &t) !=
					    (by_get ? want : n))
						kit_die("[6] raw read came short");
					spent += t;
				}
				rate[by_get ? 0 : 1] = (double)reads / spent;
			}
			rratio[i] = rate[0] / rate[1];
		}
		mdb_env_close(env);
	}
	free(pos);
	double mix = kit_median(ix, (size_t)R), msc = kit_median(sc, (size_t)R);
	double mr = kit_median(ratio, (size_t)R), mrr = kit_median(rratio, (size_t)R);
	printf("    by the type index %s reads/s (%s events/s)  vs  filtered scan %s reads/s  "
	       "ratio %.1f\n",
	       kit_num(mix, b1), kit_num(mix * (double)want, b2), kit_num(msc, b3), mr);
	printf("      rounds: ratio");
	for (int i = 0; i < R; i++)
		printf(" %.1f", ratio[i]);
	printf("; %" PRIu64 " of %s events per read\n", want, kit_num((double)n, b1));
	printf("    ceiling: raw LMDB on the same store, mdb_get of the same %" PRIu64
	       " positions vs an MDB_NEXT scan of all \"events\" (each touching a record's first "
	       "and last byte): ratio %.1f (rounds",
	       want, mrr);
	for (int i = 0; i < R; i++)
		printf(" %.1f", rratio[i]);
	printf(")\n");
	printf("verdict: floor of issue 12 (event indexes)\n");
	printf("  one 1%% type of %s events by its index >= 20 x the filtered scan  %6.1f x     %s%s\n\n",
	       kit_num((double)n, b1), mr, mr >= 20.0 ? "holds" : "MISSED",
	       n < 1000000 ? " (on fewer than 1M events)" : "");
}

/* ---- main --------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_store [options]\n"
		"  --quick         small counts and short rounds (a CI smoke run)\n"
		"  --events N      events in the replay / as-of store (default 1000000; quick 20000)\n"
		"  --seconds S     minimum length of one timed round (default 2; quick 0.2)\n"
		"  --rounds R      rounds per figure, median reported (default 3; quick 1; max 63)\n"
		"  --lookups N     as-of calls per measured function (default 200000; quick 2000)\n"
		"  --seed N        random seed (default: from the clock; always printed)\n"
		"  --dir DIR       parent of the temporary directory (default $TMPDIR or /tmp)\n"
		"  --keep          do not remove the temporary directory\n"
		"  --blocks LIST   run only these figures, comma-separated: durable ([1]-[3]),\n"
		"                  dcb, replay ([4], [5]), type ([6]); default all (and the verdict)\n");
}

static uint64_t parse_u64(const char *s, const char *what)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-')
		kit_die("invalid %s \"%s\"", what, s);
	return v;
}

static unsigned parse_blocks(const char *list)
{
	static const char *const names[] = {"durable", "dcb", "replay", "type"};
	unsigned bits = 0;
	const char *p = list;

	for (;;) {
		size_t n = strcspn(p, ","), i;

		for (i = 0; i < 4; i++)
			if (strlen(names[i]) == n && strncmp(p, names[i], n) == 0)
				break;
		if (i == 4 || bits & (1u << i))
			kit_die("invalid --blocks \"%s\": want a comma-separated set of durable, dcb, "
				"replay, type, each once",
				list);
		bits |= 1u << i;
		if (p[n] == '\0')
			return bits;
		p += n + 1;
	}
}

static void parse_args(int argc, char **argv, struct config *cf)
{
	static const struct option opts[] = {
		{"quick", no_argument, NULL, 'q'},
		{"events", required_argument, NULL, 'e'},
		{"seconds", required_argument, NULL, 's'},
		{"rounds", required_argument, NULL, 'r'},
		{"lookups", required_argument, NULL, 'l'},
		{"seed", required_argument, NULL, 'S'},
		{"dir", required_argument, NULL, 'd'},
		{"keep", no_argument, NULL, 'k'},
		{"help", no_argument, NULL, 'h'},
		{"blocks", required_argument, NULL, 'b'},
		{NULL, 0, NULL, 0},
	};
	bool events = false, seconds = false, rounds = false, lookups = false, seed = false;
	int c;

	memset(cf, 0, sizeof *cf);
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'q': cf->quick = true; break;
		case 'e':
			cf->events = parse_u64(optarg, "--events");
			events = true;
			break;
		case 's': {
			char *end;

			cf->seconds = strtod(optarg, &end);
			if (end == optarg || *end || !(cf->seconds > 0 && cf->seconds < 3600))
				kit_die("invalid --seconds \"%s\"", optarg);
			seconds = true;
			break;
		}
		case 'r':
			cf->rounds = (int)parse_u64(optarg, "--rounds");
			rounds = true;
			break;
		case 'l':
			cf->lookups = parse_u64(optarg, "--lookups");
			lookups = true;
			break;
		case 'S':
			cf->seed = parse_u64(optarg, "--seed");
			seed = true;
			break;
		case 'd': cf->dir = optarg; break;
		case 'k': cf->keep = true; break;
		case 'b': cf->blocks = parse_blocks(optarg); break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (optind < argc) {
		usage(stderr);
		exit(2);
	}
	if (cf->blocks == 0)
		cf->blocks = BLOCK_ALL;
	if (!events)
		cf->events = cf->quick ? 20000 : 1000000;
	if (!seconds)
		cf->seconds = cf->quick ? 0.2 : 2.0;
	if (!rounds)
		cf->rounds = cf->quick ? 1 : 3;
	if (!lookups)
		cf->lookups = cf->quick ? 2000 : 200000;
	if (!seed)
		cf->seed = (uint64_t)kit_mono_ns() ^ ((uint64_t)getpid() << 32);
	if (cf->events < 1 || cf->events > 1000000000)
		kit_die("--events must be 1 to 1000000000");
	if (cf->rounds < 1 || cf->rounds > 63)
		kit_die("--rounds must be 1 to 63");
	if (cf->lookups < 1 || cf->lookups > 100000000)
		kit_die("--lookups must be 1 to 100000000");
	if (cf->dir == NULL)
		cf->dir = getenv("TMPDIR");
	if (cf->dir == NULL || cf->dir[0] == '\0')
		cf->dir = "/tmp";
}

static void print_facts(int argc, char **argv, const struct config *cf)
{
	struct utsname u;
	struct statfs sf;
	char line[512], cpu[256] = "unknown", mem[64] = "unknown";
	time_t t = time(NULL);
	struct tm tm;
	FILE *f;
	int major, minor, patch;

	printf("command:");
	for (int i = 0; i < argc; i++)
		printf(" %s", argv[i]);
	printf("\n");
	gmtime_r(&t, &tm);
	strftime(line, sizeof line, "%Y-%m-%d %H:%M:%S UTC", &tm);
	printf("date:    %s\n", line);
	if ((f = fopen("/proc/cpuinfo", "r")) != NULL) {
		while (fgets(line, sizeof line, f))
			if (strncmp(line, "model name", 10) == 0) {
				char *p = strchr(line, ':');

				if (p) {
					snprintf(cpu, sizeof cpu, "%s", p + 2);
					cpu[strcspn(cpu, "\n")] = '\0';
				}
				break;
			}
		fclose(f);
	}
	if ((f = fopen("/proc/meminfo", "r")) != NULL) {
		while (fgets(line, sizeof line, f))
			if (strncmp(line, "MemTotal:", 9) == 0) {
				unsigned long kb = strtoul(line + 9, NULL, 10);

				snprintf(mem, sizeof mem, "%.1f GiB", (double)kb / 1048576.0);
				break;
			}
		fclose(f);
	}
	uname(&u);
	printf("machine: nproc %ld (of %ld), %s, %s memory, %s %s %s\n",
	       sysconf(_SC_NPROCESSORS_ONLN), sysconf(_SC_NPROCESSORS_CONF), cpu, mem, u.sysname,
	       u.release, u.machine);
	printf("libs:    evstore %s, %s, msgpack-c %s\n", EVS_VERSION_STRING,
	       mdb_version(&major, &minor, &patch), msgpack_version());
	printf("build:   %s\n",
#if defined(__OPTIMIZE__)
	       "optimized"
#else
	       "NOT optimized (-O0): figures are meaningless"
#endif
	);
	printf("dir:     %s", root);
	if (statfs(root, &sf) == 0) {
		printf(" (filesystem type 0x%lx)", (unsigned long)sf.f_type);
		if ((unsigned long)sf.f_type == TMPFS_MAGIC_)
			printf("  WARNING: tmpfs, fsync costs nothing; durable figures are meaningless");
	}
	printf("\n");
	kit_print_load("at start");
	printf("seed:    %" PRIu64 " (replay with --seed %" PRIu64 ")\n", cf->seed, cf->seed);
	printf("options: events %s, seconds %.2f per round, rounds %d (median), lookups %zu%s\n\n",
	       kit_num((double)cf->events, line), cf->seconds, cf->rounds, cf->lookups,
	       cf->quick ? ", --quick" : "");
}

int main(int argc, char **argv)
{
	struct config cf;
	struct shape *sh;
	struct results res;

	setvbuf(stdout, NULL, _IOLBF, 0);
	parse_args(argc, argv, &cf);
	rng_state = cf.seed;
	root = kit_bench_root("bench_store", cf.dir, "evstore-bench", cf.keep);
	print_facts(argc, argv, &cf);

	sh = calloc(1, sizeof *sh);
	if (sh == NULL)
		kit_die("out of memory");
	shape_init(sh);
	memset(&res, 0, sizeof res);
	calibrate(sh);
	if (cf.blocks & BLOCK_DURABLE)
		durable(&cf, sh, &res);
	if (cf.blocks & BLOCK_DCB)
		dcb_bench(&cf, sh); /* issue 12 (DCB) */
	if (cf.blocks & BLOCK_REPLAY)
		big_store(&cf, sh, &res);
	if (cf.blocks & BLOCK_TYPE)
		type_index(&cf, sh); /* [6], issue 12 */
	kit_print_load("at end");
	if (cf.blocks == BLOCK_ALL)
		verdict(&cf, &res);
	else
		printf("(--blocks: some figures not run, no verdict)\n");

	msgpack_sbuffer_destroy(&sh->data);
	free(sh);
	kit_bench_cleanup();
	return 0;
}
