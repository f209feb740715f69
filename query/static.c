/*
 * static.c - the auditor's page (query/www/): its files, read once at
 * start into memory, and served at "/" (index.html) and "/assets/NAME".
 *
 * Why read at start: a request is then a lookup of its name among the
 * files that were there, never a path handed to the file system, so no
 * request can reach outside the folder ("..", "%2F", symlinks, NUL: none
 * names a loaded file), and the event loop never blocks on a disk. Only
 * regular files directly in the folder whose names are [A-Za-z0-9._-]
 * and do not start with '.' are taken (a symlink is skipped: O_NOFOLLOW);
 * at most MAX_FILES files, each at most MAX_FILE bytes, MAX_TOTAL in all;
 * a folder beyond that stops the service at start with the file named.
 * Changing the page means restarting the service (a deploy does anyway).
 *
 * Answers: the file with its Content-Type from its extension (a name
 * with another extension is application/octet-stream), an ETag (FNV-1a
 * 64 of the bytes), Cache-Control: no-cache (the names carry no version,
 * so a browser revalidates each time: a 304 without the body when
 * If-None-Match names the ETag), X-Content-Type-Options: nosniff and a
 * Content-Security-Policy that lets the page load only its own scripts
 * and styles, talk only to this service and never be framed. The page
 * and its files need no token (they hold no data; every answer with data
 * still asks for it). An empty --www serves no page (404, as before).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server.h"

#define MAX_FILES 64
#define MAX_FILE  (2u << 20)
#define MAX_TOTAL (8u << 20)
#define MAX_NAME  64

struct asset {
	char name[MAX_NAME + 1];
	const char *ctype;
	char etag[20]; /* "16 hex digits" */
	char *bytes;
	size_t len;
};

struct evsq__www {
	struct asset files[MAX_FILES];
	int n;
};

static const struct {
	const char *ext, *ctype;
} types[] = {
	{".html", "text/html; charset=utf-8"},
	{".js", "text/javascript; charset=utf-8"},
	{".mjs", "text/javascript; charset=utf-8"},
	{".css", "text/css; charset=utf-8"},
	{".json", "application/json"},
	{".svg", "image/svg+xml"},
	{".png", "image/png"},
	{".ico", "image/x-icon"},
	{".txt", "text/plain; charset=utf-8"},
	{".woff2", "font/woff2"},
};

const char *evsq__www_ctype(const char *name)
{
	size_t n = strlen(name), i, k;

	for (i = 0; i < sizeof types / sizeof types[0]; i++) {
		k = strlen(types[i].ext);
		if (n > k && !strcmp(name + n - k, types[i].ext))
			return types[i].ctype;
	}
	return "application/octet-stream";
}

