/*
 * event_json.c - one event as one line of JSON, and back.
 *
 * The line format (read, tail, export write it; import reads it, append
 * reads the subset it may set):
 *
 *   {"position":7,"stream":"order-1","version":2,
 *    "id":"0190c7e2-...","type":"OrderPlaced","type_version":1,
 *    "recorded_at":"2024-05-01T12:34:56.123456789Z",
 *    "occurred_at":"...",          omitted when none
 *    "correlation_id":"...",       omitted when none
 *    "causation_id":"...",         omitted when none
 *    "producer":"billing",         omitted when none
 *    "tags":["account:42",...],    omitted when none; sorted by bytes
 *    "metadata":{...},             or "metadata_msgpack":"<base64>"
 *    "data":{...}}                 or "data_msgpack":"<base64>"
 *
 * Field order is fixed and every value has one spelling, so the text is a
 * function of the stored event: exporting an imported export gives the
 * same bytes. A payload is written as JSON only when that JSON converts
 * back to exactly the stored msgpack bytes (see json_mp.c); otherwise its
 * raw msgpack goes in base64 under "<name>_msgpack". On input, times may
 * also be integers (nanoseconds), and optional fields may be null.
 */
#include <stdlib.h>
#include <string.h>

#include <uuid/uuid.h>

#include "cli.h"

static bool all_zero(const uint8_t id[16])
{
	for (int i = 0; i < 16; i++)
		if (id[i])
			return false;
	return true;
}

static void put_payload(evs__buf *b, const char *name, const void *p, size_t n)
{
	size_t mark = b->len, start;

	evs__buf_printf(b, ",\"%s\":", name);
	start = b->len;
	if (evs__msgpack_to_json(b, p, n, EVS__JSON_EXACT) == 0 &&
	    cli_json_matches_msgpack(b->ptr + start, b->len - start, p, n))
		return;
	b->len = mark;
	evs__buf_printf(b, ",\"%s_msgpack\":\"", name);
	evs__base64_encode(b, p, n);
	evs__buf_putc(b, '"');
}

int cli_event_to_json(evs__buf *b, const evs_event *ev)
{
	size_t mark = b->len;

	evs__buf_puts(b, "{\"position\":");
	jb_u64(b, ev->position);
	evs__buf_puts(b, ",\"stream\":");
	if (evs__json_str(b, ev->stream.ptr, ev->stream.len) != 0)
		goto bad;
	evs__buf_puts(b, ",\"version\":");
	jb_u64(b, ev->version);
	evs__buf_puts(b, ",\"id\":");
	jb_uuid(b, ev->id);
	evs__buf_puts(b, ",\"type\":");
	if (evs__json_str(b, ev->type.ptr, ev->type.len) != 0)
		goto bad;
	evs__buf_puts(b, ",\"type_version\":");
	jb_u64(b, ev->type_version);
	evs__buf_puts(b, ",\"recorded_at\":");
	jb_time(b, ev->recorded_at);
	if (ev->occurred_at != 0) {
		evs__buf_puts(b, ",\"occurred_at\":");
		jb_time(b, ev->occurred_at);
	}
	if (!all_zero(ev->correlation_id)) {
		evs__buf_puts(b, ",\"correlation_id\":");
		jb_uuid(b, ev->correlation_id);
	}
	if (!all_zero(ev->causation_id)) {
		evs__buf_puts(b, ",\"causation_id\":");
		jb_uuid(b, ev->causation_id);
	}
	if (ev->producer.len) {
		evs__buf_puts(b, ",\"producer\":");
		if (evs__json_str(b, ev->producer.ptr, ev->producer.len) != 0)
			goto bad;
	}
	for (size_t i = 0; i < ev->ntags; i++) {
		evs__buf_puts(b, i ? "," : ",\"tags\":[");
		if (evs__json_str(b, ev->tags[i].ptr, ev->tags[i].len) != 0)
			goto bad;
		if (i + 1 == ev->ntags)
			evs__buf_putc(b, ']');
	}
	put_payload(b, "metadata", ev->metadata, ev->metadata_len);
	put_payload(b, "data", ev->data, ev->data_len);
	evs__buf_puts(b, "}\n");
	return 0;
bad:
	b->len = mark;
	cli_error("event at position %llu has a stream id, type, producer or tag that is not valid "
		  "UTF-8",
		  (unsigned long long)ev->position);
	return -1;
}

/* ---------------------------------------------------------------------
 * Input
 * ------------------------------------------------------------------- */

