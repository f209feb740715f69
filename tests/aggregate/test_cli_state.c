/*
 * test_cli_state.c - "evs state STREAM [--as-of TIME | --at-position N]":
 * the printed JSON (stream, version, position, state), as-of by time and
 * position, a stream without events, a state JSON cannot show, and usage
 * errors. Runs "$EVS_STATE_BIN state ..." (the evs tool, or the
 * standalone evs-state built from cmd_state.c).
 */
#include <string.h>
#include <sys/wait.h>

#include "kit_store.h"

/* Run the program with args; stdout into out; returns the exit status. */
static int run(char *out, size_t cap, const char *args)
{
	const char *bin = getenv("EVS_STATE_BIN");
	char cmd[2 * PATH_MAX + 4096];
	ck_assert_msg(bin != NULL && *bin, "EVS_STATE_BIN is not set");
	snprintf(cmd, sizeof cmd, "'%s' state --store '%s' %s 2>/dev/null", bin, kit_dir, args);
	FILE *f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	size_t n = fread(out, 1, cap - 1, f);
	out[n] = 0;
	int status = pclose(f);
	ck_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void expect(const char *args, const char *want)
{
	char out[4096];
	int rc = run(out, sizeof out, args);
	ck_assert_msg(rc == 0, "evs state %s: exit %d", args, rc);
	ck_assert_msg(strcmp(out, want) == 0, "evs state %s:\n got %s want %s", args, out, want);
}

static void append_map(evs_store *st, const char *stream, tu_mp *m, evs_append_result *r)
{
	evs_event_in ev;
	tu_event(&ev, "Patched", m, NULL);
	tu_ok(st, evs_append(st, stream, EVS_ANY, &ev, 1, r));
	tu_mp_reset(m);
}

START_TEST(test_state_output)
{
	evs_store *st = tu_open(kit_dir, NULL);
	tu_mp m;
	evs_append_result r;
	tu_mp_init(&m);

	/* doc: {"a":1,"b":{"c":"x"}}, {"b":{"d":true}}, {"a":null,"e":[1,2]};
	 * another stream's event at position 2 */
	msgpack_pack_map(&m.pk, 2);
	tu_mp_str(&m, "a");
	tu_mp_int(&m, 1);
	tu_mp_str(&m, "b");
	msgpack_pack_map(&m.pk, 1);
	tu_mp_str(&m, "c");
	tu_mp_str(&m, "x");
	append_map(st, "doc", &m, &r);
	tu_mp_map_ints(&m, 1, "n", 7LL);
	append_map(st, "other", &m, &r);
	msgpack_pack_map(&m.pk, 1);
	tu_mp_str(&m, "b");
	msgpack_pack_map(&m.pk, 1);
	tu_mp_str(&m, "d");
	msgpack_pack_true(&m.pk);
	append_map(st, "doc", &m, &r);
	msgpack_pack_map(&m.pk, 2);
	tu_mp_str(&m, "a");
	msgpack_pack_nil(&m.pk);
	tu_mp_str(&m, "e");
	msgpack_pack_array(&m.pk, 2);
	tu_mp_int(&m, 1);
	tu_mp_int(&m, 2);
	append_map(st, "doc", &m, &r);
	/* a state with a bin value */
	msgpack_pack_map(&m.pk, 1);
	tu_mp_str(&m, "raw");
	msgpack_pack_bin(&m.pk, 2);
	msgpack_pack_bin_body(&m.pk, "\x00\xff", 2);
	append_map(st, "binary", &m, &r);

	tu_ev *evs;
	size_t n = tu_read_all(st, &evs);
	ck_assert_uint_eq(n, 5);
	int64_t t3 = evs[2].ev.recorded_at;
	tu_evs_free(evs, n);
	tu_mp_destroy(&m);
	evs_close(st);

	expect("doc", "{\"stream\":\"doc\",\"version\":3,\"position\":4,"
		      "\"state\":{\"b\":{\"c\":\"x\",\"d\":true},\"e\":[1,2]}}\n");
	expect("doc --at-position 2", "{\"stream\":\"doc\",\"version\":1,\"position\":1,"
				      "\"state\":{\"a\":1,\"b\":{\"c\":\"x\"}}}\n");
	expect("--at-position=0 doc", "{\"stream\":\"doc\",\"version\":0,\"position\":0,"
				      "\"state\":{}}\n");
	char args[128];
	snprintf(args, sizeof args, "doc --as-of %lld", (long long)t3);
	expect(args, "{\"stream\":\"doc\",\"version\":2,\"position\":3,"
		     "\"state\":{\"a\":1,\"b\":{\"c\":\"x\",\"d\":true}}}\n");
	snprintf(args, sizeof args, "doc --as-of %lld", (long long)t3 - 1);
	expect(args, "{\"stream\":\"doc\",\"version\":1,\"position\":1,"
		     "\"state\":{\"a\":1,\"b\":{\"c\":\"x\"}}}\n");
	expect("doc --as-of 1970-01-01T00:00:00Z",
	       "{\"stream\":\"doc\",\"version\":0,\"position\":0,\"state\":{}}\n");
	expect("doc --as-of 2200-01-01T00:00:00.5+01:00",
	       "{\"stream\":\"doc\",\"version\":3,\"position\":4,"
	       "\"state\":{\"b\":{\"c\":\"x\",\"d\":true},\"e\":[1,2]}}\n");
	expect("nobody", "{\"stream\":\"nobody\",\"version\":0,\"position\":0,\"state\":{}}\n");
	expect("binary", "{\"stream\":\"binary\",\"version\":1,\"position\":5,"
			 "\"state_msgpack\":\"gaNyYXfEAgD/\"}\n");

	char out[4096];
	ck_assert_int_eq(run(out, sizeof out, "doc --as-of 1 --at-position 2"), 2);
	ck_assert_int_eq(run(out, sizeof out, "doc --as-of yesterday"), 2);
	ck_assert_int_eq(run(out, sizeof out, "doc --at-position -1"), 2);
	ck_assert_int_eq(run(out, sizeof out, ""), 2);
	ck_assert_int_eq(run(out, sizeof out, "a b"), 2);
	ck_assert_int_eq(run(out, sizeof out, "''"), 2);
	ck_assert_int_eq(run(out, sizeof out, "--help"), 0);
	ck_assert(strstr(out, "--at-position") != NULL);
	ck_assert_str_eq(out + strlen(out) - 1, "\n");
}
END_TEST

START_TEST(test_no_store)
{
	char out[256];
	const char *bin = getenv("EVS_STATE_BIN");
	char cmd[2 * PATH_MAX + 64];
	snprintf(cmd, sizeof cmd, "'%s' state --store '%s/missing' doc 2>/dev/null", bin, kit_dir);
	FILE *f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	size_t n = fread(out, 1, sizeof out - 1, f);
	ck_assert_uint_eq(n, 0);
	int status = pclose(f);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 1);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		test_state_output,
		test_no_store,
		NULL,
	};

	return kit_main("aggregate-cli-state", 600, tests);
}
