/*
 * record.c - the event record: how one event is stored in "events".
 *
 * Key: the event's global position, u64 big-endian (8 bytes).
 * Value: one msgpack array of 12 elements, record version 1:
 *
 *   byte 0      0x9c                      fixarray, 12 elements
 *   byte 1      0x01                      record version (positive fixint)
 *   bytes 2-10  0xcf + u64 BE             recorded_at, ns since the epoch
 *   bytes 11-19 0xcf + u64 BE             version in the stream (from 1)
 *   then, each in its shortest msgpack encoding:
 *   [3]  stream          str
 *   [4]  event id        bin 16
 *   [5]  type            str
 *   [6]  type version    uint
 *   [7]  occurred_at     int (ns since the epoch) or nil
 *   [8]  correlation id  bin 16 or nil
 *   [9]  causation id    bin 16 or nil
 *   [10] metadata        bin holding one msgpack map
 *   [11] data            bin holding one msgpack map
 *
 * recorded_at and version are always the 9-byte uint 64 form (valid,
 * if not minimal, msgpack) so that the 20-byte head has a fixed size: it is
 * the only part written at commit time, and recorded_at can be read at a
 * fixed offset without decoding. Payloads are nested as bin so that a
 * reader gets their bytes without walking them; decode them with any
 * msgpack library. A Python reader: rec = msgpack.unpackb(value);
 * data = msgpack.unpackb(rec[11]).
 *
 * The decoder below is written for this fixed layout rather than built on
 * msgpack-c's object tree: replay decodes every record, and the tree would
 * cost an allocation and a walk per event for fields we only point at.
 * Encoding uses msgpack-c's packer.
 */
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int evs__mp_buf_write(void *data, const char *buf, size_t len)
{
	evs__buf *b = data;

	evs__buf_putn(b, buf, len);
	return b->oom ? -1 : 0;
}

static const uint8_t empty_map[1] = {0x80};

int evs__record_tail(evs__buf *out, const char *stream, size_t stream_len, const evs_event_in *ev,
		     const uint8_t id[16])
{
	msgpack_packer pk;
	const void *data = ev->data ? ev->data : empty_map;
	size_t data_len = ev->data ? ev->data_len : 1;
	const void *meta = ev->metadata ? ev->metadata : empty_map;
	size_t meta_len = ev->metadata ? ev->metadata_len : 1;
	size_t type_len = strlen(ev->type);
	int rc = 0;

	if (evs__buf_reserve(out, stream_len + type_len + data_len + meta_len + 96) != 0)
		return -1;
	msgpack_packer_init(&pk, out, evs__mp_buf_write);
	rc |= msgpack_pack_str_with_body(&pk, stream, stream_len);
	rc |= msgpack_pack_bin_with_body(&pk, id, 16);
	rc |= msgpack_pack_str_with_body(&pk, ev->type, type_len);
	rc |= msgpack_pack_uint32(&pk, ev->type_version ? ev->type_version : 1);
	if (ev->occurred_at)
		rc |= msgpack_pack_int64(&pk, ev->occurred_at);
	else
		rc |= msgpack_pack_nil(&pk);
	if (evs__is_zero16(ev->correlation_id))
		rc |= msgpack_pack_nil(&pk);
	else
		rc |= msgpack_pack_bin_with_body(&pk, ev->correlation_id, 16);
	if (evs__is_zero16(ev->causation_id))
		rc |= msgpack_pack_nil(&pk);
	else
		rc |= msgpack_pack_bin_with_body(&pk, ev->causation_id, 16);
	rc |= msgpack_pack_bin_with_body(&pk, meta, meta_len);
	rc |= msgpack_pack_bin_with_body(&pk, data, data_len);
	return rc ? -1 : 0;
}

void evs__record_head(uint8_t h[EVS__RECORD_HEAD], int64_t recorded_at, uint64_t version)
{
	h[0] = 0x9c;
	h[1] = EVS_RECORD_VERSION;
	h[2] = 0xcf;
	evs__put_u64(h + 3, (uint64_t)recorded_at);
	h[11] = 0xcf;
	evs__put_u64(h + 12, version);
}

/* ---- decoding -------------------------------------------------------- */

typedef struct rd {
	const uint8_t *p, *end;
} rd;

static bool need(rd *r, size_t n)
{
	return (size_t)(r->end - r->p) >= n;
}

