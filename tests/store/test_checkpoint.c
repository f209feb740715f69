/*
 * test_checkpoint.c - durable named checkpoints (store/checkpoint.c,
 * contract C4 of issue 11): get/set/delete/list, bad names refused, a
 * read-only handle refused, values kept across close and across a child
 * killed right after its set returned, and the store's indexes untouched.
 */
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kit_store.h"

static evs_store *open_store(void)
{
	char dir[4096];

	tu_path(dir, sizeof dir, "store");
	return tu_open(dir, NULL);
}

START_TEST(test_set_get_replace_delete)
{
	evs_store *st = open_store();
	uint64_t v = 99;

	tu_assert_rc(st, evs_checkpoint_get(st, "relay/a", &v), EVS_NOT_FOUND);
	tu_check_u64_eq(v, 0);
	tu_ok(st, evs_checkpoint_set(st, "relay/a", 17));
	tu_ok(st, evs_checkpoint_get(st, "relay/a", &v));
	tu_check_u64_eq(v, 17);
	tu_ok(st, evs_checkpoint_set(st, "relay/a", UINT64_MAX));
	tu_ok(st, evs_checkpoint_get(st, "relay/a", &v));
	tu_check_u64_eq(v, UINT64_MAX);
	tu_ok(st, evs_checkpoint_set(st, "relay/a", 0));
	tu_ok(st, evs_checkpoint_get(st, "relay/a", &v));
	tu_check_u64_eq(v, 0);
	tu_ok(st, evs_checkpoint_delete(st, "relay/a"));
	tu_assert_rc(st, evs_checkpoint_get(st, "relay/a", &v), EVS_NOT_FOUND);
	tu_assert_rc(st, evs_checkpoint_delete(st, "relay/a"), EVS_NOT_FOUND);
	/* the event log and its indexes are untouched */
	ck_assert_uint_eq(tu_verify(st), 0);
	evs_close(st);
}
END_TEST

START_TEST(test_bad_names_refused)
{
	evs_store *st = open_store();
	char longname[EVS_MAX_NAME + 2];
	uint64_t v;

	memset(longname, 'x', sizeof longname - 1);
	longname[sizeof longname - 1] = 0;
	tu_assert_rc(st, evs_checkpoint_set(st, "", 1), EVS_INVALID);
	ck_assert_ptr_nonnull(strstr(evs_errmsg(st), "empty"));
	tu_assert_rc(st, evs_checkpoint_set(st, NULL, 1), EVS_INVALID);
	tu_assert_rc(st, evs_checkpoint_set(st, longname, 1), EVS_INVALID);
	ck_assert_ptr_nonnull(strstr(evs_errmsg(st), "longer than 255 bytes"));
	tu_assert_rc(st, evs_checkpoint_get(st, "\xff\xfe", &v), EVS_INVALID);
	ck_assert_ptr_nonnull(strstr(evs_errmsg(st), "UTF-8"));
	tu_assert_rc(st, evs_checkpoint_delete(st, "\xc3"), EVS_INVALID);
	longname[EVS_MAX_NAME] = 0; /* exactly the limit: fine */
	tu_ok(st, evs_checkpoint_set(st, longname, 5));
	tu_ok(st, evs_checkpoint_get(st, longname, &v));
	tu_check_u64_eq(v, 5);
	evs_close(st);
}
END_TEST

struct seen {
	char names[8][32];
	uint64_t values[8];
	int n, stop_at;
};

static int collect(void *ctx, evs_str name, uint64_t position)
{
	struct seen *s = ctx;

	ck_assert_int_lt(s->n, 8);
	ck_assert_uint_lt(name.len, sizeof s->names[0]);
	memcpy(s->names[s->n], name.ptr, name.len);
	s->names[s->n][name.len] = 0;
	s->values[s->n] = position;
	return ++s->n == s->stop_at ? 42 : 0;
}

