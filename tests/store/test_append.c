/*
 * test_append.c - appending batches: positions, versions, result fields,
 * expected versions, idempotent retries and id conflicts, evs_find_id,
 * stream and store heads, generated ids.
 */
#include <pthread.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kit_store.h"

static void assert_nothing_written(evs_store *st, uint64_t last_position, const char *stream,
				   uint64_t version)
{
	evs_store_info h;
	tu_ok(st, evs_head(st, &h));
	ck_assert_uint_eq(h.last_position, last_position);
	evs_stream_info sh;
	if (version == 0) {
		tu_assert_rc(st, evs_stream_head(st, stream, &sh), EVS_NOT_FOUND);
	} else {
		tu_ok(st, evs_stream_head(st, stream, &sh));
		ck_assert_uint_eq(sh.version, version);
	}
	tu_ev *evs;
	size_t n = tu_read_all(st, &evs);
	ck_assert_uint_eq(n, last_position);
	tu_evs_free(evs, n);
}

static int is_uuid_v7(const uint8_t id[16])
{
	return (id[6] >> 4) == 7 && (id[8] & 0xc0) == 0x80;
}

START_TEST(test_batch_positions_and_fields)
{
	evs_store *st = tu_open(kit_dir, NULL);
	evs_append_result r;

	int64_t t0 = kit_now_ns();
	tu_ok(st, tu_append_simple(st, "order-1", EVS_NO_STREAM, "Placed", 5, 0, 0, &r));
	int64_t t1 = kit_now_ns();
	ck_assert_uint_eq(r.first_position, 1);
	ck_assert_uint_eq(r.last_position, 5);
	ck_assert_uint_eq(r.version, 5);
	ck_assert_int_eq(r.idempotent, 0);

	tu_ok(st, tu_append_simple(st, "order-2", EVS_NO_STREAM, "Placed", 3, 0, 0, &r));
	ck_assert_uint_eq(r.first_position, 6);
	ck_assert_uint_eq(r.last_position, 8);
	ck_assert_uint_eq(r.version, 3);
	ck_assert_int_eq(r.idempotent, 0);

	/* one event with every field set */
	tu_mp data, meta;
	tu_mp_init(&data);
	tu_mp_init(&meta);
	msgpack_pack_map(&data.pk, 3);
	tu_mp_str(&data, "name");
	tu_mp_str(&data, "grüße");
	tu_mp_str(&data, "nested");
	tu_mp_map_ints(&data, 2, "a", 1LL, "b", -2LL);
	tu_mp_str(&data, "list");
	msgpack_pack_array(&data.pk, 2);
	msgpack_pack_nil(&data.pk);
	msgpack_pack_double(&data.pk, 1.5);
	tu_mp_map_ints(&meta, 1, "user", 42LL);
	evs_event_in evs[2];
	tu_event(&evs[0], "Shipped", &data, &meta);
	evs[0].type_version = 3;
	tu_id(evs[0].id, 0xabc, 1);
	evs[0].occurred_at = 1700000000123456789LL;
	tu_id(evs[0].correlation_id, 0xc0, 1);
	tu_id(evs[0].causation_id, 0xca, 1);
	tu_event(&evs[1], "Noted", NULL, NULL); /* empty maps, generated id */
	tu_ok(st, evs_append(st, "order-1", 5, evs, 2, &r));
	ck_assert_uint_eq(r.first_position, 9);
	ck_assert_uint_eq(r.last_position, 10);
	ck_assert_uint_eq(r.version, 7);

	tu_ev *all;
	size_t n = tu_read_all(st, &all);
	ck_assert_uint_eq(n, 10);
	const char *streams[10] = {"order-1", "order-1", "order-1", "order-1", "order-1",
				   "order-2", "order-2", "order-2", "order-1", "order-1"};
	const uint64_t versions[10] = {1, 2, 3, 4, 5, 1, 2, 3, 6, 7};
	for (size_t i = 0; i < n; i++) {
		const evs_event *e = &all[i].ev;
		ck_assert_uint_eq(e->position, i + 1);
		ck_assert_msg(tu_str_eq(e->stream, streams[i]), "stream of %zu", i);
		ck_assert_uint_eq(e->version, versions[i]);
		ck_assert_int_gt(e->recorded_at, 0);
		if (i > 0)
			ck_assert_int_ge(e->recorded_at, all[i - 1].ev.recorded_at);
		if (i < 8) {
			ck_assert(tu_str_eq(e->type, "Placed"));
			ck_assert_uint_eq(e->type_version, 1);
			ck_assert_int_eq(e->occurred_at, 0);
			ck_assert_msg(is_uuid_v7(e->id), "generated id of %zu is not a UUIDv7", i);
			int64_t v = -1;
			ck_assert_int_eq(tu_mp_get_int(e->data, e->data_len, "n", &v), 0);
			ck_assert_int_eq(v, i < 5 ? (int64_t)i : (int64_t)i - 5);
		}
		for (size_t j = 0; j < i; j++)
			ck_assert_msg(memcmp(all[j].ev.id, e->id, 16) != 0, "ids %zu and %zu equal",
				      j, i);
	}
	/* a batch is one commit: one recorded_at, within the call */
	for (size_t i = 1; i < 5; i++)
		ck_assert_int_eq(all[i].ev.recorded_at, all[0].ev.recorded_at);
	ck_assert_int_ge(all[0].ev.recorded_at, t0);
	ck_assert_int_le(all[0].ev.recorded_at, t1);

	const evs_event *e = &all[8].ev;
	ck_assert(tu_str_eq(e->type, "Shipped"));
	ck_assert_uint_eq(e->type_version, 3);
	uint8_t id[16];
	tu_id(id, 0xabc, 1);
	ck_assert_mem_eq(e->id, id, 16);
	ck_assert_int_eq(e->occurred_at, 1700000000123456789LL);
	tu_id(id, 0xc0, 1);
	ck_assert_mem_eq(e->correlation_id, id, 16);
	tu_id(id, 0xca, 1);
	ck_assert_mem_eq(e->causation_id, id, 16);
	ck_assert_uint_eq(e->data_len, data.sb.size);
	ck_assert_mem_eq(e->data, data.sb.data, data.sb.size);
	ck_assert_uint_eq(e->metadata_len, meta.sb.size);
	ck_assert_mem_eq(e->metadata, meta.sb.data, meta.sb.size);

	e = &all[9].ev;
	ck_assert(tu_str_eq(e->type, "Noted"));
	ck_assert(is_uuid_v7(e->id));
	static const uint8_t zero[16];
	ck_assert_mem_eq(e->correlation_id, zero, 16);
	ck_assert_mem_eq(e->causation_id, zero, 16);
	ck_assert_uint_eq(e->data_len, 1); /* NULL data = the empty map */
	ck_assert_uint_eq(((const uint8_t *)e->data)[0], 0x80);
	ck_assert_uint_eq(e->metadata_len, 1);
	ck_assert_uint_eq(((const uint8_t *)e->metadata)[0], 0x80);

	/* heads */
	evs_stream_info sh;
	tu_ok(st, evs_stream_head(st, "order-1", &sh));
	ck_assert_uint_eq(sh.version, 7);
	ck_assert_uint_eq(sh.last_position, 10);
	tu_ok(st, evs_stream_head(st, "order-2", &sh));
	ck_assert_uint_eq(sh.version, 3);
	ck_assert_uint_eq(sh.last_position, 8);
	evs_store_info h;
	tu_ok(st, evs_head(st, &h));
	ck_assert_uint_eq(h.last_position, 10);
	ck_assert_int_eq(h.last_recorded_at, all[9].ev.recorded_at);
	ck_assert_uint_eq(h.streams, 2);
	ck_assert_uint_gt(h.used_bytes, 0);
	ck_assert_uint_le(h.used_bytes, h.map_size);

	/* evs_find_id for every event */
	for (size_t i = 0; i < n; i++) {
		uint64_t pos = 0;
		tu_ok(st, evs_find_id(st, all[i].ev.id, &pos));
		ck_assert_uint_eq(pos, i + 1);
	}
	uint64_t pos = 77;
	tu_id(id, 0xdead, 1);
	tu_assert_rc(st, evs_find_id(st, id, &pos), EVS_NOT_FOUND);

	tu_evs_free(all, n);
	tu_mp_destroy(&data);
	tu_mp_destroy(&meta);
	ck_assert_uint_eq(tu_verify(st), 0);
	evs_close(st);
}
END_TEST

