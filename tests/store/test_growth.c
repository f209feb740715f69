/*
 * test_growth.c - the map grows by itself far past its initial size
 * (MDB_MAP_FULL never reaches the caller), also while other threads read
 * and when another process grew it.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

#include "kit_store.h"

#define MiB  ((size_t)1 << 20)
#define BLOB (48 * 1024)

/* Append `batches` batches of `per` events with blobs seeded by position
 * (the store must hold only this appender's events). */
static void append_blobs(evs_store *st, const char *stream, size_t batches, size_t per, size_t blob,
			 size_t *map_max)
{
	evs_event_in *evs = calloc(per, sizeof *evs);
	tu_mp *mps = calloc(per, sizeof *mps);
	ck_assert(evs != NULL && mps != NULL);
	for (size_t i = 0; i < per; i++)
		tu_mp_init(&mps[i]);
	evs_store_info h;
	tu_ok(st, evs_head(st, &h));
	uint64_t next = h.last_position + 1;
	size_t prev_map = h.map_size;
	for (size_t b = 0; b < batches; b++) {
		for (size_t i = 0; i < per; i++) {
			tu_mp_reset(&mps[i]);
			tu_mp_blob_map(&mps[i], blob, next + i);
			tu_event(&evs[i], "Blob", &mps[i], NULL);
		}
		evs_append_result r;
		tu_ok(st, evs_append(st, stream, EVS_ANY, evs, per, &r));
		tu_check_u64_eq(r.first_position, next);
		next += per;
		tu_ok(st, evs_head(st, &h));
		ck_assert_uint_ge(h.map_size, prev_map);
		prev_map = h.map_size;
	}
	if (map_max)
		*map_max = prev_map;
	for (size_t i = 0; i < per; i++)
		tu_mp_destroy(&mps[i]);
	free(mps);
	free(evs);
}

/* Every event's blob is the one seeded by its position. */
static void check_blobs(evs_store *st, uint64_t expect_n, size_t blob)
{
	tu_mp want;
	tu_mp_init(&want);
	evs_iter *it;
	tu_ok(st, evs_read_all(st, 1, EVS_FORWARD, NULL, 0, &it));
	uint64_t n = 0;
	evs_event ev;
	int rc;
	while ((rc = evs_iter_next(it, &ev)) == EVS_OK) {
		n++;
		if (ev.position != n)
			break;
		tu_mp_reset(&want);
		tu_mp_blob_map(&want, blob, ev.position);
		if (ev.data_len != want.sb.size || memcmp(ev.data, want.sb.data, ev.data_len) != 0)
			break;
	}
	evs_iter_free(it);
	tu_mp_destroy(&want);
	tu_check(rc == EVS_END, "event %llu is not what was appended (%s)", (unsigned long long)n,
		 evs_code_name(rc));
	tu_check_u64_eq(n, expect_n);
}

typedef struct log_count {
	atomic_int calls, empty;
} log_count;

static void count_log(void *ctx, int level, const char *message)
{
	log_count *c = ctx;
	(void)level;
	atomic_fetch_add(&c->calls, 1);
	if (message == NULL || *message == '\0')
		atomic_fetch_add(&c->empty, 1);
}

