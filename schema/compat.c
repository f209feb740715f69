/*
 * compat.c - is a new version of a schema a compatible change of the
 * previous one (it only adds optional properties)? Otherwise the new
 * version needs an upcaster.
 */
#include <stdio.h>
#include <string.h>

#include "schema_internal.h"

static bool same_json(json_object *a, json_object *b)
{
	return json_object_equal(a, b) != 0;
}

bool evs__schema_compatible(const evs_schema *prev, const evs_schema *next, char *why,
			    size_t whylen)
{
	json_object *ps, *ns, *pp = NULL, *np = NULL, *pr = NULL, *nr = NULL, *pa = NULL,
			      *na = NULL;

	json_object_object_get_ex(prev->doc, "schema", &ps);
	json_object_object_get_ex(next->doc, "schema", &ns);
	/* Everything but properties, required and additionalProperties equal. */
	json_object_object_foreach(ns, kw, v)
	{
		json_object *o;
		if (!strcmp(kw, "properties") || !strcmp(kw, "required") ||
		    !strcmp(kw, "additionalProperties") || !strcmp(kw, "description") ||
		    !strcmp(kw, "title") || !strcmp(kw, "$comment"))
			continue;
		if (!json_object_object_get_ex(ps, kw, &o) || !same_json(o, v)) {
			snprintf(why, whylen, "keyword \"%s\" changed", kw);
			return false;
		}
	}
	json_object_object_foreach(ps, kw2, v2)
	{
		json_object *o;
		(void)v2;
		if (!strcmp(kw2, "properties") || !strcmp(kw2, "required") ||
		    !strcmp(kw2, "additionalProperties") || !strcmp(kw2, "description") ||
		    !strcmp(kw2, "title") || !strcmp(kw2, "$comment"))
			continue;
		if (!json_object_object_get_ex(ns, kw2, &o)) {
			snprintf(why, whylen, "keyword \"%s\" removed", kw2);
			return false;
		}
	}
	json_object_object_get_ex(ps, "properties", &pp);
	json_object_object_get_ex(ns, "properties", &np);
	json_object_object_get_ex(ps, "required", &pr);
	json_object_object_get_ex(ns, "required", &nr);
	json_object_object_get_ex(ps, "additionalProperties", &pa);
	json_object_object_get_ex(ns, "additionalProperties", &na);
	if (pp) {
		json_object_object_foreach(pp, name, def)
		{
			json_object *o;
			if (!np || !json_object_object_get_ex(np, name, &o)) {
				snprintf(why, whylen, "property \"%s\" removed", name);
				return false;
			}
			if (!same_json(o, def)) {
				snprintf(why, whylen, "property \"%s\" changed", name);
				return false;
			}
		}
	}
	for (size_t i = 0; nr && i < json_object_array_length(nr); i++) {
		const char *name = json_object_get_string(json_object_array_get_idx(nr, i));
		bool was = false;
		for (size_t k = 0; pr && k < json_object_array_length(pr); k++)
			if (strcmp(name,
				   json_object_get_string(json_object_array_get_idx(pr, k))) == 0)
				was = true;
		if (!was) {
			snprintf(why, whylen, "property \"%s\" became required", name);
			return false;
		}
	}
	if (np && (pa == NULL || !json_object_is_type(pa, json_type_boolean) ||
		   json_object_get_boolean(pa))) {
		/* old events may carry any extra property: new ones must stay open
		 * to whatever they could hold */
		json_object_object_foreach(np, name, def)
		{
			json_object *o;
			(void)def;
			if (!pp || !json_object_object_get_ex(pp, name, &o)) {
				snprintf(
					why, whylen,
					"property \"%s\" added, but version %u allowed any "
					"additional property, so old events may hold another value",
					name, prev->version);
				return false;
			}
		}
	}
	if ((pa == NULL) != (na == NULL) || (pa && !same_json(pa, na))) {
		snprintf(why, whylen, "additionalProperties changed");
		return false;
	}
	return true;
}