enum kind {
	K_U64,
	K_U32,
	K_NAME,
	K_UUID,
	K_UUID_OPT,
	K_TIME,
	K_TIME_OPT,
	K_PAYLOAD,
	K_PAYLOAD_B64,
	K_PRODUCER,
	K_TAGS
};

static const struct field {
	const char *name;
	unsigned bit;
	enum kind kind;
} fields[] = {
	{"position", CLI_F_POSITION, K_U64},
	{"stream", CLI_F_STREAM, K_NAME},
	{"version", CLI_F_VERSION, K_U64},
	{"id", CLI_F_ID, K_UUID},
	{"type", CLI_F_TYPE, K_NAME},
	{"type_version", CLI_F_TYPE_VERSION, K_U32},
	{"recorded_at", CLI_F_RECORDED_AT, K_TIME},
	{"occurred_at", CLI_F_OCCURRED_AT, K_TIME_OPT},
	{"correlation_id", CLI_F_CORRELATION_ID, K_UUID_OPT},
	{"causation_id", CLI_F_CAUSATION_ID, K_UUID_OPT},
	{"metadata", CLI_F_METADATA, K_PAYLOAD},
	{"metadata_msgpack", CLI_F_METADATA, K_PAYLOAD_B64},
	{"data", CLI_F_DATA, K_PAYLOAD},
	{"data_msgpack", CLI_F_DATA, K_PAYLOAD_B64},
	{"producer", CLI_F_PRODUCER, K_PRODUCER},
	{"tags", CLI_F_TAGS, K_TAGS},
};

void cli_event_init(struct cli_event *e)
{
	/* an all-zero msgpack_sbuffer is an empty one (what
	 * msgpack_sbuffer_init makes); calling it here trips a GCC 12
	 * -Warray-bounds false positive under -fsanitize=address */
	*e = (struct cli_event){.type_version = 0};
}

static void free_tags(struct cli_event *e)
{
	for (size_t i = 0; i < e->ntags; i++)
		free(e->tags[i]);
	free(e->tags);
	e->tags = NULL;
	e->ntags = 0;
}

void cli_event_free(struct cli_event *e)
{
	free_tags(e);
	free(e->producer);
	free(e->stream);
	free(e->type);
	msgpack_sbuffer_destroy(&e->data);
	msgpack_sbuffer_destroy(&e->metadata);
	cli_event_init(e);
}

/* "a number", "an array", ... for messages */
static const char *json_kind(json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null: return "null";
	case json_type_boolean: return "a boolean";
	case json_type_int:
	case json_type_double: return "a number";
	case json_type_string: return "a string";
	case json_type_array: return "an array";
	case json_type_object: return "an object";
	}
	return "something else";
}

int cli_payload_from_json(msgpack_sbuffer *out, json_object *v, const char *field, char *err,
			  size_t errlen)
{
	msgpack_packer pk;
	char why[200];

	if (!json_object_is_type(v, json_type_object)) {
		snprintf(err, errlen, "%s must be a JSON object, not %s", field, json_kind(v));
		return -1;
	}
	msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
	if (cli_json_to_msgpack(v, &pk, why, sizeof why) != 0) {
		snprintf(err, errlen, "%s: %s", field, why);
		return -1;
	}
	return 0;
}

static void pack_empty_map(msgpack_sbuffer *sb)
{
	msgpack_packer pk;

	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	if (msgpack_pack_map(&pk, 0) != 0) {
		cli_error("out of memory");
		exit(CLI_EXIT_FAIL);
	}
}

static int get_uuid(json_object *v, uint8_t out[16], bool nullable)
{
	const char *s;

	if (nullable && json_object_is_type(v, json_type_null)) {
		memset(out, 0, 16);
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return -1;
	s = json_object_get_string(v);
	if (strlen(s) != 36 || uuid_parse(s, out) != 0)
		return -1;
	return 0;
}

void cli_event_tags_in(const struct cli_event *e, const char **tags)
{
	for (size_t i = 0; i < e->ntags && i < EVS_MAX_TAGS; i++)
		tags[i] = e->tags[i];
}

/* "producer": a string or null. */
static int parse_producer(struct cli_event *e, json_object *v, char *err, size_t errlen)
{
	const char *why;

	free(e->producer);
	e->producer = NULL;
	if (json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_string)) {
		snprintf(err, errlen, "field \"producer\" must be a string or null");
		return -1;
	}
	why = cli_name_problem(json_object_get_string(v), (size_t)json_object_get_string_len(v),
			       EVS_MAX_NAME);
	if (why) {
		snprintf(err, errlen, "field \"producer\" (1 to %d bytes of UTF-8): %s",
			 EVS_MAX_NAME, why);
		return -1;
	}
	e->producer =
		cli_xstrndup(json_object_get_string(v), (size_t)json_object_get_string_len(v));
	return 0;
}

