/*
 * test_restore.c - evs_restore writes exported events back with their
 * positions, versions, ids and recorded times; events that do not continue
 * the store are refused with EVS_RESTORE_ORDER and nothing is written.
 */
#include <pthread.h>
#include <string.h>

#include "kit_store.h"

static void same_event(const evs_event *x, const evs_event *y)
{
	ck_assert_uint_eq(x->position, y->position);
	ck_assert_uint_eq(x->version, y->version);
	ck_assert(x->stream.len == y->stream.len &&
		  memcmp(x->stream.ptr, y->stream.ptr, x->stream.len) == 0);
	ck_assert(x->type.len == y->type.len && memcmp(x->type.ptr, y->type.ptr, x->type.len) == 0);
	ck_assert_uint_eq(x->type_version, y->type_version);
	ck_assert_mem_eq(x->id, y->id, 16);
	ck_assert_int_eq(x->recorded_at, y->recorded_at);
	ck_assert_int_eq(x->occurred_at, y->occurred_at);
	ck_assert_mem_eq(x->correlation_id, y->correlation_id, 16);
	ck_assert_mem_eq(x->causation_id, y->causation_id, 16);
	ck_assert_uint_eq(x->data_len, y->data_len);
	ck_assert_mem_eq(x->data, y->data, x->data_len);
	ck_assert_uint_eq(x->metadata_len, y->metadata_len);
	ck_assert_mem_eq(x->metadata, y->metadata, x->metadata_len);
}

static void *group_appender(void *arg)
{
	evs_store *st = arg;
	char stream[32];
	snprintf(stream, sizeof stream, "grp-%lu", (unsigned long)(uintptr_t)pthread_self() % 7);
	for (int i = 0; i < 20; i++)
		if (tu_append_simple(st, stream, EVS_ANY, "G", 1, 0, 0, NULL) != EVS_OK)
			return (void *)1;
	return NULL;
}

/* A source store with varied events: several streams, multi-event commits,
 * group commits from threads, every optional field. */
static void fill_source(evs_store *st, uint64_t *r)
{
	for (int i = 0; i < 40; i++) {
		char stream[16];
		snprintf(stream, sizeof stream, "src-%d", (int)kit_rand_range(r, 0, 5));
		size_t k = kit_rand_range(r, 1, 6);
		evs_event_in evs[6];
		tu_mp data[6], meta[6];
		for (size_t j = 0; j < k; j++) {
			tu_mp_init(&data[j]);
			tu_mp_init(&meta[j]);
			tu_mp_blob_map(&data[j], kit_rand_range(r, 0, 300), kit_rand(r));
			tu_mp_map_ints(&meta[j], 1, "i", (long long)i);
			tu_event(&evs[j], j % 2 ? "Odd" : "Even", &data[j],
				 j % 3 ? &meta[j] : NULL);
			evs[j].type_version = (uint32_t)kit_rand_range(r, 0, 4);
			if (j % 2)
				evs[j].occurred_at = (int64_t)kit_rand_range(r, 1, INT64_MAX / 2);
			if (j % 3 == 1)
				tu_id(evs[j].correlation_id, 0xc0, kit_rand(r));
			if (j % 3 == 2)
				tu_id(evs[j].causation_id, 0xca, kit_rand(r));
		}
		evs_append_result res;
		tu_ok(st, evs_append(st, stream, EVS_ANY, evs, k, &res));
		for (size_t j = 0; j < k; j++) {
			tu_mp_destroy(&data[j]);
			tu_mp_destroy(&meta[j]);
		}
	}
	pthread_t th[6];
	for (int i = 0; i < 6; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, group_appender, st), 0);
	for (int i = 0; i < 6; i++) {
		void *ret;
		ck_assert_int_eq(pthread_join(th[i], &ret), 0);
		ck_assert_ptr_null(ret);
	}
}

