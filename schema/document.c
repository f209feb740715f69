/*
 * document.c - a schema document as a whole: parse the JSON (json-c,
 * strict, bounded), check the document's fields, compile its schema
 * (compile.c) and upcaster (steps.c), keep its canonical text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "schema_internal.h"

void evs_schema_free(evs_schema *sc)
{
	if (sc == NULL)
		return;
	evs__sc_node_free(sc->root);
	for (size_t i = 0; i < sc->nsteps; i++) {
		free(sc->steps[i].key);
		free(sc->steps[i].key2);
		free(sc->steps[i].val);
	}
	free(sc->steps);
	free(sc->type);
	free(sc->canon);
	json_object_put(sc->doc);
	free(sc);
}

const char *evs_schema_type(const evs_schema *sc)
{
	return sc ? sc->type : NULL;
}

uint32_t evs_schema_version(const evs_schema *sc)
{
	return sc ? sc->version : 0;
}

int evs_schema_parse(const char *json, size_t len, evs_schema **out, char *err, size_t errlen)
{
	evs__cc c = {.err = err, .errlen = errlen};
	json_tokener *tok = NULL;
	json_object *doc = NULL, *v, *schema = NULL;
	evs_schema *sc = NULL;
	const char *type;
	size_t tlen;
	int rc;

	if (err && errlen)
		err[0] = 0;
	if (out == NULL || (json == NULL && len))
		return EVS_INVALID;
	*out = NULL;
	if (len > EVS_MAX_SCHEMA_BYTES)
		return evs__cc_bad(&c, "document is %zu bytes, the limit is %u", len,
				   EVS_MAX_SCHEMA_BYTES);
	tok = json_tokener_new_ex(2 * EVS_MAX_SCHEMA_DEPTH + 8);
	if (tok == NULL)
		return EVS_NOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	doc = json_tokener_parse_ex(tok, json ? json : "", (int)len);
	if (doc == NULL || json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != len) {
		enum json_tokener_error e = json_tokener_get_error(tok);
		if (doc && e == json_tokener_success) {
			/* only white space may follow */
			for (size_t i = json_tokener_get_parse_end(tok); i < len; i++)
				if (!strchr(" \t\r\n", json[i])) {
					rc = evs__cc_bad(
						&c, "not one JSON text: garbage at offset %zu", i);
					goto out;
				}
		} else {
			rc = evs__cc_bad(&c, "not valid JSON: %s at offset %zu",
					 e == json_tokener_continue ? "unexpected end"
								    : json_tokener_error_desc(e),
					 json_tokener_get_parse_end(tok));
			goto out;
		}
	}
	if (!json_object_is_type(doc, json_type_object)) {
		rc = evs__cc_bad(&c, "a schema document must be a JSON object");
		goto out;
	}
	json_object_object_foreach(doc, kw, val)
	{
		(void)val;
		if (strcmp(kw, "type") && strcmp(kw, "version") && strcmp(kw, "schema") &&
		    strcmp(kw, "upcast") && strcmp(kw, "description") && strcmp(kw, "$comment")) {
			rc = evs__cc_bad(
				&c,
				"unknown document field \"%s\" (type, version, schema, upcast, "
				"description)",
				kw);
			goto out;
		}
	}
	if ((type = evs__json_member_str(doc, "type")) == NULL) {
		rc = evs__cc_bad(&c, "the document needs \"type\": the event type");
		goto out;
	}
	json_object_object_get_ex(doc, "type", &v);
	if (evs__check_name(type, &tlen) <= 0 || tlen != (size_t)json_object_get_string_len(v)) {
		rc = evs__cc_bad(&c, "event type \"%s\" is not 1 to %d bytes of UTF-8", type,
				 EVS_MAX_NAME);
		goto out;
	}
	if (!json_object_object_get_ex(doc, "version", &v) ||
	    !json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 1 ||
	    json_object_get_int64(v) > EVS_MAX_SCHEMA_VERSION) {
		rc = evs__cc_bad(&c, "the document needs \"version\": an integer from 1 to %d",
				 EVS_MAX_SCHEMA_VERSION);
		goto out;
	}
	if (!json_object_object_get_ex(doc, "schema", &schema)) {
		rc = evs__cc_bad(&c, "the document needs \"schema\"");
		goto out;
	}
	sc = evs__calloc(1, sizeof *sc);
	if (sc == NULL || (sc->type = evs__strdup(type)) == NULL) {
		rc = EVS_NOMEM;
		goto out;
	}
	sc->type_len = tlen;
	sc->version = (uint32_t)json_object_get_int64(v);
	evs__cc_push(&c, "%s", "$");
	if ((rc = evs__sc_compile(&c, schema, 1, &sc->root)) != EVS_OK)
		goto out;
	evs__cc_pop(&c, 0);
	if (json_object_object_get_ex(doc, "upcast", &v)) {
		if (sc->version == 1) {
			rc = evs__cc_bad(&c, "version 1 cannot have an upcaster");
			goto out;
		}
		if ((rc = evs__sc_compile_steps(&c, sc, v)) != EVS_OK)
			goto out;
	}
	const char *text = json_object_to_json_string_ext(
		doc, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (text == NULL || (sc->canon = evs__strdup(text)) == NULL) {
		rc = EVS_NOMEM;
		goto out;
	}
	sc->canon_len = strlen(sc->canon);
	sc->doc = doc;
	doc = NULL;
	*out = sc;
	sc = NULL;
	rc = EVS_OK;
out:
	if (rc == EVS_NOMEM && err && errlen)
		snprintf(err, errlen, "out of memory");
	evs_schema_free(sc);
	json_object_put(doc);
	json_tokener_free(tok);
	return rc;
}
