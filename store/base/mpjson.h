/*
 * mpjson.h: JSON text <-> msgpack, one mapping and one number policy for the
 * store's tool (evs read/export), the projector (jsonb for PostgreSQL, and
 * stored state read back from it) and the query service.
 *
 * Numbers (the policy; json_out.c writes it, json_in.c reads it):
 *
 *   - msgpack integers are written as integers (decimal, int64/uint64).
 *   - a double is written as the shortest text that strtod reads back as
 *     the same double (%.15g, %.16g or %.17g), always recognisable as a
 *     double: it carries '.' or 'e'. An integral double with |x| < 2^64 is
 *     written with all its digits and ".0" (1e19 -> 10000000000000000000.0)
 *     because PostgreSQL's jsonb keeps numbers as numeric and prints 1e19
 *     as 10000000000000000000, which would read back as an integer.
 *   - reading, the kind comes from the text: a token without '.', 'e' or
 *     'E' that fits int64 or uint64 is an integer; anything else is a
 *     double (strtod). A PostgreSQL expansion of an integral double (1e300
 *     -> 301 digits) does not fit 64 bits, so it is a double again.
 *
 *   So a number never changes kind or value on a round trip through
 *   jsonb. The one thing numeric cannot keep is the sign of -0.0 (jsonb
 *   prints 0.0): it comes back as 0.0, equal as a value and still a double.
 *   NaN and the infinities have no JSON form: the exact mode refuses them,
 *   the lenient one writes null.
 */
#ifndef EVS_BASE_MPJSON_H
#define EVS_BASE_MPJSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Most nesting the converters accept (the store's EVS_MAX_DEPTH plus the
 * envelope a caller may wrap around a payload). */
#define EVS__JSON_DEPTH 66

enum evs__json_flags {
	/* msgpack -> JSON: refuse (-1) what has no exact JSON form (bin,
	 * ext, float32, NaN/Inf, non-string map keys, strings that are not
	 * UTF-8) instead of writing base64, null or a stringified key. */
	EVS__JSON_EXACT = 1u << 0,
	/* JSON -> msgpack: refuse integer tokens that do not fit 64 bits
	 * and numbers strtod cannot hold (input from people) instead of
	 * reading them as doubles (PostgreSQL's text of our doubles). */
	EVS__JSON_STRICT = 1u << 1,
};

/* A JSON string of s[0..n), quoted: escapes '"', '\\' and control
 * characters only (UTF-8 passes through, '/' is not escaped). -1 and b as
 * it was if s is not valid UTF-8. */
int evs__json_str(evs__buf *b, const char *s, size_t n);
/* The same for text from anywhere: bytes that are not UTF-8 become
 * U+FFFD. */
void evs__json_str_lossy(evs__buf *b, const char *s, size_t n);
/* A double by the policy above; -1 (nothing written) if not finite. */
int evs__json_double(evs__buf *b, double d);
/* The shortest text (%.15g..%.17g) that reads back as d, with ".0"
 * added when it has neither '.' nor 'e'. d must be finite. */
void evs__json_double_short(evs__buf *b, double d);
/* The shortest text alone (NUL-terminated, its length returned): for a
 * double sent as a statement parameter, where "3" casts to integer and
 * "3.0" does not; a whole number under 2^64 in plain digits (1e15 ->
 * 1000000000000000: PostgreSQL's integer input refuses "1e+15"). */
#define EVS__DOUBLE_LEN 32
size_t evs__double_text(double d, char out[EVS__DOUBLE_LEN]);

/* Whether the integer token p[0..n) (optional '-', digits) fits int64
 * (negative) or uint64: the policy's test for "integer". */
bool evs__json_integer_fits(const char *p, size_t n);

/* JSON text of one msgpack value p[0..n) appended to b; -1 (b as it was)
 * on malformed msgpack, trailing bytes, nesting deeper than
 * EVS__JSON_DEPTH, memory, or (EVS__JSON_EXACT) a value without an exact
 * form. Lenient: bin and ext become base64 strings, NaN/Inf null,
 * non-string map keys their JSON text as a string. */
int evs__msgpack_to_json(evs__buf *b, const void *p, size_t n, unsigned flags);
/* The same with the caller's msgpack-c zone, cleared (not freed) after
 * use: one zone per batch instead of one allocation per value. */
struct msgpack_zone;
int evs__msgpack_to_json_z(evs__buf *b, const void *p, size_t n, unsigned flags,
			   struct msgpack_zone *zone);

/* msgpack of one JSON text s[0..n) (RFC 8259; whitespace around it)
 * appended to out: integers in their smallest encoding, doubles as
 * float64, strings (escapes decoded, UTF-8 checked) as str, arrays and
 * objects in document order (duplicate keys are kept). -1 (out as it
 * was) with a message in err (may be NULL) on invalid JSON. */
int evs__json_to_msgpack(const char *s, size_t n, evs__buf *out, unsigned flags, char *err,
			 size_t errlen);

#endif
