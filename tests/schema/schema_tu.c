#include <check.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "schema_tu.h"

static void pack(msgpack_packer *pk, json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null: msgpack_pack_nil(pk); break;
	case json_type_boolean:
		json_object_get_boolean(v) ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
		break;
	case json_type_int: msgpack_pack_int64(pk, json_object_get_int64(v)); break;
	case json_type_double: msgpack_pack_double(pk, json_object_get_double(v)); break;
	case json_type_string:
		msgpack_pack_str_with_body(pk, json_object_get_string(v),
					   (size_t)json_object_get_string_len(v));
		break;
	case json_type_array:
		msgpack_pack_array(pk, json_object_array_length(v));
		for (size_t i = 0; i < json_object_array_length(v); i++)
			pack(pk, json_object_array_get_idx(v, i));
		break;
	case json_type_object:
		msgpack_pack_map(pk, (size_t)json_object_object_length(v));
		json_object_object_foreach(v, k, val)
		{
			msgpack_pack_str_with_body(pk, k, strlen(k));
			pack(pk, val);
		}
		break;
	}
}

void stu_pack(msgpack_sbuffer *sb, const char *json)
{
	msgpack_packer pk;
	json_object *v = json_tokener_parse(json);

	ck_assert_msg(v != NULL || strcmp(json, "null") == 0, "bad test JSON: %s", json);
	msgpack_sbuffer_init(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	pack(&pk, v);
	json_object_put(v);
}

char *stu_text(const void *data, size_t len)
{
	msgpack_unpacked u;
	size_t off = 0;
	char *out = malloc(len * 8 + 64);

	msgpack_unpacked_init(&u);
	ck_assert(msgpack_unpack_next(&u, data, len, &off) == MSGPACK_UNPACK_SUCCESS);
	ck_assert_uint_eq(off, len);
	msgpack_object_print_buffer(out, len * 8 + 64, u.data);
	msgpack_unpacked_destroy(&u);
	return out;
}
