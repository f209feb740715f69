/*
 * bench_push.c - push latency of GET /events/stream (issue 11): from the
 * commit to the client, for SSE, at a steady append rate with many
 * clients. A benchmark, not a test.
 *
 * evs-query runs as its own process with --store (as in production: the
 * writer is another process); this program appends one event per commit
 * at --rate events/s (default 5,000) for --seconds (default 10), with
 * --clients SSE clients (default 100, raw HTTP/1.0 sockets, push_client.h)
 * read by one thread polling them all. An event's latency is the time from
 * just before its evs_append() call to its arrival at a client (so it
 * includes the commit itself), for every client and every event.
 *
 * The ceiling beside it, same run: a subscription in this process
 * (evs_subscribe, woken by the store's commit notification) timed the
 * same way: what any follower of the store pays before HTTP. Printed:
 * p50/p99/max of both, and push p99 / follower p99.
 *
 * The store is opened with sync=none (the figure is the push path, not
 * the disk's fsync; an fsync per commit at 5,000 commits/s is the
 * store benchmark's subject). evs-query gets a read-model DSN it never
 * connects to for this route (--log-level error hides its retries).
 *
 *   ./build/tests/http/bench_push [--rate R] [--clients C] [--seconds D] [--quick]
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "evstore.h"
#include "kit.h"
#include "push_client.h"

extern char **environ;

static long rate = 5000, nclients = 100, seconds = 10;
static int64_t *t_append; /* per position: ns before evs_append */
static int64_t *t_commit; /* per position: ns when evs_append returned */
static uint64_t n_events;
static atomic_bool writer_done;

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct writer {
	evs_store *store;
	uint64_t first; /* position of the first event it appends */
};

static void *writer_run(void *arg)
{
	struct writer *w = arg;
	uint8_t data[] = {0x82, 0xa1, 'n', 0x01, 0xa4, 'n', 'o', 't',
			  'e',  0xa5, 'h', 'e',  'l',  'l', 'o'};
	int64_t t0 = now_ns(), period = 1000000000 / rate;
	char stream[32];

	for (uint64_t i = 0; i < n_events; i++) {
		evs_event_in ev = {0};
		evs_append_result res;
		struct timespec due;
		int64_t at = t0 + (int64_t)i * period;

		due.tv_sec = at / 1000000000;
		due.tv_nsec = at % 1000000000;
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, NULL) == EINTR)
			;
		snprintf(stream, sizeof stream, "acct-%llu", (unsigned long long)(i % 1000));
		ev.type = "deposited";
		ev.data = data;
		ev.data_len = sizeof data;
		t_append[w->first + i] = now_ns();
		if (evs_append(w->store, stream, EVS_ANY, &ev, 1, &res) != EVS_OK)
			kit_die("append failed: %s", evs_errmsg(w->store));
		t_commit[w->first + i] = now_ns();
		if (res.first_position != w->first + i)
			kit_die("unexpected position %llu", (unsigned long long)res.first_position);
	}
	atomic_store(&writer_done, true);
	return NULL;
}

struct follower {
	evs_store *store;
	uint64_t after;
	int64_t *lat;
	uint64_t *pos;
	size_t n;
};

static void *follower_run(void *arg)
{
	struct follower *f = arg;
	evs_sub *sub;
	evs_event ev;

	if (evs_subscribe(f->store, f->after, NULL, &sub) != EVS_OK)
		kit_die("could not subscribe");
	while (f->n < n_events) {
		int rc = evs_sub_next(sub, &ev, 10000);

		if (rc == EVS_TIMEOUT)
			kit_die("follower: no event for 10 s");
		if (rc != EVS_OK)
			kit_die("follower: %s", evs_strerror(rc));
		f->lat[f->n] = now_ns();
		f->pos[f->n++] = ev.position;
	}
	evs_sub_close(sub);
	return NULL;
}

static void report(const char *what, int64_t *v, size_t n)
{
	int64_t p50 = kit_percentile(v, n, 50), p99 = kit_percentile(v, n, 99),
		mx = kit_percentile(v, n, 100);

	printf("%-28s %10zu samples  p50 %7.3f ms  p99 %7.3f ms  max %8.3f ms\n", what, n,
	       (double)p50 / 1e6, (double)p99 / 1e6, (double)mx / 1e6);
}