START_TEST(test_stream_head_missing)
{
	evs_store *st = tu_open(kit_dir, NULL);
	evs_stream_info sh;
	memset(&sh, 0x77, sizeof sh);
	tu_assert_rc(st, evs_stream_head(st, "ghost", &sh), EVS_NOT_FOUND);
	ck_assert_uint_eq(sh.version, 0);
	ck_assert_uint_eq(sh.last_position, 0);
	tu_ok(st, tu_append_simple(st, "ghost-1", EVS_ANY, "T", 1, 0, 0, NULL));
	tu_ok(st, tu_append_simple(st, "ghos", EVS_ANY, "T", 1, 0, 0, NULL));
	memset(&sh, 0x77, sizeof sh);
	tu_assert_rc(st, evs_stream_head(st, "ghost", &sh), EVS_NOT_FOUND);
	ck_assert_uint_eq(sh.version, 0);
	ck_assert_uint_eq(sh.last_position, 0);
	tu_ok(st, evs_stream_head(st, "ghos", &sh));
	ck_assert_uint_eq(sh.version, 1);
	ck_assert_uint_eq(sh.last_position, 2);
	evs_close(st);
}
END_TEST

START_TEST(test_expected_version)
{
	evs_store *st = tu_open(kit_dir, NULL);
	evs_append_result r;

	/* EVS_STREAM_EXISTS on a new stream */
	memset(&r, 0x55, sizeof r);
	tu_assert_rc(st, tu_append_simple(st, "s", EVS_STREAM_EXISTS, "T", 1, 1, 100, &r),
		     EVS_WRONG_VERSION);
	ck_assert_uint_eq(r.version, 0);
	assert_nothing_written(st, 0, "s", 0);

	/* an exact version on a new stream */
	memset(&r, 0x55, sizeof r);
	tu_assert_rc(st, tu_append_simple(st, "s", 3, "T", 1, 1, 101, &r), EVS_WRONG_VERSION);
	ck_assert_uint_eq(r.version, 0);
	assert_nothing_written(st, 0, "s", 0);
	ck_assert_str_ne(evs_errmsg(st), "");

	/* EVS_NO_STREAM on a new stream */
	tu_ok(st, tu_append_simple(st, "s", EVS_NO_STREAM, "T", 2, 1, 0, &r));
	ck_assert_uint_eq(r.version, 2);

	/* EVS_NO_STREAM (= exact 0) on an existing stream */
	memset(&r, 0x55, sizeof r);
	tu_assert_rc(st, tu_append_simple(st, "s", EVS_NO_STREAM, "T", 3, 1, 102, &r),
		     EVS_WRONG_VERSION);
	ck_assert_uint_eq(r.version, 2);
	assert_nothing_written(st, 2, "s", 2);

	/* EVS_STREAM_EXISTS on an existing stream */
	tu_ok(st, tu_append_simple(st, "s", EVS_STREAM_EXISTS, "T", 1, 1, 2, &r));
	ck_assert_uint_eq(r.version, 3);
	ck_assert_uint_eq(r.first_position, 3);

	/* exact: behind, ahead, far ahead */
	const uint64_t wrong[] = {1, 2, 4, 5, 1000, EVS_STREAM_EXISTS - 1};
	for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
		memset(&r, 0x55, sizeof r);
		tu_assert_rc(st, tu_append_simple(st, "s", wrong[i], "T", 2, 1, 200 + 2 * i, &r),
			     EVS_WRONG_VERSION);
		ck_assert_uint_eq(r.version, 3);
		assert_nothing_written(st, 3, "s", 3);
	}
	/* none of the refused ids is stored */
	for (uint64_t k = 100; k < 220; k++) {
		uint8_t id[16];
		uint64_t pos;
		tu_id(id, 1, k);
		tu_assert_rc(st, evs_find_id(st, id, &pos), EVS_NOT_FOUND);
	}

	/* exact: right */
	tu_ok(st, tu_append_simple(st, "s", 3, "T", 2, 1, 3, &r));
	ck_assert_uint_eq(r.version, 5);
	ck_assert_uint_eq(r.first_position, 4);
	ck_assert_uint_eq(r.last_position, 5);

	/* EVS_ANY: always */
	tu_ok(st, tu_append_simple(st, "s", EVS_ANY, "T", 1, 1, 5, &r));
	ck_assert_uint_eq(r.version, 6);
	tu_ok(st, tu_append_simple(st, "t", EVS_ANY, "T", 1, 1, 6, &r));
	ck_assert_uint_eq(r.version, 1);
	ck_assert_uint_eq(r.first_position, 7);

	/* another stream's version does not matter */
	tu_ok(st, tu_append_simple(st, "t", 1, "T", 1, 1, 7, &r));
	ck_assert_uint_eq(r.version, 2);
	ck_assert_uint_eq(tu_verify(st), 0);
	evs_close(st);
}
END_TEST

