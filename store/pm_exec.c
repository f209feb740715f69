/*
 * pm_exec.c - one step of a process manager: load the instance, decide,
 * execute its commands against their aggregates, and commit everything in
 * one evs_append_ex() (see evstore_pm.h for the model).
 *
 * Within a step every instance event is folded at once (position 0), so a
 * decide() that runs again for a rejection sees the events of the same
 * step. Commands run in the order issued; a rejected one is recorded and
 * handed back to decide() after the round, at most EVS_PM_MAX_ROUNDS
 * rounds. Nothing is written before the single commit: a version conflict
 * on any part (the instance or an aggregate) retries the whole step from a
 * fresh load, with a growing random pause (100 us doubling, at most 12.8 ms),
 * max_attempts times; then the instance is parked (park() below).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pm_internal.h"

/* ---- executing commands ------------------------------------------------- */

static int issued(evs_pm_step *st, const evs__pm_cmd *c, const char *type, const char *reason)
{
	evs__pm_mp m;

	evs__pm_mp_init(&m);
	msgpack_pack_map(&m.pk, reason ? 4 : c->has_undo ? 5 : 4);
	evs__pm_mp_kv_str(&m, "aggregate", c->agg);
	evs__pm_mp_kv_str(&m, "stream", c->stream);
	evs__pm_mp_kv_str(&m, "type", c->c.type);
	if (reason) {
		evs__pm_mp_kv_str(&m, "reason", reason);
	} else {
		evs__pm_mp_kv_bin(&m, "data", c->c.data, c->c.data_len);
		if (c->has_undo) {
			evs__pm_mp_str(&m, "undo");
			msgpack_pack_map(&m.pk, 4);
			evs__pm_mp_kv_str(&m, "aggregate", c->uagg);
			evs__pm_mp_kv_str(&m, "stream", c->ustream);
			evs__pm_mp_kv_str(&m, "type", c->u.type);
			evs__pm_mp_kv_bin(&m, "data", c->u.data, c->u.data_len);
		}
	}
	return evs__pm_lib_emit(st, type, &m);
}

/* Load the command's aggregate, decide, keep its events as a part. */
static int exec_cmd(evs_pm_step *st, const evs__pm_cmd *c)
{
	evs_aggregate *a = evs__pm_find_agg(st->pm, c->agg);
	const evs_event_in *evs;
	const char *why;
	evs_loaded li;
	void *state;
	size_t n;
	int rc;

	for (size_t i = 0; i < st->nparts; i++)
		if (strcmp(st->parts[i].stream, c->stream) == 0)
			return evs__pm_fail(st, EVS_INVALID,
					    "two commands to stream \"%s\" in one step", c->stream);
	if ((state = malloc(a->def.state_size)) == NULL)
		return st->err = EVS_NOMEM;
	if ((rc = evs_aggregate_load(a, c->stream, NULL, state, &li)) != EVS_OK) {
		free(state);
		return st->err = rc;
	}
	rc = evs__decide(a, state, &c->c, st->dec, &evs, &n, &why);
	if (rc == EVS_REJECTED) {
		evs__pm_rej *r = &st->rejs[st->nrejs++];
		r->c = *c;
		r->reason = evs__pm_strdup(st, why);
		st->rejected++;
		rc = issued(st, c, EVS__PM_REJECTED, why);
	} else if (rc == EVS_OK) {
		evs__pm_part *p = &st->parts[st->nparts];
		p->agg = a;
		p->stream = c->stream;
		p->expected = li.version;
		p->n = n;
		p->ev = n ? evs__pm_alloc(st, n * sizeof *p->ev) : NULL;
		for (size_t j = 0; j < n && p->ev; j++) {
			evs_event_in *e = &p->ev[j];
			*e = evs[j];
			e->type = evs__pm_strdup(st, evs[j].type);
			e->data = evs__pm_dup(st, evs[j].data, evs[j].data_len);
			e->metadata = evs__pm_dup(st, evs[j].metadata, evs[j].metadata_len);
			if (evs[j].data == NULL)
				e->data = NULL;
			if (evs[j].metadata == NULL)
				e->metadata = NULL;
			evs__pm_id(e->id, st->pm->name, st->instance, st->key,
				   (uint32_t)st->nparts + 1, (uint32_t)j);
			memcpy(e->correlation_id, st->corr, 16);
			memcpy(e->causation_id, st->cause, 16);
		}
		if (n)
			st->nparts++;
		st->accepted++;
		rc = st->err ? st->err : issued(st, c, EVS__PM_ISSUED, NULL);
	} else {
		st->err = rc;
	}
	evs_aggregate_release(a, state);
	free(state);
	return rc;
}

