/*
 * test_open.c - opening, closing and reopening a store; the format version
 * check; read-only handles; options; error names.
 */
#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "kit_store.h"
#include "tu_lmdb.h"

START_TEST(test_create_and_reopen)
{
	char dir[PATH_MAX];
	tu_path(dir, sizeof dir, "store"); /* does not exist yet */
	evs_store *st = tu_open(dir, NULL);

	evs_store_info h;
	tu_ok(st, evs_head(st, &h));
	ck_assert_uint_eq(h.last_position, 0);
	ck_assert_int_eq(h.last_recorded_at, 0);
	ck_assert_uint_eq(h.streams, 0);
	ck_assert_uint_gt(h.map_size, 0);

	evs_append_result r;
	tu_ok(st, tu_append_simple(st, "a", EVS_NO_STREAM, "Made", 3, 1, 0, &r));
	tu_ok(st, tu_append_simple(st, "b", EVS_NO_STREAM, "Made", 2, 2, 0, &r));
	tu_ok(st, evs_head(st, &h));
	ck_assert_uint_eq(h.last_position, 5);
	ck_assert_uint_eq(h.streams, 2);
	int64_t last_at = h.last_recorded_at;
	ck_assert_int_gt(last_at, 0);
	tu_ev *before;
	size_t nbefore = tu_read_all(st, &before);
	ck_assert_uint_eq(nbefore, 5);
	evs_close(st);

	struct stat sb;
	ck_assert_int_eq(stat(dir, &sb), 0);
	ck_assert(S_ISDIR(sb.st_mode));

	/* reopen with the defaults: everything is still there */
	st = tu_open(dir, NULL);
	tu_ok(st, evs_head(st, &h));
	ck_assert_uint_eq(h.last_position, 5);
	ck_assert_uint_eq(h.streams, 2);
	ck_assert_int_eq(h.last_recorded_at, last_at);
	tu_ev *after;
	size_t nafter = tu_read_all(st, &after);
	ck_assert_uint_eq(nafter, nbefore);
	for (size_t i = 0; i < nafter; i++) {
		const evs_event *x = &before[i].ev, *y = &after[i].ev;
		ck_assert_uint_eq(x->position, y->position);
		ck_assert_uint_eq(x->version, y->version);
		ck_assert_int_eq(x->recorded_at, y->recorded_at);
		ck_assert_mem_eq(x->id, y->id, 16);
		ck_assert_uint_eq(x->data_len, y->data_len);
		ck_assert_mem_eq(x->data, y->data, x->data_len);
		ck_assert(x->stream.len == y->stream.len &&
			  memcmp(x->stream.ptr, y->stream.ptr, x->stream.len) == 0);
	}
	tu_evs_free(before, nbefore);
	tu_evs_free(after, nafter);

	evs_stream_info sh;
	tu_ok(st, evs_stream_head(st, "a", &sh));
	ck_assert_uint_eq(sh.version, 3);
	ck_assert_uint_eq(sh.last_position, 3);

	/* positions and versions continue where they were */
	tu_ok(st, tu_append_simple(st, "a", 3, "Made", 1, 1, 3, &r));
	ck_assert_uint_eq(r.first_position, 6);
	ck_assert_uint_eq(r.version, 4);
	evs_close(st);

	st = tu_open(dir, NULL);
	tu_ok(st, evs_head(st, &h));
	ck_assert_uint_eq(h.last_position, 6);
	ck_assert_uint_eq(tu_verify(st), 0);
	evs_close(st);
}
END_TEST

