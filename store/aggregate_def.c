/*
 * aggregate_def.c - aggregate definitions bound to a store, the states
 * they start from, and the sink snapshot encoders and upcasters write
 * into. What aggregate.c (load, execute) and snapshot.c share.
 */
#include <stdlib.h>
#include <string.h>

#include "agg_internal.h"

/* ---- definitions -------------------------------------------------------- */

int evs__aggregate_init(evs_aggregate *a, evs_store *s, const evs_aggregate_def *def)
{
	size_t len;

	if (s == NULL || def == NULL)
		return EVS_INVALID;
	if (evs__check_name(def->name, &len) != 1)
		return evs__fail(s, EVS_INVALID,
				 "aggregate definition: name must be 1 to %d bytes of UTF-8",
				 EVS_MAX_NAME);
	if (def->state_size == 0)
		return evs__fail(s, EVS_INVALID, "aggregate \"%s\": state_size is 0", def->name);
	if (def->apply == NULL)
		return evs__fail(s, EVS_INVALID, "aggregate \"%s\": apply is required", def->name);
	if ((def->snapshot_encode == NULL) != (def->snapshot_decode == NULL))
		return evs__fail(
			s, EVS_INVALID,
			"aggregate \"%s\": snapshot_encode and snapshot_decode go together",
			def->name);
	if (def->snapshot_encode && def->snapshot_version == 0)
		return evs__fail(s, EVS_INVALID,
				 "aggregate \"%s\": snapshot_version must be at least 1",
				 def->name);
	if (def->snapshot_every && def->snapshot_encode == NULL)
		return evs__fail(s, EVS_INVALID,
				 "aggregate \"%s\": snapshot_every needs snapshot functions",
				 def->name);
	memset(a, 0, sizeof *a);
	a->s = s;
	a->def = *def;
	memcpy(a->name, def->name, len + 1);
	a->name_len = len;
	a->def.name = a->name;
	a->snapshots = def->snapshot_encode != NULL;
	return EVS_OK;
}

int evs_aggregate_new(evs_store *s, const evs_aggregate_def *def, evs_aggregate **out)
{
	evs_aggregate *a;
	int rc;

	if (out)
		*out = NULL;
	if (s == NULL || def == NULL || out == NULL)
		return EVS_INVALID;
	a = evs__malloc(sizeof *a);
	if (a == NULL)
		return evs__fail(s, EVS_NOMEM, "out of memory");
	if ((rc = evs__aggregate_init(a, s, def)) != EVS_OK) {
		free(a);
		return rc;
	}
	*out = a;
	return EVS_OK;
}

void evs_aggregate_free(evs_aggregate *a)
{
	free(a);
}

int evs__state_init(evs_aggregate *a, void *state)
{
	int rc;

	memset(state, 0, a->def.state_size);
	if (a->def.init == NULL)
		return EVS_OK;
	rc = a->def.init(a->def.ctx, state);
	if (rc != EVS_OK)
		return evs__fail(a->s, rc, "aggregate \"%s\": init failed: %s", a->name,
				 evs_strerror(rc));
	return EVS_OK;
}

void evs__state_release(evs_aggregate *a, void *state)
{
	if (a->def.release)
		a->def.release(a->def.ctx, state);
}

void evs_aggregate_release(evs_aggregate *a, void *state)
{
	if (a && state)
		evs__state_release(a, state);
}

/* ---- sinks (snapshot encoders write into these) ------------------------- */

int evs_sink_write(void *sink, const char *data, size_t len)
{
	struct evs_sink *k = sink;

	if (k == NULL || k->buf.oom || k->too_large)
		return -1;
	/* the limit is checked here so that it reads as "too large", not as
	 * the buffer's out of memory */
	size_t limit = k->buf.limit ? k->buf.limit : EVS__BUF_DEFAULT_LIMIT;
	if (len > limit - k->buf.len) {
		k->too_large = true;
		return -1;
	}
	evs__buf_putn(&k->buf, data, len);
	return k->buf.oom ? -1 : 0;
}
