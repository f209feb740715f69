/*
 * kit.h - the test kit shared by every suite: temporary directories, rm -rf,
 * seeded random numbers, time, the suite runner, JSON <-> msgpack for test
 * inputs, child processes, benchmark statistics and scratch directories.
 * The jobs built on it have their own headers: kit_store.h (libevstore
 * helpers), kit_pg.h (a throwaway PostgreSQL cluster and the projector in
 * tests), kit_http.h (the HTTP client and the evs-query fixture).
 *
 * Temporary directories
 *   kit_tmpdir() makes a fresh directory under $TMPDIR (else /tmp). Tests
 *   run by kit_main() also get kit_dir: a root directory per executable
 *   (made and removed by Check's parent process) and a fresh directory in
 *   it per test case. A test that fails in fork mode exits without its
 *   teardown; the root's removal cleans up after it. EVS_TEST_KEEP=1 keeps
 *   everything.
 *
 * Child processes
 *   Code running in a process forked by a test must not use ck_assert (its
 *   report would race the test's own); it uses kit_child_check(), which
 *   prints and _exit()s with status 3. Children always leave by _exit().
 *
 * Randomness
 *   kit_seed() is the one reader of EVS_TEST_SEED: it returns that seed when
 *   set, else a fresh one, and prints it so that any run can be replayed.
 *   The generator is splitmix64 over a uint64_t state (any value is a good
 *   state, 0 included).
 */
#ifndef EVS_KIT_H
#define EVS_KIT_H

#include <check.h>
#include <json-c/json.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <unistd.h>

/* ---- directories --------------------------------------------------------- */

/* Directory of the running test case (fresh and empty at its start). */
extern char kit_dir[4096];

/* A fresh directory "<$TMPDIR>/evs-<tag>-XXXXXX" (malloc'd); aborts the
 * process when none can be made. */
char *kit_tmpdir(const char *tag);
/* rm -rf: 0, or -1 (errno set) when something stayed. */
int kit_rmrf(const char *path);
/* EVS_TEST_KEEP is set: leave temporary directories behind. */
bool kit_keep(void);

/* ---- randomness ---------------------------------------------------------- */

/* EVS_TEST_SEED, or a fresh seed; printed as "<what>: seed N (replay with
 * EVS_TEST_SEED=N)". A malformed EVS_TEST_SEED aborts with a message. */
uint64_t kit_seed(const char *what);
/* splitmix64 */
uint64_t kit_rand(uint64_t *state);
/* Uniform in [lo, hi] (inclusive). */
uint64_t kit_rand_range(uint64_t *state, uint64_t lo, uint64_t hi);

/* ---- time ---------------------------------------------------------------- */

int64_t kit_now_ns(void);  /* CLOCK_REALTIME */
int64_t kit_mono_ns(void); /* CLOCK_MONOTONIC */
int64_t kit_mono_ms(void);

/* Open file descriptors of this process (a leak check). */
int kit_count_fds(void);

/* ---- child processes --------------------------------------------------- */

#define kit_child_check(cond, ...)                                                             \
	do {                                                                                   \
		if (!(cond)) {                                                                 \
			fprintf(stderr, "child %d: %s:%d: check '%s' failed: ", (int)getpid(), \
				__FILE__, __LINE__, #cond);                                    \
			fprintf(stderr, __VA_ARGS__);                                          \
			fputc('\n', stderr);                                                   \
			_exit(3);                                                              \
		}                                                                              \
	} while (0)

/* Start argv[0] (a path) with argv and this environment; fails the test
 * when it cannot start. */
pid_t kit_spawn(char *const argv[]);
/* Wait for pid (bounded by timeout_ms, then SIGKILL); returns the raw
 * wait status, and asserts the child exited with status 0 when
 * must_succeed. */
int kit_wait_child(pid_t pid, int timeout_ms, int must_succeed);

/* ---- the suite runner ---------------------------------------------------- */

/* A TCase with the kit_dir fixtures and a timeout of timeout_s seconds. */
TCase *kit_tcase(const char *name, int timeout_s);
/* Run the suite (CK_ENV verbosity), free it: main()'s exit status. */
int kit_run(Suite *s);
/* The whole of a usual main(): one suite named name, one kit_tcase of the
 * NULL-terminated tests, run. */
int kit_main(const char *name, int timeout_s, const TTest *const *tests);

/* ---- JSON <-> msgpack ---------------------------------------------------- */

/* Pack a json-c value: integers as ints, other numbers as float64, keys
 * in json-c's order. */
void kit_pack_json(msgpack_packer *pk, json_object *v);
/* Pack JSON text into sb (initialised here); fails the test on bad JSON. */
void kit_json_to_mp(msgpack_sbuffer *sb, const char *json);
/* msgpack-c's text of a msgpack value (malloc'd), keys in stored order;
 * fails the test unless data is exactly one value. */
char *kit_mp_text(const void *data, size_t len);

/* ---- benchmark statistics ------------------------------------------------ */

/* Median of n values (n >= 1; v is not changed). */
double kit_median(const double *v, size_t n);
/* The p-th percentile (0 <= p <= 100, nearest rank below) of n int64
 * values; sorts v in place. */
int64_t kit_percentile(int64_t *v, size_t n, double p);
/* "12,345,678": v rounded to an integer, with thousands separators. */
const char *kit_num(double v, char buf[32]);

/* A benchmark's scratch directory "<parent>/<tag>-XXXXXX" (parent NULL or
 * "": $TMPDIR, else /tmp), removed by kit_bench_cleanup() unless keep;
 * who names the program in kit_die()'s messages. */
const char *kit_bench_root(const char *who, const char *parent, const char *tag, bool keep);
/* out (PATH_MAX bytes) = the scratch directory "/" name. */
void kit_bench_path(char *out, const char *name);
void kit_bench_cleanup(void);
/* "<who>: message" on stderr, kit_bench_cleanup(), exit status 1. */
_Noreturn void kit_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "load:    <1/5/15-minute load averages> (when)": other work on the
 * machine skews figures. */
void kit_print_load(const char *when);

#endif /* EVS_KIT_H */
