/*
 * kit_store.c - the test kit's libevstore helpers (see kit_store.h).
 */
#include "kit_store.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

/* ---- fixtures ---------------------------------------------------------- */

void tu_path(char *out, size_t size, const char *name)
{
	int n = snprintf(out, size, "%s/%s", kit_dir, name);
	ck_assert(n > 0 && (size_t)n < size);
}

int tu_has_number(const char *msg, unsigned long long n)
{
	char num[32];
	snprintf(num, sizeof num, "%llu", n);
	size_t len = strlen(num);
	for (const char *p = msg; p != NULL && (p = strstr(p, num)) != NULL; p++) {
		int before = p > msg && p[-1] >= '0' && p[-1] <= '9';
		int after = p[len] >= '0' && p[len] <= '9';
		if (!before && !after)
			return 1;
	}
	return 0;
}

/* ---- opening ----------------------------------------------------------- */

void tu_options(evs_options *o, int sync)
{
	evs_options_init(o);
	o->sync = sync;
}

evs_store *tu_open(const char *dir, const evs_options *opts)
{
	evs_store *st = NULL;
	int rc = evs_open(dir, opts, &st);
	ck_assert_msg(rc == EVS_OK, "evs_open(\"%s\"): %s: %s", dir, evs_code_name(rc),
		      evs_open_errmsg());
	ck_assert_ptr_nonnull(st);
	return st;
}

/* ---- msgpack ----------------------------------------------------------- */

void tu_mp_init(tu_mp *m)
{
	msgpack_sbuffer_init(&m->sb);
	msgpack_packer_init(&m->pk, &m->sb, msgpack_sbuffer_write);
}

void tu_mp_destroy(tu_mp *m)
{
	msgpack_sbuffer_destroy(&m->sb);
}

void tu_mp_reset(tu_mp *m)
{
	m->sb.size = 0;
}

void tu_mp_str(tu_mp *m, const char *s)
{
	size_t n = strlen(s);
	msgpack_pack_str(&m->pk, n);
	msgpack_pack_str_body(&m->pk, s, n);
}

void tu_mp_int(tu_mp *m, int64_t v)
{
	msgpack_pack_int64(&m->pk, v);
}

void tu_mp_map_ints(tu_mp *m, size_t npairs, ...)
{
	va_list ap;
	va_start(ap, npairs);
	msgpack_pack_map(&m->pk, npairs);
	for (size_t i = 0; i < npairs; i++) {
		const char *k = va_arg(ap, const char *);
		long long v = va_arg(ap, long long);
		tu_mp_str(m, k);
		tu_mp_int(m, v);
	}
	va_end(ap);
}

void tu_mp_blob_map(tu_mp *m, size_t n, uint64_t seed)
{
	uint64_t r = seed;
	msgpack_pack_map(&m->pk, 1);
	tu_mp_str(m, "blob");
	msgpack_pack_bin(&m->pk, n);
	char chunk[256];
	size_t done = 0;
	while (done < n) {
		size_t k = n - done < sizeof chunk ? n - done : sizeof chunk;
		for (size_t i = 0; i < k; i += 8) {
			uint64_t x = kit_rand(&r);
			size_t c = k - i < 8 ? k - i : 8;
			memcpy(chunk + i, &x, c);
		}
		msgpack_pack_bin_body(&m->pk, chunk, k);
		done += k;
	}
}

int tu_mp_get_int(const void *buf, size_t len, const char *key, int64_t *out)
{
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	size_t off = 0;
	int rc = -1;
	if (msgpack_unpack_next(&u, buf, len, &off) != MSGPACK_UNPACK_SUCCESS)
		goto done;
	if (u.data.type != MSGPACK_OBJECT_MAP)
		goto done;
	size_t klen = strlen(key);
	for (uint32_t i = 0; i < u.data.via.map.size; i++) {
		const msgpack_object_kv *kv = &u.data.via.map.ptr[i];
		if (kv->key.type != MSGPACK_OBJECT_STR || kv->key.via.str.size != klen ||
		    memcmp(kv->key.via.str.ptr, key, klen) != 0)
			continue;
		if (kv->val.type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
			*out = (int64_t)kv->val.via.u64;
			rc = 0;
		} else if (kv->val.type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
			*out = kv->val.via.i64;
			rc = 0;
		}
		break;
	}
done:
	msgpack_unpacked_destroy(&u);
	return rc;
}

/* ---- events ------------------------------------------------------------ */

void tu_event(evs_event_in *ev, const char *type, const tu_mp *data, const tu_mp *meta)
{
	memset(ev, 0, sizeof *ev);
	ev->type = type;
	if (data != NULL) {
		ev->data = data->sb.data;
		ev->data_len = data->sb.size;
	}
	if (meta != NULL) {
		ev->metadata = meta->sb.data;
		ev->metadata_len = meta->sb.size;
	}
}

void tu_id(uint8_t id[16], uint64_t tag, uint64_t n)
{
	for (int i = 0; i < 8; i++) {
		id[i] = (uint8_t)(tag >> (56 - 8 * i));
		id[8 + i] = (uint8_t)(n >> (56 - 8 * i));
	}
	if (tag == 0 && n == 0)
		id[15] = 1;
}

