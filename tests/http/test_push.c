/*
 * test_push.c - GET /events/stream (query/push*.c) over real HTTP against
 * evs-query as its own process with --store (one LMDB environment per
 * process: this one appends), with real clients on raw sockets
 * (push_client.h).
 *
 *   push_resume       after=earliest|latest|N, Last-Event-ID (wins over
 *                     after=), the first frame says where, headers,
 *                     CloudEvents bodies with id = position
 *   push_filters      stream=, stream_prefix=, type=a,b: exactly the
 *                     matching positions, catch-up and live
 *   push_ndjson       Accept: application/x-ndjson: lines, heartbeats
 *   push_refusals     400 (duplicates, empty, %00, bad numbers, past the
 *                     head, bad type lists), 401, 404 without --store,
 *                     503 beyond --push-max-streams
 *   push_many_resume  120 clients disconnect at random moments (mid-frame
 *                     too) and resume by Last-Event-ID or after= while a
 *                     writer appends: each sees every position exactly
 *                     once, in order (seeded)
 *   push_slow_cut     a client that never reads is cut (the cut frame
 *                     names where to resume) while others keep up and
 *                     /health answers; it resumes to the end
 *
 * No sleeps as synchronisation: every wait is a bounded poll on a
 * condition.
 */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <json-c/json.h>

#include "kit_http.h"
#include "push_client.h"

#define WAIT_MS 30000

static void append_n(evs_store *s, uint64_t *rng, size_t n, size_t batch_max)
{
	static const char *const types[] = {"opened", "deposited", "closed"};
	char stream[32];
	uint8_t data[] = {0x81, 0xa1, 'n', 0x01}; /* {"n": 1} */

	while (n > 0) {
		size_t k = (size_t)kit_rand_range(rng, 1, batch_max), i;
		evs_event_in ev[16];
		evs_append_result res;

		if (k > n)
			k = n;
		if (k > 16)
			k = 16;
		snprintf(stream, sizeof stream, "acct-%u", (unsigned)kit_rand_range(rng, 0, 19));
		for (i = 0; i < k; i++) {
			memset(&ev[i], 0, sizeof ev[i]);
			ev[i].type = types[kit_rand_range(rng, 0, 2)];
			ev[i].data = data;
			ev[i].data_len = sizeof data;
		}
		ck_assert_int_eq(evs_append(s, stream, EVS_ANY, ev, k, &res), EVS_OK);
		n -= k;
	}
}

static uint64_t head_of(evs_store *s)
{
	evs_store_info h;

	ck_assert_int_eq(evs_head(s, &h), EVS_OK);
	return h.last_position;
}

static void open_ok(pc *c, unsigned port, const char *target, const char *extra, bool ndjson)
{
	ck_assert_int_eq(pc_open(c, port, target, extra, ndjson, 0), 0);
	ck_assert_int_eq(pc_wait_headers(c, WAIT_MS), 200);
}

/* The next frame, which must come within WAIT_MS. */
static void frame(pc *c, pc_frame *fr)
{
	ck_assert_int_eq(pc_wait(c, fr, WAIT_MS), 1);
}

static void expect_resume(pc *c, uint64_t after, const char *from)
{
	pc_frame fr;

	frame(c, &fr);
	ck_assert_int_eq(fr.kind, PC_RESUME);
	ck_assert_uint_eq(fr.id, after);
	ck_assert_ptr_nonnull(fr.from);
	ck_assert(!strncmp(fr.from, from, strlen(from)) && fr.from[strlen(from)] == '"');
}

/* The next event (heartbeats skipped): its position. */
static uint64_t next_event(pc *c, pc_frame *fr)
{
	for (;;) {
		frame(c, fr);
		if (fr->kind == PC_HEARTBEAT)
			continue;
		ck_assert_int_eq(fr->kind, PC_EVENT);
		return fr->id;
	}
}

