/*
 * push.c - the hub of GET /events/stream (push.h): one thread follows the
 * store from its head with a subscription (woken by the store's commit
 * notification, no polling), encodes every new event once as CloudEvents
 * JSON into the window, and resumes the streams parked for it.
 *
 * The window is a ring of push_window slots holding the positions
 * [first, next), gap-free (the hub's subscription has no filter); the
 * oldest slot is dropped when the ring is full or holds more than
 * EVSQ__PUSH_WINDOW_BYTES. Streams read it under the read lock; the hub
 * writes a batch of events under the write lock, then, under mu, moves
 * next_pub and resumes every parked stream. A stream parks under mu after
 * checking next_pub, so no wake-up is lost between its check and its
 * suspension.
 *
 * Under a steady stream of commits the parked streams are woken at most
 * every COALESCE_MS: each wake-up then carries the events of that
 * millisecond in one write per stream instead of one per commit (5,000
 * commits/s to 100 streams would otherwise be 500,000 resumes and writes
 * a second); the first commit after a quiet spell wakes them at once.
 *
 * Heartbeats: the thread wakes at least every TICK_MS and resumes the
 * parked streams whose last write is heartbeat_ms old; their reader
 * writes the heartbeat and parks again.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cloudevent.h"
#include "push.h"

#define TICK_MS     100
#define BATCH_MAX   512
#define COALESCE_MS 2 /* streams woken at most this often (fewer, fuller writes) */

int64_t evsq__push_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void wake_loops(struct evsq__push *hub, const bool *woken)
{
	uint64_t one = 1;

	for (int i = 0; i < hub->nloops; i++)
		if (woken[i] && write(hub->wake_fds[i], &one, sizeof one) < 0)
			abort(); /* an eventfd write of 1 cannot fail */
}

/* Resume the parked streams (all, or those due a heartbeat at now_ms),
 * under mu; woken[] marks their loops. */
static void resume_parked(struct evsq__push *hub, bool all, int64_t now_ms, bool *woken)
{
	struct evsq__push_client **pp = &hub->parked;

	while (*pp) {
		struct evsq__push_client *c = *pp;

		if (!all && now_ms - c->last_write_ms < hub->heartbeat_ms) {
			pp = &c->next_parked;
			continue;
		}
		*pp = c->next_parked;
		c->parked = false;
		c->next_parked = NULL;
		for (int i = 0; i < hub->nloops; i++)
			if (hub->wake_fds[i] == c->wake_fd)
				woken[i] = true;
		MHD_resume_connection(c->conn);
	}
}

size_t evsq__push_tags_pack(const evs_event *ev, uint8_t out[EVSQ__PUSH_TAGS_MAX])
{
	size_t n = 0;

	for (size_t i = 0; i < ev->ntags && i < EVS_MAX_TAGS; i++) {
		size_t len = ev->tags[i].len < EVS_MAX_TAG ? ev->tags[i].len : EVS_MAX_TAG;

		out[n++] = (uint8_t)len;
		memcpy(out + n, ev->tags[i].ptr, len);
		n += len;
	}
	return n;
}

/* Put one event at the window's end (write lock held): dropping the
 * oldest while the ring is full or over its bytes. */
static int window_put(struct evsq__push *hub, const evs_event *ev)
{
	uint8_t tags[EVSQ__PUSH_TAGS_MAX];
	struct evsq__push_slot *s;
	size_t before;
	int rc;

	while (hub->first < hub->next &&
	       (hub->next - hub->first >= hub->cap || hub->bytes > EVSQ__PUSH_WINDOW_BYTES)) {
		s = &hub->slots[hub->first % hub->cap];
		hub->bytes -= s->b.len;
		if (s->b.cap > 65536) /* a large event's memory goes with it */
			evs__buf_free(&s->b);
		hub->first++;
	}
	s = &hub->slots[hub->next % hub->cap];
	evs__buf_reset(&s->b);
	s->position = ev->position;
	s->stream_len = ev->stream.len;
	s->type_len = ev->type.len;
	evs__buf_putn(&s->b, ev->stream.ptr, ev->stream.len);
	evs__buf_putn(&s->b, ev->type.ptr, ev->type.len);
	s->tags_len = evsq__push_tags_pack(ev, tags);
	evs__buf_putn(&s->b, tags, s->tags_len);
	before = s->b.len;
	rc = evs__cloudevent_json(ev, hub->source, &s->b);
	if (rc == EVS_OK && s->b.oom)
		rc = EVS_NOMEM;
	if (rc != EVS_OK) {
		s->b.len = before;
		return rc;
	}
	hub->bytes += s->b.len;
	if (hub->first == hub->next)
		hub->first = ev->position;
	hub->next = ev->position + 1;
	return EVS_OK;
}