START_TEST(test_grows_far_past_initial)
{
	evs_options o;
	evs_options_init(&o);
	o.map_size = MiB;
	log_count logs;
	atomic_init(&logs.calls, 0);
	atomic_init(&logs.empty, 0);
	o.log = count_log;
	o.log_ctx = &logs;
	evs_store *st = tu_open(kit_dir, &o);
	evs_store_info h;
	tu_ok(st, evs_head(st, &h));
	size_t initial = h.map_size;
	ck_assert_uint_le(initial, 2 * MiB);

	/* 100 batches of 16 x 48 KiB = 75 MiB of payload, plus many small */
	size_t map_max = 0;
	for (int round = 0; round < 5; round++) {
		append_blobs(st, "big", 20, 16, BLOB, &map_max);
		/* small events grow the indexes too */
		tu_ok(st, evs_head(st, &h));
		uint64_t base = h.last_position;
		tu_check_u64_eq(base, (uint64_t)(round + 1) * 320 + (uint64_t)round * 1000);
		evs_event_in small[1000];
		tu_mp m[1000];
		for (int i = 0; i < 1000; i++) {
			tu_mp_init(&m[i]);
			tu_mp_blob_map(&m[i], 16, base + 1 + (uint64_t)i);
			tu_event(&small[i], "Blob", &m[i], NULL);
		}
		evs_append_result r;
		tu_ok(st, evs_append(st, "small", EVS_ANY, small, 1000, &r));
		for (int i = 0; i < 1000; i++)
			tu_mp_destroy(&m[i]);
	}
	tu_ok(st, evs_head(st, &h));
	fprintf(stderr, "map grew from %zu to %zu bytes, %zu in use, %llu events\n", initial,
		h.map_size, h.used_bytes, (unsigned long long)h.last_position);
	ck_assert_uint_gt(h.map_size, 64 * MiB);
	ck_assert_uint_gt(h.used_bytes, 64 * MiB);
	tu_check_u64_eq(h.last_position, 5 * 1320);
	tu_check_u64_eq(tu_verify(st), 0);
	evs_close(st);
	/* whatever the library logs (it may report growth) carries a message */
	tu_check_i64_eq(atomic_load(&logs.empty), 0);
	fprintf(stderr, "log callback called %d times\n", atomic_load(&logs.calls));

	/* everything is there after reopening, even asking for a tiny map */
	st = tu_open(kit_dir, &o);
	evs_store_info h2;
	tu_ok(st, evs_head(st, &h2));
	ck_assert_uint_ge(h2.map_size, h.used_bytes);
	tu_check_u64_eq(h2.last_position, h.last_position);
	/* blobs: the "small" ones have 16 bytes, so check by stream */
	evs_iter *it;
	tu_ok(st, evs_read_stream(st, "big", 1, EVS_FORWARD, 0, &it));
	tu_mp want;
	tu_mp_init(&want);
	evs_event ev;
	uint64_t n = 0;
	int rc;
	while ((rc = evs_iter_next(it, &ev)) == EVS_OK) {
		n++;
		tu_mp_reset(&want);
		tu_mp_blob_map(&want, BLOB, ev.position);
		tu_check_u64_eq(ev.data_len, want.sb.size);
		tu_check(memcmp(ev.data, want.sb.data, ev.data_len) == 0,
			 "blob at position %llu differs", (unsigned long long)ev.position);
	}
	evs_iter_free(it);
	tu_mp_destroy(&want);
	tu_assert_rc(st, rc, EVS_END);
	tu_check_u64_eq(n, 5 * 320);
	/* and appends go on */
	tu_ok(st, tu_append_simple(st, "small", EVS_ANY, "T", 1, 0, 0, NULL));
	tu_check_u64_eq(tu_verify(st), 0);
	evs_close(st);
}
END_TEST

/* ---- growth while other threads read ----------------------------------- */

typedef struct reader {
	evs_store *st;
	atomic_int *stop;
	unsigned long loops;
	int rc;
	char msg[256];
} reader;

static void *reader_thread(void *arg)
{
	reader *r = arg;
	while (!atomic_load(r->stop)) {
		evs_store_info h;
		evs_stream_info sh;
		evs_iter *it;
		evs_event ev;
		int rc = evs_head(r->st, &h);
		if (rc == EVS_OK) {
			rc = evs_stream_head(r->st, "big", &sh);
			if (rc == EVS_NOT_FOUND)
				rc = EVS_OK;
		}
		if (rc == EVS_OK)
			rc = evs_read_all(r->st, EVS_ANY, EVS_BACKWARD, NULL, 3, &it);
		if (rc == EVS_OK) {
			while ((rc = evs_iter_next(it, &ev)) == EVS_OK)
				;
			evs_iter_free(it);
			if (rc == EVS_END)
				rc = EVS_OK;
		}
		if (rc != EVS_OK) {
			r->rc = rc;
			snprintf(r->msg, sizeof r->msg, "%s", evs_errmsg(r->st));
			return NULL;
		}
		r->loops++;
	}
	return NULL;
}

