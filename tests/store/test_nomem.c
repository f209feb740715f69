/*
 * test_nomem.c - the allocation-failure walk (issue 16): for N = 1, 2, ...
 * fail the N-th allocation of libevstore (evs__alloc_fail_after, the
 * injector behind every malloc of the library) inside evs_open, evs_append,
 * a read and a subscription, until the operation runs with no failure
 * injected. Each time: the call answers EVS_NOMEM (or succeeds, when the
 * failed allocation was optional), the store still opens and verifies
 * after, an append is all or nothing, and nothing leaks: the suite runs
 * without fork so LeakSanitizer (the sanitized build) sees every walk.
 *
 * White-box: links the static library for the injector.
 */
#include <string.h>

#include "alloc.h"
#include "kit_store.h"

#define MAX_WALK 2000 /* more allocations than any of these operations makes */

static const char *schema_v1 =
	"{\"type\":\"Opened\",\"version\":1,\"schema\":{\"type\":\"object\","
	"\"required\":[\"n\"],\"properties\":{\"n\":{\"type\":\"integer\",\"minimum\":0},"
	"\"who\":{\"type\":\"string\",\"maxLength\":20}}}}";
static const char *schema_v2 =
	"{\"type\":\"Opened\",\"version\":2,\"schema\":{\"type\":\"object\"},"
	"\"upcast\":[{\"op\":\"add\",\"field\":\"tier\",\"value\":\"basic\"},"
	"{\"op\":\"rename\",\"from\":\"who\",\"to\":\"owner\"}]}";

/* A store at dir with both schema versions and `n` events of version 1 on
 * stream "acc-1" (nothing injected). */
static void make_store(const char *dir, size_t n)
{
	evs_store *s = tu_open(dir, NULL);
	tu_mp m;

	tu_ok(s, evs_schema_add(s, schema_v1, strlen(schema_v1)));
	tu_ok(s, evs_schema_add(s, schema_v2, strlen(schema_v2)));
	tu_mp_init(&m);
	for (size_t i = 0; i < n; i++) {
		evs_event_in ev;
		tu_mp_reset(&m);
		msgpack_pack_map(&m.pk, 2);
		tu_mp_str(&m, "n");
		tu_mp_int(&m, (int64_t)i);
		tu_mp_str(&m, "who");
		tu_mp_str(&m, "ada");
		tu_event(&ev, "Opened", &m, NULL);
		ev.type_version = 1;
		tu_ok(s, evs_append(s, "acc-1", EVS_ANY, &ev, 1, NULL));
	}
	tu_mp_destroy(&m);
	evs_close(s);
}

/* After an attempt: the store opens, verifies clean and holds `events`. */
static void check_store(const char *dir, uint64_t events)
{
	evs_store *s = tu_open(dir, NULL);
	evs_store_info h;

	tu_check_u64_eq(tu_verify(s), 0);
	tu_ok(s, evs_head(s, &h));
	tu_check_u64_eq(h.last_position, events);
	evs_close(s);
}

/* Arm the injector for attempt n and run op; returns whether a failure
 * was injected, and the op's code in *rc. */
typedef int (*op_fn)(evs_store *s, const char *dir, void *ctx);

static bool attempt(long n, op_fn op, evs_store *s, const char *dir, void *ctx, int *rc)
{
	evs__alloc_failures(); /* reset */
	evs__alloc_fail_after(n);
	*rc = op(s, dir, ctx);
	evs__alloc_fail_after(0);
	return evs__alloc_failures() > 0;
}

static void check_rc(const char *what, long n, bool failed, int rc, const char *msg)
{
	if (!failed)
		tu_check(rc == EVS_OK, "%s, nothing injected (N = %ld): %s: %s", what, n,
			 evs_code_name(rc), msg);
	else
		tu_check(rc == EVS_OK || rc == EVS_NOMEM,
			 "%s, allocation %ld failed: want EVS_NOMEM or EVS_OK, got %s: %s", what, n,
			 evs_code_name(rc), msg);
}

/* dir = a fresh directory for attempt n of `what`, with a store of
 * `events` events (none at all when events is -1). */
