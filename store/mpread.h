/*
 * mpread.h - the one msgpack reader of libevstore (evs__ names, not
 * public): a cursor over an untrusted buffer, used by the store's payload
 * check, the schema validator and the upcaster.
 */
#ifndef EVS_MPREAD_H
#define EVS_MPREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
	EVS__MK_NIL,
	EVS__MK_BOOL,
	EVS__MK_UINT,
	EVS__MK_NINT,
	EVS__MK_FLOAT,
	EVS__MK_STR,
	EVS__MK_BIN,
	EVS__MK_ARR,
	EVS__MK_MAP,
	EVS__MK_EXT
};

/* One value as read: only the fields of its kind are set. */
typedef struct evs__mpv {
	int kind;
	bool b;
	uint64_t u;         /* EVS__MK_UINT */
	int64_t i;          /* EVS__MK_NINT (negative) */
	double d;           /* EVS__MK_FLOAT */
	const uint8_t *ptr; /* str/bin/ext body */
	uint32_t n;         /* str/bin/ext length, array/map count */
} evs__mpv;

/* A cursor: the next byte to read, the end, and after a false what is
 * wrong with the buffer (a static string). */
typedef struct evs__mpr {
	const uint8_t *p, *end;
	const char *why;
} evs__mpr;

/* Read one value's header (the body of a str/bin/ext too). A string must
 * be valid UTF-8 without NUL. */
bool evs__mp_read(evs__mpr *r, evs__mpv *v);
/* Skip one whole value at nesting level `level` (1: the payload's own
 * map): no container deeper than EVS_MAX_DEPTH, no count larger than the
 * bytes left. */
bool evs__mp_skip(evs__mpr *r, int level);
/* Is buf exactly one well-formed msgpack map (depth <= EVS_MAX_DEPTH)?
 * On false, *why says what is wrong. */
bool evs__mp_is_map(const void *buf, size_t len, const char **why);

#endif /* EVS_MPREAD_H */
