/*
 * routes.c - the route table: every path evs-query serves, decided once
 * per request (request.c asks evsq__route_find() when the headers are
 * in), with its handler, whether it blocks and its fast path; and the
 * refusals all routes share (method, body, bearer token, no route).
 *
 *   path        match   token  blocks  fast path (batcher)
 *   /health     exact   no     no      -
 *   /ready      exact   yes    yes     -
 *   /metrics    exact   yes    no      -
 *   /streams/   prefix  yes    yes     plain state lookups (streams.c)
 *   /models     tree    yes    yes     one key as of a time (model_fast.c)  [pg]
 *   /events/stream exact yes   no      - (a long response, push.h)
 *   /           exact   no     no      -        the page (static.c)
 *   /assets/    prefix  no     no      -        its files
 *   /events     exact   yes    yes     -        by index from the store, or by
 *                                               correlation or id (find.c)  [pg without --store]
 *   /streams    exact   yes    yes     -        streams by prefix (find.c)  [pg]
 *
 * [pg]: served only with a read-model database (--dsn); without one (a
 * service of the store's routes: --store alone) 404 no_database.
 *
 * A route that does not block is answered on its event loop (it reads
 * neither PostgreSQL nor the store); one that blocks goes to the batcher
 * when its fast path takes it, else to the workers.
 */
#include <string.h>

#include "push.h"

static unsigned health(evsq_server *srv, struct MHD_Connection *conn, const char *rest,
		       evs__buf *body, const char **ctype)
{
	static const char *const none[] = {NULL};
	evsq__args a;
	unsigned status;

	(void)srv;
	(void)rest;
	(void)ctype;
	if ((status = evsq__args_check(conn, none, &a, body)))
		return status;
	body->len = 0;
	evs__buf_puts(body, "{\"status\":\"ok\"}\n");
	return 200;
}

static unsigned streams(evsq_server *srv, struct MHD_Connection *conn, const char *rest,
			evs__buf *body, const char **ctype)
{
	(void)ctype;
	return evsq__streams(&srv->ctx, conn, rest, body);
}

static unsigned models(evsq_server *srv, struct MHD_Connection *conn, const char *rest,
		       evs__buf *body, const char **ctype)
{
	(void)ctype;
	return evsq__models_serve(&srv->ctx, conn, rest, body);
}

static const struct evsq__route routes[] = {
	{"/health", EVSQ__EXACT, true, false, false, NULL, health},
	{"/ready", EVSQ__EXACT, false, true, false, NULL, evsq__ready},
	{"/metrics", EVSQ__EXACT, false, false, false, NULL, evsq__metrics},
	/* source=store needs no database: streams.c decides */
	{"/streams/", EVSQ__PREFIX, false, true, false, evsq__streams_fast, streams},
	{"/models", EVSQ__TREE, false, true, true, evsq__models_fast, models},
	{"/events/stream", EVSQ__EXACT, false, false, false, NULL, evsq__push_serve},
	/* the auditor's page and its lookups (static.c, find.c) */
	{"/", EVSQ__EXACT, true, false, false, NULL, evsq__www_index},
	{"/assets/", EVSQ__PREFIX, true, false, false, NULL, evsq__www_serve},
	/* with --store, /events reads the store's indexes: find.c decides */
	{"/events", EVSQ__EXACT, false, true, false, NULL, evsq__find_events},
	{"/streams", EVSQ__EXACT, false, true, true, NULL, evsq__find_streams},
};

const struct evsq__route *evsq__route_find(const char *url, const char **rest)
{
	size_t i, n;

	for (i = 0; i < sizeof routes / sizeof routes[0]; i++) {
		const struct evsq__route *r = &routes[i];

		n = strlen(r->path);
		if (strncmp(url, r->path, n))
			continue;
		if ((r->match == EVSQ__EXACT && url[n]) ||
		    (r->match == EVSQ__TREE && url[n] && url[n] != '/'))
			continue;
		*rest = url + n;
		return r;
	}
	*rest = url;
	return NULL;
}

bool evsq__has_body(struct MHD_Connection *conn)
{
	const char *cl =
		MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);

	return (cl && strcmp(cl, "0")) ||
	       MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
					   MHD_HTTP_HEADER_TRANSFER_ENCODING);
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

unsigned evsq__route_refuse(evsq_server *srv, struct MHD_Connection *conn, const char *method,
			    const struct evsq__route *route, bool nul_path, evs__buf *body)
{
	if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
		evsq__error(body, "method_not_allowed", "only GET is served");
		return 405;
	}
	if (evsq__has_body(conn)) {
		evsq__error(body, "payload_too_large", "requests carry no body");
		return 413;
	}
	/* an unknown path asks for the token too: without it, nothing about
	 * the service shows, not even which paths exist */
	if (!(route && route->open) && srv->token &&
	    !token_ok(srv->token, MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							      MHD_HTTP_HEADER_AUTHORIZATION))) {
		evsq__error(body, "unauthorized", "missing or wrong bearer token");
		return 401;
	}
	if (nul_path) {
		/* decoded, the path would end at the zero byte */
		evsq__error(body, "bad_request", "the path contains a zero byte (%00)");
		return 400;
	}
	if (!route) {
		evsq__error(body, "not_found", "no such resource");
		return 404;
	}
	if (route->pg && !srv->pool)
		return evsq__no_database(body);
	return 0;
}
