/*
 * pm_step.c - the step under construction and what decide() calls on it:
 * instance events (folded at once, so a later decide() in the same step
 * sees them), commands, timers, compensation, completion. pm_exec.c runs
 * and commits the step.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pm_internal.h"

void *evs__pm_alloc(evs_pm_step *st, size_t n)
{
	evs__pm_blk *b = malloc(sizeof *b + n + 1);

	if (b == NULL) {
		st->err = EVS_NOMEM;
		return NULL;
	}
	b->next = st->arena;
	st->arena = b;
	return b->data;
}

void *evs__pm_dup(evs_pm_step *st, const void *p, size_t n)
{
	char *d = evs__pm_alloc(st, n);

	if (d == NULL)
		return NULL;
	if (n)
		memcpy(d, p, n);
	d[n] = 0;
	return d;
}

const char *evs__pm_strdup(evs_pm_step *st, const char *s)
{
	return s ? evs__pm_dup(st, s, strlen(s)) : NULL;
}

int evs__pm_fail(evs_pm_step *st, int code, const char *fmt, const char *arg)
{
	if (st->err == EVS_OK) {
		st->err = code;
		evs__fail(st->pm->s, code, fmt, arg ? arg : "");
	}
	return code;
}

/* Append an instance event, with the step's ids and metadata, and fold it. */
int evs__pm_inst_emit(evs_pm_step *st, const char *type, const void *data, size_t len)
{
	evs_event view;
	evs_event_in *e;
	int rc;

	if (st->err)
		return st->err;
	if (st->nev == sizeof st->ev / sizeof st->ev[0])
		return evs__pm_fail(st, EVS_INVALID,
				    "a step writes more than 256 instance events%s", NULL);
	e = &st->ev[st->nev];
	memset(e, 0, sizeof *e);
	e->type = evs__pm_strdup(st, type);
	e->data = evs__pm_dup(st, data, len);
	e->data_len = len;
	if (e->type == NULL || e->data == NULL)
		return EVS_NOMEM;
	e->metadata = st->meta;
	e->metadata_len = st->meta_len;
	evs__pm_id(e->id, st->pm->name, st->instance, st->key, 0, (uint32_t)st->nev);
	memcpy(e->correlation_id, st->corr, 16);
	memcpy(e->causation_id, st->cause, 16);
	st->nev++;

	memset(&view, 0, sizeof view);
	view.version = st->base_version + st->nev;
	view.stream.ptr = st->stream;
	view.stream.len = strlen(st->stream);
	view.type.ptr = e->type;
	view.type.len = strlen(e->type);
	view.type_version = 1;
	memcpy(view.id, e->id, 16);
	memcpy(view.correlation_id, e->correlation_id, 16);
	memcpy(view.causation_id, e->causation_id, 16);
	view.data = e->data;
	view.data_len = len;
	view.metadata = e->metadata;
	view.metadata_len = e->metadata_len;
	if ((rc = evs__pm_inst_apply(st->pm, st->inst, &view)) != EVS_OK)
		return evs__pm_fail(st, rc, "evolve failed on the step's event \"%s\"", type);
	return EVS_OK;
}

/* Emit a library event whose data the packer holds (and free it). */
int evs__pm_lib_emit(evs_pm_step *st, const char *type, evs__pm_mp *m)
{
	int rc = m->sb.size == 0 ? EVS_NOMEM : evs__pm_inst_emit(st, type, m->sb.data, m->sb.size);
	evs__pm_mp_free(m);
	return rc;
}

void evs__pm_cp_put(evs_pm_step *st, const char *name, uint64_t pos, int remove)
{
	size_t i;

	for (i = 0; i < st->ncps; i++)
		if (strcmp(st->cps[i].name, name) == 0)
			break;
	if (i == st->ncps) {
		if (st->ncps == EVS__PM_MAX_CPS) {
			evs__pm_fail(st, EVS_INVALID, "too many timer changes in one step%s", NULL);
			return;
		}
		st->ncps++;
	}
	snprintf(st->cps[i].name, sizeof st->cps[i].name, "%s", name);
	st->cps[i].pos = pos;
	st->cps[i].remove = remove;
}

