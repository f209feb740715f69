/*
 * client.c - see client.h.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <check.h>
#include <curl/curl.h>

#include "client.h"
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

void http_request(unsigned port, const char *method, const char *target, const char *body,
		  http_answer *a)
{
	CURL *c = curl_easy_init();
	evs__buf b = {0};
	char url[8192];
	CURLcode rc;

	memset(a, 0, sizeof *a);
	ck_assert_ptr_nonnull(c);
	snprintf(url, sizeof url, "http://127.0.0.1:%u%s", port, target);
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
	ck_assert_msg(rc == CURLE_OK, "GET %s: %s", target, curl_easy_strerror(rc));
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a->status);
	curl_easy_cleanup(c);
	evs__buf_cstr(&b);
	a->body = b.ptr ? b.ptr : strdup("");
	a->json = json_tokener_parse(a->body);
}

void http_get(unsigned port, const char *target, const char *token, http_answer *a)
{
	if (!token) {
		http_request(port, "GET", target, NULL, a);
		return;
	}
	{
		CURL *c = curl_easy_init();
		struct curl_slist *h = NULL;
		evs__buf b = {0};
		char url[8192], auth[512];
		CURLcode rc;

		memset(a, 0, sizeof *a);
		snprintf(url, sizeof url, "http://127.0.0.1:%u%s", port, target);
		snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
		h = curl_slist_append(h, auth);
		curl_easy_setopt(c, CURLOPT_URL, url);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
		curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
		rc = curl_easy_perform(c);
		ck_assert_msg(rc == CURLE_OK, "GET %s: %s", target, curl_easy_strerror(rc));
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a->status);
		curl_slist_free_all(h);
		curl_easy_cleanup(c);
		evs__buf_cstr(&b);
		a->body = b.ptr ? b.ptr : strdup("");
		a->json = json_tokener_parse(a->body);
	}
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
