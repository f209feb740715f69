/*
 * aggregate.c - aggregates: load (snapshot + replay), decide, execute.
 *
 * Load. The state starts from the newest usable snapshot at or before the
 * wanted version (snapshot.c), else from init(), and the stream's events
 * after it are folded with apply() through an ordinary stream iterator.
 * "Latest" needs no head lookup: the replay runs to the iterator's end. "As
 * of" first turns the time or position into the stream's version then (the
 * as-of index) and replays exactly up to it, so a later event or a later
 * snapshot can never leak into the answer.
 *
 * Execute. load -> decide -> evs_append(expected = loaded version). The
 * append's expected-version check is the only concurrency control: a
 * command decided on a stale state is refused as a whole with
 * EVS_WRONG_VERSION. The state is then caught up by folding just the
 * events that won (events never change, so the state at version v plus
 * events v+1.. is the state at the new version), and decide runs again,
 * at most max_attempts rounds. From the third round on a short random
 * sleep spreads contenders out; it is a back-off, not a synchronisation.
 *
 * Snapshots after execute. When the appended events carry the version
 * across a multiple of snapshot_every, the new events are read back (so
 * apply sees their real positions and recorded_at) and folded, and the
 * state is stored in its own transaction. A failure there is logged and
 * otherwise ignored: snapshots only make loads faster.
 *
 * Nothing here holds a read transaction across an append: iterators are
 * freed before evs_append() and before a snapshot is written.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agg_internal.h"

/* ---- decisions (the core is decision.c) ------------------------------- */

int evs_decision_emit(evs_decision *d, const evs_event_in *ev)
{
	if (d == NULL)
		return EVS_INVALID;
	return evs__decision_emit(d, NULL, ev);
}

int evs_decision_reject(evs_decision *d, const char *message)
{
	if (d == NULL)
		return EVS_REJECTED;
	return evs__decision_reject(d, message);
}

/* ---- load --------------------------------------------------------------- */

/*
 * Fold the events after *version (at most `limit`, 0 = to the end) into
 * state, advancing *version, *position and *count.
 */
static int replay(evs_aggregate *a, const char *stream, uint64_t limit, void *state,
		  uint64_t *version, uint64_t *position, uint64_t *count)
{
	evs_iter *it;
	evs_event ev;
	int rc;

	rc = evs_read_stream(a->s, stream, *version + 1, EVS_FORWARD, (size_t)limit, &it);
	if (rc != EVS_OK)
		return rc;
	while ((rc = evs_iter_next(it, &ev)) == EVS_OK) {
		if (ev.version != *version + 1) {
			rc = evs__fail(a->s, EVS_CORRUPT,
				       "stream \"%s\": version %llu follows version %llu", stream,
				       (unsigned long long)ev.version,
				       (unsigned long long)*version);
			break;
		}
		rc = a->def.apply(a->def.ctx, state, &ev);
		if (rc != EVS_OK) {
			rc = evs__fail(
				a->s, rc,
				"aggregate \"%s\": apply failed on version %llu of stream \"%s\" "
				"(type \"%.*s\"): %s",
				a->name, (unsigned long long)ev.version, stream, (int)ev.type.len,
				ev.type.ptr, evs_strerror(rc));
			break;
		}
		*version = ev.version;
		*position = ev.position;
		(*count)++;
	}
	evs_iter_free(it);
	return rc == EVS_END ? EVS_OK : rc;
}

/* Load into `state` (state_size bytes, uninitialised). On failure the state
 * holds nothing. */
static int load(evs_aggregate *a, const char *stream, size_t slen, const evs_at *at, void *state,
		evs_loaded *info)
{
	bool latest = at == NULL || at->kind == EVS_AT_LATEST;
	uint64_t target = 0, target_pos = 0;
	int rc;

	memset(info, 0, sizeof *info);
	if (!latest) {
		if (at->kind == EVS_AT_TIME)
			rc = evs_stream_version_at(a->s, stream, at->time, &target, &target_pos);
		else if (at->kind == EVS_AT_POSITION)
			rc = evs_stream_version_at_position(a->s, stream, at->position, &target,
							    &target_pos);
		else
			rc = evs__fail(a->s, EVS_INVALID, "unknown evs_at kind %d", at->kind);
		if (rc != EVS_OK)
			return rc;
	}
	if ((rc = evs__state_init(a, state)) != EVS_OK)
		return rc;
	if (a->snapshots && (latest || target > 0)) {
		rc = evs__snapshot_load(a, stream, slen, latest ? UINT64_MAX : target, state,
					&info->snapshot_version, &info->position);
		if (rc != EVS_OK)
			return rc; /* snapshot.c released the state */
	}
	info->version = info->snapshot_version;
	if (latest || target > info->version)
		rc = replay(a, stream, latest ? 0 : target - info->version, state, &info->version,
			    &info->position, &info->replayed);
	if (rc == EVS_OK && !latest && (info->version != target || info->position != target_pos))
		rc = evs__fail(a->s, EVS_CORRUPT,
			       "stream \"%s\": as-of index says version %llu at position %llu, "
			       "replay reached version %llu at position %llu",
			       stream, (unsigned long long)target, (unsigned long long)target_pos,
			       (unsigned long long)info->version,
			       (unsigned long long)info->position);
	if (rc != EVS_OK) {
		evs__state_release(a, state);
		memset(info, 0, sizeof *info);
	}
	return rc;
}