/* Batch of `n` events with ids tu_id(tag, ids[i]) and data {"n": vals[i]}. */
static int append_ids(evs_store *st, const char *stream, uint64_t expected, const char *type,
		      const uint64_t *ids, const int64_t *vals, size_t n, evs_append_result *r)
{
	evs_event_in evs[16];
	tu_mp mps[16];
	ck_assert_uint_le(n, 16);
	for (size_t i = 0; i < n; i++) {
		tu_mp_init(&mps[i]);
		tu_mp_map_ints(&mps[i], 1, "n", (long long)vals[i]);
		tu_event(&evs[i], type, &mps[i], NULL);
		tu_id(evs[i].id, 0x1d, ids[i]);
	}
	memset(r, 0x55, sizeof *r);
	int rc = evs_append(st, stream, expected, evs, n, r);
	for (size_t i = 0; i < n; i++)
		tu_mp_destroy(&mps[i]);
	return rc;
}

START_TEST(test_idempotent_retry)
{
	evs_store *st = tu_open(kit_dir, NULL);
	const uint64_t ids[3] = {1, 2, 3};
	const int64_t vals[3] = {10, 20, 30};
	evs_append_result r0, r;

	tu_ok(st, tu_append_simple(st, "other", EVS_ANY, "T", 2, 0, 0, &r)); /* 1..2 */
	tu_ok(st, append_ids(st, "acct", EVS_NO_STREAM, "Opened", ids, vals, 3, &r0));
	ck_assert_uint_eq(r0.first_position, 3);
	ck_assert_uint_eq(r0.last_position, 5);
	ck_assert_uint_eq(r0.version, 3);
	ck_assert_int_eq(r0.idempotent, 0);

	/* an exact retry with the same expected version */
	tu_ok(st, append_ids(st, "acct", EVS_NO_STREAM, "Opened", ids, vals, 3, &r));
	ck_assert_int_eq(r.idempotent, 1);
	ck_assert_uint_eq(r.first_position, 3);
	ck_assert_uint_eq(r.last_position, 5);
	ck_assert_uint_eq(r.version, 3);
	assert_nothing_written(st, 5, "acct", 3);

	/* more events after it; a retry still returns the original result */
	tu_ok(st, tu_append_simple(st, "acct", 3, "T", 2, 0, 0, &r));        /* 6..7 */
	tu_ok(st, tu_append_simple(st, "other", EVS_ANY, "T", 1, 0, 0, &r)); /* 8 */
	const uint64_t expecteds[] = {EVS_NO_STREAM, EVS_ANY, EVS_STREAM_EXISTS, 3, 5};
	for (size_t i = 0; i < sizeof expecteds / sizeof expecteds[0]; i++) {
		tu_ok(st, append_ids(st, "acct", expecteds[i], "Opened", ids, vals, 3, &r));
		ck_assert_int_eq(r.idempotent, 1);
		ck_assert_uint_eq(r.first_position, 3);
		ck_assert_uint_eq(r.last_position, 5);
		ck_assert_uint_eq(r.version, 3);
		assert_nothing_written(st, 8, "acct", 5);
	}

	/* a single-event batch, retried after reopening */
	const uint64_t one[1] = {9};
	const int64_t oneval[1] = {90};
	tu_ok(st, append_ids(st, "acct", 5, "Closed", one, oneval, 1, &r0));
	ck_assert_uint_eq(r0.first_position, 9);
	evs_close(st);
	st = tu_open(kit_dir, NULL);
	tu_ok(st, append_ids(st, "acct", 5, "Closed", one, oneval, 1, &r));
	ck_assert_int_eq(r.idempotent, 1);
	ck_assert_uint_eq(r.first_position, 9);
	ck_assert_uint_eq(r.last_position, 9);
	ck_assert_uint_eq(r.version, 6);
	assert_nothing_written(st, 9, "acct", 6);
	ck_assert_uint_eq(tu_verify(st), 0);
	evs_close(st);
}
END_TEST

