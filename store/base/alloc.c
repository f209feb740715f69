/*
 * alloc.c: allocation with a test-only failure injector (see alloc.h).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

static long countdown; /* 0: never fail; n: the n-th allocation fails */
static long injected;

/* Should this allocation fail? One relaxed load when nothing is armed. */
static bool inject(void)
{
	long left = __atomic_load_n(&countdown, __ATOMIC_RELAXED);

	while (left > 0) {
		if (__atomic_compare_exchange_n(&countdown, &left, left - 1, false,
						__ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
			if (left != 1)
				return false;
			__atomic_add_fetch(&injected, 1, __ATOMIC_RELAXED);
			return true;
		}
	}
	return false;
}

void *evs__malloc(size_t n)
{
	return inject() ? NULL : malloc(n);
}

void *evs__calloc(size_t n, size_t size)
{
	return inject() ? NULL : calloc(n, size);
}

void *evs__realloc(void *p, size_t n)
{
	return inject() ? NULL : realloc(p, n);
}

char *evs__strdup(const char *s)
{
	return inject() ? NULL : strdup(s);
}

void evs__alloc_fail_after(long n)
{
	__atomic_store_n(&countdown, n > 0 ? n : 0, __ATOMIC_RELAXED);
}

long evs__alloc_failures(void)
{
	return __atomic_exchange_n(&injected, 0, __ATOMIC_RELAXED);
}