static uint64_t be(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* Length-prefixed: str (want_str) or bin. */
static bool rd_raw(rd *r, bool want_str, const uint8_t **ptr, size_t *len)
{
	int w;

	if (!need(r, 1))
		return false;
	uint8_t t = *r->p++;
	if (want_str && t >= 0xa0 && t <= 0xbf) {
		*len = t & 0x1f;
		goto body;
	}
	switch (t) {
	case 0xd9:
		w = 1;
		if (!want_str)
			return false;
		break;
	case 0xda:
		w = 2;
		if (!want_str)
			return false;
		break;
	case 0xdb:
		w = 4;
		if (!want_str)
			return false;
		break;
	case 0xc4:
		w = 1;
		if (want_str)
			return false;
		break;
	case 0xc5:
		w = 2;
		if (want_str)
			return false;
		break;
	case 0xc6:
		w = 4;
		if (want_str)
			return false;
		break;
	default: return false;
	}
	if (!need(r, (size_t)w))
		return false;
	*len = be(r->p, w);
	r->p += w;
body:
	if (!need(r, *len))
		return false;
	*ptr = r->p;
	r->p += *len;
	return true;
}

static bool rd_int(rd *r, int64_t *out, bool allow_negative)
{
	if (!need(r, 1))
		return false;
	uint8_t t = *r->p++;
	int w;
	bool sign = false;

	if (t <= 0x7f) {
		*out = t;
		return true;
	}
	if (t >= 0xe0) {
		*out = (int8_t)t;
		return allow_negative;
	}
	switch (t) {
	case 0xcc: w = 1; break;
	case 0xcd: w = 2; break;
	case 0xce: w = 4; break;
	case 0xcf: w = 8; break;
	case 0xd0:
		w = 1;
		sign = true;
		break;
	case 0xd1:
		w = 2;
		sign = true;
		break;
	case 0xd2:
		w = 4;
		sign = true;
		break;
	case 0xd3:
		w = 8;
		sign = true;
		break;
	default: return false;
	}
	if (!need(r, (size_t)w))
		return false;
	uint64_t v = be(r->p, w);
	r->p += w;
	if (sign) {
		int shift = 64 - 8 * w;
		*out = (int64_t)(v << shift) >> shift; /* sign-extend */
		return allow_negative || *out >= 0;
	}
	if (v > INT64_MAX)
		return false;
	*out = (int64_t)v;
	return true;
}

static bool rd_nil(rd *r)
{
	if (need(r, 1) && *r->p == 0xc0) {
		r->p++;
		return true;
	}
	return false;
}

static bool rd_id(rd *r, uint8_t out[16], bool optional)
{
	const uint8_t *p;
	size_t n;

	if (optional && rd_nil(r)) {
		memset(out, 0, 16);
		return true;
	}
	if (!rd_raw(r, false, &p, &n) || n != 16)
		return false;
	memcpy(out, p, 16);
	return true;
}

bool evs__record_decode(const void *val, size_t len, uint64_t position, evs_event *ev)
{
	const uint8_t *v = val;
	rd r = {v + EVS__RECORD_HEAD, v + len};
	const uint8_t *p;
	size_t n;
	int64_t x;

	if (len < EVS__RECORD_HEAD || v[0] != 0x9c || v[1] != EVS_RECORD_VERSION || v[2] != 0xcf ||
	    v[11] != 0xcf)
		return false;
	ev->position = position;
	ev->recorded_at = (int64_t)evs__get_u64(v + 3);
	ev->version = evs__get_u64(v + 12);
	if (!rd_raw(&r, true, &p, &n))
		return false;
	ev->stream.ptr = (const char *)p;
	ev->stream.len = n;
	if (!rd_id(&r, ev->id, false) || !rd_raw(&r, true, &p, &n))
		return false;
	ev->type.ptr = (const char *)p;
	ev->type.len = n;
	if (!rd_int(&r, &x, false) || x > UINT32_MAX)
		return false;
	ev->type_version = (uint32_t)x;
	if (rd_nil(&r))
		ev->occurred_at = 0;
	else if (!rd_int(&r, &ev->occurred_at, true))
		return false;
	if (!rd_id(&r, ev->correlation_id, true) || !rd_id(&r, ev->causation_id, true))
		return false;
	if (!rd_raw(&r, false, &p, &n))
		return false;
	ev->metadata = p;
	ev->metadata_len = n;
	if (!rd_raw(&r, false, &p, &n))
		return false;
	ev->data = p;
	ev->data_len = n;
	return r.p == r.end;
}