START_TEST(test_list_by_prefix)
{
	evs_store *st = open_store();
	struct seen s = {0};

	tu_ok(st, evs_checkpoint_list(st, NULL, collect, &s));
	ck_assert_int_eq(s.n, 0);
	tu_ok(st, evs_checkpoint_set(st, "relay/b", 2));
	tu_ok(st, evs_checkpoint_set(st, "relay/a", 1));
	tu_ok(st, evs_checkpoint_set(st, "relay", 9));
	tu_ok(st, evs_checkpoint_set(st, "relaz", 3));
	tu_ok(st, evs_checkpoint_set(st, "other", 4));
	tu_ok(st, evs_checkpoint_list(st, "relay/", collect, &s));
	ck_assert_int_eq(s.n, 2);
	ck_assert_str_eq(s.names[0], "relay/a");
	ck_assert_str_eq(s.names[1], "relay/b");
	tu_check_u64_eq(s.values[0], 1);
	tu_check_u64_eq(s.values[1], 2);
	memset(&s, 0, sizeof s);
	tu_ok(st, evs_checkpoint_list(st, "", collect, &s));
	ck_assert_int_eq(s.n, 5);
	ck_assert_str_eq(s.names[0], "other");
	ck_assert_str_eq(s.names[4], "relaz");
	memset(&s, 0, sizeof s);
	s.stop_at = 2;
	ck_assert_int_eq(evs_checkpoint_list(st, NULL, collect, &s), 42);
	ck_assert_int_eq(s.n, 2);
	evs_close(st);
}
END_TEST

START_TEST(test_read_only_handle)
{
	char dir[4096];
	evs_options o;
	evs_store *st = open_store(), *ro;
	uint64_t v;

	tu_ok(st, evs_checkpoint_set(st, "c", 7));
	evs_close(st);
	tu_path(dir, sizeof dir, "store");
	evs_options_init(&o);
	o.read_only = 1;
	ro = tu_open(dir, &o);
	tu_ok(ro, evs_checkpoint_get(ro, "c", &v));
	tu_check_u64_eq(v, 7);
	tu_assert_rc(ro, evs_checkpoint_set(ro, "c", 8), EVS_READONLY);
	tu_assert_rc(ro, evs_checkpoint_delete(ro, "c"), EVS_READONLY);
	evs_close(ro);
}
END_TEST

/* A child sets checkpoints and appends, and is killed (SIGKILL) right
 * after its last set returned: every value it was told is durable is
 * there, next to the events, after reopening. */
START_TEST(test_durable_across_kill)
{
	char dir[4096];
	evs_store *st;
	uint64_t v;
	int status;

	tu_path(dir, sizeof dir, "store");
	st = tu_open(dir, NULL);
	evs_close(st);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		evs_store *cs = NULL;
		evs_append_result r;
		kit_child_check(evs_open(dir, NULL, &cs) == EVS_OK, "open: %s", evs_open_errmsg());
		for (uint64_t i = 1; i <= 50; i++) {
			int rc = tu_append_simple(cs, "s", EVS_ANY, "T", 1, 1, i, &r);
			kit_child_check(rc == EVS_OK, "append: %s", evs_errmsg(cs));
			rc = evs_checkpoint_set(cs, "k", r.last_position);
			kit_child_check(rc == EVS_OK, "set: %s", evs_errmsg(cs));
		}
		kill(getpid(), SIGKILL);
		_exit(3);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	st = tu_open(dir, NULL);
	tu_ok(st, evs_checkpoint_get(st, "k", &v));
	tu_check_u64_eq(v, 50);
	ck_assert_uint_eq(tu_verify(st), 0);
	evs_close(st);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		test_set_get_replace_delete, test_bad_names_refused,   test_list_by_prefix,
		test_read_only_handle,       test_durable_across_kill, NULL,
	};

	return kit_main("store-checkpoint", 600, tests);
}
