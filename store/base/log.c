/*
 * log.c: the stderr sink (see log.h for the two line formats).
 *
 * The settings are process-wide (one program, one stderr) and written
 * once at start-up, before any thread logs; after that the sink only
 * reads them. Each line is built in a buffer of its own and written in
 * one write(2): stderr's stdio lock would not keep two processes' lines
 * apart, and a pipe write of up to PIPE_BUF bytes is atomic.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"

static const char *const level_names[] = {"error", "warning", "info", "debug"};

static struct {
	const char *program;
	int max_level;
	int format;
} sink = {"evs", 2, EVS__LOG_TEXT};

const char *evs__log_level_name(int level)
{
	return level >= 0 && level <= 3 ? level_names[level] : NULL;
}

void evs__log_setup(const char *program, int max_level, int format)
{
	sink.program = program;
	sink.max_level = max_level;
	sink.format = format;
}

bool evs__log_enabled(int level)
{
	return level <= sink.max_level;
}

/* Length of the UTF-8 sequence at s (at most n bytes), 0 if malformed. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len, i;
	unsigned cp;

	if (s[0] < 0xc2 || s[0] > 0xf4)
		return 0;
	len = s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : 4;
	if (n < len)
		return 0;
	cp = s[0] & (0x7f >> len);
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

/* The message with line breaks (and the indentation after them) joined
 * by one space; JSON-escaped when json. */
static void put_message(evs__buf *b, const char *message, bool json)
{
	const unsigned char *s = (const unsigned char *)message;
	size_t n = strlen(message), i = 0;

	while (i < n) {
		unsigned char c = s[i];
		size_t len;

		if (c == '\n' || c == '\r') {
			while (i < n &&
			       (s[i] == '\n' || s[i] == '\r' || s[i] == '\t' || s[i] == ' '))
				i++;
			if (i < n)
				evs__buf_putc(b, ' ');
			continue;
		}
		if (!json) {
			evs__buf_putc(b, (char)c);
			i++;
		} else if (c == '"' || c == '\\') {
			evs__buf_putc(b, '\\');
			evs__buf_putc(b, (char)c);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			evs__buf_printf(b, "\\u%04x", c);
			i++;
		} else if (c < 0x80) {
			evs__buf_putc(b, (char)c);
			i++;
		} else if ((len = utf8_len(s + i, n - i)) > 0) {
			evs__buf_putn(b, s + i, len);
			i += len;
		} else {
			evs__buf_puts(b, "\\ufffd");
			i++;
		}
	}
}

void evs__log(void *ctx, int level, const char *message)
{
	char when[40];
	struct timespec ts;
	struct tm tm;
	evs__buf b = {0};
	const char *name = evs__log_level_name(level);
	size_t off;
	ssize_t w;

	(void)ctx;
	if (level > sink.max_level)
		return;
	if (!name)
		name = level < 0 ? "error" : "debug";
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	off = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + off, sizeof when - off, ".%03ldZ", ts.tv_nsec / 1000000);
	if (sink.format == EVS__LOG_JSON) {
		evs__buf_printf(&b, "{\"time\":\"%s\",\"level\":\"%s\",\"program\":\"", when, name);
		put_message(&b, sink.program, true);
		evs__buf_puts(&b, "\",\"message\":\"");
		put_message(&b, message ? message : "", true);
		evs__buf_puts(&b, "\"}\n");
	} else {
		evs__buf_printf(&b, "%s %s %s: ", when, sink.program, name);
		put_message(&b, message ? message : "", false);
		evs__buf_putc(&b, '\n');
	}
	if (b.oom) {
		/* no memory for the line: say so rather than nothing */
		static const char msg[] = "log: out of memory for a log line\n";

		w = write(STDERR_FILENO, msg, sizeof msg - 1);
	} else {
		for (off = 0; off < b.len; off += (size_t)w) {
			w = write(STDERR_FILENO, b.ptr + off, b.len - off);
			if (w < 0 && errno == EINTR)
				w = 0;
			else if (w <= 0)
				break;
		}
	}
	(void)w;
	evs__buf_free(&b);
}

void evs__logf(int level, const char *fmt, ...)
{
	evs__buf b = {0};
	va_list ap;
	int n;

	if (level > sink.max_level)
		return;
	/* measure, then format: log lines are not a hot path */
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n >= 0 && evs__buf_reserve(&b, (size_t)n) == 0) {
		va_start(ap, fmt);
		vsnprintf(b.ptr, (size_t)n + 1, fmt, ap);
		va_end(ap);
		evs__log(NULL, level, b.ptr);
	}
	evs__buf_free(&b);
}