static int cmp_tag(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void cli_event_set_tags(struct cli_event *e, const char *const *tags, size_t n)
{
	free_tags(e);
	e->tags = cli_xcalloc(n ? n : 1, sizeof *e->tags);
	for (size_t i = 0; i < n; i++)
		e->tags[i] = cli_xstrndup(tags[i], strlen(tags[i]));
	e->ntags = n;
	qsort(e->tags, e->ntags, sizeof *e->tags, cmp_tag);
}

/* "tags": an array of distinct tag strings, or null. */
static int parse_tags(struct cli_event *e, json_object *v, char *err, size_t errlen)
{
	size_t n;

	free_tags(e);
	if (json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_array)) {
		snprintf(err, errlen, "field \"tags\" must be an array of strings or null");
		return -1;
	}
	n = json_object_array_length(v);
	if (n > EVS_MAX_TAGS) {
		snprintf(err, errlen, "field \"tags\" has %zu tags, at most %d", n, EVS_MAX_TAGS);
		return -1;
	}
	e->tags = cli_xcalloc(n ? n : 1, sizeof *e->tags);
	for (size_t i = 0; i < n; i++) {
		json_object *t = json_object_array_get_idx(v, i);
		const char *s, *why;
		size_t len;

		if (!json_object_is_type(t, json_type_string)) {
			snprintf(err, errlen, "field \"tags\": item %zu is %s, not a string", i,
				 json_kind(t));
			return -1;
		}
		s = json_object_get_string(t);
		len = (size_t)json_object_get_string_len(t);
		why = cli_name_problem(s, len, EVS_MAX_TAG);
		if (why) {
			snprintf(err, errlen,
				 "field \"tags\": item %zu (1 to %d bytes of UTF-8): %s", i,
				 EVS_MAX_TAG, why);
			return -1;
		}
		for (size_t j = 0; j < e->ntags; j++)
			if (strlen(e->tags[j]) == len && memcmp(e->tags[j], s, len) == 0) {
				snprintf(err, errlen, "field \"tags\": tag \"%.*s\" given twice",
					 (int)(len < 100 ? len : 100), s);
				return -1;
			}
		e->tags[e->ntags++] = cli_xstrndup(s, len);
	}
	/* a set: sorted by bytes, as the store keeps it (no NUL: strcmp) */
	qsort(e->tags, e->ntags, sizeof *e->tags, cmp_tag);
	return 0;
}

