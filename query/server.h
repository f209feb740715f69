/*
 * server.h - what the files of the HTTP side share (private to them):
 * the server, its event loops and the route table.
 *
 *   server.c   start, the event loops, stop
 *   limits.c   connection limits across the loops
 *   request.c  a request's life: hand-over, answer, counters, access log
 *   routes.c   the route table and the refusals every route shares
 *   ready.c    GET /ready
 *   metrics.c  GET /metrics and the request counters it shows
 */
#ifndef EVSQ_SERVER_H
#define EVSQ_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "internal.h"

/* Latency histogram of evsq_request_duration_seconds: bucket count (the
 * bounds are in metrics.c) and status classes counted (status / 100). */
#define EVSQ__N_BUCKETS 10
#define EVSQ__N_CLASSES 6

/* An HTTP event loop: one thread polling its own MHD daemon (all loops
 * listen on the same port, SO_REUSEPORT: the kernel spreads connections)
 * together with its batcher's PostgreSQL sockets, so that requests and
 * their lookups' results wake the same thread. */
struct evsq__loop {
	evsq_server *srv;
	struct MHD_Daemon *mhd;
	evsq__batcher *batcher;
	int wake_fd;   /* eventfd: a worker resumed one of this loop's connections */
	long slice_us; /* loop_slice_us */
	pthread_t thread;
	bool started;
};

struct evsq__peer;

struct evsq_server {
	struct evsq__loop *loops;
	int nloops;
	int stop_fd; /* eventfd: the loops return */
	evsq__pool *pool;
	evsq__workers *workers;
	/* connection limits, across the loops (limits.c) */
	pthread_mutex_t lim_mu;
	bool lim_init;
	unsigned conns, max_conns, max_per_ip;
	struct evsq__peer *peers; /* addresses with connections open */
	size_t npeers, cap_peers;
	evs_store *store;
	struct evsq__push *push; /* GET /events/stream (push.h), with a store */
	evsq__ctx ctx;
	char *projection;
	char *token;
	long ready_max_lag;
	evs_log_fn log;
	void *log_ctx;
	unsigned port;
	/* metrics.c */
	atomic_ullong requests[EVSQ__N_CLASSES];
	atomic_ullong hist[EVSQ__N_BUCKETS + 1];
	atomic_ullong latency_us_sum;
	/* static.c: the page's files (--www), or NULL */
	struct evsq__www *www;
};

/* ---- routes (routes.c) ----
 * Every path is decided once, by this table: its handler, whether it
 * blocks (reads PostgreSQL or the store, or waits: answered off the loop
 * by the workers) and its fast path (a lookup the loop's batcher can
 * answer, or NULL). */

/* A route's answer: the status, with the body (and *ctype when not
 * JSON). rest is the decoded path after the route's path. */
typedef unsigned (*evsq__handler)(evsq_server *srv, struct MHD_Connection *conn, const char *rest,
				  evs__buf *body, const char **ctype);
/* Whether the batcher can answer (job kind and as_of set): the stream id
 * (the caller frees it), else NULL and the workers answer. */
typedef char *(*evsq__fast)(const evsq__ctx *ctx, struct MHD_Connection *conn, const char *rest,
			    evsq__job *job);

enum evsq__match {
	EVSQ__EXACT,  /* the path itself */
	EVSQ__PREFIX, /* the path, then anything */
	EVSQ__TREE    /* the path, or the path then '/' and anything */
};

struct evsq__route {
	const char *path;
	int match;   /* enum evsq__match */
	bool open;   /* served without the bearer token */
	bool blocks; /* answered by a worker (or the batcher), never on the loop */
	bool pg;     /* reads only the read-model database: 404 no_database without --dsn */
	evsq__fast fast;
	evsq__handler handler;
};

/* A handler's status when it queued its own response (a stream, push.h):
 * request.c counts it as 200 and queues nothing. */
#define EVSQ__QUEUED 1000

/* The route of url (*rest set to what follows its path), or NULL. */
const struct evsq__route *evsq__route_find(const char *url, const char **rest);
/* The refusals every route shares, in order: a method other than
 * GET/HEAD (405), a request body (413), no or a wrong token where one is
 * needed (401), a zero byte (%00) in the path (400: nul_path, from
 * evsq__on_uri), no route (404). 0 when none applies. */
unsigned evsq__route_refuse(evsq_server *srv, struct MHD_Connection *conn, const char *method,
			    const struct evsq__route *route, bool nul_path, evs__buf *body);
/* Whether the request announces a body (Content-Length other than 0, or
 * Transfer-Encoding). */
bool evsq__has_body(struct MHD_Connection *conn);

