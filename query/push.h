/*
 * push.h - GET /events/stream: the commit stream pushed to HTTP clients as
 * Server-Sent Events or NDJSON (private to the push files).
 *
 *   push.c         the hub: one thread follows the store, encodes each new
 *                  event once (CloudEvents JSON, cloudevent.h) into a
 *                  bounded window shared by every stream, and wakes the
 *                  streams waiting for it
 *   push_stream.c  one stream: libmicrohttpd's content reader, on its event
 *                  loop's thread; catch-up from the store, then the window,
 *                  suspended (no thread, no polling) while there is nothing
 *                  to send
 *   push_route.c   the route: parameters, resume position, limits, the
 *                  response and its headers
 *
 * Threads and the server's model: a stream never holds a thread. Its
 * connection stays on its event loop; MHD calls the content reader when
 * the socket can take bytes; with nothing to send the reader suspends the
 * connection (MHD_suspend_connection from the reader, as MHD documents)
 * and parks the stream on the hub's list, and the hub resumes it (and
 * writes its loop's eventfd) when the window gains events or a heartbeat
 * is due. So 100s of idle or busy streams cost the loops only the bytes
 * they send, and the other routes are served by the same loops between.
 *
 * Memory per stream is bounded: the frames formatted but not yet taken by
 * MHD (at most one event past the response's block) and, while catching
 * up from the store, one subscription chunk (follow.c: at most 256 events
 * or 1 MiB). The window is bounded too (push_window events and
 * EVSQ__PUSH_WINDOW_BYTES), shared. A stream that once read from the
 * window and falls behind its oldest event (a slow or stalled client) is
 * cut: it gets a last "cut" frame with the reason and the position to
 * resume after, and the response ends. Nothing is skipped: every position
 * a stream passes was sent or filtered out.
 */
#ifndef EVSQ_PUSH_H
#define EVSQ_PUSH_H

#include <pthread.h>
#include <stdatomic.h>

#include "server.h"

#define EVSQ__PUSH_WINDOW_BYTES ((size_t)64 << 20)
#define EVSQ__PUSH_RETRY_MS     3000
#define EVSQ__PUSH_BLOCK        (32 * 1024) /* the response's buffer */
#define EVSQ__PUSH_MAX_TYPES    32

/* One encoded event of the window: stream, type, tags (packed:
 * evsq__push_tags_pack) and CloudEvents JSON in one buffer, in that
 * order. */
struct evsq__push_slot {
	uint64_t position;
	size_t stream_len, type_len, tags_len;
	evs__buf b;
};

struct evsq__push_client;

struct evsq__push {
	evs_store *store;
	char *source;
	long heartbeat_ms;
	long max_streams;
	evs_log_fn log;
	void *log_ctx;
	/* the event loops' eventfds, to wake a loop after a resume */
	int *wake_fds;
	int nloops;
	/* the window: positions [first, next) in slots[position % cap] */
	pthread_rwlock_t rw;
	struct evsq__push_slot *slots;
	size_t cap, bytes;
	uint64_t first, next;
	/* parked streams; next_pub and shutdown under mu too */
	pthread_mutex_t mu;
	struct evsq__push_client *parked;
	uint64_t next_pub;
	bool shutdown;
	/* the follower */
	pthread_t thread;
	bool started;
	atomic_bool stop;
	/* counters for /metrics */
	atomic_long streams;
	atomic_ullong opened_total, cut_total, refused_total, events_total;
};

/* ---- push.c ---- */

/* The hub of srv's store (srv->store set, the loops' wake_fds made);
 * its thread starts following the store's head. EVSQ_OK or EVSQ_NOMEM. */
int evsq__push_start(evsq_server *srv, const evsq_config *cfg, struct evsq__push **out);
/* Every stream ends: parked ones are resumed (their readers end the
 * response); the thread stops. Before the loops stop. NULL is fine. */
void evsq__push_shutdown(struct evsq__push *hub);
/* After MHD is stopped (no stream left). NULL is fine. */
void evsq__push_free(struct evsq__push *hub);
/* Park c (suspending its connection) unless the window has passed
 * c's position, a heartbeat is due or the hub shuts down: true if
 * parked. From c's reader only. */
bool evsq__push_park(struct evsq__push *hub, struct evsq__push_client *c, int64_t now_ms);
/* Take c off the parked list if it is on it (c is freed). */
void evsq__push_unpark(struct evsq__push *hub, struct evsq__push_client *c);
/* The push gauges and counters for /metrics, Prometheus text. */
void evsq__push_metrics(struct evsq__push *hub, evs__buf *out);

/* ---- push_stream.c ---- */

enum evsq__push_from {
	EVSQ__FROM_LATEST,
	EVSQ__FROM_EARLIEST,
	EVSQ__FROM_AFTER,
	EVSQ__FROM_LAST_ID
};

struct evsq__push_filter {
	char *stream; /* exact, or NULL */
	char *prefix; /* or NULL */
	char *types[EVSQ__PUSH_MAX_TYPES];
	size_t ntypes;
	/* issue 12: the stream's category is one of these (the id up to its
	 * first catsep, the store's separator), the event carries every tag */
	char *categories[EVSQ__PUSH_MAX_TYPES];
	size_t ncategories;
	char *tags[EVS_MAX_TAGS];
	size_t ntags;
	char catsep; /* evs_category_separator() of the hub's store */
};

/* An event's tags packed for the window: each as one length byte (tags
 * are at most EVS_MAX_TAG = 255 bytes) and its bytes. */
#define EVSQ__PUSH_TAGS_MAX (EVS_MAX_TAGS * (1 + EVS_MAX_TAG))
size_t evsq__push_tags_pack(const evs_event *ev, uint8_t out[EVSQ__PUSH_TAGS_MAX]); /* push.c */

struct evsq__push_client {
	struct evsq__push *hub;
	struct MHD_Connection *conn;
	int wake_fd;
	bool ndjson;
	struct evsq__push_filter f;
	uint64_t after; /* where it resumed */
	int from;       /* enum evsq__push_from */
	uint64_t head;  /* the store's head when it connected */
	uint64_t pos;   /* the next position to look at */
	evs_sub *sub;   /* catching up from the store, or NULL: the window */
	int rounds;     /* scan chunks without a match in this reader call */
	bool live;      /* has read from the window */
	int state;      /* push_stream.c */
	evs__buf pend;  /* formatted, not yet taken by MHD: pend.ptr[off..len) */
	size_t off;
	evs__buf tmp;
	int64_t last_write_ms;
	/* on the hub's parked list (under hub->mu) */
	struct evsq__push_client *next_parked;
	bool parked;
};

/* A stream resuming after `after` (filter moved in; the caller counted
 * it in hub->streams), or NULL (out of memory). */
struct evsq__push_client *evsq__push_client_new(struct evsq__push *hub, struct MHD_Connection *conn,
						int wake_fd, bool ndjson,
						struct evsq__push_filter *f, uint64_t after,
						int from, uint64_t head);
/* MHD's content reader and its free callback (cls: the client). */
ssize_t evsq__push_read(void *cls, uint64_t off, char *buf, size_t max);
void evsq__push_client_free(void *cls);
void evsq__push_filter_free(struct evsq__push_filter *f);
bool evsq__push_filter_pass(const struct evsq__push_filter *f, const char *stream, size_t slen,
			    const char *type, size_t tlen, const uint8_t *tags, size_t tags_len);
int64_t evsq__push_now_ms(void);

/* ---- push_route.c ---- */

unsigned evsq__push_serve(evsq_server *srv, struct MHD_Connection *conn, const char *rest,
			  evs__buf *body, const char **ctype);

#endif