START_TEST(test_open_missing_without_create)
{
	char dir[PATH_MAX];
	tu_path(dir, sizeof dir, "nope");
	evs_options o;
	evs_options_init(&o);
	o.create = 0;
	evs_store *st = (evs_store *)&o; /* must be reset to NULL */
	tu_assert_rc(NULL, evs_open(dir, &o, &st), EVS_NO_STORE);
	ck_assert_ptr_null(st);
	ck_assert_ptr_nonnull(strstr(evs_open_errmsg(), "nope"));

	o.read_only = 1;
	st = (evs_store *)&o;
	tu_assert_rc(NULL, evs_open(dir, &o, &st), EVS_NO_STORE);
	ck_assert_ptr_null(st);

	/* an existing but empty directory is not a store either */
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	o.read_only = 0;
	tu_assert_rc(NULL, evs_open(dir, &o, &st), EVS_NO_STORE);
	ck_assert_ptr_null(st);
	o.read_only = 1;
	tu_assert_rc(NULL, evs_open(dir, &o, &st), EVS_NO_STORE);
	ck_assert_ptr_null(st);
	/* and nothing was created */
	char f[PATH_MAX + 16];
	snprintf(f, sizeof f, "%s/data.mdb", dir);
	struct stat sb;
	ck_assert_int_ne(stat(f, &sb), 0);
}
END_TEST

START_TEST(test_open_not_a_directory)
{
	char f[PATH_MAX];
	tu_path(f, sizeof f, "file");
	int fd = open(f, O_CREAT | O_WRONLY, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "x", 1), 1);
	close(fd);
	evs_store *st = NULL;
	int rc = evs_open(f, NULL, &st);
	ck_assert_int_ne(rc, EVS_OK);
	ck_assert_ptr_null(st);
	ck_assert_str_ne(evs_open_errmsg(), "");
}
END_TEST

START_TEST(test_format_record)
{
	evs_store *st = tu_open(kit_dir, NULL);
	evs_close(st);
	size_t n = 0;
	uint8_t *v = tu_mdb_get(kit_dir, "meta", "format", 6, &n);
	ck_assert_ptr_nonnull(v);
	ck_assert_uint_eq(n, 4);
	ck_assert_uint_eq((uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3],
			  3);
	free(v);
}
END_TEST

START_TEST(test_format_newer_refused)
{
	evs_store *st = tu_open(kit_dir, NULL);
	tu_ok(st, tu_append_simple(st, "a", EVS_ANY, "T", 2, 1, 0, NULL));
	evs_close(st);

	const uint8_t v4[4] = {0, 0, 0, 4};
	tu_mdb_put(kit_dir, "meta", "format", 6, v4, 4);

	st = (evs_store *)v4;
	tu_assert_rc(NULL, evs_open(kit_dir, NULL, &st), EVS_FORMAT);
	ck_assert_ptr_null(st);
	const char *msg = evs_open_errmsg();
	ck_assert_msg(tu_has_number(msg, 4), "message does not name the format: %s", msg);

	evs_options o;
	evs_options_init(&o);
	o.read_only = 1;
	tu_assert_rc(NULL, evs_open(kit_dir, &o, &st), EVS_FORMAT);
	ck_assert_ptr_null(st);

	/* a much newer one, too */
	const uint8_t vbig[4] = {0x7f, 0, 0, 1};
	tu_mdb_put(kit_dir, "meta", "format", 6, vbig, 4);
	tu_assert_rc(NULL, evs_open(kit_dir, NULL, &st), EVS_FORMAT);
	ck_assert_ptr_null(st);

	/* the refusal changed nothing: format 1 (before the journal) opens
	 * again, data intact, and is upgraded to 3 */
	size_t n = 0;
	uint8_t *cur = tu_mdb_get(kit_dir, "meta", "format", 6, &n);
	ck_assert_ptr_nonnull(cur);
	ck_assert_mem_eq(cur, vbig, 4);
	free(cur);
	const uint8_t v1[4] = {0, 0, 0, 1};
	tu_mdb_put(kit_dir, "meta", "format", 6, v1, 4);
	st = tu_open(kit_dir, NULL);
	evs_store_info h;
	tu_ok(st, evs_head(st, &h));
	ck_assert_uint_eq(h.last_position, 2);
	evs_close(st);
	cur = tu_mdb_get(kit_dir, "meta", "format", 6, &n);
	ck_assert_uint_eq(cur[3], 3);
	free(cur);
}
END_TEST

/* A store of format 1 (no journal, no "journal" key): read-only opens
 * refuse it (no event indexes) and say how to upgrade; the first writable
 * open creates the journal, builds the indexes and marks 3. */
