/*
 * http.c - the HTTP side of evs-query on libmicrohttpd: listening
 * (loopback by default), limits, bearer token, routing, health,
 * readiness and Prometheus metrics.
 *
 * Threads: cfg.threads event loops, each a thread polling its own MHD
 * daemon (external epoll mode, one shared port) and its batcher's
 * PostgreSQL sessions (batch.c); requests that block go to the workers
 * (work.c) with their connection suspended. See query/README.md, "How a
 * request is served".
 * Limits: connections (total and per address), idle timeout, bytes per
 * connection for the request line and headers (MHD answers 431/414 past
 * it), no request bodies (413).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>

#include <microhttpd.h>

#include "internal.h"

/* Latency histogram bounds (seconds) of evsq_request_duration_seconds. */
static const double buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1};
#define N_BUCKETS (sizeof buckets / sizeof buckets[0])
#define N_CLASSES 6 /* status / 100 */

/* An HTTP event loop: one thread polling its own MHD daemon (all loops
 * listen on the same port, SO_REUSEPORT: the kernel spreads connections)
 * together with its batcher's PostgreSQL sockets, so that requests and
 * their lookups' results wake the same thread. */
struct loop {
	evsq_server *srv;
	struct MHD_Daemon *mhd;
	evsq__batcher *batcher;
	int wake_fd; /* eventfd: a worker resumed one of this loop's connections */
	pthread_t thread;
	bool started;
};

struct evsq_server {
	struct loop *loops;
	int nloops;
	int stop_fd; /* eventfd: the loops return */
	evsq__pool *pool;
	evsq__workers *workers;
	/* connection limits, across the loops (libmicrohttpd counts per daemon) */
	pthread_mutex_t lim_mu;
	bool lim_init;
	unsigned conns, max_conns, max_per_ip;
	struct peer *peers; /* addresses with connections open */
	size_t npeers, cap_peers;
	evs_store *store;
	evsq__ctx ctx;
	char *projection;
	char *token;
	long ready_max_lag;
	evsq_log_fn log;
	void *log_ctx;
	unsigned port;
	atomic_ullong requests[N_CLASSES];
	atomic_ullong hist[N_BUCKETS + 1];
	atomic_ullong latency_us_sum;
};

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Constant-time comparison of the presented token. */
static bool token_ok(const char *want, const char *auth)
{
	size_t n = strlen(want), i;
	unsigned char d = 0;

	if (!auth || strncmp(auth, "Bearer ", 7))
		return false;
	auth += 7;
	if (strlen(auth) != n)
		return false;
	for (i = 0; i < n; i++)
		d |= (unsigned char)(want[i] ^ auth[i]);
	return d == 0;
}

/* The lag figures of a /ready answer, after "position". */
static void put_lag(evs__buf *body, const evsq__lag *l)
{
	evs__buf_printf(body, ",\"checkpoint_age_seconds\":%.6f", l->checkpoint_age_s);
	if (l->lag_known)
		evs__buf_printf(body,
			       ",\"lag_source\":\"store\",\"store_head\":%lld,\"lag\":%lld,"
			       "\"lag_seconds\":%.6f",
			       (long long)l->head, (long long)l->lag_events, l->lag_s);
	else
		evs__buf_puts(body, ",\"lag_source\":\"postgres\",\"store_head\":null,"
				   "\"lag\":null,\"lag_seconds\":null");
}