START_TEST(test_grows_under_concurrent_readers)
{
	evs_options o;
	evs_options_init(&o);
	o.map_size = MiB;
	evs_store *st = tu_open(kit_dir, &o);
	/* short reads only (no iterator is kept open), from more threads than
	 * cores: growth must still find its moment */
	enum { R = 8 };
	atomic_int stop;
	atomic_init(&stop, 0);
	reader rs[R];
	pthread_t th[R];
	memset(rs, 0, sizeof rs);
	for (int i = 0; i < R; i++) {
		rs[i].st = st;
		rs[i].stop = &stop;
		tu_check_i64_eq(pthread_create(&th[i], NULL, reader_thread, &rs[i]), 0);
	}
	int64_t t0 = kit_mono_ms();
	size_t map_max = 0;
	append_blobs(st, "big", 40, 16, BLOB, &map_max); /* 30 MiB */
	int64_t took = kit_mono_ms() - t0;
	atomic_store(&stop, 1);
	for (int i = 0; i < R; i++) {
		tu_check_i64_eq(pthread_join(th[i], NULL), 0);
		tu_check(rs[i].rc == 0, "reader %d: %s: %s", i, evs_code_name(rs[i].rc), rs[i].msg);
	}
	fprintf(stderr,
		"30 MiB appended from a 1 MiB map under %d readers in %lld ms "
		"(map %zu bytes; reader 0 looped %lu times)\n",
		R, (long long)took, map_max, rs[0].loops);
	ck_assert_uint_gt(map_max, 16 * MiB);
	check_blobs(st, 40 * 16, BLOB);
	evs_close(st);
}
END_TEST

/* ---- growth by another process ------------------------------------------ */

START_TEST(test_grown_by_other_process)
{
	evs_options o;
	evs_options_init(&o);
	o.map_size = MiB;
	evs_store *st = tu_open(kit_dir, &o);
	append_blobs(st, "big", 1, 4, BLOB, NULL);
	evs_sub *sub;
	tu_ok(st, evs_subscribe(st, 0, NULL, &sub));
	evs_event ev;
	tu_ok(st, evs_sub_next(sub, &ev, 0));
	tu_check_u64_eq(ev.position, 1);
	tu_ok(st, evs_sub_next(sub, &ev, 0));
	tu_ok(st, evs_sub_next(sub, &ev, 0));
	tu_ok(st, evs_sub_next(sub, &ev, 0));
	tu_assert_rc(st, evs_sub_next(sub, &ev, 0), EVS_TIMEOUT);
	evs_store_info before;
	tu_ok(st, evs_head(st, &before));

	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		evs_store *cs = NULL;
		int rc = evs_open(kit_dir, &o, &cs);
		kit_child_check(rc == EVS_OK, "evs_open: %s", evs_open_errmsg());
		evs_event_in evs[16];
		tu_mp mps[16];
		for (int i = 0; i < 16; i++)
			tu_mp_init(&mps[i]);
		for (uint64_t b = 0, next = 5; b < 30; b++, next += 16) {
			for (int i = 0; i < 16; i++) {
				tu_mp_reset(&mps[i]);
				tu_mp_blob_map(&mps[i], BLOB, next + (uint64_t)i);
				tu_event(&evs[i], "Blob", &mps[i], NULL);
			}
			evs_append_result r;
			rc = evs_append(cs, "big", EVS_ANY, evs, 16, &r);
			kit_child_check(rc == EVS_OK, "evs_append: %s", evs_errmsg(cs));
			kit_child_check(r.first_position == next, "position %llu",
					(unsigned long long)r.first_position);
		}
		for (int i = 0; i < 16; i++)
			tu_mp_destroy(&mps[i]);
		evs_close(cs);
		_exit(0);
	}
	kit_wait_child(pid, 300000, 1);

	/* this handle still maps 1 MiB: reads, follows and appends adopt the
	 * other process's growth */
	evs_store_info h;
	tu_ok(st, evs_head(st, &h));
	tu_check_u64_eq(h.last_position, 4 + 30 * 16);
	ck_assert_uint_gt(h.map_size, before.map_size);
	for (uint64_t p = 5; p <= 4 + 30 * 16; p++) {
		tu_ok(st, evs_sub_next(sub, &ev, 30000));
		tu_check_u64_eq(ev.position, p);
	}
	evs_sub_close(sub);
	check_blobs(st, 4 + 30 * 16, BLOB);
	append_blobs(st, "big", 4, 16, BLOB, NULL);
	check_blobs(st, 4 + 34 * 16, BLOB);
	tu_check_u64_eq(tu_verify(st), 0);
	evs_close(st);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		test_grows_far_past_initial,
		test_grows_under_concurrent_readers,
		test_grown_by_other_process,
		NULL,
	};

	return kit_main("store-growth", 600, tests);
}
