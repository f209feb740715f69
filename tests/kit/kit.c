/*
 * kit.c - the test kit's core (see kit.h).
 */
#include "kit.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <ftw.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

char kit_dir[4096];
static char *root_dir;

/* ---- directories --------------------------------------------------------- */

bool kit_keep(void)
{
	const char *k = getenv("EVS_TEST_KEEP");

	return k != NULL && *k != '\0' && strcmp(k, "0") != 0;
}

char *kit_tmpdir(const char *tag)
{
	const char *base = getenv("TMPDIR");
	char *p;

	if (base == NULL || *base == '\0')
		base = "/tmp";
	if (asprintf(&p, "%s/evs-%s-XXXXXX", base, tag) < 0) {
		fprintf(stderr, "kit: out of memory\n");
		abort();
	}
	if (mkdtemp(p) == NULL) {
		fprintf(stderr, "kit: could not create a temporary directory \"%s\": %s\n", p,
			strerror(errno));
		abort();
	}
	return p;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

int kit_rmrf(const char *path)
{
	if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
		return -1;
	return 0;
}

/* ---- randomness ---------------------------------------------------------- */

uint64_t kit_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t kit_rand_range(uint64_t *state, uint64_t lo, uint64_t hi)
{
	uint64_t span;

	if (hi <= lo)
		return lo;
	span = hi - lo + 1;
	if (span == 0)
		return kit_rand(state);
	return lo + kit_rand(state) % span;
}

uint64_t kit_seed(const char *what)
{
	const char *env = getenv("EVS_TEST_SEED");
	uint64_t seed;

	if (env != NULL && *env != '\0') {
		char *end;

		errno = 0;
		seed = strtoull(env, &end, 10);
		if (errno != 0 || *end != '\0' || *env == '-') {
			fprintf(stderr, "kit: invalid EVS_TEST_SEED \"%s\": want a decimal u64\n",
				env);
			abort();
		}
	} else {
		uint64_t s = (uint64_t)kit_now_ns() ^ ((uint64_t)getpid() << 32);

		seed = kit_rand(&s);
	}
	fprintf(stderr, "%s: seed %llu (replay with EVS_TEST_SEED=%llu)\n", what,
		(unsigned long long)seed, (unsigned long long)seed);
	return seed;
}

/* ---- time ---------------------------------------------------------------- */

static int64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t kit_now_ns(void)
{
	return clock_ns(CLOCK_REALTIME);
}

int64_t kit_mono_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

int64_t kit_mono_ms(void)
{
	return clock_ns(CLOCK_MONOTONIC) / 1000000;
}

int kit_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

/* ---- child processes ----------------------------------------------------- */

pid_t kit_spawn(char *const argv[])
{
	pid_t pid;
	int rc = posix_spawn(&pid, argv[0], NULL, NULL, argv, environ);

	ck_assert_msg(rc == 0, "could not run \"%s\": %s", argv[0], strerror(rc));
	return pid;
}

int kit_wait_child(pid_t pid, int timeout_ms, int must_succeed)
{
	int64_t deadline = kit_mono_ms() + timeout_ms;
	int status = 0;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		ck_assert_msg(r == 0 || errno == EINTR, "waitpid: %s", strerror(errno));
		if (kit_mono_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			ck_abort_msg("child %d did not finish within %d ms", (int)pid, timeout_ms);
		}
		struct timespec d = {0, 2 * 1000 * 1000};
		nanosleep(&d, NULL);
	}
	if (must_succeed)
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			      "child %d failed: %s %d", (int)pid,
			      WIFEXITED(status) ? "exit status" : "signal",
			      WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	return status;
}

/* ---- the suite runner ---------------------------------------------------- */

static void root_setup(void)
{
	root_dir = kit_tmpdir("test");
}

static void root_teardown(void)
{
	if (kit_keep())
		fprintf(stderr, "keeping \"%s\"\n", root_dir);
	else
		kit_rmrf(root_dir);
	free(root_dir);
	root_dir = NULL;
}

static void case_setup(void)
{
	int n = snprintf(kit_dir, sizeof kit_dir, "%s/t-XXXXXX", root_dir);

	ck_assert(n > 0 && (size_t)n < sizeof kit_dir);
	ck_assert_msg(mkdtemp(kit_dir) != NULL, "mkdtemp: %s", strerror(errno));
}

static void case_teardown(void)
{
	if (!kit_keep())
		kit_rmrf(kit_dir);
}

TCase *kit_tcase(const char *name, int timeout_s)
{
	TCase *tc = tcase_create(name);

	tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
	tcase_add_checked_fixture(tc, case_setup, case_teardown);
	tcase_set_timeout(tc, timeout_s);
	return tc;
}

int kit_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

int kit_main(const char *name, int timeout_s, const TTest *const *tests)
{
	Suite *s = suite_create(name);
	TCase *tc = kit_tcase(name, timeout_s);

	for (size_t i = 0; tests[i] != NULL; i++)
		tcase_add_test(tc, tests[i]);
	suite_add_tcase(s, tc);
	return kit_run(s);
}