START_TEST(push_resume)
{
	http_query_fixture f;
	uint64_t rng = kit_seed("push_resume");
	char v[64];
	pc c;
	pc_frame fr;
	json_object *j, *m;

	http_query_start(&f, "push", 0, true, NULL);
	append_n(f.store, &rng, 10, 3);
	/* earliest: positions 1..10, CloudEvents bodies, the headers */
	open_ok(&c, f.port, "/events/stream?after=earliest", NULL, false);
	ck_assert(pc_header(&c, "Content-Type", v, sizeof v));
	ck_assert_str_eq(v, "text/event-stream");
	ck_assert(pc_header(&c, "Cache-Control", v, sizeof v));
	ck_assert_str_eq(v, "no-cache");
	ck_assert(pc_header(&c, "X-Accel-Buffering", v, sizeof v));
	ck_assert_str_eq(v, "no");
	ck_assert(pc_header(&c, "Evstore-Resume-After", v, sizeof v));
	ck_assert_str_eq(v, "0");
	/* the first frame's bytes, as sent (the headers may come alone) */
	for (int64_t end = kit_mono_ms() + WAIT_MS;
	     !memmem(c.buf + c.off, c.len - c.off, "\n\n", 2);) {
		struct pollfd p = {c.fd, POLLIN, 0};

		ck_assert(kit_mono_ms() < end);
		poll(&p, 1, 1000);
		ck_assert_int_ge(pc_fill(&c), 0);
	}
	ck_assert(!strncmp(c.buf + c.off, "retry: 3000\n", 12));
	expect_resume(&c, 0, "earliest");
	for (uint64_t p = 1; p <= 10; p++) {
		char *text;

		ck_assert_uint_eq(next_event(&c, &fr), p);
		text = strndup(fr.data, fr.len);
		j = json_tokener_parse(text);
		ck_assert_ptr_nonnull(j);
		ck_assert(json_object_object_get_ex(j, "specversion", &m));
		ck_assert_str_eq(json_object_get_string(m), "1.0");
		ck_assert(json_object_object_get_ex(j, "position", &m));
		ck_assert_uint_eq(strtoull(json_object_get_string(m), NULL, 10), p);
		ck_assert(json_object_object_get_ex(j, "subject", &m));
		ck_assert(!strncmp(json_object_get_string(m), "acct-", 5));
		ck_assert(json_object_object_get_ex(j, "data", &m));
		ck_assert_str_eq(json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN),
				 "{\"n\":1}");
		json_object_put(j);
		free(text);
	}
	/* then live: the next commit arrives on the same stream */
	append_n(f.store, &rng, 1, 1);
	ck_assert_uint_eq(next_event(&c, &fr), 11);
	pc_close(&c);

	/* no parameter: latest */
	open_ok(&c, f.port, "/events/stream", NULL, false);
	expect_resume(&c, 11, "latest");
	append_n(f.store, &rng, 2, 1);
	ck_assert_uint_eq(next_event(&c, &fr), 12);
	ck_assert_uint_eq(next_event(&c, &fr), 13);
	pc_close(&c);
	open_ok(&c, f.port, "/events/stream?after=latest", NULL, false);
	expect_resume(&c, 13, "latest");
	pc_close(&c);

	/* after=N */
	open_ok(&c, f.port, "/events/stream?after=5", NULL, false);
	expect_resume(&c, 5, "after");
	ck_assert_uint_eq(next_event(&c, &fr), 6);
	pc_close(&c);
	/* Last-Event-ID wins over after= */
	open_ok(&c, f.port, "/events/stream?after=2", "Last-Event-ID: 7\r\n", false);
	ck_assert(pc_header(&c, "Evstore-Resume-After", v, sizeof v));
	ck_assert_str_eq(v, "7");
	expect_resume(&c, 7, "last_event_id");
	ck_assert_uint_eq(next_event(&c, &fr), 8);
	pc_close(&c);
	/* the head itself: nothing until the next commit */
	open_ok(&c, f.port, "/events/stream", "Last-Event-ID: 13\r\n", false);
	expect_resume(&c, 13, "last_event_id");
	append_n(f.store, &rng, 1, 1);
	ck_assert_uint_eq(next_event(&c, &fr), 14);
	pc_close(&c);
	http_query_stop(&f);
}
END_TEST

/* From earliest with filter q: the positions (until n were seen). */
static void expect_positions(unsigned port, const char *q, const uint64_t *want, size_t n)
{
	char target[256];
	pc c;
	pc_frame fr;

	snprintf(target, sizeof target, "/events/stream?after=earliest&%s", q);
	open_ok(&c, port, target, NULL, false);
	expect_resume(&c, 0, "earliest");
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(next_event(&c, &fr) == want[i], "%s: event %zu is %llu, not %llu", q,
			      i, (unsigned long long)fr.id, (unsigned long long)want[i]);
	pc_close(&c);
}

