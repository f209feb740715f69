/* push_client.c - see push_client.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "push_client.h"

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int pc_open(pc *c, unsigned port, const char *target, const char *extra, bool ndjson, int rcvbuf)
{
	struct sockaddr_in sa = {0};
	char req[4096];
	size_t n, done = 0;

	memset(c, 0, sizeof *c);
	c->ndjson = ndjson;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -1;
	if (rcvbuf > 0)
		setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	n = (size_t)snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n%s%s\r\n",
			     target, ndjson ? "Accept: application/x-ndjson\r\n" : "",
			     extra ? extra : "");
	while (done < n) {
		ssize_t w = write(c->fd, req + done, n - done);

		if (w <= 0) {
			close(c->fd);
			c->fd = -1;
			return -1;
		}
		done += (size_t)w;
	}
	fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
	return 0;
}

int pc_fill(pc *c)
{
	ssize_t r;

	if (c->eof)
		return -1;
	if (c->off > 0) { /* keep the unparsed tail only */
		memmove(c->buf, c->buf + c->off, c->len - c->off);
		c->len -= c->off;
		c->off = 0;
	}
	if (c->cap - c->len < 65536) {
		c->cap = c->cap ? c->cap * 2 : 262144;
		c->buf = realloc(c->buf, c->cap + 1);
		if (!c->buf)
			abort();
	}
	r = read(c->fd, c->buf + c->len, c->cap - c->len);
	if (r > 0) {
		c->len += (size_t)r;
		return 1;
	}
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 0;
	c->eof = true;
	return -1;
}

static bool headers(pc *c)
{
	char *end;

	if (c->hdr_done)
		return true;
	c->buf[c->len] = '\0';
	end = strstr(c->buf + c->off, "\r\n\r\n");
	if (!end)
		return false;
	c->hdr = strndup(c->buf + c->off, (size_t)(end - (c->buf + c->off)) + 2);
	c->status = atoi(c->hdr + 9);
	c->off = (size_t)(end + 4 - c->buf);
	c->hdr_done = true;
	return true;
}

bool pc_header(const pc *c, const char *name, char *out, size_t n)
{
	size_t k = strlen(name);

	for (const char *p = c->hdr ? strstr(c->hdr, "\r\n") : NULL; p; p = strstr(p + 2, "\r\n")) {
		const char *line = p + 2, *eol = strstr(line, "\r\n");

		if (eol && !strncasecmp(line, name, k) && line[k] == ':') {
			const char *v = line + k + 1;

			while (*v == ' ')
				v++;
			snprintf(out, n, "%.*s", (int)(eol - v), v);
			return true;
		}
	}
	return false;
}

static uint64_t num_after(const char *p, const char *end, const char *key)
{
	size_t k = strlen(key);

	for (; p + k < end; p++)
		if (!memcmp(p, key, k))
			return strtoull(p + k + (p[k] == '"'), NULL, 10);
	return UINT64_MAX;
}

static void control(pc_frame *f, const char *d, const char *end)
{
	f->id = num_after(d, end, "\"after\":");
	f->from = NULL;
	for (const char *p = d; p + 8 < end; p++)
		if (!memcmp(p, "\"from\":\"", 8)) {
			f->from = p + 8;
			break;
		}
}

static int next_ndjson(pc *c, pc_frame *f)
{
	char *line = c->buf + c->off, *nl = memchr(line, '\n', c->len - c->off);

	if (!nl)
		return 0;
	c->off = (size_t)(nl + 1 - c->buf);
	f->data = line;
	f->len = (size_t)(nl - line);
	if (!strncmp(line, "{\"control\":\"heartbeat\"", 22)) {
		f->kind = PC_HEARTBEAT;
	} else if (!strncmp(line, "{\"control\":\"resume\"", 19)) {
		f->kind = PC_RESUME;
		control(f, line, nl);
	} else if (!strncmp(line, "{\"control\":\"cut\"", 16)) {
		f->kind = PC_CUT;
		control(f, line, nl);
	} else {
		f->kind = PC_EVENT;
		f->id = num_after(line, nl, "\"position\":\"");
	}
	return 1;
}

static int next_sse(pc *c, pc_frame *f)
{
	char *start = c->buf + c->off, *end;
	const char *event = NULL;
	bool has_id = false;

	c->buf[c->len] = '\0';
	end = strstr(start, "\n\n");
	if (!end)
		return 0;
	c->off = (size_t)(end + 2 - c->buf);
	f->kind = PC_HEARTBEAT;
	f->data = NULL;
	f->len = 0;
	for (char *line = start; line < end;) {
		char *eol = memchr(line, '\n', (size_t)(end - line));

		if (!eol)
			eol = end;
		if (!strncmp(line, "id: ", 4)) {
			f->id = strtoull(line + 4, NULL, 10);
			has_id = true;
		} else if (!strncmp(line, "event: ", 7)) {
			event = line + 7;
		} else if (!strncmp(line, "data: ", 6)) {
			f->data = line + 6;
			f->len = (size_t)(eol - (line + 6));
		}
		line = eol + 1;
	}
	if (event && !strncmp(event, "resume\n", 7)) {
		f->kind = PC_RESUME;
		control(f, f->data, f->data + f->len);
	} else if (event && !strncmp(event, "cut\n", 4)) {
		f->kind = PC_CUT;
		control(f, f->data, f->data + f->len);
	} else if (has_id && f->data) {
		f->kind = PC_EVENT;
	}
	return 1;
}

int pc_next(pc *c, pc_frame *f)
{
	if (!c->buf || !headers(c))
		return 0;
	return c->ndjson ? next_ndjson(c, f) : next_sse(c, f);
}

int pc_wait_headers(pc *c, int timeout_ms)
{
	int64_t deadline = mono_ms() + timeout_ms;

	for (;;) {
		struct pollfd p = {c->fd, POLLIN, 0};
		int64_t left;

		if (c->buf && headers(c))
			return c->status;
		if (pc_fill(c) < 0)
			return c->buf && headers(c) ? c->status : -1;
		if (c->buf && headers(c))
			return c->status;
		left = deadline - mono_ms();
		if (left <= 0)
			return 0;
		poll(&p, 1, (int)left);
	}
}

int pc_wait(pc *c, pc_frame *f, int timeout_ms)
{
	int64_t deadline = mono_ms() + timeout_ms;

	for (;;) {
		struct pollfd p = {c->fd, POLLIN, 0};
		int64_t left;

		if (pc_next(c, f))
			return 1;
		if (pc_fill(c) < 0)
			return pc_next(c, f) ? 1 : -1;
		if (pc_next(c, f))
			return 1;
		left = deadline - mono_ms();
		if (left <= 0)
			return 0;
		poll(&p, 1, (int)left);
	}
}

void pc_close(pc *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	free(c->hdr);
	memset(c, 0, sizeof *c);
	c->fd = -1;
}
