/*
 * kit_http.h - the test kit's HTTP fixture: one GET (libcurl) or raw bytes
 * over a socket, an in-process server on a free loopback port, and the
 * evs-query program started as its own process.
 */
#ifndef EVS_KIT_HTTP_H
#define EVS_KIT_HTTP_H

#include <sys/types.h>

#include <json-c/json.h>

#include "evsq.h"
#include "kit_pg.h"

typedef struct http_answer {
	long status;
	char *body;           /* malloc'd, NUL-terminated */
	json_object *json;    /* parsed body, or NULL */
	char retry_after[16]; /* header, or "" */
} http_answer;

/* GET http://127.0.0.1:port<target> (target already escaped), with an
 * Authorization: Bearer header when token is not NULL. Fails the test
 * when the transfer fails. */
void http_get(unsigned port, const char *target, const char *token, http_answer *a);
/* Same with another method. */
void http_request(unsigned port, const char *method, const char *target, const char *body,
		  http_answer *a);
void http_answer_free(http_answer *a);
/* GET target: fails the test unless the status is 200 (a is filled). */
void http_get_ok(unsigned port, const char *target, http_answer *a);
/* GET target: fails the test unless the answer is the JSON error
 * {"error": code, "message": "..."} with this status. */
void http_expect_error(unsigned port, const char *target, long status, const char *code);
/* GET every target, expecting 400 with the JSON error "bad_request":
 * all of them are tried and each wrong answer printed (prefixed by who);
 * returns how many were wrong (the caller asserts 0). */
size_t http_count_not_bad_request(unsigned port, const char *const *targets, size_t n,
				  const char *who);
/* %-escaped copy of s (malloc'd). */
char *http_escape(const char *s);
/* Send raw bytes, return the status of the answer (0 if the server closed
 * without one, -1 if nothing listens). */
int http_raw(unsigned port, const void *req, size_t len);

/* Integer / string member of the answer's JSON (test fails if absent). */
long long http_int(const http_answer *a, const char *key);
const char *http_str(const http_answer *a, const char *key);

/* Start a server on 127.0.0.1, port 0, for dsn with extra "name=value"
 * settings (NULL-terminated list). */
evsq_server *http_server(const char *dsn, const char *const *settings);

/* Run the evs-query program on a free loopback port (*port) with the
 * extra NULL-terminated arguments; returns once /health answers 200. */
pid_t http_query_spawn(const char *const *args, unsigned *port);

/* A fresh store (no fsync; category separator sep, 0 = '-') in a
 * temporary directory tagged name, a fresh database, and evs-query on
 * them as its own process: --dsn, --store when with_store, then extra
 * (NULL-terminated, or NULL). http_query_stop() SIGTERMs evs-query (30 s
 * bound), closes the store and removes the directory (unless kept). */
typedef struct http_query_fixture {
	char *dir, *dsn;
	evs_store *store;
	pid_t query;
	unsigned port;
} http_query_fixture;

void http_query_start(http_query_fixture *f, const char *name, char sep, bool with_store,
		      const char *const *extra);
void http_query_stop(http_query_fixture *f);

/* pgh_main() between curl_global_init() and curl_global_cleanup(). */
int http_main(const char *name, int timeout_s, const TTest *const *tests);

#endif /* EVS_KIT_HTTP_H */