int tu_append_simple(evs_store *st, const char *stream, uint64_t expected, const char *type,
		     size_t n, uint64_t tag, uint64_t first, evs_append_result *res)
{
	evs_event_in *evs = calloc(n ? n : 1, sizeof *evs);
	tu_mp *mps = calloc(n ? n : 1, sizeof *mps);
	ck_assert(evs != NULL && mps != NULL);
	for (size_t i = 0; i < n; i++) {
		tu_mp_init(&mps[i]);
		tu_mp_map_ints(&mps[i], 1, "n", (long long)(first + i));
		tu_event(&evs[i], type, &mps[i], NULL);
		if (tag != 0)
			tu_id(evs[i].id, tag, first + i);
	}
	evs_append_result r;
	memset(&r, 0, sizeof r);
	int rc = evs_append(st, stream, expected, evs, n, res ? res : &r);
	for (size_t i = 0; i < n; i++)
		tu_mp_destroy(&mps[i]);
	free(mps);
	free(evs);
	return rc;
}

void tu_ev_copy(tu_ev *dst, const evs_event *src)
{
	size_t total = src->stream.len + src->type.len + src->data_len + src->metadata_len + 1 +
		       src->producer.len + EVS_MAX_TAGS * sizeof(evs_str) + 16;
	for (size_t i = 0; i < src->ntags; i++)
		total += src->tags[i].len;
	dst->buf = malloc(total);
	tu_check(dst->buf != NULL, "out of memory");
	dst->ev = *src;
	/* the tag array first (aligned: malloc's), then the bytes */
	evs_str *tags = (evs_str *)dst->buf;
	char *p = dst->buf + EVS_MAX_TAGS * sizeof(evs_str);
	for (size_t i = 0; i < src->ntags && i < EVS_MAX_TAGS; i++) {
		memcpy(p, src->tags[i].ptr, src->tags[i].len);
		tags[i].ptr = p;
		tags[i].len = src->tags[i].len;
		p += src->tags[i].len;
	}
	dst->ev.tags = tags;
	if (src->producer.len)
		memcpy(p, src->producer.ptr, src->producer.len);
	dst->ev.producer.ptr = p;
	p += src->producer.len;
	memcpy(p, src->stream.ptr, src->stream.len);
	dst->ev.stream.ptr = p;
	p += src->stream.len;
	memcpy(p, src->type.ptr, src->type.len);
	dst->ev.type.ptr = p;
	p += src->type.len;
	if (src->data_len > 0)
		memcpy(p, src->data, src->data_len);
	dst->ev.data = p;
	p += src->data_len;
	if (src->metadata_len > 0)
		memcpy(p, src->metadata, src->metadata_len);
	dst->ev.metadata = p;
}

void tu_ev_free(tu_ev *e)
{
	if (e != NULL) {
		free(e->buf);
		e->buf = NULL;
	}
}

void tu_evs_free(tu_ev *evs, size_t n)
{
	for (size_t i = 0; i < n && evs != NULL; i++)
		tu_ev_free(&evs[i]);
	free(evs);
}

size_t tu_drain(evs_store *store, evs_iter *it, tu_ev **out)
{
	size_t n = 0, cap = 16;
	tu_ev *a = malloc(cap * sizeof *a);
	ck_assert_ptr_nonnull(a);
	for (;;) {
		evs_event ev;
		int rc = evs_iter_next(it, &ev);
		if (rc == EVS_END)
			break;
		if (rc != EVS_OK) {
			evs_iter_free(it);
			ck_abort_msg("evs_iter_next: %s: %s", evs_code_name(rc), evs_errmsg(store));
		}
		if (n == cap) {
			cap *= 2;
			a = realloc(a, cap * sizeof *a);
			ck_assert_ptr_nonnull(a);
		}
		tu_ev_copy(&a[n++], &ev);
	}
	/* EVS_END is sticky */
	evs_event ev;
	int again = evs_iter_next(it, &ev);
	evs_iter_free(it);
	ck_assert_msg(again == EVS_END, "evs_iter_next after EVS_END: %s", evs_code_name(again));
	*out = a;
	return n;
}

size_t tu_read_all(evs_store *store, tu_ev **out)
{
	evs_iter *it = NULL;
	tu_ok(store, evs_read_all(store, 1, EVS_FORWARD, NULL, 0, &it));
	return tu_drain(store, it, out);
}

int tu_str_eq(evs_str s, const char *c)
{
	size_t n = strlen(c);
	return s.len == n && (n == 0 || memcmp(s.ptr, c, n) == 0);
}

static void count_problem(void *ctx, const char *problem)
{
	uint64_t *seen = ctx;
	(*seen)++;
	fprintf(stderr, "verify: %s\n", problem);
}

uint64_t tu_verify(evs_store *store)
{
	uint64_t problems = UINT64_MAX, seen = 0;
	tu_ok(store, evs_verify(store, count_problem, &seen, &problems));
	ck_assert_uint_eq(problems, seen);
	return problems;
}

/* ---- time and waiting -------------------------------------------------- */

int tu_wait_for(int (*cond)(void *ctx), void *ctx, int timeout_ms)
{
	int64_t deadline = kit_mono_ms() + timeout_ms;
	for (;;) {
		if (cond(ctx))
			return 1;
		if (kit_mono_ms() > deadline)
			return 0;
		struct timespec d = {0, 2 * 1000 * 1000};
		nanosleep(&d, NULL);
	}
}

int tu_read_full(int fd, void *buf, size_t len, int timeout_ms)
{
	int64_t deadline = kit_mono_ms() + timeout_ms;
	size_t got = 0;
	while (got < len) {
		int64_t left = deadline - kit_mono_ms();
		if (left < 0)
			return -1;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int r = poll(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		ssize_t k = read(fd, (char *)buf + got, len - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		got += (size_t)k;
	}
	return 0;
}

int tu_write_full(int fd, const void *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t k = write(fd, (const char *)buf + done, len - done);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		done += (size_t)k;
	}
	return 0;
}