static void put(evs_store *s, const char *stream, const char *type)
{
	evs_event_in ev = {0};
	evs_append_result res;

	ev.type = type;
	ck_assert_int_eq(evs_append(s, stream, EVS_ANY, &ev, 1, &res), EVS_OK);
}

START_TEST(push_filters)
{
	http_query_fixture f;
	const uint64_t a1[] = {1, 4, 7}, pre[] = {1, 2, 4, 5, 7}, ty[] = {2, 3, 6}, both[] = {3, 6};
	pc live;
	pc_frame fr;

	http_query_start(&f, "push", 0, true, NULL);
	/* positions: 1 a-1 x, 2 a-2 y, 3 b-1 y, 4 a-1 x, 5 a-2 x, 6 b-1 z, 7 a-1 x */
	put(f.store, "a-1", "x");
	put(f.store, "a-2", "y");
	put(f.store, "b-1", "y");
	put(f.store, "a-1", "x");
	put(f.store, "a-2", "x");
	put(f.store, "b-1", "z");
	put(f.store, "a-1", "x");
	expect_positions(f.port, "stream=a-1", a1, 3);
	expect_positions(f.port, "stream_prefix=a-", pre, 5);
	expect_positions(f.port, "type=y,z", ty, 3);
	expect_positions(f.port, "type=y,z&stream_prefix=b", both, 2);
	/* a filtered catch-up across many events that do not match: the scan
	 * goes on across reader calls (heartbeats between) to the match */
	{
		uint64_t rng = kit_seed("push_filters"), far;

		append_n(f.store, &rng, 300000, 16);
		put(f.store, "z-1", "x");
		far = head_of(f.store);
		expect_positions(f.port, "stream=z-1", &far, 1);
		expect_positions(f.port, "stream_prefix=z", &far, 1);
	}
	/* live: the same filter on the window */
	open_ok(&live, f.port, "/events/stream?stream=a-1", NULL, false);
	expect_resume(&live, 300008, "latest");
	for (int i = 0; i < 40; i++)
		put(f.store, i % 10 == 9 ? "a-1" : "a-10", "x");
	for (uint64_t p = 300018; p <= 300048; p += 10)
		ck_assert_uint_eq(next_event(&live, &fr), p);
	pc_close(&live);
	http_query_stop(&f);
}
END_TEST

static void put_tagged(evs_store *s, const char *stream, const char *type, const char *t1,
		       const char *t2)
{
	const char *tags[2] = {t1, t2};
	evs_event_in ev = {0};
	evs_append_result res;

	ev.type = type;
	ev.tags = tags;
	ev.ntags = t2 ? 2 : t1 ? 1 : 0;
	ck_assert_int_eq(evs_append(s, stream, EVS_ANY, &ev, 1, &res), EVS_OK);
}

/* category= and tag= (issue 12), in catch-up and live from the window */
START_TEST(push_tag_filters)
{
	http_query_fixture f;
	const uint64_t cat_a[] = {1, 2, 5}, t1[] = {1, 3, 5}, t12[] = {3, 5}, cat_b_y[] = {4},
		       comma[] = {2};
	pc live;
	pc_frame fr;

	http_query_start(&f, "push", 0, true, NULL);
	/* 1 a-1 x {t1}, 2 a-2 y {x,y}, 3 b-1 x {t1,t2}, 4 b-2 y {}, 5 a-1 x {t1,t2} */
	put_tagged(f.store, "a-1", "x", "t1", NULL);
	put_tagged(f.store, "a-2", "y", "x,y", NULL);
	put_tagged(f.store, "b-1", "x", "t1", "t2");
	put_tagged(f.store, "b-2", "y", NULL, NULL);
	put_tagged(f.store, "a-1", "x", "t1", "t2");
	expect_positions(f.port, "category=a", cat_a, 3);
	expect_positions(f.port, "tag=t1", t1, 3);
	expect_positions(f.port, "tag=t1&tag=t2", t12, 2);
	expect_positions(f.port, "category=b&type=y", cat_b_y, 1);
	expect_positions(f.port, "tag=x%2Cy", comma, 1);
	expect_positions(f.port, "category=c,a&tag=t2", &t12[1], 1);
	/* live: the window keeps each event's tags */
	open_ok(&live, f.port, "/events/stream?tag=t2&category=b", NULL, false);
	expect_resume(&live, 5, "latest");
	put_tagged(f.store, "a-9", "x", "t2", NULL);
	put_tagged(f.store, "b-9", "x", "t1", NULL);
	put_tagged(f.store, "b-9", "x", "t1", "t2");
	ck_assert_uint_eq(next_event(&live, &fr), 8);
	{
		static const char want[] = "\"tags\":\"[\\\"t1\\\",\\\"t2\\\"]\"";

		ck_assert(memmem(fr.data, fr.len, want, sizeof want - 1) != NULL);
	}
	pc_close(&live);
	http_query_stop(&f);
}
END_TEST