START_TEST(test_id_conflict_other_content)
{
	evs_store *st = tu_open(kit_dir, NULL);
	const uint64_t ids[2] = {1, 2};
	const int64_t vals[2] = {10, 20};
	evs_append_result r;
	tu_ok(st, append_ids(st, "acct", EVS_ANY, "Opened", ids, vals, 2, &r));

	/* other data */
	const int64_t other_vals[2] = {10, 21};
	tu_assert_rc(st, append_ids(st, "acct", EVS_ANY, "Opened", ids, other_vals, 2, &r),
		     EVS_ID_CONFLICT);
	ck_assert_str_ne(evs_errmsg(st), "");
	assert_nothing_written(st, 2, "acct", 2);
	/* other type */
	tu_assert_rc(st, append_ids(st, "acct", EVS_ANY, "Closed", ids, vals, 2, &r),
		     EVS_ID_CONFLICT);
	assert_nothing_written(st, 2, "acct", 2);
	/* other stream */
	tu_assert_rc(st, append_ids(st, "acct-2", EVS_ANY, "Opened", ids, vals, 2, &r),
		     EVS_ID_CONFLICT);
	assert_nothing_written(st, 2, "acct-2", 0);
	/* a single event whose id is stored, other content */
	tu_assert_rc(st, append_ids(st, "acct", EVS_ANY, "Opened", ids + 1, vals, 1, &r),
		     EVS_ID_CONFLICT);
	assert_nothing_written(st, 2, "acct", 2);

	/* other metadata */
	evs_event_in ev;
	tu_mp data, meta;
	tu_mp_init(&data);
	tu_mp_init(&meta);
	tu_mp_map_ints(&data, 1, "n", 10LL);
	tu_mp_map_ints(&meta, 1, "m", 1LL);
	tu_event(&ev, "Opened", &data, &meta);
	tu_id(ev.id, 0x1d, 1);
	tu_assert_rc(st, evs_append(st, "acct", EVS_ANY, &ev, 1, &r), EVS_ID_CONFLICT);
	assert_nothing_written(st, 2, "acct", 2);
	tu_mp_destroy(&data);
	tu_mp_destroy(&meta);

	/* the stored events are untouched */
	tu_ev *all;
	size_t n = tu_read_all(st, &all);
	ck_assert_uint_eq(n, 2);
	int64_t v;
	ck_assert_int_eq(tu_mp_get_int(all[1].ev.data, all[1].ev.data_len, "n", &v), 0);
	ck_assert_int_eq(v, 20);
	tu_evs_free(all, n);
	evs_close(st);
}
END_TEST