static void fresh_dir(char dir[PATH_MAX], const char *what, long n, int events)
{
	char name[64];

	snprintf(name, sizeof name, "%s-%ld", what, n);
	tu_path(dir, PATH_MAX, name);
	if (events >= 0)
		make_store(dir, (size_t)events);
}

/* The walk must have injected at least one failure and then ended. */
static void walked(const char *what, long n)
{
	tu_check(n > 1 && n < MAX_WALK, "%s: walk ended at %ld", what, n);
	printf("%s: %ld allocations walked\n", what, n - 1);
}

/* Walk a reader over one store of 5 events made by setup (readers write
 * nothing, so it is reused); when it succeeds it saw `want` events. */
static void walk_reader(const char *what, void (*setup)(const char *dir, size_t n), op_fn op,
			size_t want)
{
	char dir[PATH_MAX];
	long n;

	tu_path(dir, sizeof dir, what);
	setup(dir, 5);
	for (n = 1; n < MAX_WALK; n++) {
		evs_store *s = tu_open(dir, NULL);
		size_t seen;
		int rc;

		bool failed = attempt(n, op, s, dir, &seen, &rc);
		check_rc(what, n, failed, rc, evs_errmsg(s));
		if (rc == EVS_OK)
			tu_check(seen == want, "%s: %zu events, want %zu", what, seen, want);
		evs_close(s);
		check_store(dir, 5);
		if (!failed)
			break;
	}
	walked(what, n);
}

/* Walk a writer over a fresh store of `events` events per attempt: when
 * it succeeds the store holds `added` more, else not one more (all or
 * nothing). A fresh handle each time, so the schema cache is loaded
 * inside the walk. */
static void walk_writer(const char *what, int events, op_fn op, uint64_t added)
{
	long n;

	for (n = 1; n < MAX_WALK; n++) {
		char dir[PATH_MAX];
		int rc;

		fresh_dir(dir, what, n, events);
		evs_store *s = tu_open(dir, NULL);
		bool failed = attempt(n, op, s, dir, NULL, &rc);
		check_rc(what, n, failed, rc, evs_errmsg(s));
		evs_close(s);
		check_store(dir, (uint64_t)events + (rc == EVS_OK ? added : 0));
		kit_rmrf(dir);
		if (!failed)
			break;
	}
	walked(what, n);
}

/* ---- evs_open ------------------------------------------------------------ */

static int op_open(evs_store *unused, const char *dir, void *ctx)
{
	evs_store **out = ctx;
	(void)unused;
	return evs_open(dir, NULL, out);
}

static void walk_open(bool existing)
{
	long n;

	for (n = 1; n < MAX_WALK; n++) {
		char dir[PATH_MAX];
		evs_store *s = (evs_store *)1;
		int rc;

		fresh_dir(dir, "open", n, existing ? 3 : -1);
		bool failed = attempt(n, op_open, NULL, dir, &s, &rc);
		check_rc("evs_open", n, failed, rc, evs_open_errmsg());
		tu_check((rc == EVS_OK) == (s != NULL), "evs_open: *out %p with %s", (void *)s,
			 evs_code_name(rc));
		evs_close(s);
		check_store(dir, existing ? 3 : 0);
		kit_rmrf(dir);
		if (!failed)
			break;
	}
	walked(existing ? "evs_open (an existing store)" : "evs_open (a new store)", n);
}

START_TEST(nomem_open_new)
{
	walk_open(false);
}
END_TEST

START_TEST(nomem_open_existing)
{
	walk_open(true);
}
END_TEST

/* ---- evs_append ---------------------------------------------------------- */

#define BATCH 3

/* ctx: NULL, or an evs_append_result to fill (a retry: ids tu_id(7, i)
 * and any expected version). */
static int op_append(evs_store *s, const char *dir, void *ctx)
{
	evs_append_result *res = ctx;
	evs_event_in ev[BATCH];
	tu_mp m[BATCH];
	int rc;

	(void)dir;
	for (int i = 0; i < BATCH; i++) {
		tu_mp_init(&m[i]);
		tu_mp_map_ints(&m[i], 1, "n", (long long)(10 + i));
		tu_event(&ev[i], "Opened", &m[i], NULL); /* type_version 0: the latest */
		if (res)
			tu_id(ev[i].id, 7, (uint64_t)i);
	}
	rc = evs_append(s, "acc-2", res ? EVS_ANY : EVS_NO_STREAM, ev, BATCH, res);
	for (int i = 0; i < BATCH; i++)
		tu_mp_destroy(&m[i]);
	return rc;
}