START_TEST(test_format1_upgraded)
{
	char path[8192];
	size_t n = 0;
	evs_store *st = tu_open(kit_dir, NULL);
	tu_ok(st, tu_append_simple(st, "a", EVS_ANY, "T", 5, 1, 0, NULL));
	evs_close(st);
	const uint8_t v1[4] = {0, 0, 0, 1};
	tu_mdb_put(kit_dir, "meta", "format", 6, v1, 4);
	tu_mdb_del(kit_dir, "meta", "journal", 7);
	snprintf(path, sizeof path, "%s/journal", kit_dir);
	ck_assert_int_eq(unlink(path), 0);

	evs_options o;
	evs_options_init(&o);
	o.read_only = 1;
	evs_store_info h;
	tu_assert_rc(NULL, evs_open(kit_dir, &o, &st), EVS_FORMAT);
	ck_assert_msg(strstr(evs_open_errmsg(), "open it read-write once to upgrade it") != NULL,
		      "message does not say how to upgrade: %s", evs_open_errmsg());
	ck_assert_int_ne(access(path, F_OK), 0);

	st = tu_open(kit_dir, NULL);
	tu_ok(st, tu_append_simple(st, "a", 5, "T", 2, 2, 100, NULL));
	tu_ok(st, evs_head(st, &h));
	ck_assert_uint_eq(h.last_position, 7);
	evs_close(st);
	ck_assert_int_eq(access(path, F_OK), 0);
	uint8_t *cur = tu_mdb_get(kit_dir, "meta", "format", 6, &n);
	ck_assert_uint_eq(cur[3], 3);
	free(cur);
	tu_ok(NULL, evs_open(kit_dir, NULL, &st));
	tu_ok(st, evs_verify(st, NULL, NULL, NULL));
	evs_close(st);
}
END_TEST

START_TEST(test_read_only)
{
	evs_store *st = tu_open(kit_dir, NULL);
	tu_ok(st, tu_append_simple(st, "a", EVS_ANY, "T", 3, 1, 0, NULL));
	evs_close(st);

	evs_options o;
	evs_options_init(&o);
	o.read_only = 1;
	o.create = 0;
	st = tu_open(kit_dir, &o);
	tu_ev *evs;
	size_t n = tu_read_all(st, &evs);
	ck_assert_uint_eq(n, 3);
	tu_evs_free(evs, n);
	evs_append_result r;
	tu_assert_rc(st, tu_append_simple(st, "a", EVS_ANY, "T", 1, 1, 10, &r), EVS_READONLY);
	ck_assert_str_ne(evs_errmsg(st), "");
	tu_assert_rc(st, tu_append_simple(st, "new", EVS_ANY, "T", 1, 1, 11, &r), EVS_READONLY);
	evs_store_info h;
	tu_ok(st, evs_head(st, &h));
	ck_assert_uint_eq(h.last_position, 3);
	evs_close(st);

	st = tu_open(kit_dir, NULL);
	tu_ok(st, evs_head(st, &h));
	ck_assert_uint_eq(h.last_position, 3);
	ck_assert_uint_eq(h.streams, 1);
	evs_close(st);

	/* evs-notify holds no data: a read-only open without it still works */
	char notify[4200];
	snprintf(notify, sizeof notify, "%s/evs-notify", kit_dir);
	ck_assert_int_eq(unlink(notify), 0);
	st = tu_open(kit_dir, &o);
	tu_ok(st, evs_head(st, &h));
	ck_assert_uint_eq(h.last_position, 3);
	ck_assert_int_eq(evs_wait(st, 3, 10), EVS_TIMEOUT);
	evs_close(st);
}
END_TEST

