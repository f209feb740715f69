/* cloudevent.c: an event as a CloudEvents 1.0 JSON object (cloudevent.h). */
#include <string.h>

#include "cloudevent.h"
#include "mpjson.h"
#include "rfc3339.h"

void evs__cloudevent_uuid(const uint8_t id[16], char out[37])
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[id[i] >> 4];
		out[o++] = hex[id[i] & 15];
	}
	out[o] = '\0';
}

static bool zero_id(const uint8_t id[16])
{
	static const uint8_t zero[16];

	return memcmp(id, zero, 16) == 0;
}

static void uuid_member(evs__buf *b, const char *name, const uint8_t id[16])
{
	char t[37];

	evs__cloudevent_uuid(id, t);
	evs__buf_printf(b, ",\"%s\":\"%s\"", name, t);
}

static void time_member(evs__buf *b, const char *name, int64_t ns)
{
	char t[EVS__TIME_LEN];

	evs__time_format(ns, t);
	evs__buf_printf(b, ",\"%s\":\"%s\"", name, t);
}

void evs__cloudevent_tags(const evs_event *ev, evs__buf *out)
{
	for (size_t i = 0; i < ev->ntags; i++) {
		evs__buf_putc(out, i ? ',' : '[');
		evs__json_str_lossy(out, ev->tags[i].ptr, ev->tags[i].len);
	}
	evs__buf_puts(out, ev->ntags ? "]" : "[]");
}

/* "tags": the tag set as the text of a JSON array of strings. The spec
 * has no list type for attributes (Boolean, Integer, String, Binary, URI,
 * URI-reference, Timestamp) and binary mode carries them in headers, so
 * the set travels as one String a consumer parses with any JSON parser. */
static void tags_member(evs__buf *b, const evs_event *ev)
{
	evs__buf arr = {0};

	evs__cloudevent_tags(ev, &arr);
	evs__buf_puts(b, ",\"tags\":");
	if (arr.oom)
		b->oom = true;
	else
		evs__json_str_lossy(b, arr.ptr, arr.len);
	evs__buf_free(&arr);
}

int evs__cloudevent_json(const evs_event *ev, const char *source, evs__buf *out)
{
	size_t start;
	bool was_oom;
	char id[37];

	if (!ev || !source || !source[0] || !out)
		return EVS_INVALID;
	start = out->len;
	was_oom = out->oom;
	evs__cloudevent_uuid(ev->id, id);
	evs__buf_printf(out, "{\"specversion\":\"1.0\",\"id\":\"%s\",\"source\":", id);
	if (evs__json_str(out, source, strlen(source)) < 0) {
		out->len = start;
		out->oom = was_oom;
		return EVS_INVALID;
	}
	/* The store keeps stream ids and types as UTF-8 (evstore.h); text
	 * from elsewhere is still written as valid JSON. */
	evs__buf_puts(out, ",\"type\":");
	evs__json_str_lossy(out, ev->type.ptr, ev->type.len);
	evs__buf_puts(out, ",\"subject\":");
	evs__json_str_lossy(out, ev->stream.ptr, ev->stream.len);
	time_member(out, "time", ev->recorded_at);
	evs__buf_printf(out,
			",\"datacontenttype\":\"application/json\",\"position\":\"%llu\","
			"\"streamversion\":\"%llu\",\"typeversion\":\"%lu\"",
			(unsigned long long)ev->position, (unsigned long long)ev->version,
			(unsigned long)ev->type_version);
	if (!zero_id(ev->correlation_id))
		uuid_member(out, "correlationid", ev->correlation_id);
	if (!zero_id(ev->causation_id))
		uuid_member(out, "causationid", ev->causation_id);
	if (ev->occurred_at != 0)
		time_member(out, "occurredat", ev->occurred_at);
	if (ev->producer.len) {
		evs__buf_puts(out, ",\"producer\":");
		evs__json_str_lossy(out, ev->producer.ptr, ev->producer.len);
	}
	if (ev->ntags)
		tags_member(out, ev);
	evs__buf_puts(out, ",\"data\":");
	if (ev->data_len == 0) {
		evs__buf_puts(out, "{}");
	} else if (evs__msgpack_to_json(out, ev->data, ev->data_len, 0) < 0) {
		bool oom = out->oom;

		out->len = start;
		out->oom = was_oom;
		return oom ? EVS_NOMEM : EVS_BAD_DATA;
	}
	evs__buf_putc(out, '}');
	if (out->oom) {
		out->len = start;
		out->oom = was_oom;
		return EVS_NOMEM;
	}
	return EVS_OK;
}
