/*
 * push_route.c - GET /events/stream (push.h): the parameters, where the
 * stream resumes, the limit on concurrent streams, and the response.
 *
 *   after=N | earliest | latest   resume after position N (N at most the
 *                                 store's head), from the first event, or
 *                                 from now (the default)
 *   Last-Event-ID: N              the same as after=N, and wins over it
 *                                 (an EventSource sends it when it
 *                                 reconnects; its first connection cannot
 *                                 set headers, hence after=)
 *   stream=ID                     one stream
 *   stream_prefix=P               streams whose id starts with P
 *   type=T[,T...]                 these event types (a comma-separated
 *                                 list, and/or repeated; at most 32)
 *   category=C[,C...]             streams of these categories (the id up
 *                                 to its first category separator, '-'
 *                                 unless the store was made with another;
 *                                 as type=)
 *   tag=G                         events carrying this tag; repeated: all
 *                                 of them (never split: a tag may hold a
 *                                 comma; at most 16)
 *   Accept: application/x-ndjson  NDJSON instead of SSE
 *
 * Refused with 400 like every route (args.c): a parameter twice (but
 * type, category, tag), without a value, with a zero byte, unknown; and
 * here an empty value, a position that is not decimal digits or is past
 * the head, and what GET /events refuses in type/category/tag (find.c:
 * an empty item, a duplicate, too long, too many). 404 without --store;
 * 503 past push_max_streams.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "push.h"

/* Decimal u64, digits only. */
static bool parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return true;
}

static bool name_ok(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= EVS_MAX_NAME && evs__utf8_text((const uint8_t *)s, n);
}

static int loop_wake_fd(evsq_server *srv, struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_DAEMON);

	for (int i = 0; ci && i < srv->nloops; i++)
		if (srv->loops[i].mhd == ci->daemon)
			return srv->loops[i].wake_fd;
	return -1;
}

static bool accepts_ndjson(struct MHD_Connection *conn)
{
	const char *a = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);

	return a && strstr(a, "application/x-ndjson");
}

_Static_assert(EVSQ__FILTER_MAX <= EVSQ__PUSH_MAX_TYPES, "push filter arrays hold /events filters");

/* Where to resume: *after and *from, or a 400 answer. */
static unsigned resume_at(struct MHD_Connection *conn, const evsq__args *a, uint64_t head,
			  uint64_t *after, int *from, evs__buf *body)
{
	const char *last = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Last-Event-ID");
	const char *v = evsq__arg(a, "after");
	char msg[256];

	*after = head;
	*from = EVSQ__FROM_LATEST;
	if (last) {
		if (!parse_u64(last, after))
			return evsq__bad_param(body, "Last-Event-ID", last,
					       "the decimal position of an event");
		*from = EVSQ__FROM_LAST_ID;
		v = NULL;
	} else if (v && !strcmp(v, "earliest")) {
		*after = 0;
		*from = EVSQ__FROM_EARLIEST;
		return 0;
	} else if (v && !strcmp(v, "latest")) {
		return 0;
	} else if (v) {
		if (!parse_u64(v, after))
			return evsq__bad_param(body, "after", v,
					       "a decimal position, \"earliest\" or \"latest\"");
		*from = EVSQ__FROM_AFTER;
	} else {
		return 0;
	}
	if (*after > head) {
		snprintf(msg, sizeof msg,
			 "position %llu is past the store's last position %llu (another store?)",
			 (unsigned long long)*after, (unsigned long long)head);
		evsq__error(body, "bad_request", msg);
		return 400;
	}
	return 0;
}

