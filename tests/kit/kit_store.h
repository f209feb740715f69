/*
 * kit_store.h - the test kit's libevstore helpers (the suites store,
 * aggregate and schema): opening, msgpack payloads, events, draining
 * iterators, waiting. Directories, seeds, child processes and the runner
 * are kit.h's.
 */
#ifndef EVS_KIT_STORE_H
#define EVS_KIT_STORE_H

#include <check.h>
#include <limits.h>
#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "evstore.h"
#include "kit.h"

/* ---- fixtures ---------------------------------------------------------- */

/* Make path = kit_dir "/" name (asserts it fits). */
void tu_path(char *out, size_t size, const char *name);

/* ---- assertions on return codes ---------------------------------------- */

/* Like ck_assert_msg, for hot loops: Check records a "last passed point"
 * (an IPC message in fork mode) for every passing ck_assert, which costs
 * seconds over a million iterations. */
#define tu_check(cond, ...)                        \
	do {                                       \
		if (!(cond))                       \
			ck_abort_msg(__VA_ARGS__); \
	} while (0)

#define tu_assert_rc(store, call, want)                                                    \
	do {                                                                               \
		int tu_rc_ = (call);                                                       \
		int tu_want_ = (want);                                                     \
		tu_check(tu_rc_ == tu_want_, "%s: got %s (%d), want %s (%d): %s", #call,   \
			 evs_code_name(tu_rc_), tu_rc_, evs_code_name(tu_want_), tu_want_, \
			 (store) ? evs_errmsg(store) : evs_open_errmsg());                 \
	} while (0)

#define tu_ok(store, call) tu_assert_rc(store, call, EVS_OK)

#define tu_check_u64_eq(x, y)                                                             \
	do {                                                                              \
		unsigned long long tu_x_ = (x), tu_y_ = (y);                              \
		tu_check(tu_x_ == tu_y_, "%s == %s: %llu != %llu", #x, #y, tu_x_, tu_y_); \
	} while (0)

#define tu_check_i64_eq(x, y)                                                             \
	do {                                                                              \
		long long tu_x_ = (x), tu_y_ = (y);                                       \
		tu_check(tu_x_ == tu_y_, "%s == %s: %lld != %lld", #x, #y, tu_x_, tu_y_); \
	} while (0)

/* True when msg contains the decimal number n not adjacent to a digit. */
int tu_has_number(const char *msg, unsigned long long n);

/* ---- opening ----------------------------------------------------------- */

/* evs_options_init + the given sync mode. */
void tu_options(evs_options *o, int sync);

/* Open dir (asserting success). opts may be NULL. */
evs_store *tu_open(const char *dir, const evs_options *opts);

/* ---- msgpack ----------------------------------------------------------- */

typedef struct tu_mp {
	msgpack_sbuffer sb;
	msgpack_packer pk;
} tu_mp;

void tu_mp_init(tu_mp *m);
void tu_mp_destroy(tu_mp *m);
void tu_mp_reset(tu_mp *m);
void tu_mp_str(tu_mp *m, const char *s);
void tu_mp_int(tu_mp *m, int64_t v);
/* A map of npairs (const char *key, long long value) pairs. */
void tu_mp_map_ints(tu_mp *m, size_t npairs, ...);
/* {"blob": <bin of n deterministic bytes derived from seed>} */
void tu_mp_blob_map(tu_mp *m, size_t n, uint64_t seed);

/* Value of integer `key` in the msgpack map buf: 0, or -1 if absent/bad. */
int tu_mp_get_int(const void *buf, size_t len, const char *key, int64_t *out);

/* ---- events ------------------------------------------------------------ */

/* Zero ev, set type and (optionally) data/metadata from packers. */
void tu_event(evs_event_in *ev, const char *type, const tu_mp *data, const tu_mp *meta);

/* Fill id with a recognisable non-zero id: tag in the first 8 bytes,
 * n in the last 8 (both big-endian). */
void tu_id(uint8_t id[16], uint64_t tag, uint64_t n);

/* Append n events of `type` to `stream`, the i-th with data {"n": first+i}
 * and id tu_id(tag, first+i) (generated ids when tag is 0). Returns the
 * code of evs_append. */
int tu_append_simple(evs_store *st, const char *stream, uint64_t expected, const char *type,
		     size_t n, uint64_t tag, uint64_t first, evs_append_result *res);

/* An owned deep copy of an evs_event (the views point into buf). */
typedef struct tu_ev {
	evs_event ev;
	char *buf;
} tu_ev;

void tu_ev_copy(tu_ev *dst, const evs_event *src);
void tu_ev_free(tu_ev *e);

/* Read events from an iterator into an owned array (frees the iterator);
 * asserts that it ended with EVS_END. */
size_t tu_drain(evs_store *store, evs_iter *it, tu_ev **out);
void tu_evs_free(tu_ev *evs, size_t n);

/* Whole log, forward from position 1. */
size_t tu_read_all(evs_store *store, tu_ev **out);

/* evs_str == C string */
int tu_str_eq(evs_str s, const char *c);

/* Run evs_verify; returns the problem count (printing every problem). */
uint64_t tu_verify(evs_store *store);

/* ---- time and waiting -------------------------------------------------- */

/* Poll cond(ctx) every 2 ms until true or timeout_ms: 1 if it came true. */
int tu_wait_for(int (*cond)(void *ctx), void *ctx, int timeout_ms);

/* Read exactly len bytes from fd within timeout_ms: 0, or -1 on EOF,
 * error or timeout. */
int tu_read_full(int fd, void *buf, size_t len, int timeout_ms);
/* Write all of buf: 0 or -1. */
int tu_write_full(int fd, const void *buf, size_t len);

#endif /* EVS_KIT_STORE_H */