static unsigned ready(evsq_server *srv, evs__buf *body)
{
	evsq__lag l;
	char msg[512];

	evsq__lag_measure(srv->pool, srv->store, srv->projection, &l);
	body->len = 0;
	if (!l.pg_ok) {
		evsq__error(body, "unavailable", l.err);
		return 503;
	}
	if (!l.has_checkpoint) {
		snprintf(msg, sizeof msg, "projection \"%.200s\" has no checkpoint yet",
			 srv->projection);
		evsq__error(body, "unavailable", msg);
		return 503;
	}
	if (srv->store && !l.store_ok) {
		evsq__error(body, "unavailable", l.store_err);
		return 503;
	}
	if (srv->store && !l.lag_known) {
		snprintf(msg, sizeof msg,
			 "store head %lld is behind the checkpoint %lld of projection \"%.200s\":"
			 " --store is not the store this projection follows",
			 (long long)l.head, (long long)l.position, srv->projection);
		evsq__error(body, "unavailable", msg);
		return 503;
	}
	if (srv->ready_max_lag && l.lag_events > srv->ready_max_lag) {
		evs__buf_puts(body, "{\"error\":\"projection_behind\",\"message\":");
		snprintf(msg, sizeof msg,
			 "projection \"%.200s\" is %lld events behind the store head %lld"
			 " (ready_max_lag %ld)",
			 srv->projection, (long long)l.lag_events, (long long)l.head,
			 srv->ready_max_lag);
		evsq__json_str(body, msg);
		evs__buf_printf(body, ",\"position\":%lld", (long long)l.position);
		put_lag(body, &l);
		evs__buf_puts(body, "}\n");
		return 503;
	}
	evs__buf_printf(body, "{\"status\":\"ready\",\"position\":%lld", (long long)l.position);
	put_lag(body, &l);
	if (!srv->store)
		evs__buf_puts(body, ",\"note\":\"no --store: lag in events and seconds is not known"
				   " here; checkpoint_age_seconds is the time since the projector"
				   " last committed\"");
	evs__buf_puts(body, "}\n");
	return 200;
}

static void gauge(evs__buf *body, const char *name, const char *help, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void gauge(evs__buf *body, const char *name, const char *help, const char *fmt, ...)
{
	char value[64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(value, sizeof value, fmt, ap);
	va_end(ap);
	evs__buf_printf(body, "# HELP %s %s\n# TYPE %s gauge\n%s %s\n", name, help, name, name,
		       value);
}

static void metrics(evsq_server *srv, evs__buf *body)
{
	unsigned long long cum = 0;
	evsq__watch_info wi;
	evsq__lag l;
	size_t i;

	body->len = 0;
	evs__buf_puts(body, "# HELP evsq_requests_total HTTP requests answered, by status class\n"
			   "# TYPE evsq_requests_total counter\n");
	for (i = 1; i < N_CLASSES; i++) {
		evs__buf_printf(body, "evsq_requests_total{code=\"%zuxx\"} %llu\n", i,
			       (unsigned long long)atomic_load(&srv->requests[i]));
	}
	evs__buf_puts(body, "# HELP evsq_request_duration_seconds time to answer a request\n"
			   "# TYPE evsq_request_duration_seconds histogram\n");
	for (i = 0; i < N_BUCKETS; i++) {
		cum += atomic_load(&srv->hist[i]);
		evs__buf_printf(body, "evsq_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
			       buckets[i], cum);
	}
	cum += atomic_load(&srv->hist[N_BUCKETS]);
	evs__buf_printf(body, "evsq_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n", cum);
	evs__buf_printf(body, "evsq_request_duration_seconds_sum %.6f\n",
		       (double)atomic_load(&srv->latency_us_sum) / 1e6);
	evs__buf_printf(body, "evsq_request_duration_seconds_count %llu\n", cum);
	{
		unsigned long long st = 0, lk = 0, a, b;
		int k;

		for (k = 0; k < srv->nloops; k++) {
			evsq__batcher_stats(srv->loops[k].batcher, &a, &b);
			st += a;
			lk += b;
		}
		evs__buf_printf(body,
			       "# HELP evsq_batch_statements_total statements sent by the"
			       " state-lookup batchers\n"
			       "# TYPE evsq_batch_statements_total counter\n"
			       "evsq_batch_statements_total %llu\n"
			       "# HELP evsq_batch_lookups_total state lookups answered through the"
			       " batchers (lookups / statements = mean batch size)\n"
			       "# TYPE evsq_batch_lookups_total counter\n"
			       "evsq_batch_lookups_total %llu\n",
			       st, lk);
	}

	/* projection lag, from the watcher's cache and the store head (never a
	 * statement: a scrape stays cheap); figures not known are left out */
	evsq__watch_status(srv->ctx.watch, &wi);
	memset(&l, 0, sizeof l);
	l.has_checkpoint = evsq__watch_position(srv->ctx.watch, srv->projection, &l.position);
	if (srv->store)
		evsq__lag_store(srv->store, &l);
	gauge(body, "evsq_postgres_up",
	      "whether the service's session to the read-model database (the checkpoint"
	      " listener) is connected",
	      "%d", wi.up ? 1 : 0);
	evs__buf_printf(body,
		       "# HELP evsq_checkpoint_notifications_total checkpoint notifications"
		       " received (evs_checkpoint)\n"
		       "# TYPE evsq_checkpoint_notifications_total counter\n"
		       "evsq_checkpoint_notifications_total %llu\n",
		       (unsigned long long)wi.wakeups);
	if (l.has_checkpoint)
		gauge(body, "evsq_projection_position",
		      "last committed checkpoint (global store position) of the projection", "%lld",
		      (long long)l.position);
	if (l.store_ok)
		gauge(body, "evsq_store_head_position", "last position of the store (--store)",
		      "%lld", (long long)l.head);
	if (l.lag_known) {
		gauge(body, "evsq_projection_lag_events",
		      "events in the store not yet projected (store head - checkpoint)", "%lld",
		      (long long)l.lag_events);
		gauge(body, "evsq_projection_lag_seconds",
		      "age of the oldest event not yet projected (0 when caught up)", "%.6f",
		      l.lag_s);
	}
}

static bool has_body(struct MHD_Connection *conn)
{
	const char *cl =
		MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);

	return (cl && strcmp(cl, "0")) ||
	       MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
					   MHD_HTTP_HEADER_TRANSFER_ENCODING);
}

