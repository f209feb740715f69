/*
 * mpcheck.c - is an untrusted payload exactly one well-formed msgpack map?
 *
 * Payloads arrive from callers and are stored as bytes, so the store only
 * needs their structure checked, not an object tree built. This walk
 * allocates nothing and refuses what a tree-building decoder would choke
 * on: declared lengths past the end of the buffer, element counts larger
 * than the bytes left (which would make a decoder allocate gigabytes for a
 * 6-byte input), nesting deeper than EVS_MAX_DEPTH, the reserved byte 0xc1
 * and trailing bytes. Strings (keys and values) must be valid UTF-8 without
 * NUL: every reader, JSON and PostgreSQL's jsonb included, can then hold
 * them, so no read model ever stops on an event the store accepted. Raw
 * bytes belong in msgpack bin.
 */
#include "internal.h"

static uint64_t be(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

bool evs__mp_is_map(const void *buf, size_t len, const char **why)
{
	const uint8_t *p = buf, *end = p + len;
	uint64_t left[EVS_MAX_DEPTH + 1];
	int depth = 1;

	if (len == 0) {
		*why = "empty";
		return false;
	}
	if (!((*p >= 0x80 && *p <= 0x8f) || *p == 0xde || *p == 0xdf)) {
		*why = "not a map";
		return false;
	}
	left[0] = 1;
	while (depth > 0) {
		if (left[depth - 1] == 0) {
			depth--;
			continue;
		}
		left[depth - 1]--;
		if (p >= end)
			goto truncated;

		uint8_t t = *p++;
		uint64_t skip = 0, count = 0;
		int w = 0;
		bool container = false, is_map = false, text = false;

		if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) {
			skip = 0;
		} else if (t <= 0x8f) {
			container = is_map = true;
			count = t & 0x0f;
		} else if (t <= 0x9f) {
			container = true;
			count = t & 0x0f;
		} else if (t <= 0xbf) {
			skip = t & 0x1f;
			text = true;
		} else {
			switch (t) {
			case 0xc4: w = 1; break;
			case 0xc5: w = 2; break;
			case 0xc6: w = 4; break;
			case 0xd9: w = 1, text = true; break;
			case 0xda: w = 2, text = true; break;
			case 0xdb: w = 4, text = true; break;
			case 0xc7:
				w = 1;
				skip = 1;
				break; /* ext: + type byte */
			case 0xc8:
				w = 2;
				skip = 1;
				break;
			case 0xc9:
				w = 4;
				skip = 1;
				break;
			case 0xca: skip = 4; break;
			case 0xcb: skip = 8; break;
			case 0xcc:
			case 0xd0: skip = 1; break;
			case 0xcd:
			case 0xd1: skip = 2; break;
			case 0xce:
			case 0xd2: skip = 4; break;
			case 0xcf:
			case 0xd3: skip = 8; break;
			case 0xd4: skip = 2; break;
			case 0xd5: skip = 3; break;
			case 0xd6: skip = 5; break;
			case 0xd7: skip = 9; break;
			case 0xd8: skip = 17; break;
			case 0xdc:
				container = true;
				w = 2;
				break;
			case 0xdd:
				container = true;
				w = 4;
				break;
			case 0xde:
				container = is_map = true;
				w = 2;
				break;
			case 0xdf:
				container = is_map = true;
				w = 4;
				break;
			default: *why = "reserved byte 0xc1"; return false;
			}
			if (w) {
				if ((size_t)(end - p) < (size_t)w)
					goto truncated;
				uint64_t n = be(p, w);
				p += w;
				if (container)
					count = n;
				else
					skip += n;
			}
		}
		if (container) {
			if (is_map)
				count *= 2;
			if (count > (uint64_t)(end - p))
				goto truncated;
			if (depth > EVS_MAX_DEPTH) {
				*why = "nested too deeply";
				return false;
			}
			left[depth++] = count;
		} else {
			if (skip > (uint64_t)(end - p))
				goto truncated;
			if (text && !evs__utf8_text(p, skip)) {
				*why = "a string is not valid UTF-8 or contains a NUL byte";
				return false;
			}
			p += skip;
		}
	}
	if (p != end) {
		*why = "trailing bytes after the map";
		return false;
	}
	return true;

truncated:
	*why = "truncated";
	return false;
}