/* Run the pending commands and feed rejections back, round after round. */
static int run_rounds(evs_pm_step *st, evs_pm_input *in)
{
	for (int round = 0; st->npending > 0; round++) {
		evs__pm_cmd batch[EVS_PM_MAX_COMMANDS];
		size_t nb = st->npending;

		if (round == EVS_PM_MAX_ROUNDS)
			return evs__pm_fail(st, EVS_INVALID, "more than 8 rounds of rejections%s",
					    NULL);
		memcpy(batch, st->pending, nb * sizeof *batch);
		st->npending = 0;
		st->nrejs = 0;
		for (size_t i = 0; i < nb; i++) {
			int rc = exec_cmd(st, &batch[i]);
			if (rc != EVS_OK && rc != EVS_REJECTED)
				return rc;
		}
		size_t nr = st->nrejs;
		evs__pm_rej rs[EVS_PM_MAX_COMMANDS];
		memcpy(rs, st->rejs, nr * sizeof *rs);
		for (size_t i = 0; i < nr; i++) {
			evs_pm_input r = *in;
			r.kind = EVS_PM_REJECTION;
			r.status = st->inst->status;
			r.aggregate = rs[i].c.agg;
			r.stream = rs[i].c.stream;
			r.command = &rs[i].c.c;
			r.reason = rs[i].reason;
			int rc =
				st->pm->def.decide(st->pm->def.ctx, evs__pm_user(st->inst), &r, st);
			if (rc != EVS_OK || st->err)
				return st->err ? st->err
					       : evs__pm_fail(st, rc,
							      "decide failed on a rejection%s",
							      NULL);
		}
	}
	return st->err;
}

/* ---- one step ----------------------------------------------------------- */

typedef struct input_spec {
	int kind;
	int route;
	const evs_event *event;
	const char *instance;
	const char *timer;
	int64_t due;
	int64_t now;
	const char *checkpoint;
	bool resume;
} input_spec;

static void step_clear(evs_pm_step *st)
{
	while (st->arena) {
		evs__pm_blk *b = st->arena;
		st->arena = b->next;
		free(b);
	}
}

static bool is_fatal(int rc)
{
	return rc == EVS_IO || rc == EVS_NOMEM || rc == EVS_FULL || rc == EVS_READONLY ||
	       rc == EVS_CORRUPT || rc == EVS_BUSY;
}

/* Commit the step: instance part, command parts, checkpoint writes. */
static int commit(evs_pm_step *st, evs_pm_result *r)
{
	evs_append_part parts[EVS_PM_MAX_COMMANDS + 1];
	evs_append_result res[EVS_PM_MAX_COMMANDS + 1];
	evs_checkpoint_write cw[EVS__PM_MAX_CPS];
	size_t np = 0;
	int rc;

	if (st->nev) {
		parts[np].stream = st->stream;
		parts[np].expected = st->base_version;
		parts[np].events = st->ev;
		parts[np++].n = st->nev;
	}
	for (size_t i = 0; i < st->nparts; i++) {
		parts[np].stream = st->parts[i].stream;
		parts[np].expected = st->parts[i].expected;
		parts[np].events = st->parts[i].ev;
		parts[np++].n = st->parts[i].n;
	}
	for (size_t i = 0; i < st->ncps; i++) {
		cw[i].name = st->cps[i].name;
		cw[i].position = st->cps[i].pos;
		cw[i].remove = st->cps[i].remove;
	}
	if (np == 0 && st->ncps == 0)
		return EVS_OK;
	rc = evs_append_ex(st->pm->s, parts, np, cw, st->ncps, NULL, res, NULL);
	if (rc == EVS_OK && np > 0) {
		/* the commanded aggregates' snapshots, as evs_execute takes them */
		for (size_t i = 0, k = np - st->nparts; i < st->nparts; i++, k++) {
			evs_aggregate *a = st->parts[i].agg;
			uint64_t every = a->def.snapshot_every;
			if (every && a->snapshots && !res[k].idempotent &&
			    res[k].version / every != st->parts[i].expected / every &&
			    evs_snapshot_take(a, st->parts[i].stream, NULL) != EVS_OK)
				evs__log(st->pm->s, EVS_LOG_WARNING,
					 "aggregate \"%s\": no snapshot of stream \"%s\": %s",
					 a->name, st->parts[i].stream, evs_errmsg(st->pm->s));
		}
		r->stepped = 1;
		r->version = st->nev ? res[0].version : st->base_version;
		r->commit_pos = res[np - 1].last_position;
	}
	return rc;
}