/* The filter from the parameters, or a 400 answer. */
static unsigned filter_of(const evsq__args *a, struct evsq__push_filter *f, evs__buf *body)
{
	const char *stream = evsq__arg(a, "stream");
	const char *prefix = evsq__arg(a, "stream_prefix");
	struct evsq__filter_args fa;
	unsigned status;

	if (stream && !name_ok(stream))
		return evsq__bad_param(body, "stream", stream, "a stream id (1 to 255 bytes)");
	if (prefix && !name_ok(prefix))
		return evsq__bad_param(body, "stream_prefix", prefix,
				       "the start of stream ids (1 to 255 bytes)");
	if ((status = evsq__filter_args_read(a, &fa, body)))
		return status;
	/* the strings move to f (freed with it) */
	memcpy(f->types, fa.types, fa.ntypes * sizeof *fa.types);
	f->ntypes = fa.ntypes;
	memcpy(f->categories, fa.categories, fa.ncategories * sizeof *fa.categories);
	f->ncategories = fa.ncategories;
	memcpy(f->tags, fa.tags, fa.ntags * sizeof *fa.tags);
	f->ntags = fa.ntags;
	if ((stream && !(f->stream = strdup(stream))) ||
	    (prefix && !(f->prefix = strdup(prefix)))) {
		evsq__error(body, "internal", "out of memory");
		return 500;
	}
	return 0;
}

/* A stream writes small frames and its client sends nothing back: with
 * Nagle's algorithm a frame would wait for the delayed ACK of the one
 * before (40 ms and more). */
static void no_delay(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	int one = 1;

	if (ci)
		setsockopt(ci->connect_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

unsigned evsq__push_serve(evsq_server *srv, struct MHD_Connection *conn, const char *rest,
			  evs__buf *body, const char **ctype)
{
	static const char *const allowed[] = {
		"after", "stream", "stream_prefix", "type", "category", "tag", NULL};
	static const char *const repeatable[] = {"type", "category", "tag", NULL};
	struct evsq__push *hub = srv->push;
	struct evsq__push_filter f = {0};
	struct evsq__push_client *c;
	struct MHD_Response *resp;
	evs_store_info head;
	evsq__args a;
	uint64_t after;
	unsigned status;
	int from;
	bool ndjson;
	char msg[256], resumed[24];

	(void)rest;
	(void)ctype;
	if (!hub) {
		evsq__error(body, "not_found", "no event stream: evs-query runs without --store");
		return 404;
	}
	if ((status = evsq__args_check_multi(conn, allowed, repeatable, &a, body)))
		return status;
	if ((status = filter_of(&a, &f, body)))
		goto refused;
	f.catsep = evs_category_separator(srv->store);
	if (evs_head(srv->store, &head) != EVS_OK) {
		evsq__error(body, "internal", "could not read the store's head");
		status = 500;
		goto refused;
	}
	if ((status = resume_at(conn, &a, head.last_position, &after, &from, body)))
		goto refused;
	if (atomic_fetch_add(&hub->streams, 1) >= hub->max_streams) {
		atomic_fetch_sub(&hub->streams, 1);
		atomic_fetch_add(&hub->refused_total, 1);
		snprintf(msg, sizeof msg,
			 "too many event streams open (push_max_streams %ld); retry later",
			 hub->max_streams);
		evsq__error(body, "unavailable", msg);
		status = 503;
		goto refused;
	}
	ndjson = accepts_ndjson(conn);
	c = evsq__push_client_new(hub, conn, loop_wake_fd(srv, conn), ndjson, &f, after, from,
				  head.last_position);
	if (!c) {
		atomic_fetch_sub(&hub->streams, 1);
		evsq__error(body, "internal", "out of memory");
		status = 500;
		goto refused;
	}
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, EVSQ__PUSH_BLOCK,
						 evsq__push_read, c, evsq__push_client_free);
	if (!resp) {
		evsq__push_client_free(c);
		evsq__error(body, "internal", "out of memory");
		return 500;
	}
	snprintf(resumed, sizeof resumed, "%llu", (unsigned long long)after);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				ndjson ? "application/x-ndjson" : "text/event-stream");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	MHD_add_response_header(resp, "Evstore-Resume-After", resumed);
	if (MHD_queue_response(conn, 200, resp) != MHD_YES) {
		MHD_destroy_response(resp);
		evsq__error(body, "internal", "could not queue the answer");
		return 500;
	}
	MHD_destroy_response(resp);
	no_delay(conn);
	atomic_fetch_add(&hub->opened_total, 1);
	return EVSQ__QUEUED;
refused:
	evsq__push_filter_free(&f);
	return status;
}
