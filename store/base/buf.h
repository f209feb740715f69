/*
 * buf.h: the one bounded growable byte buffer, shared by libevstore, the
 * projector, the query service and the evs tool (internal, evs__ names).
 *
 * A zeroed evs__buf is an empty buffer with the default limit. Appends
 * never fail loudly: once an append would pass the limit or cannot get
 * memory, the buffer is marked (oom) and every later append is ignored,
 * so a caller builds a whole text and checks once (curl's dynbuf idea).
 * The owner frees ptr with evs__buf_free(); evs__buf_reset() keeps the
 * memory for the next use (per-batch and per-request reuse).
 */
#ifndef EVS_BASE_BUF_H
#define EVS_BASE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Default bound of a buffer whose limit is 0: 2 GiB. */
#define EVS__BUF_DEFAULT_LIMIT ((size_t)1 << 31)

typedef struct evs__buf {
	char *ptr;
	size_t len, cap;
	size_t limit; /* most bytes it may hold; 0: EVS__BUF_DEFAULT_LIMIT */
	bool oom;     /* an append failed (memory or limit); sticky until reset */
} evs__buf;

/* Room for `more` bytes (plus a NUL) past len; 0, or -1 and oom set. */
int evs__buf_reserve(evs__buf *b, size_t more);
void evs__buf_free(evs__buf *b);
/* Empty it (len 0, oom cleared) and keep the memory. */
void evs__buf_reset(evs__buf *b);

void evs__buf_putn(evs__buf *b, const void *p, size_t n);
void evs__buf_puts(evs__buf *b, const char *s);
void evs__buf_putc(evs__buf *b, char c);
void evs__buf_printf(evs__buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* NUL-terminate (not counted in len); false if out of memory. */
bool evs__buf_cstr(evs__buf *b);

#endif