static int check_stream(evs_aggregate *a, const char *stream, size_t *slen)
{
	int ok = evs__check_name(stream, slen);

	if (ok <= 0)
		return evs__fail(a->s, EVS_BAD_STREAM, "%s",
				 ok == 0 ? "stream id is empty"
					 : "stream id is too long or not valid UTF-8");
	return EVS_OK;
}

int evs_aggregate_load(evs_aggregate *a, const char *stream, const evs_at *at, void *state,
		       evs_loaded *info)
{
	evs_loaded tmp;
	size_t slen;
	int rc;

	if (info)
		memset(info, 0, sizeof *info);
	if (a == NULL || state == NULL)
		return EVS_INVALID;
	if ((rc = check_stream(a, stream, &slen)) != EVS_OK)
		return rc;
	return load(a, stream, slen, at, state, info ? info : &tmp);
}

int evs_snapshot_take(evs_aggregate *a, const char *stream, evs_loaded *info)
{
	evs_loaded li;
	size_t slen;
	void *state;
	int rc;

	if (info)
		memset(info, 0, sizeof *info);
	if (a == NULL)
		return EVS_INVALID;
	if (!a->snapshots)
		return evs__fail(a->s, EVS_INVALID, "aggregate \"%s\" has no snapshot functions",
				 a->name);
	if ((rc = check_stream(a, stream, &slen)) != EVS_OK)
		return rc;
	if ((state = evs__malloc(a->def.state_size)) == NULL)
		return evs__fail(a->s, EVS_NOMEM, "out of memory");
	rc = load(a, stream, slen, NULL, state, &li);
	if (rc == EVS_OK) {
		if (li.version > 0 && li.snapshot_version != li.version)
			rc = evs__snapshot_store(a, stream, slen, li.version, li.position, state);
		evs__state_release(a, state);
		if (info)
			*info = li;
	}
	free(state);
	return rc;
}

/* ---- execute ------------------------------------------------------------ */

/* After the append of events (loaded+1 .. res->version), store a snapshot if
 * the version crossed a multiple of snapshot_every. */
static void snapshot_after(evs_aggregate *a, const char *stream, size_t slen, void *state,
			   evs_loaded *li, const evs_append_result *res)
{
	uint64_t every = a->def.snapshot_every, count = 0;
	int rc;

	if (!a->snapshots || every == 0 || res->idempotent || res->version <= li->version ||
	    res->version / every == li->version / every)
		return;
	rc = replay(a, stream, res->version - li->version, state, &li->version, &li->position,
		    &count);
	if (rc == EVS_OK && li->version != res->version)
		rc = evs__fail(a->s, EVS_CORRUPT, "stream \"%s\": appended version %llu not found",
			       stream, (unsigned long long)res->version);
	if (rc == EVS_OK)
		rc = evs__snapshot_store(a, stream, slen, li->version, li->position, state);
	if (rc != EVS_OK)
		evs__log(a->s, EVS_LOG_WARNING,
			 "aggregate \"%s\": no snapshot of stream \"%s\" at "
			 "version %llu: %s",
			 a->name, stream, (unsigned long long)res->version, evs_errmsg(a->s));
}

/* One evs_execute() call: what the rounds' callbacks share. */
struct call {
	evs_aggregate *a;
	const char *stream;
	size_t slen;
	const void *command;
	void *state;
	evs_loaded li;
	evs_execute_result r;
};

static int call_decide(void *ctx, evs_decision *d)
{
	struct call *c = ctx;

	c->r.version = c->li.version;
	return c->a->def.decide(c->a->def.ctx, c->state, c->command, d);
}