static int park(evs_pm *pm, const input_spec *is, const char *stream, uint64_t from,
		const char *reason);

static void set_input(const input_spec *is, evs_pm_step *st, evs_pm_input *in)
{
	memset(in, 0, sizeof *in);
	in->kind = is->kind;
	in->status = st->inst->status;
	in->now = is->now;
	in->instance = is->instance;
	in->event = is->event;
	in->timer = is->timer;
	in->due = is->due;
}

/* The attempt on a loaded instance. */
static int attempt_loaded(evs_pm *pm, const input_spec *is, evs_pm_step *st, evs_pm_result *r,
			  uint64_t *resume_from)
{
	evs__pm_inst *inst = st->inst;
	evs_pm_input in;
	evs__pm_mp m;
	char row[EVS__PM_CP_MAX];
	int rc;

	*resume_from = is->kind == EVS_PM_EVENT ? is->event->position : inst->last_input + 1;
	bool finished = inst->status == EVS_PM_COMPLETED || inst->status == EVS_PM_FAILED;
	if (is->kind == EVS_PM_EVENT) {
		if ((is->route == EVS_PM_CONTINUE && inst->status == EVS_PM_NEW) ||
		    (is->route == EVS_PM_START && inst->status != EVS_PM_NEW) ||
		    is->event->position <= inst->last_input || finished) {
			r->skipped = 1;
			return EVS_OK;
		}
		st->input_pos = is->event->position;
		snprintf(st->key, sizeof st->key, "e%llu", (unsigned long long)st->input_pos);
		memcpy(st->cause, is->event->id, 16);
		if (!evs__is_zero16(is->event->correlation_id))
			memcpy(st->corr, is->event->correlation_id, 16);
	} else {
		evs__pm_timer *t = evs__pm_find_timer(inst, is->timer);
		evs__pm_cp_timer(pm->name, is->due, is->instance, is->timer, row);
		evs__pm_cp_put(st, row, 0, 1);
		if (finished || t == NULL || t->due != is->due) {
			r->skipped = 1; /* late or stale: drop the row */
			return commit(st, r);
		}
		snprintf(st->key, sizeof st->key, "t%016llx/%s", (unsigned long long)is->due,
			 is->timer);
		evs__pm_id(st->cause, pm->name, is->instance, st->key, 0, 0);
	}
	if (evs__is_zero16(st->corr))
		evs__pm_id(st->corr, pm->name, is->instance, "correlation", 0, 0);
	evs__pm_mp_init(&m);
	msgpack_pack_map(&m.pk, 1);
	evs__pm_mp_kv_u64(&m, "input", st->input_pos);
	st->meta = evs__pm_dup(st, m.sb.data, m.sb.size);
	st->meta_len = m.sb.size;
	evs__pm_mp_free(&m);
	if (st->meta == NULL)
		return EVS_NOMEM;

	if (is->kind == EVS_PM_EVENT && is->route == EVS_PM_START) {
		evs__pm_mp_init(&m);
		msgpack_pack_map(&m.pk, 0);
		evs__pm_lib_emit(st, EVS__PM_STARTED, &m);
	} else if (is->kind == EVS_PM_TIMER) {
		evs__pm_mp_init(&m);
		msgpack_pack_map(&m.pk, 2);
		evs__pm_mp_kv_str(&m, "timer", is->timer);
		evs__pm_mp_kv_i64(&m, "due", is->due);
		evs__pm_lib_emit(st, EVS__PM_TIMER_FIRED, &m);
	}
	if (st->err)
		return st->err;
	set_input(is, st, &in);
	rc = pm->def.decide(pm->def.ctx, evs__pm_user(inst), &in, st);
	if (st->err)
		return st->err;
	if (rc != EVS_OK)
		return evs__fail(pm->s, rc, "decide failed: %s", evs_strerror(rc));
	if ((rc = run_rounds(st, &in)) != EVS_OK)
		return rc;
	if (is->checkpoint && st->nev)
		evs__pm_cp_put(st, is->checkpoint, is->event->position, 0);
	if (st->err)
		return st->err;
	rc = commit(st, r);
	r->commands = st->accepted;
	r->rejections = st->rejected;
	return rc;
}

/* One attempt: EVS_OK (done or skipped), EVS_WRONG_VERSION, or a code
 * (the reason is the store's message). */