START_TEST(nomem_append)
{
	walk_writer("evs_append", 2, op_append, BATCH);
}
END_TEST

/*
 * A retry of a batch stored as "the latest" type version after the
 * registry moved on: the stored records carry the older version, so the
 * retry is recognised by comparing fields, which allocates. Out of memory
 * there must answer EVS_NOMEM, never EVS_ID_CONFLICT.
 */
START_TEST(nomem_append_retry)
{
	static const char *v3 = "{\"type\":\"Opened\",\"version\":3,"
				"\"schema\":{\"type\":\"object\"}}";
	char dir[PATH_MAX];
	evs_append_result res;
	long n;

	tu_path(dir, sizeof dir, "retry");
	make_store(dir, 2);
	evs_store *s = tu_open(dir, NULL);
	tu_ok(s, op_append(s, dir, &res));
	tu_ok(s, evs_schema_add(s, v3, strlen(v3)));
	evs_close(s);
	for (n = 1; n < MAX_WALK; n++) {
		int rc;

		s = tu_open(dir, NULL);
		bool failed = attempt(n, op_append, s, dir, &res, &rc);
		check_rc("evs_append (a retry)", n, failed, rc, evs_errmsg(s));
		if (rc == EVS_OK)
			tu_check(res.idempotent, "the retry was appended again");
		evs_close(s);
		check_store(dir, 2 + BATCH);
		if (!failed)
			break;
	}
	walked("evs_append (a retry)", n);
}
END_TEST

/* ---- adding a schema (parse, compile, upcast steps, the registry) -------- */

static const char *schema_v3 =
	"{\"type\":\"Opened\",\"version\":3,\"schema\":{\"type\":\"object\","
	"\"properties\":{\"tier\":{\"enum\":[\"basic\",\"gold\"]},"
	"\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}}},"
	"\"upcast\":[{\"op\":\"add\",\"field\":\"tags\",\"value\":[\"a\",{\"b\":[1]}]},"
	"{\"op\":\"convert\",\"field\":\"n\",\"rule\":\"to-string\"}]}";

static int op_schema_add(evs_store *s, const char *dir, void *ctx)
{
	(void)dir;
	(void)ctx;
	return evs_schema_add(s, schema_v3, strlen(schema_v3));
}

START_TEST(nomem_schema_add)
{
	long n;

	for (n = 1; n < MAX_WALK; n++) {
		char dir[PATH_MAX], *json;
		int rc;

		fresh_dir(dir, "schema", n, 1);
		evs_store *s = tu_open(dir, NULL);
		bool failed = attempt(n, op_schema_add, s, dir, NULL, &rc);
		check_rc("evs_schema_add", n, failed, rc, evs_errmsg(s));
		/* the version is there exactly when the call said so */
		tu_assert_rc(s, evs_schema_get(s, "Opened", 3, &json, NULL),
			     rc == EVS_OK ? EVS_OK : EVS_NOT_FOUND);
		if (rc == EVS_OK)
			evs_schema_text_free(json);
		evs_close(s);
		check_store(dir, 1);
		kit_rmrf(dir);
		if (!failed)
			break;
	}
	walked("evs_schema_add", n);
}
END_TEST

/* ---- reading ------------------------------------------------------------- */

/* Read it to its end with upcasting on (every event reaches version 2,
 * with at least min_len bytes of data), counting into *seen, and free it.
 * As for subscriptions: an iterator that met the one-shot failure carries
 * on with the event it failed on. */
