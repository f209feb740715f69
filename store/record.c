/*
 * record.c - the event record: how one event is stored in "events".
 *
 * Key: the event's global position, u64 big-endian (8 bytes).
 * Value: one msgpack array of 14 elements, record version 2 (store format
 * 3; format 2 stores hold version 1 records: the same 12 first elements,
 * fixarray 0x9c, record version 0x01, no tags and no producer):
 *
 *   byte 0      0x9e                      fixarray, 14 elements
 *   byte 1      0x02                      record version (positive fixint)
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
 *   [12] tags            array of 0..16 str (1..255 bytes each, UTF-8, no
 *                        NUL), sorted by bytes, no duplicates
 *   [13] producer        str (1..255 bytes) or nil
 *
 * recorded_at and version are always the 9-byte uint 64 form (valid,
 * if not minimal, msgpack) so that the 20-byte head has a fixed size: it is
 * the only part written at commit time, and recorded_at can be read at a
 * fixed offset without decoding. Payloads are nested as bin so that a
 * reader gets their bytes without walking them; decode them with any
 * msgpack library. A Python reader: rec = msgpack.unpackb(value);
 * data = msgpack.unpackb(rec[11]); tags = rec[12] if len(rec) > 12 else [].
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

static int cmp_str(const void *a, const void *b)
{
	const evs_str *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->ptr, y->ptr, n);

	return c ? c : (x->len > y->len) - (x->len < y->len);
}

void evs__tags_sort(evs_str *tags, size_t n)
{
	if (n > 1)
		qsort(tags, n, sizeof *tags, cmp_str);
}

size_t evs__tags_check(const evs_str *tags, size_t n, const char **why, size_t *other)
{
	for (size_t i = 0; i < n; i++) {
		const evs_str *t = &tags[i];
		if (t->ptr == NULL) {
			*why = "is NULL";
			return i;
		}
		if (t->len == 0) {
			*why = "is empty";
			return i;
		}
		if (t->len > EVS_MAX_TAG) {
			*why = "is longer than 255 bytes";
			return i;
		}
		if (memchr(t->ptr, 0, t->len) || !evs__utf8_text((const uint8_t *)t->ptr, t->len)) {
			*why = "is not valid UTF-8 (or contains a NUL byte)";
			return i;
		}
		for (size_t j = 0; j < i; j++) {
			if (tags[j].len == t->len && memcmp(tags[j].ptr, t->ptr, t->len) == 0) {
				*why = "repeats tag";
				*other = j;
				return i;
			}
		}
	}
	return SIZE_MAX;
}

int evs__record_tail_ex(evs__buf *out, const char *stream, size_t stream_len,
			const evs_event_in *ev, const uint8_t id[16], const evs_str *tags,
			size_t ntags, evs_str producer)
{
	msgpack_packer pk;
	const void *data = ev->data ? ev->data : empty_map;
	size_t data_len = ev->data ? ev->data_len : 1;
	const void *meta = ev->metadata ? ev->metadata : empty_map;
	size_t meta_len = ev->metadata ? ev->metadata_len : 1;
	size_t type_len = strlen(ev->type), tag_bytes = 0;
	evs_str sorted[EVS_MAX_TAGS];
	int rc = 0;

	if (ntags > EVS_MAX_TAGS)
		return -1;
	for (size_t i = 0; i < ntags; i++) {
		sorted[i] = tags[i];
		tag_bytes += tags[i].len + 5;
	}
	evs__tags_sort(sorted, ntags);
	if (evs__buf_reserve(out, stream_len + type_len + data_len + meta_len + tag_bytes +
					  producer.len + 112) != 0)
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
	rc |= msgpack_pack_array(&pk, ntags);
	for (size_t i = 0; i < ntags; i++)
		rc |= msgpack_pack_str_with_body(&pk, sorted[i].ptr, sorted[i].len);
	if (producer.len)
		rc |= msgpack_pack_str_with_body(&pk, producer.ptr, producer.len);
	else
		rc |= msgpack_pack_nil(&pk);
	return rc ? -1 : 0;
}

int evs__record_tail(evs__buf *out, const char *stream, size_t stream_len, const evs_event_in *ev,
		     const uint8_t id[16])
{
	evs_str tags[EVS_MAX_TAGS], producer = {NULL, 0};

	if (ev->ntags > EVS_MAX_TAGS)
		return -1;
	for (size_t i = 0; i < ev->ntags; i++)
		tags[i] = (evs_str){ev->tags[i], strlen(ev->tags[i])};
	if (ev->producer)
		producer = (evs_str){ev->producer, strlen(ev->producer)};
	return evs__record_tail_ex(out, stream, stream_len, ev, id, tags, ev->ntags, producer);
}

void evs__record_head(uint8_t h[EVS__RECORD_HEAD], int64_t recorded_at, uint64_t version)
{
	h[0] = 0x9e;
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

/* Tags [12] and producer [13] of a version 2 record. */
static bool rd_tags(rd *r, evs_event *ev, evs_str tags[EVS_MAX_TAGS])
{
	const uint8_t *p;
	size_t n, count;

	if (!need(r, 1))
		return false;
	uint8_t t = *r->p++;
	if (t >= 0x90 && t <= 0x9f) {
		count = t & 0x0f;
	} else if (t == 0xdc && need(r, 2)) {
		count = be(r->p, 2);
		r->p += 2;
	} else {
		return false;
	}
	if (count > EVS_MAX_TAGS)
		return false;
	for (size_t i = 0; i < count; i++) {
		if (!rd_raw(r, true, &p, &n) || n == 0 || n > EVS_MAX_TAG)
			return false;
		tags[i].ptr = (const char *)p;
		tags[i].len = n;
	}
	ev->tags = tags;
	ev->ntags = count;
	if (rd_nil(r))
		return true;
	if (!rd_raw(r, true, &p, &n) || n == 0)
		return false;
	ev->producer.ptr = (const char *)p;
	ev->producer.len = n;
	return true;
}