/* A store made with another category separator: the live window splits
 * stream ids where the store's category index does, so catch-up and
 * live agree ("a-2" is its own category under ':'). */
START_TEST(push_category_separator)
{
	http_query_fixture f;
	const uint64_t cat_a[] = {1, 3}, cat_a2[] = {2};
	pc live;
	pc_frame fr;

	http_query_start(&f, "push", ':', true, NULL);
	put(f.store, "a:1", "x");
	put(f.store, "a-2", "x");
	put(f.store, "a:2", "x");
	expect_positions(f.port, "category=a", cat_a, 2);
	expect_positions(f.port, "category=a-2", cat_a2, 1);
	open_ok(&live, f.port, "/events/stream?category=a", NULL, false);
	expect_resume(&live, 3, "latest");
	put(f.store, "a-3", "x");
	put(f.store, "a:3", "x");
	ck_assert_uint_eq(next_event(&live, &fr), 5);
	pc_close(&live);
	http_query_stop(&f);
}
END_TEST

START_TEST(push_ndjson)
{
	http_query_fixture f;
	static const char *const hb[] = {"--push-heartbeat", "1", NULL};
	uint64_t rng = kit_seed("push_ndjson");
	char v[64];
	pc c;
	pc_frame fr;

	http_query_start(&f, "push", 0, true, hb);
	append_n(f.store, &rng, 5, 2);
	open_ok(&c, f.port, "/events/stream?after=3", NULL, true);
	ck_assert(pc_header(&c, "Content-Type", v, sizeof v));
	ck_assert_str_eq(v, "application/x-ndjson");
	expect_resume(&c, 3, "after");
	ck_assert_uint_eq(next_event(&c, &fr), 4);
	ck_assert(!strncmp(fr.data, "{\"specversion\":\"1.0\",", 21));
	ck_assert(memchr(fr.data, '\n', fr.len) == NULL);
	ck_assert_uint_eq(next_event(&c, &fr), 5);
	/* idle: a heartbeat line within the bound */
	frame(&c, &fr);
	ck_assert_int_eq(fr.kind, PC_HEARTBEAT);
	ck_assert(!strncmp(fr.data, "{\"control\":\"heartbeat\"}", fr.len));
	append_n(f.store, &rng, 1, 1);
	ck_assert_uint_eq(next_event(&c, &fr), 6);
	pc_close(&c);
	/* SSE heartbeats are comments */
	open_ok(&c, f.port, "/events/stream", NULL, false);
	expect_resume(&c, 6, "latest");
	frame(&c, &fr);
	ck_assert_int_eq(fr.kind, PC_HEARTBEAT);
	pc_close(&c);
	http_query_stop(&f);
}
END_TEST

static void expect_status(unsigned port, const char *target, const char *extra, int status,
			  const char *needle)
{
	pc c;

	ck_assert_int_eq(pc_open(&c, port, target, extra, false, 0), 0);
	ck_assert_int_eq(pc_wait_headers(&c, WAIT_MS), status);
	if (needle) {
		pc_frame fr;

		while (pc_wait(&c, &fr, WAIT_MS) >= 0 && !c.eof)
			; /* the whole (closed) answer */
		c.buf[c.len] = '\0';
		ck_assert_msg(strstr(c.buf + c.off, needle), "%s: %s", target, c.buf + c.off);
	}
	pc_close(&c);
}