static evs_event *views(tu_ev *evs, size_t n)
{
	evs_event *v = malloc((n ? n : 1) * sizeof *v);
	ck_assert_ptr_nonnull(v);
	for (size_t i = 0; i < n; i++)
		v[i] = evs[i].ev;
	return v;
}

START_TEST(test_roundtrip)
{
	uint64_t r;
	r = kit_seed("restore test_roundtrip");
	char src_dir[PATH_MAX], dst_dir[PATH_MAX];
	tu_path(src_dir, sizeof src_dir, "src");
	tu_path(dst_dir, sizeof dst_dir, "dst");
	evs_store *src = tu_open(src_dir, NULL);
	fill_source(src, &r);
	tu_ev *evs;
	size_t n = tu_read_all(src, &evs);
	ck_assert_uint_gt(n, 100);
	evs_event *v = views(evs, n);

	/* restore in random chunks (commits get split across calls) */
	evs_store *dst = tu_open(dst_dir, NULL);
	for (size_t i = 0; i < n;) {
		size_t k = kit_rand_range(&r, 1, 17);
		if (k > n - i)
			k = n - i;
		tu_ok(dst, evs_restore(dst, v + i, k));
		i += k;
	}
	tu_ok(dst, evs_restore(dst, v, 0)); /* nothing: fine */

	tu_ev *back;
	size_t nb = tu_read_all(dst, &back);
	ck_assert_uint_eq(nb, n);
	for (size_t i = 0; i < n; i++)
		same_event(&evs[i].ev, &back[i].ev);
	tu_evs_free(back, nb);

	evs_store_info hs, hd;
	tu_ok(src, evs_head(src, &hs));
	tu_ok(dst, evs_head(dst, &hd));
	ck_assert_uint_eq(hd.last_position, hs.last_position);
	ck_assert_int_eq(hd.last_recorded_at, hs.last_recorded_at);
	ck_assert_uint_eq(hd.streams, hs.streams);
	for (size_t i = 0; i < n; i++) {
		evs_stream_info a, b;
		char stream[EVS_MAX_NAME + 1];
		memcpy(stream, evs[i].ev.stream.ptr, evs[i].ev.stream.len);
		stream[evs[i].ev.stream.len] = 0;
		tu_ok(src, evs_stream_head(src, stream, &a));
		tu_ok(dst, evs_stream_head(dst, stream, &b));
		ck_assert_uint_eq(a.version, b.version);
		ck_assert_uint_eq(a.last_position, b.last_position);
		uint64_t id_pos;
		tu_ok(dst, evs_find_id(dst, evs[i].ev.id, &id_pos));
		ck_assert_uint_eq(id_pos, i + 1);
		/* the time index answers the same */
		uint64_t ps, pd;
		tu_ok(src, evs_position_at(src, evs[i].ev.recorded_at, &ps));
		tu_ok(dst, evs_position_at(dst, evs[i].ev.recorded_at, &pd));
		ck_assert_uint_eq(ps, pd);
		tu_ok(src, evs_position_at(src, evs[i].ev.recorded_at - 1, &ps));
		tu_ok(dst, evs_position_at(dst, evs[i].ev.recorded_at - 1, &pd));
		ck_assert_uint_eq(ps, pd);
	}
	ck_assert_uint_eq(tu_verify(dst), 0);

	/* appends continue after the restored events */
	evs_append_result res;
	tu_ok(dst, tu_append_simple(dst, "src-0", EVS_ANY, "After", 1, 0, 0, &res));
	ck_assert_uint_eq(res.first_position, n + 1);
	tu_ev *last;
	evs_iter *it;
	tu_ok(dst, evs_read_all(dst, EVS_ANY, EVS_BACKWARD, NULL, 1, &it));
	ck_assert_uint_eq(tu_drain(dst, it, &last), 1);
	ck_assert_int_gt(last[0].ev.recorded_at, hs.last_recorded_at);
	tu_evs_free(last, 1);
	ck_assert_uint_eq(tu_verify(dst), 0);

	free(v);
	tu_evs_free(evs, n);
	evs_close(src);
	evs_close(dst);
}
END_TEST

