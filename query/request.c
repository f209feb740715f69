/*
 * request.c - one request's life on an event loop: its route decided
 * once (routes.c) when the headers are in; refusals and the routes that
 * do not block answered in place; the others handed over with the
 * connection suspended, to the loop's batcher (the route's fast path) or
 * the workers, and answered when they resume it. Every answer is counted
 * for /metrics and logged at info level (the access log):
 *
 *   GET /streams/account-alice/state 200 312 bytes 480 us
 *
 * (method, path as decoded, with control bytes, spaces and '%' escaped as
 * %XX; status; body bytes; microseconds from the headers to the answer).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server.h"

/* One request: headers seen (NEW), handed over with its connection
 * suspended (WAITING), answered and the connection resumed (DONE). */
enum { PH_NEW, PH_WAITING, PH_DONE };

struct req {
	evsq__job job; /* first: a job is its request */
	evsq_server *srv;
	struct evsq__loop *loop;
	struct MHD_Connection *conn;
	const struct evsq__route *route; /* NULL: no such resource */
	const char *method, *url, *rest; /* MHD's, valid for the request */
	const char *ctype;
	char *stream;
	int64_t t0;
	int phase;
	bool nul_path; /* the raw path held %00 (evsq__on_uri) */
};

/* What evsq__on_uri leaves as a request's context when its raw path
 * holds %00 (no allocation: a request can fail before on_request). */
static char nul_path_mark;

void *evsq__on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	size_t n = strcspn(uri, "?"), i;

	(void)cls;
	(void)conn;
	for (i = 0; i + 2 < n; i++)
		if (uri[i] == '%' && uri[i + 1] == '0' && uri[i + 2] == '0')
			return &nul_path_mark;
	return NULL;
}

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The route's answer, on the loop or a worker (refusals are decided
 * before, on the loop). */
static void req_run(evsq__job *job)
{
	struct req *q = (struct req *)job;

	q->job.status = q->route->handler(q->srv, q->conn, q->rest, &q->job.body, &q->ctype);
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

void evsq__on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			enum MHD_RequestTerminationCode toe)
{
	struct req *q = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (!q || *con_cls == (void *)&nul_path_mark)
		return;
	evs__buf_free(&q->job.body);
	if (q->job.fast_free)
		q->job.fast_free(q->job.fast);
	free(q->stream);
	free(q);
	*con_cls = NULL;
}

/* The access log line of an answer. The path is the client's, decoded:
 * bytes that could forge or split a log line are escaped. */
static void access_log(evsq_server *srv, const struct req *q, size_t bytes, int64_t dt)
{
	static const char hex[] = "0123456789ABCDEF";
	char path[256], line[400];
	size_t i, n = 0;

	for (i = 0; q->url[i] && n + 4 < sizeof path; i++) {
		unsigned char c = (unsigned char)q->url[i];

		if (c <= ' ' || c == 0x7f || c == '%') {
			path[n++] = '%';
			path[n++] = hex[c >> 4];
			path[n++] = hex[c & 15];
		} else {
			path[n++] = (char)c;
		}
	}
	path[n] = '\0';
	snprintf(line, sizeof line, "%.16s %s%s %u %zu bytes %lld us", q->method, path,
		 q->url[i] ? "..." : "", q->job.status, bytes, (long long)dt);
	srv->log(srv->log_ctx, EVS_LOG_INFO, line);
}

static enum MHD_Result respond(evsq_server *srv, struct req *q)
{
	evs__buf *body = &q->job.body;
	unsigned status = q->job.status;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	size_t len = body->len;
	int64_t dt;

	if (status == EVSQ__QUEUED) { /* a stream, queued by its handler */
		q->job.status = 200;
		dt = now_us() - q->t0;
		evsq__metrics_count(srv, 200, dt);
		if (srv->log)
			access_log(srv, q, 0, dt);
		return MHD_YES;
	}
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
	evsq__www_headers(srv, q->route, q->rest, status, resp);
	ret = MHD_queue_response(q->conn, status, resp);
	MHD_destroy_response(resp);
	dt = now_us() - q->t0;
	evsq__metrics_count(srv, status, dt);
	if (srv->log)
		access_log(srv, q, len, dt);
	return ret;
}

/* Hand a request that blocks over: to the batcher when the route's fast
 * path takes it, else to the workers. Suspended first: the answer may
 * come at once. */
static void hand_over(struct req *q)
{
	evsq_server *srv = q->srv;

	q->phase = PH_WAITING;
	MHD_suspend_connection(q->conn);
	if (q->route->fast && (q->stream = q->route->fast(&srv->ctx, q->conn, q->rest, &q->job))) {
		q->job.stream = q->stream;
		evsq__batcher_submit(q->loop->batcher, &q->job);
	} else {
		q->job.kind = EVSQ__J_RUN;
		evsq__workers_submit(srv->workers, &q->job);
	}
}

enum MHD_Result evsq__on_request(void *cls, struct MHD_Connection *conn, const char *url,
				 const char *method, const char *version, const char *upload_data,
				 size_t *upload_data_size, void **con_cls)
{
	struct evsq__loop *lp = cls;
	evsq_server *srv = lp->srv;
	struct req *q = *con_cls;

	(void)version;
	(void)upload_data;
	/* First call: headers only. A request announcing a body is refused
	 * at once (the connection is then closed); any other is answered on
	 * the next call, once MHD has the whole request, which keeps the
	 * connection alive (answering in the first call makes MHD close it). */
	if (!q || *con_cls == (void *)&nul_path_mark) {
		bool nul_path = q != NULL;

		q = calloc(1, sizeof *q);
		if (!q)
			return MHD_NO;
		q->nul_path = nul_path;
		q->srv = srv;
		q->loop = lp;
		q->conn = conn;
		q->method = method;
		q->url = url;
		q->route = evsq__route_find(url, &q->rest);
		q->ctype = "application/json";
		q->t0 = now_us();
		q->job.run = req_run;
		q->job.done = req_done;
		*con_cls = q;
		if (!evsq__has_body(conn))
			return MHD_YES;
		/* refused (405 or 413) */
		q->job.status =
			evsq__route_refuse(srv, conn, method, q->route, q->nul_path, &q->job.body);
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
	q->job.status = evsq__route_refuse(srv, conn, method, q->route, q->nul_path, &q->job.body);
	if (!q->job.status && !q->route->blocks)
		req_run(&q->job);
	if (q->job.status)
		return respond(srv, q);
	hand_over(q);
	return MHD_YES;
}