static int call_append(void *ctx, evs_decision *d)
{
	struct call *c = ctx;
	evs_append_result ar;
	int rc = evs_append(c->a->s, c->stream, c->li.version, d->events, d->n, &ar);

	if (rc == EVS_OK) {
		c->r.version = ar.version;
		c->r.first_position = ar.first_position;
		c->r.last_position = ar.last_position;
		c->r.events = d->n;
		c->r.idempotent = ar.idempotent;
		snapshot_after(c->a, c->stream, c->slen, c->state, &c->li, &ar);
	} else if (rc == EVS_WRONG_VERSION) {
		c->r.version = ar.version;
	}
	return rc;
}

/* Fold just the events that beat the append. */
static int call_catch_up(void *ctx)
{
	struct call *c = ctx;
	uint64_t count = 0;

	return replay(c->a, c->stream, 0, c->state, &c->li.version, &c->li.position, &count);
}

int evs_execute(evs_aggregate *a, const char *stream, const void *command,
		evs_execute_result *result)
{
	struct call c;
	evs_decision d;
	bool loaded = false;
	int rc;

	memset(&c, 0, sizeof c);
	memset(&d, 0, sizeof d);
	if (result)
		memset(result, 0, sizeof *result);
	if (a == NULL)
		return EVS_INVALID;
	if (a->def.decide == NULL)
		return evs__fail(a->s, EVS_INVALID, "aggregate \"%s\" has no decide function",
				 a->name);
	if ((rc = check_stream(a, stream, &c.slen)) != EVS_OK)
		return rc;
	c.a = a;
	c.stream = stream;
	c.command = command;
	d.s = a->s;
	if ((c.state = evs__malloc(a->def.state_size)) == NULL) {
		rc = evs__fail(a->s, EVS_NOMEM, "out of memory");
		goto out;
	}
	if ((rc = load(a, stream, c.slen, NULL, c.state, &c.li)) != EVS_OK)
		goto out;
	loaded = true;
	{
		char who[EVS_MAX_NAME * 2 + 32];
		unsigned max = a->def.max_attempts ? a->def.max_attempts : EVS_DEFAULT_ATTEMPTS;

		snprintf(who, sizeof who, "aggregate \"%s\" on stream \"%s\"", a->name, stream);
		evs__rounds rounds = {
			.d = &d,
			.max = max,
			.conflict_rc = EVS_WRONG_VERSION,
			.backoff = true,
			.who = who,
			.ctx = &c,
			.decide = call_decide,
			.append = call_append,
			.catch_up = call_catch_up,
		};
		rc = evs__rounds_run(&rounds, &c.r.attempts);
		if (rc == EVS_WRONG_VERSION)
			rc = evs__fail(a->s, EVS_WRONG_VERSION,
				       "stream \"%s\": still a version conflict after %u attempts "
				       "(actual version %llu)",
				       stream, c.r.attempts, (unsigned long long)c.r.version);
	}
out:
	if (loaded)
		evs__state_release(a, c.state);
	free(c.state);
	evs__decision_free(&d);
	if (result)
		*result = c.r;
	return rc;
}

/* ---- for process managers (pm_step.c) ---------------------------------- */

evs_decision *evs__decision_new(evs_store *s)
{
	evs_decision *d = evs__malloc(sizeof *d);

	if (d != NULL) {
		memset(d, 0, sizeof *d);
		d->s = s;
	}
	return d;
}

void evs__decision_destroy(evs_decision *d)
{
	if (d == NULL)
		return;
	evs__decision_free(d);
	free(d);
}

int evs__decide(evs_aggregate *a, const void *state, const void *command, evs_decision *d,
		const evs_event_in **events, size_t *n, const char **why)
{
	char who[EVS_MAX_NAME + 16];
	int rc;

	*events = NULL;
	*n = 0;
	*why = NULL;
	if (a->def.decide == NULL)
		return evs__fail(a->s, EVS_INVALID, "aggregate \"%s\" has no decide function",
				 a->name);
	snprintf(who, sizeof who, "aggregate \"%s\"", a->name);
	evs__decision_reset(d);
	rc = evs__decision_verdict(d, a->def.decide(a->def.ctx, state, command, d), who);
	if (rc == EVS_REJECTED)
		*why = d->msg;
	if (rc != EVS_OK)
		return rc;
	*events = d->events;
	*n = d->n;
	return EVS_OK;
}