static void hub_log(struct evsq__push *hub, int level, const char *msg)
{
	if (hub->log)
		hub->log(hub->log_ctx, level, msg);
}

static void *hub_run(void *arg)
{
	struct evsq__push *hub = arg;
	evs_sub *sub = NULL;
	uint64_t start;
	bool woken[256], pending = false;
	int64_t last_tick = evsq__push_now_ms(), last_wake = 0;
	char msg[256];

	/* from the head the window was started at (evsq__push_start), not
	 * the head now: events committed in between would otherwise be in
	 * neither the window nor a caught-up stream's view, and a stream
	 * past them would park until the next commit */
	pthread_mutex_lock(&hub->mu);
	start = hub->next_pub - 1;
	pthread_mutex_unlock(&hub->mu);
	if (evs_subscribe(hub->store, start, NULL, &sub) != EVS_OK) {
		hub_log(hub, EVS_LOG_ERROR, "could not follow the store for event streams");
		return NULL;
	}
	while (!atomic_load(&hub->stop)) {
		evs_event ev;
		int n = 0, rc, timeout = TICK_MS;
		int64_t now = evsq__push_now_ms();

		if (pending) /* streams are woken at most every COALESCE_MS */
			timeout = last_wake + COALESCE_MS > now
					  ? (int)(last_wake + COALESCE_MS - now)
					  : 0;
		rc = evs_sub_next(sub, &ev, timeout);
		if (rc == EVS_OK) {
			pthread_rwlock_wrlock(&hub->rw);
			do {
				int wrc = ev.position == hub->next ? window_put(hub, &ev)
								   : EVS_CORRUPT;

				if (wrc != EVS_OK) {
					/* an event the window cannot hold: the streams
					 * that reach it end (they resume from the store) */
					snprintf(
						msg, sizeof msg,
						"could not encode event %llu for event streams: %s",
						(unsigned long long)ev.position, evs_strerror(wrc));
					hub_log(hub, EVS_LOG_ERROR, msg);
					pthread_rwlock_unlock(&hub->rw);
					goto out;
				}
				n++;
			} while (n < BATCH_MAX && (rc = evs_sub_next(sub, &ev, 0)) == EVS_OK);
			pthread_rwlock_unlock(&hub->rw);
			atomic_fetch_add(&hub->events_total, (unsigned long long)n);
			pending = true;
		}
		if (rc != EVS_OK && rc != EVS_TIMEOUT) {
			snprintf(msg, sizeof msg, "event streams: could not read the store: %s",
				 evs_strerror(rc));
			hub_log(hub, EVS_LOG_WARNING, msg);
		}
		now = evsq__push_now_ms();
		if (!(pending && now >= last_wake + COALESCE_MS) && now - last_tick < TICK_MS)
			continue;
		memset(woken, 0, sizeof woken);
		pthread_mutex_lock(&hub->mu);
		if (pending && now >= last_wake + COALESCE_MS) {
			hub->next_pub = hub->next;
			resume_parked(hub, true, now, woken);
			pending = false;
			last_wake = now;
		}
		if (now - last_tick >= TICK_MS) {
			resume_parked(hub, false, now, woken);
			last_tick = now;
		}
		pthread_mutex_unlock(&hub->mu);
		wake_loops(hub, woken);
	}
out:
	evs_sub_close(sub);
	return NULL;
}

int evsq__push_start(evsq_server *srv, const evsq_config *cfg, struct evsq__push **out)
{
	struct evsq__push *hub = calloc(1, sizeof *hub);
	evs_store_info head;
	char path[PATH_MAX];

	*out = NULL;
	if (!hub)
		return EVSQ_NOMEM;
	hub->store = srv->store;
	hub->heartbeat_ms = cfg->push_heartbeat * 1000;
	hub->max_streams = cfg->push_max_streams;
	hub->log = srv->log;
	hub->log_ctx = srv->log_ctx;
	hub->cap = (size_t)cfg->push_window;
	pthread_rwlock_init(&hub->rw, NULL);
	pthread_mutex_init(&hub->mu, NULL);
	if (cfg->push_source && cfg->push_source[0]) {
		hub->source = strdup(cfg->push_source);
	} else {
		evs__buf b = {0};

		evs__buf_puts(&b, "urn:evstore:");
		evs__buf_puts(&b, realpath(cfg->store, path) ? path : cfg->store);
		hub->source = evs__buf_cstr(&b) ? b.ptr : NULL;
		if (!hub->source)
			evs__buf_free(&b);
	}
	hub->nloops = srv->nloops < 256 ? srv->nloops : 256;
	hub->wake_fds = calloc((size_t)hub->nloops, sizeof *hub->wake_fds);
	hub->slots = calloc(hub->cap, sizeof *hub->slots);
	if (!hub->source || !hub->wake_fds || !hub->slots ||
	    evs_head(hub->store, &head) != EVS_OK) {
		evsq__push_free(hub);
		return EVSQ_NOMEM;
	}
	for (int i = 0; i < hub->nloops; i++)
		hub->wake_fds[i] = srv->loops[i].wake_fd;
	/* the window starts empty at the head the thread follows from */
	hub->first = hub->next = hub->next_pub = head.last_position + 1;
	if (pthread_create(&hub->thread, NULL, hub_run, hub)) {
		evsq__push_free(hub);
		return EVSQ_NOMEM;
	}
	hub->started = true;
	*out = hub;
	return EVSQ_OK;
}

