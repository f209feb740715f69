/*
 * kit_http.c - the test kit's HTTP fixture (see kit_http.h).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <curl/curl.h>

#include "kit_http.h"
#include "evsproj.h"

static size_t on_data(char *p, size_t size, size_t n, void *ctx)
{
	evs__buf_putn(ctx, p, size * n);
	return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *ctx)
{
	http_answer *a = ctx;
	size_t len = size * n;

	if (len > 13 && !strncasecmp(p, "Retry-After:", 12)) {
		size_t i = 12, j = 0;

		while (i < len && p[i] == ' ')
			i++;
		while (i < len && p[i] != '\r' && p[i] != '\n' && j + 1 < sizeof a->retry_after)
			a->retry_after[j++] = p[i++];
		a->retry_after[j] = '\0';
	}
	return len;
}

static void perform(unsigned port, const char *method, const char *target, const char *body,
		    const char *token, http_answer *a)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	evs__buf b = {0};
	char url[8192], auth[512];
	CURLcode rc;

	memset(a, 0, sizeof *a);
	ck_assert_ptr_nonnull(c);
	snprintf(url, sizeof url, "http://127.0.0.1:%u%s", port, target);
	if (token) {
		snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
		h = curl_slist_append(h, auth);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, a);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (body)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	rc = curl_easy_perform(c);
	ck_assert_msg(rc == CURLE_OK, "%s %s: %s", method, target, curl_easy_strerror(rc));
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a->status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	evs__buf_cstr(&b);
	a->body = b.ptr ? b.ptr : strdup("");
	a->json = json_tokener_parse(a->body);
}

void http_request(unsigned port, const char *method, const char *target, const char *body,
		  http_answer *a)
{
	perform(port, method, target, body, NULL, a);
}

void http_get(unsigned port, const char *target, const char *token, http_answer *a)
{
	perform(port, "GET", target, NULL, token, a);
}

void http_get_ok(unsigned port, const char *target, http_answer *a)
{
	http_get(port, target, NULL, a);
	ck_assert_msg(a->status == 200, "%s: %ld %s", target, a->status, a->body);
	ck_assert_ptr_nonnull(a->json);
}

void http_expect_error(unsigned port, const char *target, long status, const char *code)
{
	http_answer a;

	http_get(port, target, NULL, &a);
	ck_assert_msg(a.status == status, "%s: %ld %s (want %ld)", target, a.status, a.body,
		      status);
	ck_assert_str_eq(http_str(&a, "error"), code);
	ck_assert_str_ne(http_str(&a, "message"), "");
	http_answer_free(&a);
}

size_t http_count_not_bad_request(unsigned port, const char *const *targets, size_t n,
				  const char *who)
{
	size_t wrong = 0;

	for (size_t i = 0; i < n; i++) {
		http_answer a;

		http_get(port, targets[i], NULL, &a);
		if (a.status != 400 || !a.json || !strstr(a.body, "\"bad_request\"")) {
			fprintf(stderr, "%s: %s: %ld %s (want 400)\n", who, targets[i], a.status,
				a.body);
			wrong++;
		}
		http_answer_free(&a);
	}
	return wrong;
}

void http_answer_free(http_answer *a)
{
	free(a->body);
	if (a->json)
		json_object_put(a->json);
	memset(a, 0, sizeof *a);
}

char *http_escape(const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0), *r;

	ck_assert_ptr_nonnull(e);
	r = strdup(e);
	curl_free(e);
	return r;
}

int http_raw(unsigned port, const void *req, size_t len)
{
	struct sockaddr_in sa = {0};
	struct timeval tv = {10, 0};
	char buf[64];
	ssize_t n;
	size_t got = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0), status = 0;

	ck_assert_int_ge(fd, 0);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		close(fd);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	(void)!send(fd, req, len, MSG_NOSIGNAL);
	shutdown(fd, SHUT_WR);
	while (got < sizeof buf - 1 && (n = recv(fd, buf + got, sizeof buf - 1 - got, 0)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	if (got >= 12 && !strncmp(buf, "HTTP/1.", 7))
		status = atoi(buf + 9);
	close(fd);
	return status;
}

long long http_int(const http_answer *a, const char *key)
{
	json_object *v;

	ck_assert_msg(a->json && json_object_object_get_ex(a->json, key, &v), "no \"%s\" in %s",
		      key, a->body);
	return json_object_get_int64(v);
}

const char *http_str(const http_answer *a, const char *key)
{
	json_object *v;

	ck_assert_msg(a->json && json_object_object_get_ex(a->json, key, &v), "no \"%s\" in %s",
		      key, a->body);
	return json_object_get_string(v);
}

evsq_server *http_server(const char *dsn, const char *const *settings)
{
	evsq_config cfg;
	evsq_server *srv = NULL;
	char err[1024];
	int i;

	ck_assert_int_eq(evsq_config_init(&cfg), EVSQ_OK);
	ck_assert_int_eq(evsq_config_set(&cfg, "port", "0", err, sizeof err), EVSQ_OK);
	ck_assert_int_eq(evsq_config_set(&cfg, "dsn", dsn, err, sizeof err), EVSQ_OK);
	for (i = 0; settings && settings[i]; i++) {
		char name[64];
		const char *eq = strchr(settings[i], '=');

		snprintf(name, sizeof name, "%.*s", (int)(eq - settings[i]), settings[i]);
		ck_assert_msg(evsq_config_set(&cfg, name, eq + 1, err, sizeof err) == EVSQ_OK, "%s",
			      err);
	}
	ck_assert_msg(evsq_server_start(&cfg, NULL, NULL, &srv, err, sizeof err) == EVSQ_OK, "%s",
		      err);
	evsq_config_free(&cfg);
	ck_assert_uint_gt(evsq_server_port(srv), 0);
	return srv;
}

/* A free port: bind 0 with SO_REUSEADDR and read it. The socket (*fd)
 * stays bound, never listening, until the server answers on the port:
 * evs-query's listener (libmicrohttpd sets SO_REUSEADDR) may bind beside
 * it, while no other bind(0) or outgoing connection of a test running in
 * parallel can be given the port in between. */
