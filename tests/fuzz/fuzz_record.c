/*
 * fuzz_record.c - libFuzzer target over the event record decoder
 * (evs__record_decode, the value format of "events") and the payload
 * checker (evs__mp_is_map) that guards every append. A record that
 * decodes must have views inside the input; a payload the checker accepts
 * must also be walkable by msgpack-c without error.
 */
#include <msgpack.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"
#include "fuzz.h"

static void inside(const uint8_t *data, size_t size, const void *p, size_t n)
{
	if (n && ((const uint8_t *)p < data || (const uint8_t *)p + n > data + size))
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	evs_event ev;
	evs_str tags[EVS_MAX_TAGS];
	const char *why;

	if (evs__record_decode(data, size, 1, &ev, tags)) {
		for (size_t i = 0; i < ev.ntags; i++)
			inside(data, size, tags[i].ptr, tags[i].len);
		inside(data, size, ev.producer.ptr, ev.producer.len);
		inside(data, size, ev.stream.ptr, ev.stream.len);
		inside(data, size, ev.type.ptr, ev.type.len);
		inside(data, size, ev.data, ev.data_len);
		inside(data, size, ev.metadata, ev.metadata_len);
	}
	if (evs__mp_is_map(data, size, &why)) {
		msgpack_unpacked u;
		size_t off = 0;
		msgpack_unpacked_init(&u);
		if (msgpack_unpack_next(&u, (const char *)data, size, &off) !=
			    MSGPACK_UNPACK_SUCCESS ||
		    off != size || u.data.type != MSGPACK_OBJECT_MAP)
			__builtin_trap();
		msgpack_unpacked_destroy(&u);
	}
	return 0;
}
