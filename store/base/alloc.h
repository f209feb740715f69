/*
 * alloc.h: the allocation functions of libevstore and the base (internal,
 * evs__ names), and the test-only failure injector behind them.
 *
 * They behave exactly like malloc, calloc, realloc and strdup (memory is
 * released with free()), except that a test can make one chosen
 * allocation fail: evs__alloc_fail_after(n) makes the n-th allocation
 * from now return NULL, once. It is compiled in always and costs one
 * relaxed load per allocation, so the code under test is the code that
 * ships. White-box tests walk n = 1, 2, ... through an operation to prove
 * that every out-of-memory path gives a clean error and leaks nothing.
 * The counter is the process's (one per copy of the base linked in).
 */
#ifndef EVS_BASE_ALLOC_H
#define EVS_BASE_ALLOC_H

#include <stddef.h>

void *evs__malloc(size_t n);
void *evs__calloc(size_t n, size_t size);
void *evs__realloc(void *p, size_t n);
char *evs__strdup(const char *s);

/* Fail the n-th allocation from now (n >= 1), once; 0 cancels. */
void evs__alloc_fail_after(long n);
/* Failures injected since the last call (and reset the count). */
long evs__alloc_failures(void);

#endif