START_TEST(push_refusals)
{
	http_query_fixture f;
	static const char *const lim[] = {"--push-max-streams", "2", "--token", "sekret", NULL};
	static const char auth[] = "Authorization: Bearer sekret\r\n";
	static const char *const bad[] = {
		"/events/stream?after=abc",      "/events/stream?after=",
		"/events/stream?after=-1",       "/events/stream?after=18446744073709551616",
		"/events/stream?after=999",      "/events/stream?after=1&after=2",
		"/events/stream?after",          "/events/stream?stream=",
		"/events/stream?stream_prefix=", "/events/stream?type=",
		"/events/stream?type=a,,b",      "/events/stream?type=a,",
		"/events/stream?tag=",           "/events/stream?tag=a&tag=a",
		"/events/stream?category=a,,b",  "/events/stream?category=a&category=a",
		"/events/stream?tag=%FF",        "/events/stream?stream=a%00b",
		"/events/stream?follow=1",       NULL,
	};
	uint64_t rng = kit_seed("push_refusals");
	const char *noarg[] = {"--dsn", NULL, NULL};
	pc a, b;
	unsigned port;
	pid_t pid;

	http_query_start(&f, "push", 0, true, lim);
	append_n(f.store, &rng, 3, 1);
	for (size_t i = 0; bad[i]; i++)
		expect_status(f.port, bad[i], auth, 400, "\"error\":\"bad_request\"");
	expect_status(f.port, "/events/stream",
		      "Last-Event-ID: x\r\n"
		      "Authorization: Bearer sekret\r\n",
		      400, "Last-Event-ID");
	expect_status(f.port, "/events/stream",
		      "Last-Event-ID: \r\n"
		      "Authorization: Bearer sekret\r\n",
		      400, "Last-Event-ID");
	expect_status(f.port, "/events/stream",
		      "Last-Event-ID: 4\r\n"
		      "Authorization: Bearer sekret\r\n",
		      400, "past the store's last position 3");
	expect_status(f.port, "/events/stream", NULL, 401, "unauthorized");
	/* two streams open: the third is refused with a clear body */
	open_ok(&a, f.port, "/events/stream", auth, false);
	open_ok(&b, f.port, "/events/stream", auth, true);
	expect_status(f.port, "/events/stream", auth, 503, "too many event streams open");
	pc_close(&a);
	pc_close(&b);
	http_query_stop(&f);
	/* without --store */
	noarg[1] = f.dsn = pgh_new_db();
	pid = http_query_spawn(noarg, &port);
	expect_status(port, "/events/stream", NULL, 404, "without --store");
	kill(pid, SIGTERM);
	kit_wait_child(pid, 30000, 1);
	free(f.dsn);
}
END_TEST

/* ---- many clients resuming through random disconnects ------------------ */

#define N_CLIENTS 120
#if defined(__SANITIZE_ADDRESS__)
#define N_EVENTS 3000 /* the same protocol, fewer events: ASan is 3-10x slower */
#else
#define N_EVENTS 20000
#endif

struct writer {
	evs_store *store;
	uint64_t rng;
	size_t n;
};

static void *writer_run(void *arg)
{
	struct writer *w = arg;
	size_t done = 0;

	while (done < w->n) {
		size_t k = w->n - done < 50 ? w->n - done : 50;

		append_n(w->store, &w->rng, k, 8);
		done += k;
	}
	return NULL;
}

struct client {
	pc c;
	uint64_t last; /* the last position seen */
	unsigned reconnects;
	bool open;
};

static void reconnect(struct client *cl, unsigned port, uint64_t *rng)
{
	char target[128], hdr[64];
	bool by_header = kit_rand(rng) & 1;

	snprintf(target, sizeof target, "/events/stream?after=%llu",
		 by_header ? 0ULL : (unsigned long long)cl->last);
	snprintf(hdr, sizeof hdr, "Last-Event-ID: %llu\r\n", (unsigned long long)cl->last);
	ck_assert_int_eq(
		pc_open(&cl->c, port, target, by_header ? hdr : NULL, kit_rand(rng) % 4 == 0, 0),
		0);
	cl->open = true;
}

