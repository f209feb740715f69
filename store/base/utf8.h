/*
 * utf8.h: the one UTF-8 validator (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF), shared by the store (names and
 * payload strings), the JSON writer and the query service.
 */
#ifndef EVS_BASE_UTF8_H
#define EVS_BASE_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length (1..4) of the valid UTF-8 sequence at s[0..n), or 0 if there is
 * none (n == 0 included). NUL is a valid one-byte sequence here. */
size_t evs__utf8_seq(const uint8_t *s, size_t n);
/* n bytes of valid UTF-8 without NUL: what the store accepts in names and
 * payload strings, and what PostgreSQL's text accepts. */
bool evs__utf8_text(const uint8_t *p, size_t n);

#endif