/* A restorable event: stream, version, position, recorded_at, id. */
static void make(evs_event *e, const char *stream, uint64_t ver, uint64_t pos, int64_t at,
		 uint64_t id)
{
	static const uint8_t empty_map[1] = {0x80};
	memset(e, 0, sizeof *e);
	e->stream.ptr = stream;
	e->stream.len = strlen(stream);
	e->type.ptr = "Restored";
	e->type.len = 8;
	e->type_version = 1;
	e->version = ver;
	e->position = pos;
	e->recorded_at = at;
	tu_id(e->id, 0x7e, id);
	e->data = empty_map;
	e->data_len = 1;
	e->metadata = empty_map;
	e->metadata_len = 1;
}

static void restore_refused(evs_store *st, const evs_event *evs, size_t n, int code, long index,
			    uint64_t last_position, const char *what)
{
	int rc = evs_restore(st, evs, n);
	ck_assert_msg(rc == code, "%s: got %s, want %s: %s", what, evs_code_name(rc),
		      evs_code_name(code), evs_errmsg(st));
	if (index >= 0)
		ck_assert_msg(tu_has_number(evs_errmsg(st), (unsigned long long)index),
			      "%s: message does not name event %ld: %s", what, index,
			      evs_errmsg(st));
	evs_store_info h;
	tu_ok(st, evs_head(st, &h));
	ck_assert_uint_eq(h.last_position, last_position);
	tu_ev *all;
	size_t got = tu_read_all(st, &all);
	ck_assert_uint_eq(got, last_position);
	tu_evs_free(all, got);
	for (size_t i = 0; i < n; i++) {
		uint64_t p;
		if (evs_find_id(st, evs[i].id, &p) == EVS_OK)
			ck_assert_uint_le(p, last_position);
	}
}

START_TEST(test_order_into_empty_store)
{
	evs_store *st = tu_open(kit_dir, NULL);
	const int64_t t = 1700000000000000000LL;
	evs_event e[4];

	/* a gap before the first event */
	make(&e[0], "a", 1, 2, t, 1);
	restore_refused(st, e, 1, EVS_RESTORE_ORDER, 0, 0, "first position 2");
	/* position 0 */
	make(&e[0], "a", 1, 0, t, 1);
	restore_refused(st, e, 1, EVS_RESTORE_ORDER, 0, 0, "position 0");
	/* a new stream starting at version 2 */
	make(&e[0], "a", 2, 1, t, 1);
	restore_refused(st, e, 1, EVS_RESTORE_ORDER, 0, 0, "first version 2");
	/* version 0 */
	make(&e[0], "a", 0, 1, t, 1);
	restore_refused(st, e, 1, EVS_RESTORE_ORDER, 0, 0, "version 0");
	/* fine first event, then a gap at index 2 */
	make(&e[0], "a", 1, 1, t, 1);
	make(&e[1], "a", 2, 2, t, 2);
	make(&e[2], "a", 3, 4, t, 3);
	restore_refused(st, e, 3, EVS_RESTORE_ORDER, 2, 0, "gap at index 2");
	/* a stream version skipped at index 1 */
	make(&e[1], "a", 3, 2, t, 2);
	restore_refused(st, e, 2, EVS_RESTORE_ORDER, 1, 0, "version skipped");
	/* a new stream in the batch starting at version 2 */
	make(&e[1], "b", 2, 2, t, 2);
	restore_refused(st, e, 2, EVS_RESTORE_ORDER, 1, 0, "new stream at version 2");
	/* time going back at index 1 */
	make(&e[1], "a", 2, 2, t - 1, 2);
	restore_refused(st, e, 2, EVS_RESTORE_ORDER, 1, 0, "time goes back");

	/* all fine */
	make(&e[1], "b", 1, 2, t, 2);
	make(&e[2], "a", 2, 3, t + 5, 3);
	tu_ok(st, evs_restore(st, e, 3));
	evs_store_info h;
	tu_ok(st, evs_head(st, &h));
	ck_assert_uint_eq(h.last_position, 3);
	ck_assert_int_eq(h.last_recorded_at, t + 5);
	ck_assert_uint_eq(h.streams, 2);
	ck_assert_uint_eq(tu_verify(st), 0);
	evs_close(st);
}
END_TEST