static pid_t spawn_query(const char *dir, unsigned *port)
{
	static const char health[] = "GET /health HTTP/1.0\r\n\r\n";
	char port_s[16], clients_s[24];
	char *argv[] = {EVS_QUERY_BIN,
			"--port",
			port_s,
			"--store",
			(char *)dir,
			"--dsn",
			"host=/nonexistent dbname=none connect_timeout=1",
			"--log-level",
			"error",
			"--push-max-streams",
			clients_s,
			"--max-connections",
			"4096",
			NULL};
	pid_t pid;

	for (unsigned p = 20000 + (unsigned)(getpid() % 20000);; p++) {
		pc c;
		int64_t deadline;

		*port = p;
		snprintf(port_s, sizeof port_s, "%u", p);
		snprintf(clients_s, sizeof clients_s, "%ld", nclients + 16);
		if (pc_open(&c, p, "/health", NULL, false, 0) == 0) { /* taken */
			pc_close(&c);
			continue;
		}
		if (posix_spawn(&pid, argv[0], NULL, NULL, argv, environ))
			kit_die("could not start %s", argv[0]);
		deadline = now_ns() + 30 * 1000000000LL;
		while (now_ns() < deadline) {
			struct timespec ts = {0, 10000000};

			if (pc_open(&c, p, "/health", NULL, false, 0) == 0) {
				int st = pc_wait_headers(&c, 5000);

				pc_close(&c);
				if (st == 200)
					return pid;
			}
			if (waitpid(pid, NULL, WNOHANG) == pid)
				break; /* the port was taken after all: next */
			nanosleep(&ts, NULL);
		}
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		(void)health;
	}
}

