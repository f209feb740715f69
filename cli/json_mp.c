/*
 * json_mp.c - JSON <-> msgpack for event payloads.
 *
 * JSON to msgpack (append, import):
 *
 *   null, true, false   nil, true, false
 *   integer literal     int, smallest encoding (msgpack-c's pack_int64 /
 *                       pack_uint64); must fit int64 or uint64
 *   other number        float64 (must be finite: no NaN, no Infinity)
 *   string              str (UTF-8 validated by json-c)
 *   array, object       array, map (keys are str), in document order
 *
 * Parsing uses json-c in strict mode with UTF-8 validation. json-c clamps
 * integer literals that overflow 64 bits and accepts NaN and Infinity, and
 * keeps object keys as C strings (a key with "\u0000" would be cut), so a
 * lexical check on the already-valid text refuses those instead of
 * storing something other than what was written. Duplicate keys keep the
 * last value (RFC 8259 leaves this to the implementation).
 *
 * msgpack to JSON (read, export) is the base's writer (mpjson.h, where the
 * number policy is drawn), in its exact mode. Some payloads have no exact
 * JSON form: bin, ext, float32, NaN/Inf, non-string map keys, strings that
 * are not UTF-8, and any encoding that is not the smallest (e.g. 5 as
 * uint32). The exact mode refuses the first kinds;
 * cli_json_matches_msgpack catches everything by converting the JSON back
 * and comparing bytes. Export uses both and falls back to base64.
 *
 * Input stays on json-c here, not the base's text reader: the envelope of
 * an event is a json-c object, and json-c keeps the last of duplicate
 * keys, which the byte comparison above relies on.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* ---------------------------------------------------------------------
 * Parsing
 * ------------------------------------------------------------------- */

static size_t skip_ws(const char *s, size_t i, size_t n)
{
	while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
		i++;
	return i;
}

/*
 * The checks json-c does not make, on text json-c already accepted as
 * valid JSON (so strings are closed and tokens are well formed).
 */