static unsigned route(evsq_server *srv, struct MHD_Connection *conn, const char *method,
		      const char *url, evs__buf *body, const char **ctype)
{
	if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
		evsq__error(body, "method_not_allowed", "only GET is served");
		return 405;
	}
	if (has_body(conn)) {
		evsq__error(body, "payload_too_large", "requests carry no body");
		return 413;
	}
	if (!strcmp(url, "/health")) {
		evs__buf_puts(body, "{\"status\":\"ok\"}\n");
		return 200;
	}
	if (srv->token &&
	    !token_ok(srv->token, MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							      MHD_HTTP_HEADER_AUTHORIZATION))) {
		evsq__error(body, "unauthorized", "missing or wrong bearer token");
		return 401;
	}
	if (!strcmp(url, "/ready"))
		return ready(srv, body);
	if (!strcmp(url, "/metrics")) {
		metrics(srv, body);
		*ctype = "text/plain; version=0.0.4";
		return 200;
	}
	if (!strncmp(url, "/streams/", 9))
		return evsq__streams(&srv->ctx, conn, url + 9, body);
	if (!strcmp(url, "/models") || !strncmp(url, "/models/", 8))
		return evsq__models_serve(&srv->ctx, conn, url + 7, body);
	evsq__error(body, "not_found", "no such resource");
	return 404;
}

/* ---- connection limits ----
 * Every loop's daemon asks accept_policy() before it takes a connection,
 * which checks the counts of all loops at once (one mutex);
 * on_connection() counts a connection in when it starts and out when it
 * closes.
 * (libmicrohttpd's own limits count per daemon: with several loops and
 * the kernel spreading connections by hash, they would refuse early or
 * let one address in once per loop.) A connection refused here is closed
 * at once, before any byte is read. */
struct peer {
	struct sockaddr_storage addr;
	unsigned n;
};

static bool same_host(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->sa_family == AF_INET6)
		return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			       &((const struct sockaddr_in6 *)b)->sin6_addr,
			       sizeof(struct in6_addr));
	return false;
}

static struct peer *find_peer(evsq_server *srv, const struct sockaddr *addr)
{
	size_t i;

	for (i = 0; i < srv->npeers; i++)
		if (same_host((struct sockaddr *)&srv->peers[i].addr, addr))
			return &srv->peers[i];
	return NULL;
}

static enum MHD_Result accept_policy(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	evsq_server *srv = cls;
	struct peer *p;
	bool ok;

	(void)addrlen;
	pthread_mutex_lock(&srv->lim_mu);
	p = find_peer(srv, addr);
	ok = srv->conns < srv->max_conns && !(srv->max_per_ip && p && p->n >= srv->max_per_ip);
	pthread_mutex_unlock(&srv->lim_mu);
	return ok ? MHD_YES : MHD_NO;
}

