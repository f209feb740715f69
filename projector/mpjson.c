/*
 * mpjson.c - msgpack to JSON text (for jsonb) and back (json-c).
 *
 * Integers stay integers; float64 prints with 17 significant digits so it
 * reads back as the same double; strings are escaped per RFC 8259 (valid
 * UTF-8 is kept as is, control characters as \u00XX). Values without a
 * JSON form: bin and ext become base64 strings, NaN and infinities null,
 * non-string map keys their JSON text as a string.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>
#include <msgpack.h>

#include "evsproj.h"

#define MAX_DEPTH 64

static void put_str(evs__buf *b, const char *p, size_t n)
{
	size_t i, start = 0;

	evs__buf_putc(b, '"');
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		evs__buf_putn(b, p + start, i - start);
		switch (c) {
		case '"': evs__buf_puts(b, "\\\""); break;
		case '\\': evs__buf_puts(b, "\\\\"); break;
		case '\n': evs__buf_puts(b, "\\n"); break;
		case '\r': evs__buf_puts(b, "\\r"); break;
		case '\t': evs__buf_puts(b, "\\t"); break;
		default: evs__buf_printf(b, "\\u%04x", c); break;
		}
		start = i + 1;
	}
	evs__buf_putn(b, p + start, n - start);
	evs__buf_putc(b, '"');
}

static void put_base64(evs__buf *b, const char *p, size_t n)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *s = (const unsigned char *)p;
	size_t i;

	evs__buf_putc(b, '"');
	for (i = 0; i + 2 < n; i += 3) {
		char o[4] = {tab[s[i] >> 2], tab[((s[i] & 3) << 4) | (s[i + 1] >> 4)],
			     tab[((s[i + 1] & 15) << 2) | (s[i + 2] >> 6)], tab[s[i + 2] & 63]};
		evs__buf_putn(b, o, 4);
	}
	if (n - i == 1) {
		char o[4] = {tab[s[i] >> 2], tab[(s[i] & 3) << 4], '=', '='};
		evs__buf_putn(b, o, 4);
	} else if (n - i == 2) {
		char o[4] = {tab[s[i] >> 2], tab[((s[i] & 3) << 4) | (s[i + 1] >> 4)],
			     tab[(s[i + 1] & 15) << 2], '='};
		evs__buf_putn(b, o, 4);
	}
	evs__buf_putc(b, '"');
}

static int put_obj(evs__buf *b, const msgpack_object *o, int depth)
{
	uint32_t i;

	if (depth > MAX_DEPTH)
		return -1;
	switch (o->type) {
	case MSGPACK_OBJECT_NIL: evs__buf_puts(b, "null"); return 0;
	case MSGPACK_OBJECT_BOOLEAN: evs__buf_puts(b, o->via.boolean ? "true" : "false"); return 0;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		evs__buf_printf(b, "%llu", (unsigned long long)o->via.u64);
		return 0;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		evs__buf_printf(b, "%lld", (long long)o->via.i64);
		return 0;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		if (!isfinite(o->via.f64))
			evs__buf_puts(b, "null");
		else
			evs__buf_printf(b, "%.17g", o->via.f64);
		return 0;
	case MSGPACK_OBJECT_STR: put_str(b, o->via.str.ptr, o->via.str.size); return 0;
	case MSGPACK_OBJECT_BIN: put_base64(b, o->via.bin.ptr, o->via.bin.size); return 0;
	case MSGPACK_OBJECT_EXT: put_base64(b, o->via.ext.ptr, o->via.ext.size); return 0;
	case MSGPACK_OBJECT_ARRAY:
		evs__buf_putc(b, '[');
		for (i = 0; i < o->via.array.size; i++) {
			if (i)
				evs__buf_putc(b, ',');
			if (put_obj(b, &o->via.array.ptr[i], depth + 1) < 0)
				return -1;
		}
		evs__buf_putc(b, ']');
		return 0;
	case MSGPACK_OBJECT_MAP:
		evs__buf_putc(b, '{');
		for (i = 0; i < o->via.map.size; i++) {
			const msgpack_object_kv *kv = &o->via.map.ptr[i];

			if (i)
				evs__buf_putc(b, ',');
			if (kv->key.type == MSGPACK_OBJECT_STR) {
				put_str(b, kv->key.via.str.ptr, kv->key.via.str.size);
			} else {
				evs__buf kb = {0};
				int rc = put_obj(&kb, &kv->key, depth + 1);

				if (rc == 0 && !kb.oom)
					put_str(b, kb.ptr, kb.len);
				evs__buf_free(&kb);
				if (rc < 0)
					return -1;
			}
			evs__buf_putc(b, ':');
			if (put_obj(b, &kv->val, depth + 1) < 0)
				return -1;
		}
		evs__buf_putc(b, '}');
		return 0;
	}
	return -1;
}

int evp_msgpack_to_json(evs__buf *b, const void *p, size_t n)
{
	msgpack_zone zone;
	msgpack_object obj;
	size_t off = 0;
	int rc = -1;

	if (!msgpack_zone_init(&zone, 2048))
		return -1;
	if (msgpack_unpack((const char *)p, n, &off, &zone, &obj) == MSGPACK_UNPACK_SUCCESS)
		rc = put_obj(b, &obj, 0);
	msgpack_zone_destroy(&zone);
	return rc < 0 || b->oom ? -1 : 0;
}

static int pack_json(msgpack_packer *pk, json_object *v, int depth)
{
	if (depth > MAX_DEPTH)
		return -1;
	switch (json_object_get_type(v)) {
	case json_type_null: return msgpack_pack_nil(pk);
	case json_type_boolean:
		return json_object_get_boolean(v) ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
	case json_type_int: {
		int64_t i = json_object_get_int64(v);

		if (i == INT64_MAX) {
			uint64_t u = json_object_get_uint64(v);

			return msgpack_pack_uint64(pk, u);
		}
		return i >= 0 ? msgpack_pack_uint64(pk, (uint64_t)i) : msgpack_pack_int64(pk, i);
	}
	case json_type_double: return msgpack_pack_double(pk, json_object_get_double(v));
	case json_type_string:
		if (msgpack_pack_str(pk, (size_t)json_object_get_string_len(v)) != 0)
			return -1;
		return msgpack_pack_str_body(pk, json_object_get_string(v),
					     (size_t)json_object_get_string_len(v));
	case json_type_array: {
		size_t i, n = json_object_array_length(v);

		if (msgpack_pack_array(pk, n) != 0)
			return -1;
		for (i = 0; i < n; i++)
			if (pack_json(pk, json_object_array_get_idx(v, i), depth + 1) != 0)
				return -1;
		return 0;
	}
	case json_type_object: {
		if (msgpack_pack_map(pk, (size_t)json_object_object_length(v)) != 0)
			return -1;
		json_object_object_foreach(v, key, val)
		{
			size_t kl = strlen(key);

			if (msgpack_pack_str(pk, kl) != 0 ||
			    msgpack_pack_str_body(pk, key, kl) != 0)
				return -1;
			if (pack_json(pk, val, depth + 1) != 0)
				return -1;
		}
		return 0;
	}
	}
	return -1;
}

static int buf_write(void *data, const char *p, size_t n)
{
	evs__buf *b = data;

	evs__buf_putn(b, p, n);
	return b->oom ? -1 : 0;
}

int evp_json_to_msgpack(const char *text, size_t n, evs__buf *out)
{
	json_tokener *tok = json_tokener_new_ex(MAX_DEPTH + 2);
	json_object *v;
	msgpack_packer pk;
	int rc = -1;

	if (!tok)
		return -1;
	v = json_tokener_parse_ex(tok, text, (int)n);
	if (v && json_tokener_get_error(tok) == json_tokener_success) {
		msgpack_packer_init(&pk, out, buf_write);
		rc = pack_json(&pk, v, 0);
	}
	json_object_put(v);
	json_tokener_free(tok);
	return rc != 0 || out->oom ? -1 : 0;
}