static int lexical_check(const char *s, size_t n, char *err, size_t errlen)
{
	size_t i = 0;

	while (i < n) {
		char c = s[i];

		if (c == '"') {
			size_t start = i;
			bool has_nul = false;

			for (i++; i < n && s[i] != '"'; i++) {
				if (s[i] != '\\')
					continue;
				i++;
				if (i + 4 < n && s[i] == 'u' && memcmp(s + i + 1, "0000", 4) == 0)
					has_nul = true;
			}
			i++;
			if (has_nul && skip_ws(s, i, n) < n && s[skip_ws(s, i, n)] == ':') {
				snprintf(err, errlen,
					 "object key with \\u0000 is not supported at column %zu",
					 start + 1);
				return -1;
			}
		} else if (c == '-' || (c >= '0' && c <= '9')) {
			size_t start = i;
			bool integer = true;

			while (i < n && strchr("+-0123456789.eE", s[i]) && s[i] != '\0') {
				if (s[i] == '.' || s[i] == 'e' || s[i] == 'E')
					integer = false;
				i++;
			}
			if (i < n && (s[i] == 'I' || s[i] == 'N')) {
				snprintf(err, errlen, "invalid number at column %zu", start + 1);
				return -1;
			}
			if (integer && !evs__json_integer_fits(s + start, i - start)) {
				snprintf(err, errlen,
					 "integer out of range at "
					 "column %zu (integers must fit in 64 bits;"
					 " write a fraction or exponent for a float)",
					 start + 1);
				return -1;
			}
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
			size_t start = i;

			while (i < n &&
			       ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
				i++;
			if (!((i - start == 4 && !memcmp(s + start, "true", 4)) ||
			      (i - start == 5 && !memcmp(s + start, "false", 5)) ||
			      (i - start == 4 && !memcmp(s + start, "null", 4)))) {
				snprintf(err, errlen, "invalid token \"%.*s\" at column %zu",
					 (int)(i - start > 16 ? 16 : i - start), s + start,
					 start + 1);
				return -1;
			}
		} else {
			i++;
		}
	}
	return 0;
}

json_object *cli_json_parse(const char *text, size_t n, char *err, size_t errlen)
{
	struct json_tokener *tok = json_tokener_new_ex(CLI_JSON_DEPTH);
	json_object *obj;
	enum json_tokener_error jerr;

	if (!tok) {
		cli_error("out of memory");
		exit(CLI_EXIT_FAIL);
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	if (n > INT32_MAX) {
		snprintf(err, errlen, "JSON text too long");
		obj = NULL;
		goto out;
	}
	obj = json_tokener_parse_ex(tok, text, (int)n);
	jerr = json_tokener_get_error(tok);
	if (!obj && jerr == json_tokener_continue) {
		/* a bare number needs a terminator to end */
		obj = json_tokener_parse_ex(tok, "", 1);
		jerr = json_tokener_get_error(tok);
		if (!obj) {
			snprintf(err, errlen, "unexpected end of JSON input");
			goto out;
		}
	}
	if (!obj) {
		size_t at = json_tokener_get_parse_end(tok);

		if (jerr == json_tokener_error_depth)
			snprintf(err, errlen, "JSON nested deeper than %d levels", CLI_JSON_DEPTH);
		else
			snprintf(err, errlen, "invalid JSON at column %zu: %s",
				 (at < n ? at : n) + 1, json_tokener_error_desc(jerr));
		goto out;
	}
	if (lexical_check(text, n, err, errlen) != 0) {
		json_object_put(obj);
		obj = NULL;
	}
out:
	json_tokener_free(tok);
	return obj;
}

/* ---------------------------------------------------------------------
 * JSON -> msgpack
 * ------------------------------------------------------------------- */

static void pack_ok(int rc)
{
	if (rc != 0) {
		cli_error("out of memory");
		exit(CLI_EXIT_FAIL);
	}
}

static int to_msgpack(json_object *v, msgpack_packer *pk, char *err, size_t errlen, int depth)
{
	if (depth > CLI_JSON_DEPTH) {
		snprintf(err, errlen, "JSON nested too deeply");
		return -1;
	}
	switch (json_object_get_type(v)) {
	case json_type_null: pack_ok(msgpack_pack_nil(pk)); return 0;
	case json_type_boolean:
		pack_ok(json_object_get_boolean(v) ? msgpack_pack_true(pk)
						   : msgpack_pack_false(pk));
		return 0;
	case json_type_int: {
		int64_t i = json_object_get_int64(v);

		if (i < 0)
			pack_ok(msgpack_pack_int64(pk, i));
		else
			pack_ok(msgpack_pack_uint64(pk, json_object_get_uint64(v)));
		return 0;
	}
	case json_type_double: {
		double d = json_object_get_double(v);

		if (!isfinite(d)) {
			snprintf(err, errlen, "number out of range: %s",
				 json_object_to_json_string(v));
			return -1;
		}
		pack_ok(msgpack_pack_double(pk, d));
		return 0;
	}
	case json_type_string: {
		const char *s = json_object_get_string(v);
		size_t len = (size_t)json_object_get_string_len(v);

		pack_ok(msgpack_pack_str(pk, len));
		pack_ok(msgpack_pack_str_body(pk, s, len));
		return 0;
	}
	case json_type_array: {
		size_t n = json_object_array_length(v);

		pack_ok(msgpack_pack_array(pk, n));
		for (size_t i = 0; i < n; i++)
			if (to_msgpack(json_object_array_get_idx(v, i), pk, err, errlen,
				       depth + 1) != 0)
				return -1;
		return 0;
	}
	case json_type_object: {
		struct json_object_iterator it = json_object_iter_begin(v);
		struct json_object_iterator end = json_object_iter_end(v);

		pack_ok(msgpack_pack_map(pk, (size_t)json_object_object_length(v)));
		for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
			const char *key = json_object_iter_peek_name(&it);
			size_t klen = strlen(key);

			pack_ok(msgpack_pack_str(pk, klen));
			pack_ok(msgpack_pack_str_body(pk, key, klen));
			if (to_msgpack(json_object_iter_peek_value(&it), pk, err, errlen,
				       depth + 1) != 0)
				return -1;
		}
		return 0;
	}
	}
	snprintf(err, errlen, "unsupported JSON value");
	return -1;
}

int cli_json_to_msgpack(json_object *v, msgpack_packer *pk, char *err, size_t errlen)
{
	return to_msgpack(v, pk, err, errlen, 0);
}

bool cli_json_matches_msgpack(const char *text, size_t tlen, const void *p, size_t n)
{
	char err[256];
	json_object *v = cli_json_parse(text, tlen, err, sizeof err);
	msgpack_sbuffer sb;
	msgpack_packer pk;
	bool same = false;

	if (!v)
		return false;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (json_object_is_type(v, json_type_object) &&
	    cli_json_to_msgpack(v, &pk, err, sizeof err) == 0)
		same = sb.size == n && memcmp(sb.data, p, n) == 0;
	msgpack_sbuffer_destroy(&sb);
	json_object_put(v);
	return same;
}