int main(int argc, char **argv)
{
	evs_options o;
	evs_store *store;
	evs_store_info head;
	struct writer w;
	struct follower fo = {0};
	pthread_t wt, ft;
	pc *cl;
	struct pollfd *pfd;
	uint64_t *last;
	int64_t *lat, *lat2;
	uint32_t *lat_pos;
	size_t nlat = 0, done = 0;
	unsigned port;
	pid_t pid;
	const char *dir;
	char path[4096];
	bool quick = false;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick")) {
			quick = true;
			rate = 1000;
			nclients = 10;
			seconds = 1;
		} else if (!strcmp(argv[i], "--rate") && i + 1 < argc) {
			rate = atol(argv[++i]);
		} else if (!strcmp(argv[i], "--clients") && i + 1 < argc) {
			nclients = atol(argv[++i]);
		} else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
			seconds = atol(argv[++i]);
		} else {
			fprintf(stderr, "usage: bench_push [--rate R] [--clients C] [--seconds D]"
					" [--quick]\n");
			return 2;
		}
	}
	if (rate < 1 || nclients < 1 || seconds < 1)
		kit_die("rate, clients and seconds must be positive");
	signal(SIGPIPE, SIG_IGN);
	dir = kit_bench_root("bench_push", NULL, "bench-push", false);
	kit_bench_path(path, "store");
	evs_options_init(&o);
	o.sync = EVS_SYNC_NONE;
	if (evs_open(path, &o, &store) != EVS_OK)
		kit_die("could not open %s", path);
	(void)dir;
	n_events = (uint64_t)(rate * seconds);
	t_append = calloc(n_events + 2, sizeof *t_append);
	t_commit = calloc(n_events + 2, sizeof *t_commit);
	lat = malloc(n_events * (size_t)nclients * sizeof *lat);
	lat2 = malloc(n_events * (size_t)nclients * sizeof *lat2);
	lat_pos = malloc(n_events * (size_t)nclients * sizeof *lat_pos);
	fo.lat = malloc(n_events * sizeof *fo.lat);
	fo.pos = malloc(n_events * sizeof *fo.pos);
	if (!fo.pos)
		kit_die("out of memory");
	cl = calloc((size_t)nclients, sizeof *cl);
	pfd = calloc((size_t)nclients, sizeof *pfd);
	last = calloc((size_t)nclients, sizeof *last);
	if (!t_append || !t_commit || !lat || !lat2 || !lat_pos || !fo.lat || !cl || !pfd || !last)
		kit_die("out of memory");
	pid = spawn_query(path, &port);
	kit_print_load("before");
	printf("push latency: %ld SSE clients, %ld events/s for %ld s (one event per commit, "
	       "sync=none)%s\n",
	       nclients, rate, seconds, quick ? " [quick]" : "");
	for (long i = 0; i < nclients; i++) {
		pc_frame fr;

		if (pc_open(&cl[i], port, "/events/stream", NULL, false, 0) ||
		    pc_wait_headers(&cl[i], 10000) != 200 || pc_wait(&cl[i], &fr, 10000) != 1 ||
		    fr.kind != PC_RESUME)
			kit_die("client %ld: no stream", i);
	}
	evs_head(store, &head);
	w.store = store;
	w.first = head.last_position + 1;
	fo.store = store;
	fo.after = head.last_position;
	for (long i = 0; i < nclients; i++)
		last[i] = head.last_position;
	pthread_create(&ft, NULL, follower_run, &fo);
	pthread_create(&wt, NULL, writer_run, &w);
	while (done < (size_t)nclients) {
		int64_t now;

		for (long i = 0; i < nclients; i++) {
			pfd[i].fd = last[i] < head.last_position + n_events ? cl[i].fd : -1;
			pfd[i].events = POLLIN;
		}
		if (poll(pfd, (nfds_t)nclients, 10000) == 0)
			kit_die("no event for 10 s");
		now = now_ns();
		for (long i = 0; i < nclients; i++) {
			pc_frame fr;

			if (!pfd[i].revents)
				continue;
			if (pc_fill(&cl[i]) < 0)
				kit_die("client %ld: the stream ended", i);
			while (pc_next(&cl[i], &fr)) {
				if (fr.kind == PC_CUT)
					kit_die("client %ld was cut", i);
				if (fr.kind != PC_EVENT)
					continue;
				if (fr.id != last[i] + 1)
					kit_die("client %ld: %llu after %llu", i,
						(unsigned long long)fr.id,
						(unsigned long long)last[i]);
				last[i] = fr.id;
				lat[nlat++] = now;
				lat_pos[nlat - 1] = (uint32_t)(fr.id - head.last_position);
				if (fr.id == head.last_position + n_events)
					done++;
			}
		}
	}
	pthread_join(wt, NULL);
	pthread_join(ft, NULL);
	{
		/* from the commit (evs_append returned; a client may see the
		 * event before the writer thread runs again: 0 then), and, more
		 * conservative, from the evs_append call (the commit included) */
		int64_t *f2 = malloc(fo.n * sizeof *f2), fp99, pp99;

		if (!f2)
			kit_die("out of memory");
		for (size_t i = 0; i < fo.n; i++) {
			int64_t at = fo.lat[i];

			fo.lat[i] = at > t_commit[fo.pos[i]] ? at - t_commit[fo.pos[i]] : 0;
			f2[i] = at - t_append[fo.pos[i]];
		}
		for (size_t i = 0; i < nlat; i++) {
			uint64_t p = head.last_position + lat_pos[i];
			int64_t at = lat[i];

			lat[i] = at > t_commit[p] ? at - t_commit[p] : 0;
			lat2[i] = at - t_append[p];
		}
		printf("from the commit (evs_append returned) to the reader:\n");
		report("  follower (evs_sub_next)", fo.lat, fo.n);
		report("  push, SSE over HTTP", lat, nlat);
		fp99 = kit_percentile(fo.lat, fo.n, 99);
		pp99 = kit_percentile(lat, nlat, 99);
		printf("  push p99 / follower p99: %.1f (floor: push p99 under 20 ms: %s)\n",
		       (double)pp99 / (double)(fp99 ? fp99 : 1),
		       pp99 < 20000000 ? "met" : "NOT met");
		printf("from the evs_append call (the commit included):\n");
		report("  follower (evs_sub_next)", f2, fo.n);
		report("  push, SSE over HTTP", lat2, nlat);
		free(f2);
	}
	kit_print_load("after");
	for (long i = 0; i < nclients; i++)
		pc_close(&cl[i]);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	{
		struct rusage self, kids;

		getrusage(RUSAGE_SELF, &self);
		getrusage(RUSAGE_CHILDREN, &kids);
		printf("cpu: evs-query %.1f s, this program (writer, follower, clients) %.1f s, "
		       "over %ld s\n",
		       (double)kids.ru_utime.tv_sec + (double)kids.ru_stime.tv_sec +
			       (double)(kids.ru_utime.tv_usec + kids.ru_stime.tv_usec) / 1e6,
		       (double)self.ru_utime.tv_sec + (double)self.ru_stime.tv_sec +
			       (double)(self.ru_utime.tv_usec + self.ru_stime.tv_usec) / 1e6,
		       seconds);
	}
	evs_close(store);
	free(t_append);
	free(t_commit);
	free(lat);
	free(lat2);
	free(lat_pos);
	free(fo.lat);
	free(fo.pos);
	free(cl);
	free(pfd);
	free(last);
	kit_bench_cleanup();
	return 0;
}
