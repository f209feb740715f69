/*
 * pm_admin.c - process managers: the definition bound to a store, an
 * instance's status, and what operators do (list parked instances, ask
 * for a resume). Checkpoint names are drawn in evstore_pm.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pm_internal.h"

int evs_pm_new(evs_store *s, const evs_pm_def *def, evs_pm **out)
{
	evs_pm *pm;
	int rc;

	if (out)
		*out = NULL;
	if (s == NULL || def == NULL || out == NULL)
		return EVS_INVALID;
	if (!evs__pm_name_ok(def->name, false))
		return evs__fail(s, EVS_INVALID,
				 "process manager name must be 1 to %d bytes of [a-z0-9_.]",
				 EVS_PM_MAX_NAME);
	if (def->state_size == 0 || def->correlate == NULL || def->decide == NULL ||
	    def->evolve == NULL)
		return evs__fail(s, EVS_INVALID,
				 "process manager \"%s\": state_size, correlate, decide and evolve "
				 "are required",
				 def->name);
	if ((def->ntypes && def->types == NULL) || def->ntypes > 1024)
		return evs__fail(s, EVS_INVALID, "process manager \"%s\": bad types list",
				 def->name);
	for (size_t i = 0; i < def->ntypes; i++) {
		size_t len;
		if (def->types[i] == NULL || evs__check_name(def->types[i], &len) <= 0)
			return evs__fail(s, EVS_INVALID,
					 "process manager \"%s\": type %zu is empty, too long or "
					 "not UTF-8",
					 def->name, i);
	}
	if (def->naggregates && def->aggregates == NULL)
		return evs__fail(s, EVS_INVALID, "process manager \"%s\": aggregates is NULL",
				 def->name);
	for (size_t i = 0; i < def->naggregates; i++) {
		if (def->aggregates[i] == NULL || def->aggregates[i]->s == NULL)
			return evs__fail(s, EVS_INVALID,
					 "process manager \"%s\": aggregate %zu is NULL", def->name,
					 i);
		for (size_t j = 0; j < i; j++)
			if (strcmp(def->aggregates[i]->name, def->aggregates[j]->name) == 0)
				return evs__fail(s, EVS_INVALID,
						 "process manager \"%s\": aggregate \"%s\" is "
						 "listed twice",
						 def->name, def->aggregates[i]->name);
	}
	if ((pm = calloc(1, sizeof *pm)) == NULL ||
	    (def->naggregates && (pm->aggs = calloc(def->naggregates, sizeof *pm->aggs)) == NULL)) {
		free(pm);
		return evs__fail(s, EVS_NOMEM, "out of memory");
	}
	pm->s = s;
	pm->def = *def;
	snprintf(pm->name, sizeof pm->name, "%s", def->name);
	pm->def.name = pm->name;
	for (size_t i = 0; i < def->naggregates; i++)
		pm->aggs[i] = def->aggregates[i];
	pm->def.aggregates = pm->aggs;
	if (def->ntypes) {
		if ((pm->types = calloc(def->ntypes, sizeof *pm->types)) == NULL) {
			evs_pm_free(pm);
			return evs__fail(s, EVS_NOMEM, "out of memory");
		}
		for (size_t i = 0; i < def->ntypes; i++)
			if ((pm->types[i] = strdup(def->types[i])) == NULL) {
				evs_pm_free(pm);
				return evs__fail(s, EVS_NOMEM, "out of memory");
			}
		pm->def.types = (const char *const *)pm->types;
	}
	pm->inst_size = EVS__PM_USER_OFF + def->state_size;
	if ((rc = evs__pm_inst_def(pm, &pm->inst_agg)) != EVS_OK) {
		evs_pm_free(pm);
		return rc;
	}
	*out = pm;
	return EVS_OK;
}

void evs_pm_free(evs_pm *pm)
{
	if (pm == NULL)
		return;
	evs_aggregate_free(pm->inst_agg);
	for (size_t i = 0; pm->types && i < pm->def.ntypes; i++)
		free(pm->types[i]);
	free(pm->types);
	free(pm->aggs);
	free(pm);
}

int evs_pm_status(evs_pm *pm, const char *instance, int *status, uint64_t *version)
{
	char stream[EVS__PM_CP_MAX];
	evs_loaded li;
	void *state;
	int rc;

	if (pm == NULL || status == NULL)
		return EVS_INVALID;
	if (!evs__pm_instance_ok(instance))
		return evs__fail(pm->s, EVS_INVALID, "bad instance id");
	if ((state = malloc(pm->inst_size)) == NULL)
		return evs__fail(pm->s, EVS_NOMEM, "out of memory");
	evs__pm_stream(pm, instance, stream);
	rc = evs_aggregate_load(pm->inst_agg, stream, NULL, state, &li);
	if (rc == EVS_OK) {
		*status = ((evs__pm_inst *)state)->status;
		if (version)
			*version = li.version;
		evs_aggregate_release(pm->inst_agg, state);
	}
	free(state);
	return rc;
}

/* ---- operators ---------------------------------------------------------- */

