/*
 * schema_tu.h - helpers of the schema tests: JSON text to msgpack (so that
 * payloads in tests read as JSON), and msgpack back to JSON text for
 * comparisons.
 */
#ifndef EVS_SCHEMA_TU_H
#define EVS_SCHEMA_TU_H

#include <stddef.h>

#include <msgpack.h>

/* Pack JSON text as msgpack into sb (initialised here); aborts the test
 * on bad JSON. Integers become ints, other numbers float64. */
void stu_pack(msgpack_sbuffer *sb, const char *json);
/* JSON text of a msgpack value (malloc'ed), keys in stored order. */
char *stu_text(const void *data, size_t len);

#endif
