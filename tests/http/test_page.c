/*
 * test_page.c - the auditor's page and the lookups across streams of
 * evs-query (issue 13) over real HTTP on 127.0.0.1 against a throwaway
 * PostgreSQL (tests/kit/kit_pg.h):
 *
 * - page_assets: the --www folder's files with their Content-Type, ETag
 *   (304 on If-None-Match), caching and security headers, without the
 *   token; nothing outside the folder is reachable (dots, %2F, symlinks,
 *   hidden files, subfolders); the API still asks for the token; a folder
 *   that cannot be served stops the start with its name.
 * - page_find: GET /events?correlation= and ?id=, GET /streams?prefix=
 *   against events appended with correlation and causation ids and
 *   projected by the projector library: every event of a correlation once,
 *   in position order, through pages of random sizes; prefixes (with a
 *   multibyte one) answered exactly, paged; malformed parameters 400.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <check.h>
#include <curl/curl.h>

#include "kit_http.h"
#include "evsproj.h"
#include "kit_pg.h"

#define TOKEN "page-secret"

/* The whole answer (headers and body) to a raw request, malloc'd. */
static char *raw(unsigned port, const char *req)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	size_t cap = 1 << 16, n = 0;
	char *out = malloc(cap);
	ssize_t k;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_ptr_nonnull(out);
	ck_assert_int_ge(fd, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	ck_assert_int_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	while (n + 1 < cap && (k = read(fd, out + n, cap - 1 - n)) > 0)
		n += (size_t)k;
	out[n] = '\0';
	close(fd);
	return out;
}

static char *get(unsigned port, const char *path, const char *extra)
{
	char req[1024];

	snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\n", path,
		 extra ? extra : "");
	return raw(port, req);
}

static int status_of(const char *ans)
{
	int s = 0;

	ck_assert_msg(sscanf(ans, "HTTP/1.1 %d", &s) == 1, "no status line: %.80s", ans);
	return s;
}

/* A header's value (case-insensitive name) copied into out, or false. */
static bool header(const char *ans, const char *name, char *out, size_t n)
{
	const char *end = strstr(ans, "\r\n\r\n"), *p = ans;
	size_t k = strlen(name);

	while ((p = strstr(p, "\r\n")) && p < end) {
		p += 2;
		if (!strncasecmp(p, name, k) && p[k] == ':') {
			p += k + 1;
			while (*p == ' ')
				p++;
			snprintf(out, n, "%.*s", (int)strcspn(p, "\r"), p);
			return true;
		}
	}
	return false;
}

static void write_file(const char *dir, const char *name, const char *text, size_t len)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fwrite(text, 1, len, f), len);
	fclose(f);
}

static evsq_server *start(const char *dsn, const char *www, char *err, size_t errlen)
{
	evsq_config cfg;
	evsq_server *srv = NULL;

	ck_assert_int_eq(evsq_config_init(&cfg), EVSQ_OK);
	ck_assert_int_eq(evsq_config_set(&cfg, "port", "0", err, errlen), EVSQ_OK);
	ck_assert_int_eq(evsq_config_set(&cfg, "dsn", dsn, err, errlen), EVSQ_OK);
	ck_assert_int_eq(evsq_config_set(&cfg, "token", TOKEN, err, errlen), EVSQ_OK);
	ck_assert_int_eq(evsq_config_set(&cfg, "www", www, err, errlen), EVSQ_OK);
	if (evsq_server_start(&cfg, NULL, NULL, &srv, err, errlen) != EVSQ_OK)
		srv = NULL;
	evsq_config_free(&cfg);
	return srv;
}

