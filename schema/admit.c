/*
 * admit.c - validation on append: every event's data against its type's
 * schema in the store's registry, in the caller's thread before the
 * batch is queued.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "schema_internal.h"

int evs__schema_prepare(evs_store *s, const evs_event_in *events, size_t n, uint32_t **versions)
{
	evs__schemas *c;
	uint32_t *tv = NULL;
	evs__verr e;
	int rc;

	*versions = NULL;
	if ((rc = evs__schemas_get(s, &c)) != EVS_OK)
		return rc;
	if (c->ntypes == 0 && c->unknown == EVS_UNKNOWN_ACCEPT)
		goto out;
	for (size_t i = 0; i < n; i++) {
		const evs_event_in *ev = &events[i];
		size_t len = strlen(ev->type);
		const evs__sc_type *t = evs__schemas_find(c, ev->type, len);
		uint32_t want = ev->type_version;

		if (t == NULL) {
			if (c->unknown == EVS_UNKNOWN_REFUSE) {
				rc = evs__fail(s, EVS_UNKNOWN_TYPE,
					       "event %zu: type \"%s\" has no schema and the store "
					       "refuses types without one",
					       i, ev->type);
				goto out;
			}
			continue;
		}
		if (want == 0)
			want = t->nversions;
		if (want > t->nversions) {
			rc = evs__fail(
				s, EVS_UNKNOWN_TYPE,
				"event %zu: type \"%s\" has no schema version %u (latest is %u)", i,
				ev->type, want, t->nversions);
			goto out;
		}
		const evs_schema *sc = t->v[want - 1];
		int v = evs__schema_validate(sc, ev->data ? ev->data : "\x80",
					     ev->data ? ev->data_len : 1, &e);
		if (v == -1) {
			rc = evs__fail(s, EVS_BAD_DATA,
				       "event %zu: data is not a valid msgpack map", i);
			goto out;
		}
		if (v == 1) {
			rc = evs__fail(
				s, EVS_SCHEMA_VIOLATION,
				"event %zu: data at \"%s\" breaks rule \"%s\" of schema \"%s\" "
				"version %u: %s",
				i, e.path, e.rule, ev->type, want, e.detail);
			goto out;
		}
		if (want != ev->type_version) {
			if (tv == NULL) {
				if ((tv = malloc(n * sizeof *tv)) == NULL) {
					rc = evs__fail(s, EVS_NOMEM, "out of memory");
					goto out;
				}
				for (size_t k = 0; k < n; k++)
					tv[k] = events[k].type_version;
			}
			tv[i] = want;
		}
	}
out:
	evs__schemas_put(s, c);
	if (rc == EVS_OK)
		*versions = tv;
	else
		free(tv);
	return rc;
}