void evsq__push_shutdown(struct evsq__push *hub)
{
	bool woken[256] = {0};

	if (!hub)
		return;
	pthread_mutex_lock(&hub->mu);
	hub->shutdown = true;
	resume_parked(hub, true, 0, woken);
	pthread_mutex_unlock(&hub->mu);
	wake_loops(hub, woken);
	atomic_store(&hub->stop, true);
	if (hub->started) {
		pthread_join(hub->thread, NULL);
		hub->started = false;
	}
}

void evsq__push_free(struct evsq__push *hub)
{
	if (!hub)
		return;
	evsq__push_shutdown(hub);
	for (size_t i = 0; hub->slots && i < hub->cap; i++)
		evs__buf_free(&hub->slots[i].b);
	free(hub->slots);
	free(hub->wake_fds);
	free(hub->source);
	pthread_rwlock_destroy(&hub->rw);
	pthread_mutex_destroy(&hub->mu);
	free(hub);
}

bool evsq__push_park(struct evsq__push *hub, struct evsq__push_client *c, int64_t now_ms)
{
	bool park;

	pthread_mutex_lock(&hub->mu);
	park = !hub->shutdown && hub->next_pub <= c->pos &&
	       now_ms - c->last_write_ms < hub->heartbeat_ms;
	if (park) {
		c->parked = true;
		c->next_parked = hub->parked;
		hub->parked = c;
		MHD_suspend_connection(c->conn);
	}
	pthread_mutex_unlock(&hub->mu);
	return park;
}

void evsq__push_unpark(struct evsq__push *hub, struct evsq__push_client *c)
{
	pthread_mutex_lock(&hub->mu);
	if (c->parked) {
		struct evsq__push_client **pp = &hub->parked;

		while (*pp && *pp != c)
			pp = &(*pp)->next_parked;
		if (*pp)
			*pp = c->next_parked;
		c->parked = false;
	}
	pthread_mutex_unlock(&hub->mu);
}

void evsq__push_metrics(struct evsq__push *hub, evs__buf *out)
{
	uint64_t first, next;

	if (!hub)
		return;
	pthread_rwlock_rdlock(&hub->rw);
	first = hub->first;
	next = hub->next;
	pthread_rwlock_unlock(&hub->rw);
	evs__buf_printf(
		out,
		"# HELP evsq_push_streams Open GET /events/stream answers.\n"
		"# TYPE evsq_push_streams gauge\nevsq_push_streams %ld\n"
		"# HELP evsq_push_streams_total Event streams opened.\n"
		"# TYPE evsq_push_streams_total counter\nevsq_push_streams_total %llu\n"
		"# HELP evsq_push_refused_total Event streams refused (push_max_streams).\n"
		"# TYPE evsq_push_refused_total counter\nevsq_push_refused_total %llu\n"
		"# HELP evsq_push_cut_total Event streams cut for falling behind the window.\n"
		"# TYPE evsq_push_cut_total counter\nevsq_push_cut_total %llu\n"
		"# HELP evsq_push_events_total Events encoded into the window.\n"
		"# TYPE evsq_push_events_total counter\nevsq_push_events_total %llu\n"
		"# HELP evsq_push_window_events Events in the window.\n"
		"# TYPE evsq_push_window_events gauge\nevsq_push_window_events %llu\n",
		atomic_load(&hub->streams), atomic_load(&hub->opened_total),
		atomic_load(&hub->refused_total), atomic_load(&hub->cut_total),
		atomic_load(&hub->events_total), (unsigned long long)(next - first));
}
