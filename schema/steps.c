/*
 * steps.c - the declarative upcaster of a schema document ("upcast": a
 * list of rename, add, remove and convert steps, at most 64), compiled
 * into packed msgpack keys and values that upcast.c applies without
 * building a tree; and JSON -> msgpack for the values it adds.
 */
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "internal.h"
#include "schema_internal.h"

#define MAX_STEPS 64

/* ---- JSON -> msgpack for upcast defaults ---------------------------------- */

static int pack(json_object *v, msgpack_packer *pk, int depth)
{
	int rc = 0;

	if (depth > EVS_MAX_DEPTH)
		return -2;
	switch (json_object_get_type(v)) {
	case json_type_null: return msgpack_pack_nil(pk);
	case json_type_boolean:
		return json_object_get_boolean(v) ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
	case json_type_int: return msgpack_pack_int64(pk, json_object_get_int64(v));
	case json_type_double: return msgpack_pack_double(pk, json_object_get_double(v));
	case json_type_string:
		return msgpack_pack_str_with_body(pk, json_object_get_string(v),
						  (size_t)json_object_get_string_len(v));
	case json_type_array:
		rc = msgpack_pack_array(pk, json_object_array_length(v));
		for (size_t i = 0; !rc && i < json_object_array_length(v); i++)
			rc = pack(json_object_array_get_idx(v, i), pk, depth + 1);
		return rc;
	case json_type_object:
		rc = msgpack_pack_map(pk, (size_t)json_object_object_length(v));
		json_object_object_foreach(v, key, val)
		{
			if (!rc)
				rc = msgpack_pack_str_with_body(pk, key, strlen(key));
			if (!rc)
				rc = pack(val, pk, depth + 1);
		}
		return rc;
	}
	return -1;
}

int evs__json_pack(json_object *v, uint8_t **out, size_t *len)
{
	evs__buf b = {0};
	msgpack_packer pk;

	/* into our buffer, so the packing allocates through the library */
	msgpack_packer_init(&pk, &b, evs__mp_buf_write);
	int rc = pack(v, &pk, 0);
	if (rc != 0 || b.oom) {
		rc = b.oom ? -1 : -2;
		evs__buf_free(&b);
		return rc;
	}
	*out = (uint8_t *)b.ptr; /* packed bytes; the caller frees them */
	*len = b.len;
	return 0;
}

static int pack_key(const char *s, uint8_t **out, size_t *len)
{
	json_object *j = json_object_new_string(s);
	int rc = j ? evs__json_pack(j, out, len) : -1;
	json_object_put(j);
	return rc;
}

/* ---- upcast steps ---------------------------------------------------------- */

const char *evs__json_member_str(json_object *o, const char *name)
{
	json_object *v;
	if (!json_object_object_get_ex(o, name, &v) || !json_object_is_type(v, json_type_string) ||
	    json_object_get_string_len(v) == 0)
		return NULL;
	return json_object_get_string(v);
}

int evs__sc_compile_steps(evs__cc *c, evs_schema *sc, json_object *up)
{
	if (json_object_is_type(up, json_type_string)) {
		if (strcmp(json_object_get_string(up), "hook") != 0)
			return evs__cc_bad(c, "\"upcast\" must be a list of steps or \"hook\"");
		sc->upcast = UPCAST_HOOK;
		return EVS_OK;
	}
	if (!json_object_is_type(up, json_type_array) || json_object_array_length(up) == 0 ||
	    json_object_array_length(up) > MAX_STEPS)
		return evs__cc_bad(c, "\"upcast\" must be a list of 1 to %d steps or \"hook\"",
				   MAX_STEPS);
	sc->upcast = UPCAST_STEPS;
	sc->steps = evs__calloc(json_object_array_length(up), sizeof *sc->steps);
	if (sc->steps == NULL)
		return EVS_NOMEM;
	for (size_t i = 0; i < json_object_array_length(up); i++) {
		json_object *st = json_object_array_get_idx(up, i), *v;
		up_step *s = &sc->steps[sc->nsteps];
		const char *op, *f;
		char at[32];

		snprintf(at, sizeof at, ".upcast[%zu]", i);
		evs__cc_pop(c, 0);
		evs__cc_push(c, "%s", at);
		if (!json_object_is_type(st, json_type_object) ||
		    (op = evs__json_member_str(st, "op")) == NULL)
			return evs__cc_bad(c, "a step must be an object with \"op\"");
		f = evs__json_member_str(st, strcmp(op, "rename") == 0 ? "from" : "field");
		if (f == NULL)
			return evs__cc_bad(c, "step \"%s\" needs \"%s\"", op,
					   strcmp(op, "rename") == 0 ? "from" : "field");
		if (pack_key(f, &s->key, &s->key_len))
			return EVS_NOMEM;
		sc->nsteps++;
		if (strcmp(op, "rename") == 0) {
			const char *to = evs__json_member_str(st, "to");
			s->op = UP_RENAME;
			if (to == NULL)
				return evs__cc_bad(c, "step \"rename\" needs \"to\"");
			if (pack_key(to, &s->key2, &s->key2_len))
				return EVS_NOMEM;
		} else if (strcmp(op, "add") == 0) {
			s->op = UP_ADD;
			if (!json_object_object_get_ex(st, "value", &v))
				return evs__cc_bad(c, "step \"add\" needs \"value\"");
			int packed = evs__json_pack(v, &s->val, &s->val_len);
			if (packed == -1)
				return EVS_NOMEM;
			if (packed)
				return evs__cc_bad(c, "step \"add\": value nested too deeply");
		} else if (strcmp(op, "remove") == 0) {
			s->op = UP_REMOVE;
		} else if (strcmp(op, "convert") == 0) {
			s->op = UP_CONVERT;
			if (!json_object_object_get_ex(st, "rule", &v))
				return evs__cc_bad(c, "step \"convert\" needs \"rule\"");
			const char *r = json_object_get_string(v);
			json_object *m;
			if (json_object_is_type(v, json_type_string) && strcmp(r, "to-string") == 0)
				s->rule = CV_STRING;
			else if (json_object_is_type(v, json_type_string) &&
				 strcmp(r, "to-integer") == 0)
				s->rule = CV_INTEGER;
			else if (json_object_is_type(v, json_type_string) &&
				 strcmp(r, "to-number") == 0)
				s->rule = CV_NUMBER;
			else if (json_object_is_type(v, json_type_object) &&
				 json_object_object_get_ex(v, "multiply", &m) &&
				 json_object_is_type(m, json_type_int) &&
				 json_object_get_int64(m) != 0) {
				s->rule = CV_MULTIPLY;
				s->factor = json_object_get_int64(m);
			} else {
				return evs__cc_bad(
					c, "unknown conversion rule (to-string, to-integer, "
					   "to-number, {\"multiply\": N})");
			}
		} else {
			return evs__cc_bad(c, "unknown step \"%s\" (rename, add, remove, convert)",
					   op);
		}
	}
	evs__cc_pop(c, 0);
	return EVS_OK;
}