static int attempt(evs_pm *pm, const input_spec *is, evs_pm_step *st, evs_pm_result *r,
		   uint64_t *resume_from)
{
	evs_loaded li;
	int rc;

	if ((rc = evs_aggregate_load(pm->inst_agg, st->stream, NULL, st->inst, &li)) != EVS_OK)
		return rc;
	st->base_version = li.version;
	r->version = li.version;
	rc = attempt_loaded(pm, is, st, r, resume_from);
	evs_aggregate_release(pm->inst_agg, st->inst);
	return rc;
}

/* A snapshot when the step carried the version across a multiple of
 * snapshot_every (from a fresh load, so positions are the stored ones);
 * a failure is only logged: snapshots make loads faster, nothing else. */
static void snapshot_after(evs_pm *pm, const char *stream, uint64_t before, uint64_t after)
{
	uint64_t every = pm->def.snapshot_every;

	if (every == 0 || pm->def.snapshot_encode == NULL || after / every == before / every)
		return;
	if (evs_snapshot_take(pm->inst_agg, stream, NULL) != EVS_OK)
		evs__log(pm->s, EVS_LOG_WARNING,
			 "process manager \"%s\": no snapshot of \"%s\" at version %llu: %s",
			 pm->name, stream, (unsigned long long)after, evs_errmsg(pm->s));
}

static int run_step(evs_pm *pm, const input_spec *is, evs_pm_result *r)
{
	unsigned max = pm->def.max_attempts ? pm->def.max_attempts : EVS_DEFAULT_ATTEMPTS;
	char stream[EVS__PM_CP_MAX], row[EVS__PM_CP_MAX], reason[512];
	uint64_t from = 0, pos;
	evs_pm_step *st;
	int rc = EVS_OK;

	evs__pm_stream(pm, is->instance, stream);
	if (!is->resume) {
		evs__pm_cp_parked(pm->name, is->instance, row);
		rc = evs_checkpoint_get(pm->s, row, &pos);
		if (rc == EVS_OK) {
			r->skipped = 1;
			return EVS_OK;
		}
		if (rc != EVS_NOT_FOUND)
			return rc;
	}
	if ((st = calloc(1, sizeof *st)) == NULL)
		return EVS_NOMEM;
	if ((st->inst = malloc(pm->inst_size)) == NULL ||
	    (st->dec = evs__decision_new(pm->s)) == NULL) {
		rc = EVS_NOMEM;
		goto out;
	}
	for (r->attempts = 1;; r->attempts++) {
		evs__pm_inst *inst = st->inst;
		evs_decision *dec = st->dec;
		memset(st, 0, sizeof *st);
		st->inst = inst;
		st->dec = dec;
		st->pm = pm;
		st->instance = is->instance;
		st->stream = stream;
		rc = attempt(pm, is, st, r, &from);
		if (rc != EVS_OK && rc != EVS_WRONG_VERSION)
			snprintf(reason, sizeof reason, "%s", evs_errmsg(pm->s));
		step_clear(st);
		if (rc == EVS_OK && r->stepped)
			snapshot_after(pm, stream, st->base_version, r->version);
		if (rc == EVS_OK || is_fatal(rc))
			break;
		if (r->attempts >= max) {
			if (rc == EVS_WRONG_VERSION)
				snprintf(reason, sizeof reason,
					 "still a version conflict after %u attempts", r->attempts);
			rc = park(pm, is, stream, from, reason);
			if (rc == EVS_OK)
				r->parked = 1;
			break;
		}
		evs__backoff(r->attempts, 20000);
	}
out:
	if (st) {
		evs__decision_destroy(st->dec);
		free(st->inst);
		free(st);
	}
	return rc;
}

/* Park the instance: a pm.Parked event and the parked row (the input
 * position to replay from), and the runner's checkpoint past the input. */