bool evsq__www_name_ok(const char *name)
{
	size_t i, n = strlen(name);

	if (!n || n > MAX_NAME || name[0] == '.')
		return false;
	for (i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static uint64_t fnv1a(const char *p, size_t n)
{
	uint64_t h = 14695981039346656037ull;

	while (n--) {
		h ^= (unsigned char)*p++;
		h *= 1099511628211ull;
	}
	return h;
}

void evsq__www_free(evsq__www *w)
{
	int i;

	if (!w)
		return;
	for (i = 0; i < w->n; i++)
		free(w->files[i].bytes);
	free(w);
}

/* Read one file (opened without following a symlink) whole. */
static int load_file(int dfd, struct asset *a, size_t *total, char *err, size_t errlen,
		     const char *dir)
{
	struct stat st;
	size_t got = 0;
	ssize_t k;
	int fd = openat(dfd, a->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0) {
		if (errno == ELOOP)
			return 1; /* a symlink: not served */
		snprintf(err, errlen, "could not open \"%s/%s\": %s", dir, a->name,
			 strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return 1; /* not a regular file: not served */
	}
	if ((size_t)st.st_size > MAX_FILE || *total + (size_t)st.st_size > MAX_TOTAL) {
		snprintf(err, errlen,
			 "page file \"%s/%s\" is too large: at most %u bytes a file, %u in all",
			 dir, a->name, MAX_FILE, MAX_TOTAL);
		close(fd);
		return -1;
	}
	a->len = (size_t)st.st_size;
	a->bytes = malloc(a->len ? a->len : 1);
	if (!a->bytes) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	while (got < a->len && (k = read(fd, a->bytes + got, a->len - got)) > 0)
		got += (size_t)k;
	close(fd);
	if (got != a->len) {
		snprintf(err, errlen, "could not read \"%s/%s\": %s", dir, a->name,
			 got < a->len ? "file changed while read" : strerror(errno));
		return -1;
	}
	*total += a->len;
	a->ctype = evsq__www_ctype(a->name);
	snprintf(a->etag, sizeof a->etag, "\"%016llx\"",
		 (unsigned long long)fnv1a(a->bytes, a->len));
	return 0;
}

int evsq__www_load(const char *dir, evsq__www **out, char *err, size_t errlen)
{
	evsq__www *w;
	DIR *d;
	struct dirent *e;
	size_t total = 0;
	int rc;

	*out = NULL;
	if (!dir || !dir[0])
		return EVSQ_OK;
	if (!(w = calloc(1, sizeof *w))) {
		snprintf(err, errlen, "out of memory");
		return EVSQ_NOMEM;
	}
	if (!(d = opendir(dir))) {
		snprintf(err, errlen, "could not open page folder \"%s\": %s", dir,
			 strerror(errno));
		free(w);
		return EVSQ_INVALID;
	}
	while ((e = readdir(d))) {
		struct asset *a;

		if (!evsq__www_name_ok(e->d_name))
			continue;
		if (w->n == MAX_FILES) {
			snprintf(err, errlen, "page folder \"%s\" has more than %d files", dir,
				 MAX_FILES);
			goto fail;
		}
		a = &w->files[w->n];
		snprintf(a->name, sizeof a->name, "%.64s", e->d_name); /* name_ok: <= 64 */
		rc = load_file(dirfd(d), a, &total, err, errlen, dir);
		if (rc < 0)
			goto fail;
		if (rc == 0)
			w->n++;
	}
	closedir(d);
	*out = w;
	return EVSQ_OK;
fail:
	closedir(d);
	evsq__www_free(w);
	return EVSQ_INVALID;
}

/* The file a path after "/assets/" names. */
static const struct asset *find(const evsq__www *w, const char *name)
{
	int i;

	if (!w)
		return NULL;
	for (i = 0; i < w->n; i++)
		if (!strcmp(w->files[i].name, name))
			return &w->files[i];
	return NULL;
}

/* Whether If-None-Match names etag ("*", or a list with it, weak or not). */
static bool etag_matches(const char *inm, const char *etag)
{
	return inm && (!strcmp(inm, "*") || strstr(inm, etag));
}

static unsigned serve(evsq_server *srv, struct MHD_Connection *conn, const struct asset *a,
		      evs__buf *body, const char **ctype)
{
	body->len = 0;
	if (!a) {
		evsq__error(body, "not_found",
			    srv->www ? "no such page file"
				     : "the page is not served here: start evs-query with --www");
		return 404;
	}
	*ctype = a->ctype;
	if (etag_matches(MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_IF_NONE_MATCH),
			 a->etag))
		return 304;
	evs__buf_putn(body, a->bytes, a->len);
	return 200;
}

unsigned evsq__www_index(evsq_server *srv, struct MHD_Connection *conn, const char *rest,
			 evs__buf *body, const char **ctype)
{
	(void)rest;
	return serve(srv, conn, find(srv->www, "index.html"), body, ctype);
}

unsigned evsq__www_serve(evsq_server *srv, struct MHD_Connection *conn, const char *rest,
			 evs__buf *body, const char **ctype)
{
	return serve(srv, conn, find(srv->www, rest), body, ctype);
}

void evsq__www_headers(evsq_server *srv, const struct evsq__route *route, const char *rest,
		       unsigned status, struct MHD_Response *resp)
{
	const struct asset *a;

	if (!route || (route->handler != evsq__www_serve && route->handler != evsq__www_index))
		return;
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	if (status != 200 && status != 304)
		return;
	a = find(srv->www, route->handler == evsq__www_index ? "index.html" : rest);
	if (!a)
		return;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, a->etag);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	MHD_add_response_header(resp, "Content-Security-Policy",
				"default-src 'none'; script-src 'self'; style-src 'self'; "
				"img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
				"form-action 'self'; frame-ancestors 'none'");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
}