/* A connection is counted when libmicrohttpd has set it up (STARTED) and
 * given back when it closes, so a connection that never starts holds no
 * slot. Two loops accepting from the same address in the same instant
 * can both pass accept_policy(): a limit may be exceeded by at most
 * threads - 1 for that moment. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	static char counted;
	evsq_server *srv = cls;
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	struct peer *p;

	if (!ci || !ci->client_addr)
		return;
	pthread_mutex_lock(&srv->lim_mu);
	p = find_peer(srv, ci->client_addr);
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		if (!p && srv->npeers == srv->cap_peers) {
			size_t cap = srv->cap_peers ? srv->cap_peers * 2 : 16;
			struct peer *np = realloc(srv->peers, cap * sizeof *np);

			if (!np)
				goto out; /* not counted: the limit is lenient, never wrong */
			srv->peers = np;
			srv->cap_peers = cap;
		}
		if (!p) {
			socklen_t len = ci->client_addr->sa_family == AF_INET6
						? sizeof(struct sockaddr_in6)
						: sizeof(struct sockaddr_in);

			p = &srv->peers[srv->npeers++];
			memset(p, 0, sizeof *p);
			memcpy(&p->addr, ci->client_addr, len);
		}
		p->n++;
		srv->conns++;
		*socket_context = &counted;
	} else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context == &counted) {
		*socket_context = NULL;
		srv->conns--;
		if (p && --p->n == 0)
			*p = srv->peers[--srv->npeers]; /* forget the address */
	}
out:
	pthread_mutex_unlock(&srv->lim_mu);
}

/* Requests that read PostgreSQL, the store or wait go off the HTTP
 * threads (batcher or workers); the rest (refusals, /health, /metrics)
 * are answered in place. */
static bool blocks(evsq_server *srv, struct MHD_Connection *conn, const char *method,
		   const char *url)
{
	if ((strcmp(method, "GET") && strcmp(method, "HEAD")) || has_body(conn))
		return false;
	if (srv->token &&
	    !token_ok(srv->token, MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							      MHD_HTTP_HEADER_AUTHORIZATION)))
		return false;
	return !strcmp(url, "/ready") || !strncmp(url, "/streams/", 9) || !strcmp(url, "/models") ||
	       !strncmp(url, "/models/", 8);
}

/* One request: headers seen (NEW), handed over with its connection
 * suspended (WAITING), answered and the connection resumed (DONE). */
enum { PH_NEW, PH_WAITING, PH_DONE };

struct req {
	evsq__job job; /* first: a job is its request */
	evsq_server *srv;
	struct loop *loop;
	struct MHD_Connection *conn;
	const char *method, *url; /* MHD's, valid for the request */
	const char *ctype;
	char *stream;
	int64_t t0;
	int phase;
};

static void req_run(evsq__job *job)
{
	struct req *q = (struct req *)job;

	q->job.status = route(q->srv, q->conn, q->method, q->url, &q->job.body, &q->ctype);
}

/* From the loop's own thread (batcher) or a worker's. MHD in external
 * mode does not wake its loop on a resume from another thread: the
 * loop's eventfd does. */
static void req_done(evsq__job *job)
{
	struct req *q = (struct req *)job;
	/* read before the resume: once resumed, the loop may answer and free
	 * the request at any moment */
	int wake_fd = job->kind == EVSQ__J_RUN ? q->loop->wake_fd : -1;
	uint64_t one = 1;

	q->phase = PH_DONE;
	MHD_resume_connection(q->conn);
	if (wake_fd >= 0 && write(wake_fd, &one, sizeof one) < 0)
		abort(); /* an eventfd write of 1 cannot fail */
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct req *q = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (!q)
		return;
	evs__buf_free(&q->job.body);
	free(q->stream);
	free(q);
	*con_cls = NULL;
}

static enum MHD_Result respond(evsq_server *srv, struct req *q)
{
	evs__buf *body = &q->job.body;
	unsigned status = q->job.status;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	int64_t dt;
	size_t i;