/* Fields [3].. of a record (after the fixed head). */
static bool rd_body(rd *r, evs_event *ev, int version, evs_str tags[EVS_MAX_TAGS])
{
	const uint8_t *p;
	size_t n;
	int64_t x;

	ev->tags = tags;
	ev->ntags = 0;
	ev->producer.ptr = "";
	ev->producer.len = 0;
	if (!rd_raw(r, true, &p, &n))
		return false;
	ev->stream.ptr = (const char *)p;
	ev->stream.len = n;
	if (!rd_id(r, ev->id, false) || !rd_raw(r, true, &p, &n))
		return false;
	ev->type.ptr = (const char *)p;
	ev->type.len = n;
	if (!rd_int(r, &x, false) || x > UINT32_MAX)
		return false;
	ev->type_version = (uint32_t)x;
	if (rd_nil(r))
		ev->occurred_at = 0;
	else if (!rd_int(r, &ev->occurred_at, true))
		return false;
	if (!rd_id(r, ev->correlation_id, true) || !rd_id(r, ev->causation_id, true))
		return false;
	if (!rd_raw(r, false, &p, &n))
		return false;
	ev->metadata = p;
	ev->metadata_len = n;
	if (!rd_raw(r, false, &p, &n))
		return false;
	ev->data = p;
	ev->data_len = n;
	if (version >= 2 && !rd_tags(r, ev, tags))
		return false;
	return r->p == r->end;
}

bool evs__record_decode(const void *val, size_t len, uint64_t position, evs_event *ev,
			evs_str tags[EVS_MAX_TAGS])
{
	const uint8_t *v = val;
	rd r = {v + EVS__RECORD_HEAD, v + len};
	int version;

	if (len < EVS__RECORD_HEAD || v[2] != 0xcf || v[11] != 0xcf)
		return false;
	if (v[0] == 0x9e && v[1] == EVS_RECORD_VERSION)
		version = 2;
	else if (v[0] == 0x9c && v[1] == 1)
		version = 1;
	else
		return false;
	ev->position = position;
	ev->recorded_at = (int64_t)evs__get_u64(v + 3);
	ev->version = evs__get_u64(v + 12);
	return rd_body(&r, ev, version, tags);
}

bool evs__record_decode_tail(const void *tail, size_t len, evs_event *ev,
			     evs_str tags[EVS_MAX_TAGS])
{
	rd r = {tail, (const uint8_t *)tail + len};

	ev->position = 0;
	ev->recorded_at = 0;
	ev->version = 0;
	return rd_body(&r, ev, EVS_RECORD_VERSION, tags);
}