/* ---- JSON <-> msgpack ---------------------------------------------------- */

void kit_pack_json(msgpack_packer *pk, json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null: msgpack_pack_nil(pk); break;
	case json_type_boolean:
		json_object_get_boolean(v) ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
		break;
	case json_type_int: msgpack_pack_int64(pk, json_object_get_int64(v)); break;
	case json_type_double: msgpack_pack_double(pk, json_object_get_double(v)); break;
	case json_type_string:
		msgpack_pack_str_with_body(pk, json_object_get_string(v),
					   (size_t)json_object_get_string_len(v));
		break;
	case json_type_array:
		msgpack_pack_array(pk, json_object_array_length(v));
		for (size_t i = 0; i < json_object_array_length(v); i++)
			kit_pack_json(pk, json_object_array_get_idx(v, i));
		break;
	case json_type_object:
		msgpack_pack_map(pk, (size_t)json_object_object_length(v));
		json_object_object_foreach(v, k, val)
		{
			msgpack_pack_str_with_body(pk, k, strlen(k));
			kit_pack_json(pk, val);
		}
		break;
	}
}

void kit_json_to_mp(msgpack_sbuffer *sb, const char *json)
{
	msgpack_packer pk;
	json_object *v = json_tokener_parse(json);

	ck_assert_msg(v != NULL || strcmp(json, "null") == 0, "bad test JSON: %s", json);
	msgpack_sbuffer_init(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	kit_pack_json(&pk, v);
	json_object_put(v);
}

char *kit_mp_text(const void *data, size_t len)
{
	msgpack_unpacked u;
	size_t off = 0;
	char *out = malloc(len * 8 + 64);

	ck_assert_ptr_nonnull(out);
	msgpack_unpacked_init(&u);
	ck_assert(msgpack_unpack_next(&u, data, len, &off) == MSGPACK_UNPACK_SUCCESS);
	ck_assert_uint_eq(off, len);
	msgpack_object_print_buffer(out, len * 8 + 64, u.data);
	msgpack_unpacked_destroy(&u);
	return out;
}

/* ---- benchmark statistics ------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

double kit_median(const double *v, size_t n)
{
	double *s = malloc(n * sizeof *s), m;

	if (s == NULL || n == 0) {
		free(s);
		return 0;
	}
	memcpy(s, v, n * sizeof *v);
	qsort(s, n, sizeof *s, cmp_double);
	m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
	free(s);
	return m;
}

int64_t kit_percentile(int64_t *v, size_t n, double p)
{
	size_t i;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof *v, cmp_i64);
	i = (size_t)((double)n * p / 100);
	return v[i < n ? i : n - 1];
}

const char *kit_num(double v, char buf[32])
{
	char tmp[32];
	unsigned long long n = v < 0 ? 0 : (unsigned long long)(v + 0.5);
	int len = snprintf(tmp, sizeof tmp, "%llu", n), o = 0;

	for (int i = 0; i < len; i++) {
		if (i > 0 && (len - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = tmp[i];
	}
	buf[o] = '\0';
	return buf;
}

static const char *bench_who = "bench";
static char bench_root[PATH_MAX];
static bool bench_keep;

const char *kit_bench_root(const char *who, const char *parent, const char *tag, bool keep)
{
	bench_who = who;
	bench_keep = keep;
	if (parent == NULL || *parent == '\0')
		parent = getenv("TMPDIR");
	if (parent == NULL || *parent == '\0')
		parent = "/tmp";
	if ((size_t)snprintf(bench_root, sizeof bench_root, "%s/%s-XXXXXX", parent, tag) >=
	    sizeof bench_root) {
		bench_root[0] = '\0';
		kit_die("directory name too long under \"%s\"", parent);
	}
	if (mkdtemp(bench_root) == NULL) {
		int e = errno;

		bench_root[0] = '\0';
		kit_die("could not create a temporary directory under \"%s\": %s", parent,
			strerror(e));
	}
	return bench_root;
}

void kit_bench_path(char *out, const char *name)
{
	if ((size_t)snprintf(out, PATH_MAX, "%s/%s", bench_root, name) >= PATH_MAX)
		kit_die("path too long under \"%s\"", bench_root);
}

void kit_bench_cleanup(void)
{
	if (bench_root[0] == '\0')
		return;
	if (bench_keep)
		printf("kept %s\n", bench_root);
	else
		kit_rmrf(bench_root);
	bench_root[0] = '\0';
}

void kit_die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "%s: ", bench_who);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	kit_bench_cleanup();
	exit(1);
}

void kit_print_load(const char *when)
{
	char buf[128] = "unknown";
	FILE *f = fopen("/proc/loadavg", "r");

	if (f) {
		if (fgets(buf, sizeof buf, f))
			buf[strcspn(buf, "\n")] = '\0';
		fclose(f);
	}
	printf("load:    %s (%s)\n", buf, when);
}