evs__pm_timer *evs__pm_find_timer(evs__pm_inst *in, const char *name)
{
	for (size_t i = 0; i < in->ntimers; i++)
		if (strcmp(in->timers[i].name, name) == 0)
			return &in->timers[i];
	return NULL;
}

evs_aggregate *evs__pm_find_agg(evs_pm *pm, const char *name)
{
	for (size_t i = 0; i < pm->def.naggregates; i++)
		if (strcmp(pm->aggs[i]->name, name) == 0)
			return pm->aggs[i];
	return NULL;
}

/* ---- what decide() calls ------------------------------------------------ */

int evs_pm_emit(evs_pm_step *st, const char *type, const void *data, size_t len)
{
	size_t tl;

	if (st == NULL)
		return EVS_INVALID;
	if (type == NULL || (tl = strnlen(type, EVS_MAX_NAME + 1)) == 0 || tl > EVS_MAX_NAME)
		return evs__pm_fail(st, EVS_INVALID, "event type is empty or too long%s", NULL);
	if (strncmp(type, "pm.", 3) == 0)
		return evs__pm_fail(st, EVS_INVALID, "event type \"%s\" is reserved (pm.)", type);
	if (data == NULL && len)
		return evs__pm_fail(st, EVS_INVALID, "NULL data with a length%s", NULL);
	if (data == NULL) {
		static const uint8_t empty = 0x80;
		data = &empty;
		len = 1;
	}
	return evs__pm_inst_emit(st, type, data, len);
}

static int cmd_copy(evs_pm_step *st, const char *what, const char *agg, const char *stream,
		    const evs_command *c, const char **oa, const char **os, evs_command *oc)
{
	size_t len;

	if (agg == NULL || evs__pm_find_agg(st->pm, agg) == NULL)
		return evs__pm_fail(st, EVS_INVALID,
				    "%s names an aggregate the manager does not have", what);
	if (stream == NULL || evs__check_name(stream, &len) <= 0)
		return evs__pm_fail(st, EVS_INVALID, "%s has an invalid stream id", what);
	if (c == NULL || c->type == NULL || (len = strnlen(c->type, EVS_MAX_NAME + 1)) == 0 ||
	    len > EVS_MAX_NAME || (c->data == NULL && c->data_len))
		return evs__pm_fail(st, EVS_INVALID, "%s has no type or a bad payload", what);
	*oa = evs__pm_strdup(st, agg);
	*os = evs__pm_strdup(st, stream);
	oc->type = evs__pm_strdup(st, c->type);
	oc->data = evs__pm_dup(st, c->data ? c->data : "\x80", c->data ? c->data_len : 1);
	oc->data_len = c->data ? c->data_len : 1;
	return st->err;
}

int evs_pm_command(evs_pm_step *st, const char *aggregate, const char *stream,
		   const evs_command *command, const evs_command *undo)
{
	evs__pm_cmd *c;

	if (st == NULL)
		return EVS_INVALID;
	if (st->err)
		return st->err;
	if (st->ncommands == EVS_PM_MAX_COMMANDS)
		return evs__pm_fail(st, EVS_INVALID, "more than 16 commands in one step%s", NULL);
	c = &st->pending[st->npending];
	memset(c, 0, sizeof *c);
	if (cmd_copy(st, "command", aggregate, stream, command, &c->agg, &c->stream, &c->c))
		return st->err;
	if (undo != NULL) {
		if (cmd_copy(st, "undo command", aggregate, stream, undo, &c->uagg, &c->ustream,
			     &c->u))
			return st->err;
		c->has_undo = true;
	}
	st->npending++;
	st->ncommands++;
	return EVS_OK;
}

