/*
 * server.c - evs-query's HTTP server on libmicrohttpd: start (listening
 * address, store, read models, pool, watcher, workers, the event loops),
 * the loops themselves, and stop.
 *
 * Threads: cfg.threads event loops, each a thread polling its own MHD
 * daemon (external epoll mode, one shared port) and its batcher's
 * PostgreSQL sessions (batch.c); requests that block go to the workers
 * (work.c) with their connection suspended (request.c). See
 * query/README.md, "How a request is served".
 * Limits: connections (total and per address, limits.c), idle timeout,
 * bytes per connection for the request line and headers (MHD answers
 * 431/414 past it), no request bodies (413).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "push.h"

/* Ask the kernel for a short CPU slice (sched_setattr's sched_runtime
 * for SCHED_OTHER: Linux 6.12+ EEVDF, no privilege needed, clamped to
 * 0.1-100 ms). A loop runs briefly per wake-up (read requests, send a
 * statement, write answers) and every request waits on it twice
 * (request in, result back): with a shorter slice its virtual deadline
 * comes sooner, so on a busy machine it is picked first when it wakes
 * instead of after a full slice of each runnable thread, for the same
 * share of CPU. Best effort: an older kernel keeps its default. */
static void short_slice(long us)
{
	struct {
		uint32_t size, policy;
		uint64_t flags;
		int32_t nice;
		uint32_t priority;
		uint64_t runtime, deadline, period;
	} a;

	if (us <= 0)
		return;
	memset(&a, 0, sizeof a);
	a.size = sizeof a; /* SCHED_ATTR_SIZE_VER0 */
	a.policy = 0;      /* SCHED_OTHER */
	a.nice = getpriority(PRIO_PROCESS, 0);
	a.runtime = (uint64_t)us * 1000;
#ifdef SYS_sched_setattr
	(void)syscall(SYS_sched_setattr, 0, &a, 0);
#endif
}

/* A loop's thread: wait for HTTP or PostgreSQL input (or MHD's next
 * timeout), read results (answering their lookups), let MHD run (it reads
 * requests, calls on_request, sends the answers of resumed connections),
 * then send the lookups queued meanwhile as the next statement. */
static void *loop_run(void *arg)
{
	struct evsq__loop *lp = arg;
	struct pollfd fds[3 + 64];
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(lp->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	int mhd_fd = info ? info->epoll_fd : -1;
	bool again = false;

	short_slice(lp->slice_us);
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
	srv->log(srv->log_ctx, EVS_LOG_WARNING, msg);
}

int evsq_server_start(const evsq_config *cfg, evs_log_fn log, void *log_ctx, evsq_server **out,
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
	if ((!cfg->dsn || !cfg->dsn[0]) && (!cfg->store || !cfg->store[0])) {
		snprintf(err, errlen,
			 "nothing to serve: set \"dsn\" (the read-model database), \"store\" (the"
			 " store's routes), or both");
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
	if (cfg->token && cfg->token[0] && !(srv->token = strdup(cfg->token)))
		goto fail;
	/* without a database: no pool, watcher or batchers; the routes
	 * that need one answer 404 no_database (routes.c) */
	if (cfg->dsn && cfg->dsn[0] &&
	    evsq__pool_open(cfg->dsn, (int)cfg->pg_connections, cfg->statement_timeout_ms, log,
			    log_ctx, &srv->pool))
		goto fail;
	if (cfg->store && cfg->store[0]) {
		evs_options o;
		int src;

		evs_options_init(&o);
		o.create = 0;
		o.read_only = 1;
		if ((src = evs_open(cfg->store, &o, &srv->store))) {
			snprintf(err, errlen, "%s", evs_open_errmsg());
			rc = EVSQ_INVALID;
			goto fail;
		}
	}
	if ((rc = evsq__models_load(cfg->rules, &srv->ctx.models, err, errlen)))
		goto fail;
	if ((rc = evsq__projection_pick(cfg->projection, srv->ctx.models, &srv->projection, err,
					errlen)) ||
	    (srv->pool && (rc = evsq__projection_check(srv->pool, srv->projection, err, errlen))))
		goto fail;
	if ((rc = evsq__www_load(cfg->www, &srv->www, err, errlen))) {
		/* the default folder exists only once installed: from a build
		 * tree the service runs without the page; a folder asked for
		 * must be there */
		if (strcmp(cfg->www, EVSQ_WWW_DIR))
			goto fail;
		if (log)
			log(log_ctx, EVS_LOG_DEBUG, err);
		rc = EVSQ_OK;
	}
	rc = EVSQ_NOMEM;
	srv->ctx.pool = srv->pool;
	srv->ctx.store = srv->store;
	srv->ctx.projection = srv->projection;
	srv->ctx.min_position_wait_ms = cfg->min_position_wait_ms;
	srv->ctx.page_max = cfg->page_max;
	srv->ready_max_lag = cfg->ready_max_lag;
	if (srv->pool && evsq__watch_start(cfg->dsn, log, log_ctx, &srv->ctx.watch))
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
		struct evsq__loop *lp = &srv->loops[i];

		lp->srv = srv;
		lp->slice_us = (long)cfg->loop_slice_us;
		lp->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (lp->wake_fd < 0)
			goto fail;
		if (srv->pool &&
		    evsq__batcher_new(cfg->dsn, (int)cfg->batch_connections, (int)cfg->batch_depth,
				      cfg->statement_timeout_ms, srv->projection, lp->wake_fd,
				      srv->workers, log, log_ctx, &lp->batcher))
			goto fail;
		/* evsq__limits_accept() enforces the limits; the daemon's own limit is
		 * one more than the total so that it is never reached (a daemon at
		 * its limit was seen closing its idle keep-alive connections when
		 * one more arrived) */
		lp->mhd = MHD_start_daemon(
			flags, 0, evsq__limits_accept, srv, evsq__on_request, lp,
			MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv, MHD_OPTION_URI_LOG_CALLBACK,
			evsq__on_uri, NULL, MHD_OPTION_NOTIFY_COMPLETED, evsq__on_completed, srv,
			MHD_OPTION_NOTIFY_CONNECTION, evsq__limits_notify, srv,
			MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
			MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, MHD_OPTION_CONNECTION_LIMIT,
			srv->max_conns + 1, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->timeout_s,
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
	if (srv->store && (rc = evsq__push_start(srv, cfg, &srv->push)))
		goto fail;
	rc = EVSQ_NOMEM;
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
	evsq__push_shutdown(srv->push);       /* streams end (resumed while the loops run) */
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
		struct evsq__loop *lp = &srv->loops[i];

		/* what is still queued or in flight is answered 503; MHD closes
		 * those connections */
		evsq__batcher_free(lp->batcher);
		if (lp->mhd)
			MHD_stop_daemon(lp->mhd);
		if (lp->wake_fd >= 0)
			close(lp->wake_fd);
	}
	evsq__push_free(srv->push);
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
	evsq__www_free(srv->www);
	evs_close(srv->store);
	free(srv->token);
	free(srv->projection);
	free(srv);
}