START_TEST(push_many_resume)
{
	http_query_fixture f;
	static const char *const opts[] = {"--push-max-streams",
					   "200",
					   "--push-window",
					   "4096",
					   "--max-connections",
					   "1000",
					   NULL};
	struct client *cl = calloc(N_CLIENTS, sizeof *cl);
	struct pollfd *pfd = calloc(N_CLIENTS, sizeof *pfd);
	uint64_t rng = kit_seed("push_many_resume");
	struct writer w;
	pthread_t wt;
	size_t finished = 0, cuts = 0, reconnects = 0;
	int64_t deadline;

	http_query_start(&f, "push", 0, true, opts);
	w.store = f.store;
	w.rng = rng ^ 0x5bd1e995;
	w.n = N_EVENTS;
	for (int i = 0; i < N_CLIENTS; i++)
		reconnect(&cl[i], f.port, &rng);
	ck_assert_int_eq(pthread_create(&wt, NULL, writer_run, &w), 0);
	deadline = kit_mono_ms() + 240000;
	while (finished < N_CLIENTS) {
		ck_assert_msg(kit_mono_ms() < deadline, "%zu of %d clients finished", finished,
			      N_CLIENTS);
		for (int i = 0; i < N_CLIENTS; i++) {
			pfd[i].fd = cl[i].open ? cl[i].c.fd : -1;
			pfd[i].events = POLLIN;
		}
		poll(pfd, N_CLIENTS, 1000);
		for (int i = 0; i < N_CLIENTS; i++) {
			struct client *x = &cl[i];
			pc_frame fr;
			int r;

			if (!x->open || !pfd[i].revents)
				continue;
			r = pc_fill(&x->c);
			if (r >= 0 && x->c.len > x->c.off && kit_rand(&rng) % 40 == 0) {
				/* disconnect now, maybe in the middle of a frame */
				pc_close(&x->c);
				x->open = false;
				x->reconnects++;
				reconnects++;
				reconnect(x, f.port, &rng);
				continue;
			}
			while (pc_next(&x->c, &fr)) {
				if (fr.kind == PC_RESUME)
					ck_assert_uint_eq(fr.id, x->last);
				if (fr.kind == PC_CUT) {
					/* allowed (a client behind the window); it
					 * resumes where the cut says */
					ck_assert_uint_eq(fr.id, x->last);
					cuts++;
				}
				if (fr.kind != PC_EVENT)
					continue;
				ck_assert_msg(
					fr.id == x->last + 1, "client %d: position %llu after %llu",
					i, (unsigned long long)fr.id, (unsigned long long)x->last);
				x->last = fr.id;
				if (x->last == N_EVENTS)
					finished++;
			}
			if (x->last == N_EVENTS) {
				pc_close(&x->c);
				x->open = false;
			} else if (r < 0) {
				ck_assert_int_eq(x->c.status, 200);
				pc_close(&x->c);
				reconnect(x, f.port, &rng);
			}
		}
	}
	pthread_join(wt, NULL);
	fprintf(stderr,
		"push_many_resume: %d clients saw %d events exactly once each through "
		"%zu disconnects (%zu cut)\n",
		N_CLIENTS, N_EVENTS, reconnects, cuts);
	ck_assert_uint_eq(head_of(f.store), N_EVENTS);
	free(pfd);
	free(cl);
	http_query_stop(&f);
}
END_TEST

/* ---- a client that never reads ----------------------------------------- */

/* A keeper's frames: those already received, then (waiting) until it has
 * seen position upto. It is never cut. */
static void keep_up(pc *c, uint64_t *last, uint64_t upto)
{
	pc_frame fr;

	for (;;) {
		if (!pc_next(c, &fr)) {
			if (*last >= upto) {
				if (pc_fill(c) <= 0)
					return;
				continue;
			}
			ck_assert_int_eq(pc_wait(c, &fr, WAIT_MS), 1);
		}
		ck_assert_int_ne(fr.kind, PC_CUT);
		if (fr.kind == PC_EVENT) {
			ck_assert_uint_eq(fr.id, *last + 1);
			*last = fr.id;
		}
	}
}