START_TEST(test_order_after_existing)
{
	evs_store *st = tu_open(kit_dir, NULL);
	tu_ok(st, tu_append_simple(st, "a", EVS_ANY, "T", 2, 0, 0, NULL)); /* a:1-2 */
	tu_ok(st, tu_append_simple(st, "b", EVS_ANY, "T", 1, 0, 0, NULL)); /* b:3 */
	evs_store_info h;
	tu_ok(st, evs_head(st, &h));
	const int64_t t = h.last_recorded_at;
	evs_event e[5];

	make(&e[0], "a", 3, 3, t, 10);
	restore_refused(st, e, 1, EVS_RESTORE_ORDER, 0, 3, "position taken");
	make(&e[0], "a", 3, 5, t, 10);
	restore_refused(st, e, 1, EVS_RESTORE_ORDER, 0, 3, "position gap");
	make(&e[0], "a", 2, 4, t, 10);
	restore_refused(st, e, 1, EVS_RESTORE_ORDER, 0, 3, "version taken");
	make(&e[0], "a", 4, 4, t, 10);
	restore_refused(st, e, 1, EVS_RESTORE_ORDER, 0, 3, "version gap");
	make(&e[0], "a", 3, 4, t - 1, 10);
	restore_refused(st, e, 1, EVS_RESTORE_ORDER, 0, 3, "time before the last");

	/* a batch of 5 with a bad 4th event writes nothing */
	make(&e[0], "a", 3, 4, t + 10, 10);
	make(&e[1], "b", 2, 5, t + 10, 11);
	make(&e[2], "c", 1, 6, t + 20, 12);
	make(&e[3], "c", 1, 7, t + 30, 13); /* version 1 again */
	make(&e[4], "c", 2, 8, t + 30, 14);
	restore_refused(st, e, 5, EVS_RESTORE_ORDER, 3, 3, "bad 4th");

	/* an id that is stored already */
	make(&e[3], "c", 2, 7, t + 30, 10);
	int rc = evs_restore(st, e, 4);
	ck_assert_int_ne(rc, EVS_OK);
	tu_ok(st, evs_head(st, &h));
	ck_assert_uint_eq(h.last_position, 3);

	make(&e[3], "c", 2, 7, t + 30, 13);
	make(&e[4], "c", 3, 8, t + 30, 14);
	tu_ok(st, evs_restore(st, e, 5));
	tu_ok(st, evs_head(st, &h));
	ck_assert_uint_eq(h.last_position, 8);
	ck_assert_uint_eq(h.streams, 3);
	ck_assert_uint_eq(tu_verify(st), 0);

	/* as-of over the restored times */
	uint64_t p;
	tu_ok(st, evs_position_at(st, t + 10, &p));
	ck_assert_uint_eq(p, 5);
	tu_ok(st, evs_position_at(st, t + 29, &p));
	ck_assert_uint_eq(p, 6);
	tu_ok(st, evs_position_at(st, t + 30, &p));
	ck_assert_uint_eq(p, 8);

	/* a new stream that does not start at version 1 */
	make(&e[0], "new", 2, 9, t + 40, 20);
	restore_refused(st, e, 1, EVS_RESTORE_ORDER, 0, 8, "new stream at version 2");
	make(&e[0], "c", 4, 9, t + 40, 20);
	make(&e[1], "new", 2, 10, t + 40, 21);
	restore_refused(st, e, 2, EVS_RESTORE_ORDER, 1, 8, "new stream at version 2, index 1");
	evs_close(st);
}
END_TEST