static int park(evs_pm *pm, const input_spec *is, const char *stream, uint64_t from,
		const char *reason)
{
	char row[EVS__PM_CP_MAX], key[64];
	evs_checkpoint_write cw[2];
	evs_stream_info head;
	evs_append_part part;
	evs_event_in ev;
	evs__pm_mp d, meta;
	size_t ncw = 1;
	int rc = EVS_OK;

	from = from ? from : 1;
	evs__pm_cp_parked(pm->name, is->instance, row);
	snprintf(key, sizeof key, "p%llu", (unsigned long long)from);
	evs__pm_mp_init(&d);
	msgpack_pack_map(&d.pk, 2);
	evs__pm_mp_kv_str(&d, "reason", reason);
	evs__pm_mp_kv_u64(&d, "input", from);
	evs__pm_mp_init(&meta);
	msgpack_pack_map(&meta.pk, 1);
	evs__pm_mp_kv_u64(&meta, "input", 0);
	cw[0].name = row;
	cw[0].position = from;
	cw[0].remove = 0;
	if (is->checkpoint && is->kind == EVS_PM_EVENT) {
		cw[1].name = is->checkpoint;
		cw[1].position = is->event->position;
		cw[1].remove = 0;
		ncw = 2;
	}
	for (unsigned i = 0; i < 8; i++) {
		rc = evs_stream_head(pm->s, stream, &head);
		if (rc == EVS_NOT_FOUND)
			head.version = 0;
		else if (rc != EVS_OK)
			break;
		memset(&ev, 0, sizeof ev);
		ev.type = EVS__PM_PARKED;
		ev.data = d.sb.data;
		ev.data_len = d.sb.size;
		ev.metadata = meta.sb.data;
		ev.metadata_len = meta.sb.size;
		evs__pm_id(ev.id, pm->name, is->instance, key, 0, (uint32_t)head.version);
		evs__pm_id(ev.correlation_id, pm->name, is->instance, "correlation", 0, 0);
		part.stream = stream;
		part.expected = head.version;
		part.events = &ev;
		part.n = 1;
		rc = evs_append_ex(pm->s, &part, 1, cw, ncw, NULL, NULL, NULL);
		if (rc != EVS_WRONG_VERSION)
			break;
	}
	evs__pm_mp_free(&d);
	evs__pm_mp_free(&meta);
	if (rc == EVS_OK)
		evs__log(pm->s, EVS_LOG_WARNING,
			 "process manager \"%s\": instance \"%s\" parked at position %llu: %s",
			 pm->name, is->instance, (unsigned long long)from, reason);
	return rc;
}

int evs__pm_route(evs_pm *pm, const evs_event *ev, char *instance)
{
	int route;

	instance[0] = 0;
	if (ev->stream.len >= 3 && memcmp(ev->stream.ptr, "pm:", 3) == 0)
		return EVS_PM_IGNORE; /* instance streams are not inputs */
	route = pm->def.correlate(pm->def.ctx, ev, instance);
	if (route == EVS_PM_IGNORE)
		return route;
	instance[EVS_PM_MAX_INSTANCE] = 0;
	if ((route != EVS_PM_START && route != EVS_PM_CONTINUE) || !evs__pm_instance_ok(instance)) {
		evs__log(pm->s, EVS_LOG_WARNING,
			 "process manager \"%s\": correlate gave route %d and instance \"%s\" "
			 "for position %llu; event ignored",
			 pm->name, route, instance, (unsigned long long)ev->position);
		return EVS_PM_IGNORE;
	}
	return route;
}

int evs__pm_step_event(evs_pm *pm, const evs_event *ev, int route, const char *instance,
		       int64_t now, const char *checkpoint, bool resume, evs_pm_result *r)
{
	input_spec is;

	memset(&is, 0, sizeof is);
	is.kind = EVS_PM_EVENT;
	is.route = route;
	is.event = ev;
	is.instance = instance;
	is.now = now;
	is.checkpoint = checkpoint;
	is.resume = resume;
	r->route = route;
	return run_step(pm, &is, r);
}

int evs_pm_handle(evs_pm *pm, const evs_event *ev, int64_t now, const char *checkpoint,
		  evs_pm_result *r)
{
	char instance[EVS_PM_MAX_INSTANCE + 1];
	evs_pm_result tmp;
	size_t len;
	int route;

	r = r ? r : &tmp;
	memset(r, 0, sizeof *r);
	if (pm == NULL || ev == NULL)
		return EVS_INVALID;
	if (checkpoint && evs__check_name(checkpoint, &len) <= 0)
		return evs__fail(pm->s, EVS_INVALID, "bad checkpoint name");
	if ((route = evs__pm_route(pm, ev, instance)) == EVS_PM_IGNORE)
		return EVS_OK;
	return evs__pm_step_event(pm, ev, route, instance, now, checkpoint, false, r);
}

int evs_pm_fire(evs_pm *pm, const char *instance, const char *timer, int64_t due, int64_t now,
		evs_pm_result *r)
{
	evs_pm_result tmp;
	input_spec is;

	r = r ? r : &tmp;
	memset(r, 0, sizeof *r);
	if (pm == NULL)
		return EVS_INVALID;
	if (!evs__pm_instance_ok(instance) || !evs__pm_name_ok(timer, true) || due < 0)
		return evs__fail(pm->s, EVS_INVALID, "bad instance id, timer name or due time");
	memset(&is, 0, sizeof is);
	is.kind = EVS_PM_TIMER;
	is.instance = instance;
	is.timer = timer;
	is.due = due;
	is.now = now;
	return run_step(pm, &is, r);
}