static int parse_field(struct cli_event *e, const struct field *f, json_object *v, char *err,
		       size_t errlen)
{
	const char *why;

	switch (f->kind) {
	case K_U64:
	case K_U32: {
		uint64_t u;

		if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
			goto not_uint;
		u = json_object_get_uint64(v);
		if (f->kind == K_U32) {
			if (u > UINT32_MAX)
				goto not_uint;
			e->type_version = (uint32_t)u;
		} else if (f->bit == CLI_F_POSITION) {
			e->position = u;
		} else {
			e->version = u;
		}
		return 0;
	}
	case K_NAME: {
		const char *s;
		size_t len;

		if (!json_object_is_type(v, json_type_string)) {
			snprintf(err, errlen, "field \"%s\" must be a string", f->name);
			return -1;
		}
		s = json_object_get_string(v);
		len = (size_t)json_object_get_string_len(v);
		if (strlen(s) != len) {
			snprintf(err, errlen, "field \"%s\" contains a NUL character", f->name);
			return -1;
		}
		if (f->bit == CLI_F_STREAM) {
			free(e->stream);
			e->stream = cli_xstrndup(s, len);
		} else {
			free(e->type);
			e->type = cli_xstrndup(s, len);
		}
		return 0;
	}
	case K_UUID:
	case K_UUID_OPT: {
		uint8_t *dst = f->bit == CLI_F_ID               ? e->id
			       : f->bit == CLI_F_CORRELATION_ID ? e->correlation_id
								: e->causation_id;

		if (get_uuid(v, dst, f->kind == K_UUID_OPT) != 0) {
			snprintf(err, errlen,
				 "field \"%s\" must be a UUID like "
				 "\"0190c7e2-5b1a-7cc3-9f5e-3c1d2b4a6e7f\"%s",
				 f->name, f->kind == K_UUID_OPT ? " or null" : "");
			return -1;
		}
		if (f->kind == K_UUID && all_zero(dst)) {
			snprintf(err, errlen, "field \"%s\" must not be the nil UUID", f->name);
			return -1;
		}
		return 0;
	}
	case K_TIME:
	case K_TIME_OPT: {
		int64_t *dst = f->bit == CLI_F_RECORDED_AT ? &e->recorded_at : &e->occurred_at;

		if (f->kind == K_TIME_OPT && json_object_is_type(v, json_type_null)) {
			*dst = 0;
			return 0;
		}
		if (json_object_is_type(v, json_type_int)) {
			*dst = json_object_get_int64(v);
			if (*dst == INT64_MAX && json_object_get_uint64(v) > (uint64_t)INT64_MAX) {
				snprintf(err, errlen,
					 "field \"%s\": integer nanoseconds out of range", f->name);
				return -1;
			}
		} else if (json_object_is_type(v, json_type_string)) {
			if (evs__time_parse(json_object_get_string(v),
					    (size_t)json_object_get_string_len(v), dst,
					    &why) != 0) {
				snprintf(err, errlen, "field \"%s\": %s", f->name, why);
				return -1;
			}
		} else {
			snprintf(err, errlen,
				 "field \"%s\" must be an RFC 3339 string or integer nanoseconds",
				 f->name);
			return -1;
		}
		if (f->kind == K_TIME_OPT && *dst == 0) {
			snprintf(err, errlen,
				 "field \"%s\" cannot be the epoch itself (0 means none)", f->name);
			return -1;
		}
		return 0;
	}
	case K_PRODUCER: return parse_producer(e, v, err, errlen);
	case K_TAGS: return parse_tags(e, v, err, errlen);
	case K_PAYLOAD:
		return cli_payload_from_json(f->bit == CLI_F_DATA ? &e->data : &e->metadata, v,
					     f->name, err, errlen);
	case K_PAYLOAD_B64: {
		msgpack_sbuffer *dst = f->bit == CLI_F_DATA ? &e->data : &e->metadata;
		evs__buf raw = {0};

		if (!json_object_is_type(v, json_type_string) ||
		    evs__base64_decode(&raw, json_object_get_string(v),
				       (size_t)json_object_get_string_len(v)) != 0) {
			bool oom = raw.oom;

			evs__buf_free(&raw);
			if (oom)
				goto nomem;
			snprintf(err, errlen, "field \"%s\" must be a base64 string", f->name);
			return -1;
		}
		if (raw.len && msgpack_sbuffer_write(dst, raw.ptr, raw.len) != 0) {
			evs__buf_free(&raw);
			goto nomem;
		}
		evs__buf_free(&raw);
		return 0;
	}
	}
	return -1;

not_uint:
	snprintf(err, errlen, "field \"%s\" must be a non-negative integer%s", f->name,
		 f->kind == K_U32 ? " below 2^32" : "");
	return -1;
nomem:
	cli_error("out of memory");
	exit(CLI_EXIT_FAIL);
}

int cli_event_from_json(struct cli_event *e, json_object *obj, unsigned allowed, char *err,
			size_t errlen)
{
	struct json_object_iterator it, end;

	if (!json_object_is_type(obj, json_type_object)) {
		snprintf(err, errlen, "expected a JSON object, not %s", json_kind(obj));
		return -1;
	}
	it = json_object_iter_begin(obj);
	end = json_object_iter_end(obj);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		const char *name = json_object_iter_peek_name(&it);
		const struct field *f = NULL;

		for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
			if (strcmp(fields[i].name, name) == 0)
				f = &fields[i];
		if (!f || !(f->bit & allowed)) {
			snprintf(err, errlen, "unknown field \"%s\"", name);
			return -1;
		}
		if (e->seen & f->bit) {
			snprintf(err, errlen, "field \"%s\" given twice (as JSON and as msgpack)",
				 name);
			return -1;
		}
		if (parse_field(e, f, json_object_iter_peek_value(&it), err, errlen) != 0)
			return -1;
		e->seen |= f->bit;
	}
	if (!(e->seen & CLI_F_DATA))
		pack_empty_map(&e->data);
	if (!(e->seen & CLI_F_METADATA))
		pack_empty_map(&e->metadata);
	return 0;
}