	if (body->oom || !evs__buf_cstr(body))
		return MHD_NO;
	resp = MHD_create_response_from_buffer(body->len, body->ptr, MHD_RESPMEM_MUST_FREE);
	if (!resp)
		return MHD_NO;
	memset(body, 0, sizeof *body); /* the response owns the bytes now */
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, q->ctype);
	if (status == 401)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
	if (status == 409 || status == 503)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
	ret = MHD_queue_response(q->conn, status, resp);
	MHD_destroy_response(resp);
	dt = now_us() - q->t0;
	atomic_fetch_add(&srv->requests[status / 100 < N_CLASSES ? status / 100 : 5], 1);
	atomic_fetch_add(&srv->latency_us_sum, (unsigned long long)dt);
	for (i = 0; i < N_BUCKETS && (double)dt / 1e6 > buckets[i]; i++)
		;
	atomic_fetch_add(&srv->hist[i], 1);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct loop *lp = cls;
	evsq_server *srv = lp->srv;
	struct req *q = *con_cls;

	(void)version;
	(void)upload_data;
	/* First call: headers only. A request announcing a body is refused
	 * at once (the connection is then closed); any other is answered on
	 * the next call, once MHD has the whole request, which keeps the
	 * connection alive (answering in the first call makes MHD close it). */
	if (!q) {
		q = calloc(1, sizeof *q);
		if (!q)
			return MHD_NO;
		q->srv = srv;
		q->loop = lp;
		q->conn = conn;
		q->method = method;
		q->url = url;
		q->ctype = "application/json";
		q->t0 = now_us();
		q->job.run = req_run;
		q->job.done = req_done;
		*con_cls = q;
		if (!has_body(conn))
			return MHD_YES;
		q->job.status = route(srv, conn, method, url, &q->job.body, &q->ctype);
		return respond(srv, q);
	}
	if (*upload_data_size) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (q->phase == PH_DONE)
		return respond(srv, q);
	if (q->phase == PH_WAITING)
		return MHD_YES;
	if (!blocks(srv, conn, method, url)) {
		q->job.status = route(srv, conn, method, url, &q->job.body, &q->ctype);
		return respond(srv, q);
	}
	/* suspended before it is handed over: the answer may come at once */
	q->phase = PH_WAITING;
	MHD_suspend_connection(conn);
	if (!strncmp(url, "/streams/", 9) &&
	    (q->stream = evsq__streams_fast(&srv->ctx, conn, url + 9, &q->job))) {
		q->job.stream = q->stream;
		evsq__batcher_submit(lp->batcher, &q->job);
	} else {
		q->job.kind = EVSQ__J_RUN;
		evsq__workers_submit(srv->workers, &q->job);
	}
	return MHD_YES;
}

/* A loop's thread: wait for HTTP or PostgreSQL input (or MHD's next
 * timeout), read results (answering their lookups), let MHD run (it reads
 * requests, calls on_request, sends the answers of resumed connections),
 * then send the lookups queued meanwhile as the next statement. */