static int drain_upcast(evs_iter *it, size_t min_len, size_t *seen)
{
	bool retried = false;
	evs_event ev;
	int rc;

	if ((rc = evs_iter_upcast(it, 1)) == EVS_OK) {
		while ((rc = evs_iter_next(it, &ev)) == EVS_OK || (rc == EVS_NOMEM && !retried)) {
			if (rc == EVS_NOMEM) {
				retried = true;
				continue;
			}
			tu_check(ev.type_version == 2 && ev.data_len >= min_len,
				 "upcast: version %u, %zu bytes of data", ev.type_version,
				 ev.data_len);
			(*seen)++;
		}
	}
	evs_iter_free(it);
	return rc == EVS_END ? EVS_OK : rc;
}

/* Read everything through a filtered iterator that upcasts (version 1 ->
 * 2 by steps), and one stream backward. */
static int op_read(evs_store *s, const char *dir, void *ctx)
{
	const char *types[] = {"Opened"}, *prefixes[] = {"acc-"};
	evs_filter f = {.types = types, .ntypes = 1, .stream_prefixes = prefixes, .nprefixes = 1};
	size_t *seen = ctx;
	evs_iter *it;
	evs_event ev;
	int rc;

	(void)dir;
	*seen = 0;
	if ((rc = evs_read_all(s, 1, EVS_FORWARD, &f, 0, &it)) != EVS_OK)
		return rc;
	rc = drain_upcast(it, 0, seen);
	if (rc != EVS_OK)
		return rc;
	if ((rc = evs_read_stream(s, "acc-1", EVS_ANY, EVS_BACKWARD, 0, &it)) != EVS_OK)
		return rc;
	while ((rc = evs_iter_next(it, &ev)) == EVS_OK)
		(*seen)++;
	evs_iter_free(it);
	return rc == EVS_END ? EVS_OK : rc;
}

START_TEST(nomem_read)
{
	walk_reader("read", make_store, op_read, 10);
}
END_TEST

/* ---- a subscription ------------------------------------------------------ */

static int op_follow(evs_store *s, const char *dir, void *ctx)
{
	const char *types[] = {"Opened"};
	evs_filter f = {.types = types, .ntypes = 1};
	size_t *seen = ctx;
	evs_sub *sub;
	evs_event ev;
	int rc;

	(void)dir;
	*seen = 0;
	if ((rc = evs_subscribe(s, 1, &f, &sub)) != EVS_OK)
		return rc;
	/* the injected failure is one-shot: a subscription that met it must
	 * carry on where it was, missing nothing */
	bool retried = false;
	while ((rc = evs_sub_next(sub, &ev, 0)) == EVS_OK || (rc == EVS_NOMEM && !retried)) {
		if (rc == EVS_NOMEM)
			retried = true;
		else
			(*seen)++;
	}
	evs_sub_close(sub);
	return rc == EVS_TIMEOUT ? EVS_OK : rc;
}

START_TEST(nomem_follow)
{
	walk_reader("subscription", make_store, op_follow, 4); /* after position 1 */
}
END_TEST

/* ---- a C upcaster ------------------------------------------------------- */

/* "Hooked" version 2 is reached from 1 by a C hook only. */
static void make_hooked(const char *dir, size_t n)
{
	static const char *v1 = "{\"type\":\"Hooked\",\"version\":1,\"schema\":{}}";
	static const char *v2 =
		"{\"type\":\"Hooked\",\"version\":2,\"schema\":{},\"upcast\":\"hook\"}";
	evs_store *s = tu_open(dir, NULL);

	/* events first, so that they are stored as version 1 */
	tu_ok(s, evs_schema_add(s, v1, strlen(v1)));
	for (size_t i = 0; i < n; i++)
		tu_ok(s, tu_append_simple(s, "h-1", EVS_ANY, "Hooked", 1, 0, i, NULL));
	tu_ok(s, evs_schema_add(s, v2, strlen(v2)));
	evs_close(s);
}

/* {"v": 2, "was": <the old data>} */
static int hook(void *ctx, const evs_event *ev, evs_sink *out)
{
	static const char head[] = {(char)0x82, (char)0xa1, 'v', 0x02, (char)0xa3, 'w', 'a', 's'};

	(void)ctx;
	if (evs_sink_write(out, head, sizeof head) || evs_sink_write(out, ev->data, ev->data_len))
		return EVS_NOMEM;
	return EVS_OK;
}