START_TEST(push_slow_cut)
{
	http_query_fixture f;
	static const char *const opts[] = {"--push-window", "1024", NULL};
	/* the window is 1024 events: a keeper KEEP_LAG behind is well inside */
	enum { N = 6000, KEEPERS = 3, KEEP_LAG = 256 };
	pc slow, keep[KEEPERS];
	pc_frame fr;
	uint64_t last[KEEPERS] = {0}, p = 0, total = 0;
	http_answer a;
	evs_event_in ev = {0};
	evs_append_result res;
	uint8_t *data = malloc(9 + 4096);
	bool cut = false;

	http_query_start(&f, "push", 0, true, opts);
	/* {"blob": "<4 KiB>"}: a few MB in all, more than the socket
	 * buffers hold */
	data[0] = 0x81;
	data[1] = 0xa4;
	memcpy(data + 2, "blob", 4);
	data[6] = 0xda;
	data[7] = 4096 >> 8;
	data[8] = 0;
	memset(data + 9, 'x', 4096);
	ev.type = "big";
	ev.data = data;
	ev.data_len = 9 + 4096;
	ck_assert_int_eq(pc_open(&slow, f.port, "/events/stream?after=earliest", NULL, false, 4096),
			 0);
	for (int i = 0; i < KEEPERS; i++)
		open_ok(&keep[i], f.port, "/events/stream?after=earliest", NULL, i == 2);
	for (int n = 1; n <= N; n++) {
		ck_assert_int_eq(evs_append(f.store, "big-1", EVS_ANY, &ev, 1, &res), EVS_OK);
		if (n == 1) {
			/* the slow one takes the first event from the window
			 * (not the store: live from now on, so falling
			 * behind cuts it), then reads nothing more */
			ck_assert_int_eq(pc_wait_headers(&slow, WAIT_MS), 200);
			expect_resume(&slow, 0, "earliest");
			ck_assert_uint_eq(next_event(&slow, &fr), 1);
			p = total = 1;
		}
		/* the keepers read as they go, never more than KEEP_LAG
		 * behind: a starved server thread cannot make one of them
		 * the slow consumer */
		for (int i = 0; i < KEEPERS; i++)
			keep_up(&keep[i], &last[i], n > KEEP_LAG ? (uint64_t)(n - KEEP_LAG) : 0);
	}
	/* the server stays responsive: /health, and every keeper reaches the end */
	http_get_ok(f.port, "/health", &a);
	http_answer_free(&a);
	for (int i = 0; i < KEEPERS; i++) {
		keep_up(&keep[i], &last[i], N);
		ck_assert_uint_eq(last[i], N);
		pc_close(&keep[i]);
	}
	/* now the slow one reads: positions in order, then the cut with where
	 * to resume, then the end */
	for (;;) {
		int r = pc_wait(&slow, &fr, WAIT_MS);

		ck_assert_int_ne(r, 0);
		if (r < 0)
			break;
		if (fr.kind == PC_EVENT) {
			ck_assert(!cut);
			ck_assert_uint_eq(fr.id, p + 1);
			p = fr.id;
			total++;
		} else if (fr.kind == PC_CUT) {
			ck_assert_uint_eq(fr.id, p);
			ck_assert(fr.data && memmem(fr.data, fr.len, "slow consumer", 13));
			cut = true;
		}
	}
	ck_assert_msg(cut, "the slow client was not cut (read %llu events)",
		      (unsigned long long)total);
	ck_assert_uint_lt(p, N);
	pc_close(&slow);
	/* it resumes by its last id and gets the rest */
	{
		char hdr[64];

		snprintf(hdr, sizeof hdr, "Last-Event-ID: %llu\r\n", (unsigned long long)p);
		open_ok(&slow, f.port, "/events/stream", hdr, false);
		expect_resume(&slow, p, "last_event_id");
		while (p < N) {
			ck_assert_uint_eq(next_event(&slow, &fr), p + 1);
			p = fr.id;
		}
		pc_close(&slow);
	}
	fprintf(stderr, "push_slow_cut: cut after %llu of %d events, resumed to the end\n",
		(unsigned long long)total, N);
	free(data);
	http_query_stop(&f);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		push_resume, push_filters,  push_tag_filters, push_category_separator,
		push_ndjson, push_refusals, push_many_resume, push_slow_cut,
		NULL,
	};

	signal(SIGPIPE, SIG_IGN);
	return http_main("http-push", 600, tests);
}