START_TEST(test_id_conflict_partial_batch)
{
	evs_store *st = tu_open(kit_dir, NULL);
	evs_append_result r;
	const uint64_t ab[2] = {1, 2};
	const int64_t vab[2] = {1, 2};
	tu_ok(st, append_ids(st, "s", EVS_ANY, "T", ab, vab, 2, &r));

	const uint64_t abc[3] = {1, 2, 3};
	const int64_t vabc[3] = {1, 2, 3};
	tu_assert_rc(st, append_ids(st, "s", EVS_ANY, "T", abc, vabc, 3, &r), EVS_ID_CONFLICT);
	assert_nothing_written(st, 2, "s", 2);

	const uint64_t ca[2] = {3, 1};
	const int64_t vca[2] = {3, 1};
	tu_assert_rc(st, append_ids(st, "s", EVS_ANY, "T", ca, vca, 2, &r), EVS_ID_CONFLICT);
	assert_nothing_written(st, 2, "s", 2);

	/* the first event of the stored batch, in a new batch with a new one */
	const uint64_t ac[2] = {1, 3};
	const int64_t vac[2] = {1, 3};
	tu_assert_rc(st, append_ids(st, "s", EVS_ANY, "T", ac, vac, 2, &r), EVS_ID_CONFLICT);
	assert_nothing_written(st, 2, "s", 2);

	uint8_t id[16];
	uint64_t pos;
	tu_id(id, 0x1d, 3);
	tu_assert_rc(st, evs_find_id(st, id, &pos), EVS_NOT_FOUND);

	/* the new id alone is fine */
	tu_ok(st, append_ids(st, "s", 2, "T", abc + 2, vabc + 2, 1, &r));
	ck_assert_uint_eq(r.first_position, 3);
	ck_assert_int_eq(r.idempotent, 0);

	/* ids stored by separate appends, not one batch: 10 at position 4,
	 * another stream's event at 5, 11 at 6 (versions 4 and 5 of "s") */
	const uint64_t ten[1] = {10}, eleven[1] = {11}, pair[2] = {10, 11};
	const int64_t v10[1] = {10}, v11[1] = {11}, vpair[2] = {10, 11};
	tu_ok(st, append_ids(st, "s", 3, "T", ten, v10, 1, &r));
	tu_ok(st, tu_append_simple(st, "other", EVS_ANY, "T", 1, 0, 0, &r));
	tu_ok(st, append_ids(st, "s", 4, "T", eleven, v11, 1, &r));
	ck_assert_uint_eq(r.first_position, 6);
	tu_assert_rc(st, append_ids(st, "s", EVS_ANY, "T", pair, vpair, 2, &r), EVS_ID_CONFLICT);
	assert_nothing_written(st, 6, "s", 5);
	/* the same with a gap in versions: 12 at version 6, 13 at version 8 */
	const uint64_t twelve[1] = {12}, thirteen[1] = {13}, pair2[2] = {12, 13};
	const int64_t v12[1] = {12}, v13[1] = {13}, vpair2[2] = {12, 13};
	tu_ok(st, append_ids(st, "s", 5, "T", twelve, v12, 1, &r));
	tu_ok(st, tu_append_simple(st, "s", 6, "T", 1, 0, 0, &r));
	tu_ok(st, append_ids(st, "s", 7, "T", thirteen, v13, 1, &r));
	tu_assert_rc(st, append_ids(st, "s", EVS_ANY, "T", pair2, vpair2, 2, &r), EVS_ID_CONFLICT);
	assert_nothing_written(st, 9, "s", 8);
	evs_close(st);
}
END_TEST