static int op_hooked(evs_store *s, const char *dir, void *ctx)
{
	evs_iter *it;
	int rc;

	(void)dir;
	*(size_t *)ctx = 0;
	if ((rc = evs_upcaster_register(s, "Hooked", 1, hook, NULL)) != EVS_OK)
		return rc;
	if ((rc = evs_read_all(s, 1, EVS_FORWARD, NULL, 0, &it)) != EVS_OK)
		return rc;
	return drain_upcast(it, 9, ctx); /* the hook's 8 bytes and the old data */
}

START_TEST(nomem_upcast_hook)
{
	walk_reader("hook", make_hooked, op_hooked, 5);
}
END_TEST

/* ---- aggregates: the generic state, and execute with snapshots ----------- */

static int op_state(evs_store *s, const char *dir, void *ctx)
{
	size_t *seen = ctx;
	evs_state st;
	int rc;

	(void)dir;
	*seen = 0;
	/* by replay, then again from the snapshot just stored */
	if ((rc = evs_state_load(s, "acc-1", NULL, &st)) != EVS_OK)
		return rc;
	evs_state_free(&st);
	if ((rc = evs_state_snapshot(s, "acc-1")) != EVS_OK)
		return rc;
	if ((rc = evs_state_load(s, "acc-1", NULL, &st)) != EVS_OK)
		return rc;
	*seen = st.version;
	evs_state_free(&st);
	return EVS_OK;
}

START_TEST(nomem_state)
{
	walk_reader("state", make_store, op_state, 5);
}
END_TEST

typedef struct counter {
	uint64_t n;
} counter;

static int count_apply(void *ctx, void *state, const evs_event *ev)
{
	(void)ctx;
	(void)ev;
	((counter *)state)->n++;
	return EVS_OK;
}

static int count_decide(void *ctx, const void *state, const void *cmd, evs_decision *d)
{
	tu_mp m;
	evs_event_in ev;
	int rc;

	(void)ctx;
	(void)cmd;
	tu_mp_init(&m);
	tu_mp_map_ints(&m, 1, "n", (long long)((const counter *)state)->n);
	tu_event(&ev, "Opened", &m, NULL);
	rc = evs_decision_emit(d, &ev);
	tu_mp_destroy(&m);
	return rc;
}

static int count_encode(void *ctx, const void *state, evs_sink *out)
{
	(void)ctx;
	return evs_sink_write(out, state, sizeof(counter)) ? EVS_NOMEM : EVS_OK;
}

static int count_decode(void *ctx, void *state, const void *data, size_t len)
{
	(void)ctx;
	if (len != sizeof(counter))
		return EVS_CORRUPT;
	memcpy(state, data, len);
	return EVS_OK;
}

static int op_execute(evs_store *s, const char *dir, void *ctx)
{
	static const evs_aggregate_def def = {.name = "counter",
					      .state_size = sizeof(counter),
					      .apply = count_apply,
					      .decide = count_decide,
					      .snapshot_version = 1,
					      .snapshot_every = 2,
					      .snapshot_encode = count_encode,
					      .snapshot_decode = count_decode};
	evs_aggregate *a;
	int rc;

	(void)dir;
	(void)ctx;
	if ((rc = evs_aggregate_new(s, &def, &a)) != EVS_OK)
		return rc;
	rc = evs_execute(a, "acc-1", "go", NULL);
	evs_aggregate_free(a);
	return rc;
}

START_TEST(nomem_execute)
{
	walk_writer("evs_execute", 5, op_execute, 1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("nomem");
	TCase *tc = kit_tcase("walk", 600);

	tcase_add_test(tc, nomem_open_new);
	tcase_add_test(tc, nomem_open_existing);
	tcase_add_test(tc, nomem_append);
	tcase_add_test(tc, nomem_append_retry);
	tcase_add_test(tc, nomem_schema_add);
	tcase_add_test(tc, nomem_read);
	tcase_add_test(tc, nomem_follow);
	tcase_add_test(tc, nomem_upcast_hook);
	tcase_add_test(tc, nomem_state);
	tcase_add_test(tc, nomem_execute);
	suite_add_tcase(s, tc);
	/* no fork: LeakSanitizer reports at the exit of this process */
	SRunner *sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