START_TEST(page_assets)
{
	char *dir = kit_tmpdir("www"), *dsn = pgh_new_db(), *a, path[1024], v[512], etag[64],
	     err[1024], inm[128];
	static const char index_html[] = "<!doctype html><title>page</title>\n";
	evsq_server *srv;
	unsigned port;
	size_t i;
	char *big;

	write_file(dir, "index.html", index_html, sizeof index_html - 1);
	write_file(dir, "app.js", "'use strict';\n", 14);
	write_file(dir, "style.css", "body{}\n", 7);
	write_file(dir, "blob.bin", "\x00\x01\x02", 3);
	write_file(dir, ".hidden", "secret\n", 7);
	snprintf(path, sizeof path, "%s/sub", dir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	write_file(path, "inner.js", "x\n", 2);
	snprintf(path, sizeof path, "%s/passwd.js", dir);
	ck_assert_int_eq(symlink("/etc/passwd", path), 0);

	srv = start(dsn, dir, err, sizeof err);
	ck_assert_msg(srv, "start: %s", err);
	port = evsq_server_port(srv);

	a = get(port, "/", NULL); /* no token: the page holds no data */
	ck_assert_int_eq(status_of(a), 200);
	ck_assert(header(a, "Content-Type", v, sizeof v));
	ck_assert_str_eq(v, "text/html; charset=utf-8");
	ck_assert(header(a, "Cache-Control", v, sizeof v));
	ck_assert_str_eq(v, "no-cache");
	ck_assert(header(a, "X-Content-Type-Options", v, sizeof v));
	ck_assert_str_eq(v, "nosniff");
	ck_assert(header(a, "Content-Security-Policy", v, sizeof v));
	ck_assert_msg(strstr(v, "script-src 'self'") && strstr(v, "frame-ancestors 'none'"), "%s",
		      v);
	ck_assert(header(a, "ETag", etag, sizeof etag));
	ck_assert_int_eq(strlen(etag), 18);
	ck_assert_str_eq(strstr(a, "\r\n\r\n") + 4, index_html);
	free(a);

	snprintf(inm, sizeof inm, "If-None-Match: %s\r\n", etag);
	a = get(port, "/", inm);
	ck_assert_int_eq(status_of(a), 304);
	ck_assert(header(a, "ETag", v, sizeof v));
	ck_assert_str_eq(v, etag);
	ck_assert_str_eq(strstr(a, "\r\n\r\n") + 4, "");
	free(a);
	a = get(port, "/", "If-None-Match: \"0000000000000000\"\r\n");
	ck_assert_int_eq(status_of(a), 200);
	free(a);

	static const struct {
		const char *path, *ctype;
	} files[] = {
		{"/assets/app.js", "text/javascript; charset=utf-8"},
		{"/assets/style.css", "text/css; charset=utf-8"},
		{"/assets/blob.bin", "application/octet-stream"},
		{"/assets/index.html", "text/html; charset=utf-8"},
	};
	for (i = 0; i < sizeof files / sizeof files[0]; i++) {
		a = get(port, files[i].path, NULL);
		ck_assert_msg(status_of(a) == 200, "%s: %.60s", files[i].path, a);
		ck_assert(header(a, "Content-Type", v, sizeof v));
		ck_assert_str_eq(v, files[i].ctype);
		free(a);
	}
	/* blob.bin's bytes, NUL included */
	a = get(port, "/assets/blob.bin", NULL);
	ck_assert(header(a, "Content-Length", v, sizeof v));
	ck_assert_str_eq(v, "3");
	free(a);

	static const char *const refused[] = {
		"/assets/",
		"/assets/.hidden",
		"/assets/sub",
		"/assets/sub/inner.js",
		"/assets/passwd.js", /* a symlink, even to a readable file */
		"/assets/../README.md",
		"/assets/%2e%2e/README.md",
		"/assets/..%2fREADME.md",
		"/assets/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
		"/assets//etc/passwd",
		"/assets/app.js/",
		"/assets/APP.JS",
	};
	for (i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		a = get(port, refused[i], NULL);
		ck_assert_msg(status_of(a) == 404, "%s: %.60s", refused[i], a);
		ck_assert_msg(!strstr(a, "root:"), "%s leaked a file", refused[i]);
		free(a);
	}
	/* HEAD: the headers without the body; other methods refused */
	a = raw(port, "HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	ck_assert_int_eq(status_of(a), 200);
	ck_assert_str_eq(strstr(a, "\r\n\r\n") + 4, "");
	free(a);
	a = raw(port, "DELETE / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	ck_assert_int_eq(status_of(a), 405);
	free(a);
	/* the API keeps its token */
	a = get(port, "/events?correlation=0190f5a2-7c1e-7000-8000-00000000beef", NULL);
	ck_assert_int_eq(status_of(a), 401);
	free(a);
	a = get(port, "/streams?prefix=a", NULL);
	ck_assert_int_eq(status_of(a), 401);
	free(a);
	a = get(port, "/nothing-here", NULL);
	ck_assert_int_eq(status_of(a), 401);
	free(a);
	evsq_server_stop(srv);

	/* folders that cannot be served stop the start, named */
	ck_assert_ptr_null(start(dsn, "/nonexistent/www", err, sizeof err));
	ck_assert_msg(strstr(err, "could not open page folder \"/nonexistent/www\""), "%s", err);
	big = calloc(1, (3u << 20) + 1);
	ck_assert_ptr_nonnull(big);
	write_file(dir, "big.js", big, 3u << 20);
	free(big);
	ck_assert_ptr_null(start(dsn, dir, err, sizeof err));
	ck_assert_msg(strstr(err, "big.js\" is too large"), "%s", err);

	/* an empty --www: no page, and / is 404 as before (with the token) */
	srv = start(dsn, "", err, sizeof err);
	ck_assert_msg(srv, "start: %s", err);
	a = get(evsq_server_port(srv), "/", "Authorization: Bearer " TOKEN "\r\n");
	ck_assert_int_eq(status_of(a), 404);
	ck_assert_msg(strstr(a, "--www"), "%s", a);
	free(a);
	evsq_server_stop(srv);
	free(dsn);
	free(dir);
}
END_TEST

/* ---- lookups across streams ---- */

static void uuid_text(const uint8_t id[16], char out[37])
{
	static const char hex[] = "0123456789abcdef";
	int i, n = 0;

	for (i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[n++] = '-';
		out[n++] = hex[id[i] >> 4];
		out[n++] = hex[id[i] & 15];
	}
	out[n] = '\0';
}

#define NSTREAMS 40
#define NCORR    5

static const char *const prefixes[] = {"acct-", "acct-1", "order/", "zz", "é", ""};

static char *stream_name(int i, char *out, size_t n)
{
	/* three families of ids, one with a multibyte prefix */
	static const char *const fam[] = {"acct-%d", "order/%d", "\xc3\xa9t\xc3\xa9-%d"};

	snprintf(out, n, fam[i % 3], i);
	return out;
}

/* Producers and tags of the events (issue 12: in every event JSON, which
 * the page shows): tags given in a random order, answered as a set sorted
 * by bytes (this list's order; the multibyte one sorts last). */
static const char *const producers[] = {NULL, "teller", "batch/job-7"};
static const char *const tagset[] = {"audit", "q1", "z-last", "\xc3\xa9t\xc3\xa9"};
#define NTAGSET 4

/* By position (1..300): the index of the producer, the mask of the tags. */
static int prod_of[301], mask_of[301];

/* Event JSON e carries position's producer (null when none) and tags. */
static void check_source(json_object *e)
{
	json_object *v, *tags;
	int64_t pos;
	size_t n = 0;
	int t;

	ck_assert(json_object_object_get_ex(e, "position", &v));
	pos = json_object_get_int64(v);
	ck_assert(pos >= 1 && pos <= 300);
	ck_assert_msg(json_object_object_get_ex(e, "producer", &v), "no producer: %s",
		      json_object_to_json_string(e));
	if (producers[prod_of[pos]])
		ck_assert_str_eq(json_object_get_string(v), producers[prod_of[pos]]);
	else
		ck_assert_msg(v == NULL, "position %lld: producer %s, expected null",
			      (long long)pos, json_object_to_json_string(v));
	ck_assert_msg(json_object_object_get_ex(e, "tags", &tags) &&
			      json_object_is_type(tags, json_type_array),
		      "no tags array: %s", json_object_to_json_string(e));
	for (t = 0; t < NTAGSET; t++) {
		if (!(mask_of[pos] & (1 << t)))
			continue;
		ck_assert_msg(n < json_object_array_length(tags), "position %lld: tags %s",
			      (long long)pos, json_object_to_json_string(tags));
		ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(tags, n)),
				 tagset[t]);
		n++;
	}
	ck_assert_int_eq(json_object_array_length(tags), n);
}

struct corr_expect {
	uint8_t id[16];
	uint64_t positions[256];
	int n;
};

START_TEST(page_find)
{
	uint64_t rng = kit_seed("page_find");
	char *dir = kit_tmpdir("store"), *dsn = pgh_new_db(), err[2048], name[64], target[512];
	static struct corr_expect corr[NCORR];
	evs_options o;
	evs_store *store;
	evsq_server *srv;
	evp_config cfg;
	evp_stats st;
	unsigned port;
	int i, c, k;

	memset(corr, 0, sizeof corr);
	for (c = 0; c < NCORR; c++)
		for (k = 0; k < 16; k++)
			corr[c].id[k] = (uint8_t)kit_rand(&rng);
	evs_options_init(&o);
	ck_assert_int_eq(evs_open(dir, &o, &store), EVS_OK);
	for (i = 0; i < 300; i++) {
		evs_event_in ev;
		evs_append_result res;

		const char *tags[NTAGSET];
		int order[NTAGSET] = {0, 1, 2, 3}, m, t;

		memset(&ev, 0, sizeof ev);
		ev.type = "Touched";
		/* a producer and tags (in a shuffled order) on most events */
		m = (int)(kit_rand(&rng) % (1 << NTAGSET));
		for (t = NTAGSET - 1; t > 0; t--) {
			int u = (int)(kit_rand(&rng) % (uint64_t)(t + 1)), x = order[t];

			order[t] = order[u];
			order[u] = x;
		}
		for (t = 0; t < NTAGSET; t++)
			if (m & (1 << order[t]))
				tags[ev.ntags++] = tagset[order[t]];
		ev.tags = tags;
		k = (int)(kit_rand(&rng) % 3);
		ev.producer = producers[k];
		c = (int)(kit_rand(&rng) % (NCORR + 1)); /* NCORR: no correlation */
		if (c < NCORR)
			memcpy(ev.correlation_id, corr[c].id, 16);
		stream_name((int)(kit_rand(&rng) % NSTREAMS), name, sizeof name);
		ck_assert_int_eq(evs_append(store, name, EVS_ANY, &ev, 1, &res), EVS_OK);
		ck_assert_uint_eq(res.first_position, (uint64_t)i + 1);
		prod_of[i + 1] = k;
		mask_of[i + 1] = m;
		if (c < NCORR && corr[c].n < 256)
			corr[c].positions[corr[c].n++] = res.first_position;
	}
	evs_close(store);
	evp_config_init(&cfg);
	cfg.store_path = dir;
	cfg.dsn = dsn;
	cfg.migrations_dir = pgh_migrations_dir();
	cfg.once = true;
	ck_assert_msg(evp_run(&cfg, &st, err, sizeof err) == EVP_OK, "evp_run: %s", err);

	{
		evsq_config qc;

		ck_assert_int_eq(evsq_config_init(&qc), EVSQ_OK);
		ck_assert_int_eq(evsq_config_set(&qc, "port", "0", err, sizeof err), EVSQ_OK);
		ck_assert_int_eq(evsq_config_set(&qc, "dsn", dsn, err, sizeof err), EVSQ_OK);
		ck_assert_int_eq(evsq_config_set(&qc, "www", "", err, sizeof err), EVSQ_OK);
		ck_assert_msg(evsq_server_start(&qc, NULL, NULL, &srv, err, sizeof err) == EVSQ_OK,
			      "%s", err);
		evsq_config_free(&qc);
	}
	port = evsq_server_port(srv);

	/* each correlation: every event once, in position order, paged */
	for (c = 0; c < NCORR; c++) {
		char id[37];
		long long after = 0;
		int seen = 0;

		uuid_text(corr[c].id, id);
		for (;;) {
			http_answer a;
			json_object *evs, *next;
			int lim = 1 + (int)(kit_rand(&rng) % 7), n, j;

			snprintf(target, sizeof target,
				 "/events?correlation=%s&after=%lld&limit=%d", id, after, lim);
			http_get_ok(port, target, &a);
			ck_assert_int_eq(http_int(&a, "position"), 300);
			ck_assert(json_object_object_get_ex(a.json, "events", &evs));
			n = (int)json_object_array_length(evs);
			ck_assert_int_le(n, lim);
			for (j = 0; j < n; j++) {
				json_object *e = json_object_array_get_idx(evs, (size_t)j), *v;

				ck_assert_int_lt(seen, corr[c].n);
				ck_assert(json_object_object_get_ex(e, "position", &v));
				ck_assert_int_eq(json_object_get_int64(v),
						 (int64_t)corr[c].positions[seen]);
				ck_assert(json_object_object_get_ex(e, "correlation_id", &v));
				ck_assert_str_eq(json_object_get_string(v), id);
				ck_assert(json_object_object_get_ex(e, "stream", &v));
				check_source(e);
				seen++;
			}
			ck_assert(json_object_object_get_ex(a.json, "next_after", &next));
			if (!next) {
				http_answer_free(&a);
				break;
			}
			after = json_object_get_int64(next);
			http_answer_free(&a);
		}
		ck_assert_int_eq(seen, corr[c].n);

		/* the first event of the correlation by its id */
		if (corr[c].n) {
			http_answer a, b;
			json_object *evs, *e, *v;

			snprintf(target, sizeof target, "/events?correlation=%s&limit=1", id);
			http_get_ok(port, target, &a);
			ck_assert(json_object_object_get_ex(a.json, "events", &evs));
			e = json_object_array_get_idx(evs, 0);
			ck_assert(json_object_object_get_ex(e, "event_id", &v));
			snprintf(target, sizeof target, "/events?id=%s", json_object_get_string(v));
			http_get_ok(port, target, &b);
			ck_assert(json_object_object_get_ex(b.json, "events", &evs));
			ck_assert_int_eq(json_object_array_length(evs), 1);
			ck_assert_str_eq(
				json_object_to_json_string(json_object_array_get_idx(evs, 0)),
				json_object_to_json_string(e));
			http_answer_free(&a);
			http_answer_free(&b);
		}
	}
	/* every stream's events (the page's timeline): each with its
	 * producer and tags; all 300 seen once */
	{
		int total = 0;

		for (i = 0; i < NSTREAMS; i++) {
			char *enc = http_escape(stream_name(i, name, sizeof name));
			http_answer a;
			json_object *evs;

			snprintf(target, sizeof target, "/streams/%s/events?limit=1000", enc);
			free(enc);
			http_get(port, target, NULL, &a);
			if (a.status == 404) { /* no event drawn for it */
				http_answer_free(&a);
				continue;
			}
			ck_assert_msg(a.status == 200, "%s: %ld", target, a.status);
			ck_assert(json_object_object_get_ex(a.json, "events", &evs));
			for (k = 0; k < (int)json_object_array_length(evs); k++)
				check_source(json_object_array_get_idx(evs, (size_t)k));
			total += (int)json_object_array_length(evs);
			http_answer_free(&a);
		}
		ck_assert_int_eq(total, 300);
	}
	/* an id nobody has: no events, 200 */
	{
		http_answer a;
		json_object *evs;

		http_get_ok(port, "/events?id=0190f5a2-7c1e-7000-8000-00000000beef", &a);
		ck_assert(json_object_object_get_ex(a.json, "events", &evs));
		ck_assert_int_eq(json_object_array_length(evs), 0);
		http_answer_free(&a);
	}

	/* prefixes: exactly the streams with it, in byte order, paged */
	for (k = 0; k < (int)(sizeof prefixes / sizeof prefixes[0]); k++) {
		char *want[NSTREAMS], *esc = http_escape(prefixes[k]), *after = NULL;
		int nwant = 0, got = 0, j;
		PGconn *pc = pgh_connect(dsn);
		PGresult *r =
			PQexec(pc, "SELECT stream FROM evs.state ORDER BY stream COLLATE \"C\"");

		for (j = 0; j < PQntuples(r); j++)
			if (!strncmp(PQgetvalue(r, j, 0), prefixes[k], strlen(prefixes[k])))
				want[nwant++] = strdup(PQgetvalue(r, j, 0));
		PQclear(r);
		PQfinish(pc);
		for (;;) {
			http_answer a;
			json_object *ss, *next;
			int lim = 1 + (int)(kit_rand(&rng) % 9), n;

			if (after) {
				char *ea = http_escape(after);

				snprintf(target, sizeof target,
					 "/streams?prefix=%s&limit=%d&after=%s", esc, lim, ea);
				free(ea);
			} else {
				snprintf(target, sizeof target, "/streams?prefix=%s&limit=%d", esc,
					 lim);
			}
			http_get_ok(port, target, &a);
			ck_assert(json_object_object_get_ex(a.json, "streams", &ss));
			n = (int)json_object_array_length(ss);
			for (j = 0; j < n; j++) {
				json_object *s, *v;

				s = json_object_array_get_idx(ss, (size_t)j);
				ck_assert(json_object_object_get_ex(s, "stream", &v));
				ck_assert_msg(got < nwant, "prefix \"%s\": more than %d",
					      prefixes[k], nwant);
				ck_assert_str_eq(json_object_get_string(v), want[got]);
				ck_assert(json_object_object_get_ex(s, "version", &v));
				ck_assert_int_ge(json_object_get_int64(v), 1);
				got++;
			}
			ck_assert(json_object_object_get_ex(a.json, "next_after", &next));
			free(after);
			after = next ? strdup(json_object_get_string(next)) : NULL;
			http_answer_free(&a);
			if (!after)
				break;
		}
		ck_assert_msg(got == nwant, "prefix \"%s\": %d of %d", prefixes[k], got, nwant);
		for (j = 0; j < nwant; j++)
			free(want[j]);
		free(esc);
	}

	/* malformed: the same 400 as every endpoint, and these endpoints' own */
	http_expect_error(port, "/events", 400, "bad_request");
	http_expect_error(port, "/events?correlation=nope", 400, "bad_request");
	http_expect_error(port,
			  "/events?correlation=0190f5a2-7c1e-7000-8000-00000000beef"
			  "&id=0190f5a2-7c1e-7000-8000-00000000beef",
			  400, "bad_request");
	http_expect_error(port, "/events?id=0190f5a2-7c1e-7000-8000-00000000beef&limit=2", 400,
			  "bad_request");
	http_expect_error(port, "/events?correlation=0190f5a2-7c1e-7000-8000-00000000beef&limit=0",
			  400, "bad_request");
	http_expect_error(port, "/events?correlation=0190f5a2-7c1e-7000-8000-00000000beef&after=-1",
			  400, "bad_request");
	http_expect_error(port, "/events?correlation=a&correlation=b", 400, "bad_request");
	http_expect_error(port, "/events?corelation=x", 400, "bad_request");
	http_expect_error(port, "/streams?prefix=%FF", 400, "bad_request");
	http_expect_error(port, "/streams?prefix=a%00b", 400, "bad_request");
	http_expect_error(port, "/streams?prefix", 400, "bad_request");
	http_expect_error(port, "/streams?limit=1000000", 400, "bad_request");
	/* empty, repeated, zero bytes, out of range: all refused alike */
	{
		static const char *const bad[] = {
			"/streams?limit=",
			"/streams?limit=0",
			"/streams?limit=-1",
			"/streams?limit=1&limit=1",
			"/streams?limit=1%00",
			"/streams?after=",
			"/streams?after=a&after=a",
			"/streams?after=a%00b",
			"/streams?after=%FF",
			"/streams?prefix=a&limit=99999999999999999999",
			"/streams?nope=1",
			"/events?id=",
			"/events?id=x",
			"/events?id=0190f5a2-7c1e-7000-8000-00000000beef&id="
			"0190f5a2-7c1e-7000-8000-00000000beef",
			"/events?correlation=",
			"/events?correlation=0190f5a2-7c1e-7000-8000-00000000beef&limit=",
			"/events?correlation=0190f5a2-7c1e-7000-8000-00000000beef&after=",
			"/events?correlation=0190f5a2-7c1e-7000-8000-00000000beef&after="
			"99999999999999999999",
			"/events?correlation=0190f5a2-7c1e-7000-8000-00000000beef&limit=1001",
			"/events?correlation=0190f5a2-7c1e-7000-8000-00000000beef&limit=1&limit=1",
			"/events?correlation=0190f5a2-7c1e-7000-8000-00000000beef%00",
		};
		ck_assert_uint_eq(http_count_not_bad_request(port, bad, sizeof bad / sizeof bad[0],
							     "page_find"),
				  0);
	}
	http_expect_error(port, "/streams/", 404, "not_found");

	evsq_server_stop(srv);
	free(dsn);
	free(dir);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {page_assets, page_find, NULL};

	return http_main("http-page", 300, tests);
}