START_TEST(test_id_repeated_in_batch)
{
	evs_store *st = tu_open(kit_dir, NULL);
	evs_append_result r;
	const uint64_t ids[3] = {5, 6, 5};
	const int64_t same[3] = {1, 2, 1};
	tu_assert_rc(st, append_ids(st, "s", EVS_ANY, "T", ids, same, 3, &r), EVS_ID_CONFLICT);
	assert_nothing_written(st, 0, "s", 0);
	const int64_t diff[3] = {1, 2, 3};
	tu_assert_rc(st, append_ids(st, "s", EVS_ANY, "T", ids, diff, 3, &r), EVS_ID_CONFLICT);
	assert_nothing_written(st, 0, "s", 0);
	const uint64_t adj[2] = {7, 7};
	tu_assert_rc(st, append_ids(st, "s", EVS_ANY, "T", adj, same, 2, &r), EVS_ID_CONFLICT);
	assert_nothing_written(st, 0, "s", 0);
	uint8_t id[16];
	uint64_t pos;
	tu_id(id, 0x1d, 5);
	tu_assert_rc(st, evs_find_id(st, id, &pos), EVS_NOT_FOUND);
	evs_close(st);
}
END_TEST

static int cmp_id16(const void *a, const void *b)
{
	return memcmp(a, b, 16);
}

START_TEST(test_uuid_v7)
{
	enum { N = 2000 };
	uint8_t(*ids)[16] = malloc(N * sizeof *ids);
	ck_assert_ptr_nonnull(ids);
	int64_t now_ms = kit_now_ns() / 1000000;
	for (int i = 0; i < N; i++) {
		evs_uuid_v7(ids[i]);
		ck_assert(is_uuid_v7(ids[i]));
		uint64_t ms = 0;
		for (int b = 0; b < 6; b++)
			ms = ms << 8 | ids[i][b];
		ck_assert_int_ge((int64_t)ms, now_ms - 1000);
		ck_assert_int_le((int64_t)ms, now_ms + 60000);
		if (i > 0)
			ck_assert_int_ge(memcmp(ids[i], ids[i - 1], 6), 0);
	}
	qsort(ids, N, sizeof ids[0], cmp_id16);
	for (int i = 1; i < N; i++)
		ck_assert_msg(memcmp(ids[i - 1], ids[i], 16) != 0, "a UUIDv7 repeated");
	free(ids);
}
END_TEST

/* Ids come from a per-thread pool of random bytes (uuid.c): a forked child
 * must not hand out the bytes its parent still holds. The parent draws one
 * id (its pool now holds 24 more), forks; the child's next ids and the
 * parent's next ids, written through a pipe, must not share a random tail. */
