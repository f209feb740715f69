/*
 * base64.h: RFC 4648 base64 (standard alphabet, '=' padding), for
 * payloads that JSON cannot carry exactly: the evs tool's
 * "data_msgpack" fields and the projector's bin/ext values. The decoder
 * accepts exactly what the encoder writes (padding required, no
 * whitespace, unused trailing bits zero), so the two are inverse and
 * export -> import -> export is byte-identical.
 */
#ifndef EVS_BASE_BASE64_H
#define EVS_BASE_BASE64_H

#include <stddef.h>

#include "buf.h"

/* Append the base64 text of p[0..n) to b (no quotes). */
void evs__base64_encode(evs__buf *b, const void *p, size_t n);
/* Append the bytes of the base64 text s[0..n) to out; -1 (out as it
 * was) on text that the encoder would not have written. */
int evs__base64_decode(evs__buf *out, const char *s, size_t n);

#endif