static unsigned free_port(int *fd)
{
	struct sockaddr_in sa = {0};
	socklen_t len = sizeof sa;
	int one = 1;

	*fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(*fd, 0);
	ck_assert_int_eq(setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), 0);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(*fd, (struct sockaddr *)&sa, sizeof sa), 0);
	ck_assert_int_eq(getsockname(*fd, (struct sockaddr *)&sa, &len), 0);
	return ntohs(sa.sin_port);
}

pid_t http_query_spawn(const char *const *args, unsigned *port)
{
	static const char health[] = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
	char *argv[32], port_s[16];
	int64_t deadline;
	size_t n = 0;
	pid_t pid;
	int hold;

	*port = free_port(&hold);
	snprintf(port_s, sizeof port_s, "%u", *port);
	argv[n++] = EVS_QUERY_BIN;
	argv[n++] = "--port";
	argv[n++] = port_s;
	for (size_t i = 0; args && args[i]; i++) {
		ck_assert_uint_lt(n, sizeof argv / sizeof argv[0] - 1);
		argv[n++] = (char *)args[i];
	}
	argv[n] = NULL;
	pid = kit_spawn(argv);
	/* readiness: a connect loop with a generous bound, never a sleep alone */
	deadline = kit_mono_ms() + 30000;
	while (http_raw(*port, health, sizeof health - 1) != 200) {
		struct timespec ts = {0, 10 * 1000000L};

		ck_assert_msg(kit_mono_ms() < deadline, "evs-query did not answer /health");
		nanosleep(&ts, NULL);
	}
	close(hold);
	return pid;
}

void http_query_start(http_query_fixture *f, const char *name, char sep, bool with_store,
		      const char *const *extra)
{
	const char *args[28];
	size_t n = 0;
	evs_options o;

	f->dir = kit_tmpdir(name);
	f->dsn = pgh_new_db();
	evs_options_init(&o);
	o.sync = EVS_SYNC_NONE;
	o.category_separator = sep;
	ck_assert_int_eq(evs_open(f->dir, &o, &f->store), EVS_OK);
	args[n++] = "--dsn";
	args[n++] = f->dsn;
	if (with_store) {
		args[n++] = "--store";
		args[n++] = f->dir;
	}
	for (size_t i = 0; extra && extra[i]; i++) {
		ck_assert_uint_lt(n, sizeof args / sizeof args[0] - 1);
		args[n++] = extra[i];
	}
	args[n] = NULL;
	f->query = http_query_spawn(args, &f->port);
}

void http_query_stop(http_query_fixture *f)
{
	kill(f->query, SIGTERM);
	kit_wait_child(f->query, 30000, 1);
	evs_close(f->store);
	if (!kit_keep())
		kit_rmrf(f->dir);
	free(f->dir);
	free(f->dsn);
}

int http_main(const char *name, int timeout_s, const TTest *const *tests)
{
	int rc;

	curl_global_init(CURL_GLOBAL_ALL);
	rc = pgh_main(name, timeout_s, tests);
	curl_global_cleanup();
	return rc;
}