START_TEST(test_uuid_v7_fork)
{
	enum { N = 40 };
	uint8_t first[16], mine[N][16], theirs[N][16];
	int fds[2];
	evs_uuid_v7(first);
	ck_assert_int_eq(pipe(fds), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		for (int i = 0; i < N; i++)
			evs_uuid_v7(mine[i]);
		ssize_t w = write(fds[1], mine, sizeof mine);
		_exit(w == (ssize_t)sizeof mine ? 0 : 1);
	}
	close(fds[1]);
	for (int i = 0; i < N; i++)
		evs_uuid_v7(mine[i]);
	size_t got = 0;
	while (got < sizeof theirs) {
		ssize_t n = read(fds[0], (uint8_t *)theirs + got, sizeof theirs - got);
		ck_assert_int_gt(n, 0);
		got += (size_t)n;
	}
	close(fds[0]);
	int status = 0;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	for (int i = 0; i < N; i++)
		for (int j = 0; j < N; j++)
			ck_assert_msg(memcmp(mine[i] + 6, theirs[j] + 6, 10) != 0,
				      "parent and child drew the same random bits");
}
END_TEST

START_TEST(test_streams_count)
{
	evs_store *st = tu_open(kit_dir, NULL);
	char name[32];
	for (int i = 0; i < 60; i++) {
		snprintf(name, sizeof name, "s-%d", i % 20);
		tu_ok(st, tu_append_simple(st, name, EVS_ANY, "T", 1, 0, 0, NULL));
	}
	evs_store_info h;
	tu_ok(st, evs_head(st, &h));
	ck_assert_uint_eq(h.streams, 20);
	ck_assert_uint_eq(h.last_position, 60);
	for (int i = 0; i < 20; i++) {
		evs_stream_info sh;
		snprintf(name, sizeof name, "s-%d", i);
		tu_ok(st, evs_stream_head(st, name, &sh));
		ck_assert_uint_eq(sh.version, 3);
		ck_assert_uint_eq(sh.last_position, 40 + (uint64_t)i + 1);
	}
	evs_close(st);
}
END_TEST

typedef struct conflict_thread {
	evs_store *st;
	int rc;
	char msg[512];
	char after_main[512];
	pthread_barrier_t *bar;
} conflict_thread;

static void *conflicting(void *arg)
{
	conflict_thread *t = arg;
	t->rc = tu_append_simple(t->st, "s", 7, "T", 1, 0, 0, NULL);
	snprintf(t->msg, sizeof t->msg, "%s", evs_errmsg(t->st));
	pthread_barrier_wait(t->bar); /* main fails with another error now */
	pthread_barrier_wait(t->bar);
	snprintf(t->after_main, sizeof t->after_main, "%s", evs_errmsg(t->st));
	return NULL;
}

START_TEST(test_error_message_per_thread)
{
	evs_store *st = tu_open(kit_dir, NULL);
	tu_ok(st, tu_append_simple(st, "s", EVS_ANY, "T", 2, 0, 0, NULL));
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, 2);
	conflict_thread t = {st, 0, "", "", &bar};
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, conflicting, &t), 0);
	pthread_barrier_wait(&bar);
	evs_event_in ev;
	tu_event(&ev, "", NULL, NULL);
	evs_append_result r;
	tu_assert_rc(st, evs_append(st, "s", EVS_ANY, &ev, 1, &r), EVS_BAD_TYPE);
	char mine[512];
	snprintf(mine, sizeof mine, "%s", evs_errmsg(st));
	pthread_barrier_wait(&bar);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	pthread_barrier_destroy(&bar);

	ck_assert_int_eq(t.rc, EVS_WRONG_VERSION);
	ck_assert_str_ne(t.msg, "");
	ck_assert_str_ne(mine, "");
	/* the thread's message names the versions, mine the type problem */
	ck_assert_msg(tu_has_number(t.msg, 7) && tu_has_number(t.msg, 2),
		      "wrong-version message: %s", t.msg);
	ck_assert_str_eq(t.after_main, t.msg);
	ck_assert_str_ne(mine, t.msg);
	ck_assert_str_eq(evs_errmsg(st), mine);
	evs_close(st);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		test_batch_positions_and_fields,
		test_stream_head_missing,
		test_expected_version,
		test_idempotent_retry,
		test_id_conflict_other_content,
		test_id_conflict_partial_batch,
		test_id_repeated_in_batch,
		test_uuid_v7,
		test_uuid_v7_fork,
		test_streams_count,
		test_error_message_per_thread,
		NULL,
	};

	return kit_main("store-append", 600, tests);
}