/* ---- the handlers of /ready (ready.c) and /metrics (metrics.c) ---- */

unsigned evsq__ready(evsq_server *srv, struct MHD_Connection *conn, const char *rest,
		     evs__buf *body, const char **ctype);
unsigned evsq__metrics(evsq_server *srv, struct MHD_Connection *conn, const char *rest,
		       evs__buf *body, const char **ctype);
/* Count an answer (status class, latency) for /metrics. */
void evsq__metrics_count(evsq_server *srv, unsigned status, int64_t dt_us);

/* ---- requests (request.c): libmicrohttpd's callbacks; cls is the
 * request's struct evsq__loop ---- */

enum MHD_Result evsq__on_request(void *cls, struct MHD_Connection *conn, const char *url,
				 const char *method, const char *version, const char *upload_data,
				 size_t *upload_data_size, void **con_cls);
/* MHD_OPTION_URI_LOG_CALLBACK: sees the raw request target before MHD
 * decodes it (a decoded %00 ends the C string on_request gets, so
 * "/models/m/t/alice%00x" would be answered for the key "alice"); marks
 * a path holding %00, refused with 400 by evsq__route_refuse. */
void *evsq__on_uri(void *cls, const char *uri, struct MHD_Connection *conn);
void evsq__on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			enum MHD_RequestTerminationCode toe);

/* ---- connection limits (limits.c); cls is the server ---- */

enum MHD_Result evsq__limits_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen);
void evsq__limits_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
			 enum MHD_ConnectionNotificationCode toe);

/* ---- the auditor's page (static.c): query/www/ read at start ---- */

typedef struct evsq__www evsq__www;

/* Read the files of dir (empty or NULL: no page, *out NULL); EVSQ_INVALID
 * with err for a folder that cannot be read or holds too much. */
int evsq__www_load(const char *dir, evsq__www **out, char *err, size_t errlen);
void evsq__www_free(evsq__www *w);
/* Whether a file name is one the page may have ([A-Za-z0-9._-], no
 * leading '.', at most 64 bytes), and its Content-Type. */
bool evsq__www_name_ok(const char *name);
const char *evsq__www_ctype(const char *name);
/* GET / (index.html) and /assets/NAME: 200 with the file, 304
 * (If-None-Match names its ETag), 404. */
unsigned evsq__www_index(evsq_server *srv, struct MHD_Connection *conn, const char *rest,
			 evs__buf *body, const char **ctype);
unsigned evsq__www_serve(evsq_server *srv, struct MHD_Connection *conn, const char *rest,
			 evs__buf *body, const char **ctype);
/* The headers of a page answer (ETag, caching, nosniff, CSP); nothing
 * for another route's. */
void evsq__www_headers(evsq_server *srv, const struct evsq__route *route, const char *rest,
		       unsigned status, struct MHD_Response *resp);

/* ---- lookups across streams (find.c) ---- */

/* GET /events?type=&category=&tag=&correlation= | ?id=ID, GET
 * /streams?prefix=P */
unsigned evsq__find_events(evsq_server *srv, struct MHD_Connection *conn, const char *rest,
			   evs__buf *body, const char **ctype);
unsigned evsq__find_streams(evsq_server *srv, struct MHD_Connection *conn, const char *rest,
			    evs__buf *body, const char **ctype);

/* The filter parameters of /events and /events/stream, checked the same
 * way on both: type= and category= (repeatable, each value a comma list)
 * and tag= (repeatable, taken whole); an empty item, invalid UTF-8, too
 * long, a duplicate or too many is 400 naming the parameter. Strings are
 * the caller's to free (evsq__filter_args_free; also on a 400). */
#define EVSQ__FILTER_MAX 32
struct evsq__filter_args {
	char *types[EVSQ__FILTER_MAX];
	size_t ntypes;
	char *categories[EVSQ__FILTER_MAX];
	size_t ncategories;
	char *tags[EVS_MAX_TAGS];
	size_t ntags;
};
/* A parsed GET /events (find.c), answered from the store by
 * evsq__events_from_store (find_store.c). */
struct evsq__events_req {
	struct evsq__filter_args f;
	const char *corr, *id; /* the parameters' text, or NULL */
	uint8_t corr_id[16], id_bytes[16];
	bool backward;
	uint64_t after, before; /* before 0: from the head */
	int64_t limit;
};
unsigned evsq__events_from_store(evsq_server *srv, const char *minp, struct evsq__events_req *q,
				 evs__buf *body);

unsigned evsq__filter_args_read(const evsq__args *a, struct evsq__filter_args *f, evs__buf *body);
void evsq__filter_args_free(struct evsq__filter_args *f);

#endif