typedef struct parked_row {
	char instance[EVS_PM_MAX_INSTANCE + 1];
	uint64_t position;
} parked_row;

typedef struct parked_list {
	parked_row *rows;
	size_t n, cap;
	size_t prefix;
	bool oom;
} parked_list;

static int collect(void *ctx, evs_str name, uint64_t position)
{
	parked_list *l = ctx;
	size_t len = name.len - l->prefix;

	if (len == 0 || len > EVS_PM_MAX_INSTANCE)
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		parked_row *r = realloc(l->rows, cap * sizeof *r);
		if (r == NULL) {
			l->oom = true;
			return 1;
		}
		l->rows = r;
		l->cap = cap;
	}
	memcpy(l->rows[l->n].instance, name.ptr + l->prefix, len);
	l->rows[l->n].instance[len] = 0;
	l->rows[l->n++].position = position;
	return 0;
}

/* The reason of the instance's last pm.Parked event. */
static void parked_reason(evs_store *s, const char *stream, char *out, size_t size)
{
	evs_iter *it;
	evs_event ev;
	msgpack_zone z;
	msgpack_object o;

	snprintf(out, size, "(no pm.Parked event found)");
	if (evs_read_stream(s, stream, EVS_ANY, EVS_BACKWARD, 64, &it) != EVS_OK)
		return;
	if (!msgpack_zone_init(&z, 1024)) {
		evs_iter_free(it);
		return;
	}
	while (evs_iter_next(it, &ev) == EVS_OK) {
		size_t off = 0;
		if (ev.type.len != strlen(EVS__PM_PARKED) ||
		    memcmp(ev.type.ptr, EVS__PM_PARKED, ev.type.len) != 0)
			continue;
		if (msgpack_unpack(ev.data, ev.data_len, &off, &z, &o) == MSGPACK_UNPACK_SUCCESS)
			evs__pm_mp_cstr(evs__pm_mp_get(&o, "reason"), out, size);
		break;
	}
	msgpack_zone_destroy(&z);
	evs_iter_free(it);
}

int evs_pm_list_parked(evs_store *s, const char *manager,
		       int (*fn)(void *ctx, const char *instance, uint64_t position,
				 const char *reason),
		       void *ctx)
{
	char prefix[EVS__PM_CP_MAX], stream[EVS__PM_CP_MAX], reason[512];
	parked_list l;
	int rc;

	if (s == NULL || fn == NULL)
		return EVS_INVALID;
	if (!evs__pm_name_ok(manager, false))
		return evs__fail(s, EVS_INVALID, "bad process manager name");
	memset(&l, 0, sizeof l);
	l.prefix = (size_t)snprintf(prefix, sizeof prefix, "pm/%s/parked/", manager);
	rc = evs_checkpoint_list(s, prefix, collect, &l);
	if (l.oom)
		rc = evs__fail(s, EVS_NOMEM, "out of memory");
	for (size_t i = 0; rc == EVS_OK && i < l.n; i++) {
		snprintf(stream, sizeof stream, "pm:%s-%s", manager, l.rows[i].instance);
		parked_reason(s, stream, reason, sizeof reason);
		rc = fn(ctx, l.rows[i].instance, l.rows[i].position, reason);
	}
	free(l.rows);
	return rc;
}

int evs_pm_resume(evs_store *s, const char *manager, const char *instance)
{
	char row[EVS__PM_CP_MAX];
	uint64_t pos;
	int rc;

	if (s == NULL)
		return EVS_INVALID;
	if (!evs__pm_name_ok(manager, false) || !evs__pm_instance_ok(instance))
		return evs__fail(s, EVS_INVALID, "bad process manager name or instance id");
	evs__pm_cp_parked(manager, instance, row);
	if ((rc = evs_checkpoint_get(s, row, &pos)) != EVS_OK)
		return rc == EVS_NOT_FOUND ? evs__fail(s, EVS_NOT_FOUND,
						       "instance \"%s\" of process manager "
						       "\"%s\" is not parked",
						       instance, manager)
					   : rc;
	evs__pm_cp_resume(manager, instance, row);
	return evs_checkpoint_set(s, row, pos);
}
