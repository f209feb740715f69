/*
 * admit.c - the payload check on append: every event's data must be one
 * well-formed msgpack map and, when its type has a schema in the store's
 * registry, valid against it. Both in one walk of the data where there is
 * a schema (the validator reads with the checking cursor of
 * store/mpread.c); the structure alone where there is none. Runs in the
 * caller's thread, before the batch is queued.
 *
 * A malformed payload is a failure of the call, whichever event it is in.
 * A schema outcome (a violation, an unknown type) is reported only if the
 * batch is not a retry of one already stored (group.c), so the first one
 * found is remembered and the rest of the batch is still checked for
 * malformed payloads. Only on that error path is a payload walked twice:
 * a violation stops the validator early, so the rest of the payload is
 * checked again for well-formedness before the violation is believed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "schema_internal.h"

static int malformed(evs_store *s, size_t i, const char *why)
{
	return evs__fail(s, EVS_BAD_DATA, "event %zu: data is not a valid msgpack map: %s", i, why);
}

/* The schema that event i must meet, or NULL; a schema outcome goes
 * into *outcome (with the thread's message). */
static const evs_schema *schema_of(evs_store *s, const evs__schemas *c, const evs_event_in *ev,
				   size_t i, uint32_t *want, int *outcome)
{
	const evs__sc_type *t = evs__schemas_find(c, ev->type, strlen(ev->type));

	if (t == NULL) {
		if (c->unknown == EVS_UNKNOWN_REFUSE)
			*outcome = evs__fail(s, EVS_UNKNOWN_TYPE,
					     "event %zu: type \"%s\" has no schema and the store "
					     "refuses types without one",
					     i, ev->type);
		return NULL;
	}
	*want = ev->type_version ? ev->type_version : t->nversions;
	if (*want > t->nversions) {
		*outcome =
			evs__fail(s, EVS_UNKNOWN_TYPE,
				  "event %zu: type \"%s\" has no schema version %u (latest is %u)",
				  i, ev->type, *want, t->nversions);
		return NULL;
	}
	return t->v[*want - 1];
}

int evs__schema_prepare(evs_store *s, const evs_event_in *events, size_t n, uint32_t **versions)
{
	evs__schemas *c;
	uint32_t *tv = NULL;
	int rc, outcome = EVS_OK;
	const char *why;
	evs__verr e;

	*versions = NULL;
	if ((rc = evs__schemas_get(s, &c)) != EVS_OK)
		return rc;
	bool registry = c->ntypes > 0 || c->unknown != EVS_UNKNOWN_ACCEPT;
	for (size_t i = 0; i < n; i++) {
		const evs_event_in *ev = &events[i];
		const void *data = ev->data ? ev->data : "\x80"; /* none: the empty map */
		size_t len = ev->data ? ev->data_len : 1;
		const evs_schema *sc = NULL;
		uint32_t want = 0;

		if (registry && outcome == EVS_OK)
			sc = schema_of(s, c, ev, i, &want, &outcome);
		if (sc == NULL) {
			if (!evs__mp_is_map(data, len, &why)) {
				rc = malformed(s, i, why);
				goto out;
			}
			continue;
		}
		/* the root must be a map even where the schema allows anything */
		uint8_t b = *(const uint8_t *)data;
		int v = len == 0 || !((b >= 0x80 && b <= 0x8f) || b == 0xde || b == 0xdf)
				? -1
				: evs__schema_validate(sc, data, len, &e);
		if (v != 0 && !evs__mp_is_map(data, len, &why)) {
			rc = malformed(s, i, why);
			goto out;
		}
		if (v == -1) { /* not expected: the cursor and the check agree */
			rc = malformed(s, i, "refused by the validator");
			goto out;
		}
		if (v == 1) {
			outcome =
				evs__fail(s, EVS_SCHEMA_VIOLATION,
					  "event %zu: data at \"%s\" breaks rule \"%s\" of schema "
					  "\"%s\" version %u: %s",
					  i, e.path, e.rule, ev->type, want, e.detail);
			continue;
		}
		if (want != ev->type_version) {
			if (tv == NULL) {
				if ((tv = evs__malloc(n * sizeof *tv)) == NULL) {
					rc = evs__fail(s, EVS_NOMEM, "out of memory");
					goto out;
				}
				for (size_t k = 0; k < n; k++)
					tv[k] = events[k].type_version;
			}
			tv[i] = want;
		}
	}
	rc = outcome;
out:
	evs__schemas_put(s, c);
	if (rc == EVS_OK)
		*versions = tv;
	else
		free(tv);
	return rc;
}