START_TEST(test_future_times_then_append)
{
	/* restored times ahead of the clock: later appends must not go back */
	evs_store *st = tu_open(kit_dir, NULL);
	const int64_t future = kit_now_ns() + 3600LL * 1000000000;
	evs_event e[2];
	make(&e[0], "a", 1, 1, future, 1);
	make(&e[1], "a", 2, 2, future, 2);
	tu_ok(st, evs_restore(st, e, 2));
	evs_append_result r;
	tu_ok(st, tu_append_simple(st, "a", 2, "T", 2, 0, 0, &r));
	ck_assert_uint_eq(r.first_position, 3);
	ck_assert_uint_eq(r.version, 4);
	tu_ev *evs;
	size_t n = tu_read_all(st, &evs);
	ck_assert_uint_eq(n, 4);
	ck_assert_int_gt(evs[2].ev.recorded_at, future);
	ck_assert_int_eq(evs[3].ev.recorded_at, evs[2].ev.recorded_at);
	tu_evs_free(evs, n);
	uint64_t p;
	tu_ok(st, evs_position_at(st, future, &p));
	ck_assert_uint_eq(p, 2);
	ck_assert_uint_eq(tu_verify(st), 0);
	evs_close(st);
}
END_TEST

START_TEST(test_restore_grows_the_map)
{
	char src_dir[PATH_MAX], dst_dir[PATH_MAX];
	tu_path(src_dir, sizeof src_dir, "src");
	tu_path(dst_dir, sizeof dst_dir, "dst");
	evs_store *src = tu_open(src_dir, NULL);
	evs_event_in in[16];
	tu_mp mps[16];
	for (int i = 0; i < 16; i++)
		tu_mp_init(&mps[i]);
	for (int b = 0; b < 24; b++) {
		for (int i = 0; i < 16; i++) {
			tu_mp_reset(&mps[i]);
			tu_mp_blob_map(&mps[i], 64 * 1024, (uint64_t)(b * 16 + i));
			tu_event(&in[i], "Blob", &mps[i], NULL);
		}
		evs_append_result r;
		tu_ok(src, evs_append(src, b % 2 ? "odd" : "even", EVS_ANY, in, 16, &r));
	}
	for (int i = 0; i < 16; i++)
		tu_mp_destroy(&mps[i]);
	tu_ev *evs;
	size_t n = tu_read_all(src, &evs);
	ck_assert_uint_eq(n, 24 * 16);
	evs_event *v = views(evs, n);

	/* 24 MiB restored into a 1 MiB map, 96 events (6 MiB) per call */
	evs_options o;
	evs_options_init(&o);
	o.map_size = (size_t)1 << 20;
	evs_store *dst = tu_open(dst_dir, &o);
	for (size_t i = 0; i < n; i += 96)
		tu_ok(dst, evs_restore(dst, v + i, n - i < 96 ? n - i : 96));
	tu_ev *back;
	size_t nb = tu_read_all(dst, &back);
	ck_assert_uint_eq(nb, n);
	for (size_t i = 0; i < n; i++)
		same_event(&evs[i].ev, &back[i].ev);
	tu_evs_free(back, nb);
	evs_store_info h;
	tu_ok(dst, evs_head(dst, &h));
	ck_assert_uint_gt(h.map_size, (size_t)24 << 20);
	ck_assert_uint_eq(tu_verify(dst), 0);
	free(v);
	tu_evs_free(evs, n);
	evs_close(src);
	evs_close(dst);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		test_roundtrip,
		test_order_into_empty_store,
		test_order_after_existing,
		test_future_times_then_append,
		test_restore_grows_the_map,
		NULL,
	};

	return kit_main("store-restore", 600, tests);
}