static void *loop_run(void *arg)
{
	struct loop *lp = arg;
	struct pollfd fds[3 + 64];
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(lp->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	int mhd_fd = info ? info->epoll_fd : -1;
	bool again = false;

	for (;;) {
		MHD_UNSIGNED_LONG_LONG tmo;
		int n, timeout = 1000;

		fds[0].fd = lp->srv->stop_fd;
		fds[0].events = POLLIN;
		fds[1].fd = mhd_fd;
		fds[1].events = POLLIN;
		fds[2].fd = lp->wake_fd;
		fds[2].events = POLLIN;
		n = 3 + evsq__batcher_pollfds(lp->batcher, fds + 3);
		if (MHD_get_timeout(lp->mhd, &tmo) == MHD_YES &&
		    tmo < (MHD_UNSIGNED_LONG_LONG)timeout)
			timeout = (int)tmo;
		if (again)
			timeout = 0;
		if (poll(fds, (nfds_t)n, timeout) < 0 && errno != EINTR)
			break;
		if (fds[0].revents)
			break;
		if (fds[2].revents) {
			uint64_t v;

			if (read(lp->wake_fd, &v, sizeof v) < 0 && errno != EAGAIN)
				break;
		}
		evsq__batcher_ready(lp->batcher, fds + 3);
		MHD_run(lp->mhd);
		/* lookups answered at once (PostgreSQL away): their connections
		 * were resumed after MHD_run, which does not wake the loop for
		 * them, so the next round does not wait */
		again = evsq__batcher_pump(lp->batcher) > 0;
	}
	/* what is still queued or in flight is answered by evsq_server_stop,
	 * once every loop is gone (another loop's /metrics reads the counts) */
	return NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	evsq_server *srv = cls;
	char msg[512];
	size_t n;

	if (!srv->log)
		return;
	vsnprintf(msg, sizeof msg, fmt, ap);
	n = strlen(msg);
	if (n && msg[n - 1] == '\n')
		msg[n - 1] = '\0';
	srv->log(srv->log_ctx, EVSQ_LOG_WARNING, msg);
}

int evsq_server_start(const evsq_config *cfg, evsq_log_fn log, void *log_ctx, evsq_server **out,
		      char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	evsq_server *srv;
	const union MHD_DaemonInfo *info;
	unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	int i;
	int rc = EVSQ_NOMEM;

	memset(&ss, 0, sizeof ss);
	if (inet_pton(AF_INET, cfg->listen, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		((struct sockaddr_in *)&ss)->sin_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)cfg->port);
		sslen = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, cfg->listen, &((struct sockaddr_in6 *)&ss)->sin6_addr) ==
		   1) {
		((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)cfg->port);
		sslen = sizeof(struct sockaddr_in6);
		flags |= MHD_USE_IPv6;
	} else {
		snprintf(err, errlen,
			 "invalid listen address \"%s\": expected a numeric IPv4 or IPv6 address",
			 cfg->listen);
		return EVSQ_INVALID;
	}
	(void)sslen;
	if (!cfg->dsn || !cfg->dsn[0]) {
		snprintf(err, errlen, "no read-model database: set \"dsn\"");
		return EVSQ_INVALID;
	}
	if (cfg->ready_max_lag && (!cfg->store || !cfg->store[0])) {
		snprintf(err, errlen,
			 "ready_max_lag needs \"store\": the lag in events is measured against"
			 " the store's head");
		return EVSQ_INVALID;
	}
	srv = calloc(1, sizeof *srv);
	if (!srv)
		goto fail;
	srv->stop_fd = -1;
	srv->log = log;
	srv->log_ctx = log_ctx;
	srv->projection = strdup(cfg->projection);
	if (!srv->projection)
		goto fail;
	if (cfg->token && cfg->token[0] && !(srv->token = strdup(cfg->token)))
		goto fail;
	if (evsq__pool_open(cfg->dsn, (int)cfg->pg_connections, cfg->statement_timeout_ms, log,
			    log_ctx, &srv->pool))
		goto fail;
	if (cfg->store && cfg->store[0]) {
		evs_options o;
		int src;

		evs_options_init(&o);
		o.create = 0;
		o.read_only = 1;
		if ((src = evs_open(cfg->store, &o, &srv->store))) {
			snprintf(err, errlen, "could not open store \"%s\": %s", cfg->store,
				 evs_open_errmsg());
			rc = EVSQ_INVALID;
			goto fail;
		}
	}
	if ((rc = evsq__models_load(cfg->rules, &srv->ctx.models, err, errlen)))
		goto fail;
	rc = EVSQ_NOMEM;
	srv->ctx.pool = srv->pool;
	srv->ctx.store = srv->store;
	srv->ctx.projection = srv->projection;
	srv->ctx.min_position_wait_ms = cfg->min_position_wait_ms;
	srv->ctx.page_max = cfg->page_max;
	srv->ready_max_lag = cfg->ready_max_lag;
	if (evsq__watch_start(cfg->dsn, log, log_ctx, &srv->ctx.watch))
		goto fail;
	if (evsq__workers_start((int)cfg->pg_connections, &srv->workers))
		goto fail;
	pthread_mutex_init(&srv->lim_mu, NULL);
	srv->lim_init = true;
	srv->max_conns = (unsigned)cfg->max_connections;
	srv->max_per_ip = (unsigned)cfg->max_per_ip;
	srv->nloops = (int)cfg->threads;
	srv->loops = calloc((size_t)srv->nloops, sizeof *srv->loops);
	srv->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!srv->loops || srv->stop_fd < 0)
		goto fail;
	for (i = 0; i < srv->nloops; i++)
		srv->loops[i].wake_fd = -1;
	for (i = 0; i < srv->nloops; i++) {
		struct loop *lp = &srv->loops[i];

		lp->srv = srv;
		lp->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (lp->wake_fd < 0)
			goto fail;
		if (evsq__batcher_new(cfg->dsn, (int)cfg->batch_connections, (int)cfg->batch_depth,
				      cfg->statement_timeout_ms, cfg->projection, lp->wake_fd, log,
				      log_ctx, &lp->batcher))
			goto fail;
		/* accept_policy() enforces the limits; the daemon's own limit is
		 * one more than the total so that it is never reached (a daemon at
		 * its limit was seen closing its idle keep-alive connections when
		 * one more arrived) */
		lp->mhd = MHD_start_daemon(
			flags, 0, accept_policy, srv, on_request, lp, MHD_OPTION_EXTERNAL_LOGGER,
			mhd_log, srv, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
			MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv, MHD_OPTION_SOCK_ADDR,
			(struct sockaddr *)&ss, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1,
			MHD_OPTION_CONNECTION_LIMIT, srv->max_conns + 1,
			MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->timeout_s,
			MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)cfg->request_memory,
			MHD_OPTION_END);
		if (!lp->mhd) {
			snprintf(err, errlen, "could not listen on \"%s\" port %ld", cfg->listen,
				 cfg->port);
			rc = EVSQ_LISTEN;
			goto fail;
		}
		if (i == 0) {
			/* port 0: the other loops join the port the first one got */
			info = MHD_get_daemon_info(lp->mhd, MHD_DAEMON_INFO_BIND_PORT);
			srv->port = info ? info->port : (unsigned)cfg->port;
			if (ss.ss_family == AF_INET)
				((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)srv->port);
			else
				((struct sockaddr_in6 *)&ss)->sin6_port =
					htons((uint16_t)srv->port);
		}
	}
	for (i = 0; i < srv->nloops; i++) {
		if (pthread_create(&srv->loops[i].thread, NULL, loop_run, &srv->loops[i]))
			goto fail;
		srv->loops[i].started = true;
	}
	*out = srv;
	return EVSQ_OK;