START_TEST(test_sync_modes_persist)
{
	const int modes[] = {EVS_SYNC_FULL, EVS_SYNC_META, EVS_SYNC_NONE};
	for (size_t m = 0; m < 3; m++) {
		evs_options o;
		tu_options(&o, modes[m]);
		evs_store *st = tu_open(kit_dir, &o);
		evs_append_result r;
		tu_ok(st, tu_append_simple(st, "s", EVS_ANY, "T", 4, 7, 4 * m, &r));
		ck_assert_uint_eq(r.last_position, 4 * (m + 1));
		evs_close(st);
	}
	evs_store *st = tu_open(kit_dir, NULL);
	evs_stream_info sh;
	tu_ok(st, evs_stream_head(st, "s", &sh));
	ck_assert_uint_eq(sh.version, 12);
	ck_assert_uint_eq(sh.last_position, 12);
	evs_close(st);
}
END_TEST

START_TEST(test_reopen_many_times_no_leak)
{
	/* warm up (lazy library state), then count descriptors */
	evs_close(tu_open(kit_dir, NULL));
	int fds = kit_count_fds();
	for (int i = 0; i < 40; i++) {
		evs_store *st = tu_open(kit_dir, NULL);
		evs_append_result r;
		tu_ok(st, tu_append_simple(st, "loop", (uint64_t)i, "T", 1, 3, (uint64_t)i, &r));
		ck_assert_uint_eq(r.version, (uint64_t)i + 1);
		evs_sub *sub = NULL;
		tu_ok(st, evs_subscribe(st, 0, NULL, &sub));
		evs_sub_close(sub);
		evs_close(st);
	}
	ck_assert_int_eq(kit_count_fds(), fds);
}
END_TEST

START_TEST(test_invalid_options)
{
	evs_options o;
	evs_store *st = NULL;
	evs_options_init(&o);
	o.sync = 7;
	tu_assert_rc(NULL, evs_open(kit_dir, &o, &st), EVS_INVALID);
	ck_assert_ptr_null(st);
	evs_options_init(&o);
	o.max_event_size = (size_t)EVS_LIMIT_MAX_EVENT + 1;
	tu_assert_rc(NULL, evs_open(kit_dir, &o, &st), EVS_INVALID);
	ck_assert_ptr_null(st);
	tu_assert_rc(NULL, evs_open(NULL, NULL, &st), EVS_INVALID);
	tu_assert_rc(NULL, evs_open("", NULL, &st), EVS_INVALID);
}
END_TEST

START_TEST(test_options_defaults)
{
	evs_options o;
	memset(&o, 0x5a, sizeof o);
	evs_options_init(&o);
	ck_assert_int_eq(o.create, 1);
	ck_assert_int_eq(o.sync, EVS_SYNC_FULL);
	ck_assert_int_eq(o.read_only, 0);
	ck_assert_uint_eq(o.map_size, 0);
	ck_assert_uint_eq(o.max_batch, 0);
	ck_assert_uint_eq(o.max_event_size, 0);
	ck_assert_ptr_null((void *)(uintptr_t)o.log);
}
END_TEST

START_TEST(test_error_names)
{
#define CHECK_CODE(name, value, text)                \
	ck_assert_int_eq(EVS_##name, value);         \
	ck_assert_str_eq(evs_strerror(value), text); \
	ck_assert_str_eq(evs_code_name(value), #name);
	EVS_ERRNO_MAP(CHECK_CODE)
#undef CHECK_CODE
	ck_assert_ptr_nonnull(evs_strerror(9999));
	ck_assert_ptr_nonnull(evs_code_name(9999));
	ck_assert_ptr_nonnull(evs_strerror(-1));
	ck_assert_ptr_nonnull(evs_code_name(-1));
	ck_assert_str_ne(evs_strerror(9999), "");
}
END_TEST

START_TEST(test_null_is_fine)
{
	evs_close(NULL);
	evs_iter_free(NULL);
	evs_sub_close(NULL);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		test_create_and_reopen,
		test_open_missing_without_create,
		test_open_not_a_directory,
		test_format_record,
		test_format_newer_refused,
		test_format1_upgraded,
		test_read_only,
		test_sync_modes_persist,
		test_reopen_many_times_no_leak,
		test_invalid_options,
		test_options_defaults,
		test_error_names,
		test_null_is_fine,
		NULL,
	};

	return kit_main("store-open", 600, tests);
}
