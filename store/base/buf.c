/* buf.c: the bounded growable buffer (buf.h). */
#include "buf.h"

#include "alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int evs__buf_reserve(evs__buf *b, size_t more)
{
	size_t limit = b->limit ? b->limit : EVS__BUF_DEFAULT_LIMIT;
	size_t need, cap;
	char *p;

	if (b->oom)
		return -1;
	if (more > limit || b->len > limit - more)
		goto fail;
	need = b->len + more + 1; /* room for a terminating NUL */
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	p = evs__realloc(b->ptr, cap);
	if (!p)
		goto fail;
	b->ptr = p;
	b->cap = cap;
	return 0;
fail:
	b->oom = true;
	return -1;
}

void evs__buf_free(evs__buf *b)
{
	if (!b)
		return;
	free(b->ptr);
	b->ptr = NULL;
	b->len = b->cap = 0;
	b->oom = false;
}

void evs__buf_reset(evs__buf *b)
{
	b->len = 0;
	b->oom = false;
}

void evs__buf_putn(evs__buf *b, const void *p, size_t n)
{
	if (n == 0 || evs__buf_reserve(b, n) != 0)
		return;
	memcpy(b->ptr + b->len, p, n);
	b->len += n;
}

void evs__buf_puts(evs__buf *b, const char *s)
{
	evs__buf_putn(b, s, strlen(s));
}

void evs__buf_putc(evs__buf *b, char c)
{
	if (evs__buf_reserve(b, 1) != 0)
		return;
	b->ptr[b->len++] = c;
}

void evs__buf_printf(evs__buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->oom = true;
		return;
	}
	if (evs__buf_reserve(b, (size_t)n) != 0)
		return;
	va_start(ap, fmt);
	vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

bool evs__buf_cstr(evs__buf *b)
{
	if (evs__buf_reserve(b, 0) != 0)
		return false;
	b->ptr[b->len] = '\0';
	return true;
}