int evs_pm_timer_set(evs_pm_step *st, const char *timer, int64_t due)
{
	char row[EVS__PM_CP_MAX];
	evs__pm_timer *t;
	evs__pm_mp m;

	if (st == NULL)
		return EVS_INVALID;
	if (!evs__pm_name_ok(timer, true))
		return evs__pm_fail(st, EVS_INVALID, "bad timer name%s", NULL);
	if (due < 0)
		return evs__pm_fail(st, EVS_INVALID, "timer \"%s\" is due before 1970", timer);
	t = evs__pm_find_timer(st->inst, timer);
	if (t == NULL && st->inst->ntimers == EVS_PM_MAX_TIMERS)
		return evs__pm_fail(st, EVS_INVALID, "more than 16 timers set at once (\"%s\")",
				    timer);
	if (t != NULL) {
		evs__pm_cp_timer(st->pm->name, t->due, st->instance, timer, row);
		evs__pm_cp_put(st, row, 0, 1);
	}
	evs__pm_cp_timer(st->pm->name, due, st->instance, timer, row);
	evs__pm_cp_put(st, row, st->input_pos, 0);
	evs__pm_mp_init(&m);
	msgpack_pack_map(&m.pk, 2);
	evs__pm_mp_kv_str(&m, "timer", timer);
	evs__pm_mp_kv_i64(&m, "due", due);
	return evs__pm_lib_emit(st, EVS__PM_TIMER_SET, &m);
}

static int timer_cancel(evs_pm_step *st, const char *timer)
{
	char row[EVS__PM_CP_MAX];
	evs__pm_timer *t = evs__pm_find_timer(st->inst, timer);
	evs__pm_mp m;

	if (t == NULL)
		return st->err;
	evs__pm_cp_timer(st->pm->name, t->due, st->instance, timer, row);
	evs__pm_cp_put(st, row, 0, 1);
	evs__pm_mp_init(&m);
	msgpack_pack_map(&m.pk, 1);
	evs__pm_mp_kv_str(&m, "timer", timer);
	return evs__pm_lib_emit(st, EVS__PM_TIMER_CANCEL, &m);
}

int evs_pm_timer_cancel(evs_pm_step *st, const char *timer)
{
	if (st == NULL)
		return EVS_INVALID;
	if (!evs__pm_name_ok(timer, true))
		return evs__pm_fail(st, EVS_INVALID, "bad timer name%s", NULL);
	return timer_cancel(st, timer);
}

int evs_pm_compensate(evs_pm_step *st, const char *reason)
{
	evs__pm_inst *in;
	evs__pm_mp m;

	if (st == NULL)
		return EVS_INVALID;
	in = st->inst;
	if (in->status != EVS_PM_RUNNING)
		return evs__pm_fail(st, EVS_INVALID,
				    "compensate on an instance that is not running%s", NULL);
	for (size_t i = in->nundo; i-- > 0;) {
		evs__pm_undo *u = &in->undo[i];
		evs_command c = {u->type, u->data, u->len};
		if (evs_pm_command(st, u->aggregate, u->stream, &c, NULL) != EVS_OK)
			return st->err;
	}
	evs__pm_mp_init(&m);
	msgpack_pack_map(&m.pk, 1);
	evs__pm_mp_kv_str(&m, "reason", reason && *reason ? reason : "compensating");
	return evs__pm_lib_emit(st, EVS__PM_COMPENSATING, &m);
}

static int finish(evs_pm_step *st, const char *type, const char *reason)
{
	char row[EVS__PM_CP_MAX];
	evs__pm_mp m;

	if (st->inst->status == EVS_PM_COMPLETED || st->inst->status == EVS_PM_FAILED)
		return evs__pm_fail(st, EVS_INVALID, "the instance is finished already%s", NULL);
	for (size_t i = 0; i < st->inst->ntimers; i++) {
		evs__pm_cp_timer(st->pm->name, st->inst->timers[i].due, st->instance,
				 st->inst->timers[i].name, row);
		evs__pm_cp_put(st, row, 0, 1);
	}
	evs__pm_mp_init(&m);
	msgpack_pack_map(&m.pk, reason ? 1 : 0);
	if (reason)
		evs__pm_mp_kv_str(&m, "reason", *reason ? reason : "failed");
	return evs__pm_lib_emit(st, type, &m);
}

int evs_pm_complete(evs_pm_step *st)
{
	return st ? finish(st, EVS__PM_COMPLETED, NULL) : EVS_INVALID;
}

int evs_pm_fail(evs_pm_step *st, const char *reason)
{
	return st ? finish(st, EVS__PM_FAILED, reason ? reason : "") : EVS_INVALID;
}