fail:
	if (rc == EVSQ_NOMEM)
		snprintf(err, errlen, "out of memory");
	evsq_server_stop(srv);
	return rc;
}

unsigned evsq_server_port(const evsq_server *srv)
{
	return srv->port;
}

void evsq_server_stop(evsq_server *srv)
{
	int i;

	if (!srv)
		return;
	evsq__watch_shutdown(srv->ctx.watch); /* waiters answer now */
	/* the workers finish (their connections are resumed while the loops
	 * still run; later hand-overs are answered 503), then the loops stop
	 * (their batchers answer what they hold), then MHD closes */
	evsq__workers_stop(srv->workers);
	if (srv->stop_fd >= 0) {
		uint64_t one = 1;

		if (write(srv->stop_fd, &one, sizeof one) < 0)
			abort(); /* an eventfd write of 1 cannot fail */
	}
	for (i = 0; srv->loops && i < srv->nloops; i++)
		if (srv->loops[i].started)
			pthread_join(srv->loops[i].thread, NULL);
	for (i = 0; srv->loops && i < srv->nloops; i++) {
		struct loop *lp = &srv->loops[i];

		/* what is still queued or in flight is answered 503; MHD closes
		 * those connections */
		evsq__batcher_free(lp->batcher);
		if (lp->mhd)
			MHD_stop_daemon(lp->mhd);
		if (lp->wake_fd >= 0)
			close(lp->wake_fd);
	}
	free(srv->loops);
	evsq__workers_free(srv->workers);
	if (srv->lim_init)
		pthread_mutex_destroy(&srv->lim_mu);
	free(srv->peers);
	if (srv->stop_fd >= 0)
		close(srv->stop_fd);
	evsq__watch_stop(srv->ctx.watch);
	evsq__pool_close(srv->pool);
	evsq__models_free(srv->ctx.models);
	evs_close(srv->store);
	free(srv->token);
	free(srv->projection);
	free(srv);
}
