/*
 * pm_run.c - the runner of process managers (evs_pm_run).
 *
 * One thread, one subscription from the lowest checkpoint of the managers
 * it runs. Each event goes to every manager whose checkpoint is before it;
 * a step writes the manager's checkpoint in its own transaction, and an
 * event that makes no step (ignored, another partition's, skipped)
 * advances it in memory only, written every 1024 such events and when the
 * log is idle: a lost in-memory advance only re-reads events whose steps
 * are no-ops (every instance records the last input it handled).
 *
 * Every tick (and after each batch of events) the runner walks the due
 * timer rows of each manager (evs_checkpoint_list over
 * "pm/<manager>/timer/", which is due order) up to the clock's now, fires
 * those of its partition, then serves resume requests: replay the
 * instance's inputs from its parked position up to the manager's
 * checkpoint (a subscription, so no read transaction is held across
 * steps), then drop the parked row and the request. A crash in between
 * leaves both, and the next runner replays again: already handled inputs
 * are skipped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pm_internal.h"

#define FIRE_BATCH  256
#define FLUSH_EVERY 1024

typedef struct mgr {
	evs_pm *pm;
	char cp[EVS__PM_CP_MAX];
	uint64_t pos, written;
	evs_pm_progress st;
} mgr;

typedef struct due_row {
	char instance[EVS_PM_MAX_INSTANCE + 1];
	char timer[EVS_PM_MAX_NAME + 1];
	int64_t due;
} due_row;

typedef struct due_walk {
	size_t prefix;
	int64_t now;
	int64_t next; /* earliest due time after now; INT64_MAX = none */
	due_row rows[FIRE_BATCH];
	size_t n;
	const evs_pm_run_opts *o;
} due_walk;

static int64_t real_clock(void *ctx)
{
	struct timespec ts;

	(void)ctx;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t now_of(const evs_pm_run_opts *o)
{
	return o->clock ? o->clock(o->clock_ctx) : real_clock(NULL);
}

static bool mine(const evs_pm_run_opts *o, const char *instance)
{
	return evs__pm_partition(instance, o->partitions) == (o->partitions ? o->partition : 0);
}

typedef struct low_walk {
	char same[EVS__PM_CP_MAX]; /* "pm/<m>/pos/<partitions>.": siblings */
	uint64_t low;
} low_walk;

/* The lowest checkpoint of another partitioning of the manager (a sibling
 * partition's is no lower bound for this one's instances). */
static int min_pos(void *ctx, evs_str name, uint64_t position)
{
	low_walk *w = ctx;
	size_t n = strlen(w->same);

	if (name.len >= n && memcmp(name.ptr, w->same, n) == 0)
		return 0;
	if (w->low == UINT64_MAX || position < w->low)
		w->low = position;
	return 0;
}

static int flush(mgr *m)
{
	int rc;

	if (m->pos == m->written)
		return EVS_OK;
	if ((rc = evs_checkpoint_set(m->pm->s, m->cp, m->pos)) == EVS_OK)
		m->written = m->pos;
	return rc;
}

static int due_fn(void *ctx, evs_str name, uint64_t position)
{
	due_walk *w = ctx;
	due_row r;

	(void)position;
	if (!evs__pm_parse_timer(name.ptr + w->prefix, name.len - w->prefix, &r.due, r.instance,
				 r.timer))
		return 0; /* not a timer row of ours: leave it */
	if (r.due > w->now) {
		w->next = r.due;
		return 1;
	}
	if (!mine(w->o, r.instance))
		return 0;
	w->rows[w->n++] = r;
	return w->n == FIRE_BATCH ? 1 : 0;
}

/* Fire the manager's due timers (a batch at most: a full one asks for
 * another round at once); *next = the earliest later due time. Timers of
 * parked instances stay due until their resume. */
static int fire_due(mgr *m, const evs_pm_run_opts *o, int64_t *next)
{
	char prefix[EVS__PM_CP_MAX];
	due_walk *w;
	int rc = EVS_OK;

	if ((w = malloc(sizeof *w)) == NULL)
		return EVS_NOMEM;
	w->prefix = (size_t)snprintf(prefix, sizeof prefix, "pm/%s/timer/", m->pm->name);
	w->o = o;
	w->n = 0;
	w->next = INT64_MAX;
	w->now = now_of(o);
	rc = evs_checkpoint_list(m->pm->s, prefix, due_fn, w);
	if (rc == 1)
		rc = EVS_OK;
	for (size_t i = 0; rc == EVS_OK && i < w->n; i++) {
		evs_pm_result r;
		rc = evs_pm_fire(m->pm, w->rows[i].instance, w->rows[i].timer, w->rows[i].due,
				 w->now, &r);
		if (rc == EVS_OK) {
			m->st.timers_fired += r.stepped && !r.skipped;
			m->st.steps += r.stepped && !r.skipped;
			m->st.parked_now += r.parked;
			m->st.rejections += r.rejections;
		}
	}
	if (w->n == FIRE_BATCH)
		w->next = w->now;
	if (w->next < *next)
		*next = w->next;
	free(w);
	return rc;
}

typedef struct name_list {
	size_t prefix;
	char (*names)[EVS_PM_MAX_INSTANCE + 1];
	size_t n;
} name_list;

static int name_fn(void *ctx, evs_str name, uint64_t position)
{
	name_list *l = ctx;
	size_t len = name.len - l->prefix;

	(void)position;
	if (len == 0 || len > EVS_PM_MAX_INSTANCE)
		return 0;
	memcpy(l->names[l->n], name.ptr + l->prefix, len);
	l->names[l->n][len] = 0;
	return ++l->n == 64 ? 1 : 0;
}

/* Replay one resumed instance's inputs from `from` to the checkpoint. */
static int replay(mgr *m, const evs_pm_run_opts *o, const char *instance, uint64_t from,
		  bool *parked)
{
	char inst[EVS_PM_MAX_INSTANCE + 1];
	evs_sub *sub;
	evs_event ev;
	int rc;

	if ((rc = evs_subscribe(m->pm->s, from ? from - 1 : 0, NULL, &sub)) != EVS_OK)
		return rc;
	while ((rc = evs_sub_next(sub, &ev, 0)) == EVS_OK && ev.position <= m->pos) {
		evs_pm_result r;
		int route = evs__pm_route(m->pm, &ev, inst);
		if (route == EVS_PM_IGNORE || strcmp(inst, instance) != 0)
			continue;
		memset(&r, 0, sizeof r);
		rc = evs__pm_step_event(m->pm, &ev, route, inst, now_of(o), NULL, true, &r);
		if (rc != EVS_OK)
			break;
		m->st.steps += r.stepped;
		if (r.parked) {
			*parked = true;
			break;
		}
	}
	evs_sub_close(sub);
	return rc == EVS_TIMEOUT || rc == EVS_OK ? EVS_OK : rc;
}

static int serve_resumes(mgr *m, const evs_pm_run_opts *o)
{
	char prefix[EVS__PM_CP_MAX], row[EVS__PM_CP_MAX];
	name_list l;
	int rc;

	if ((l.names = malloc(64 * sizeof *l.names)) == NULL)
		return EVS_NOMEM;
	l.n = 0;
	l.prefix = (size_t)snprintf(prefix, sizeof prefix, "pm/%s/resume/", m->pm->name);
	rc = evs_checkpoint_list(m->pm->s, prefix, name_fn, &l);
	rc = rc == 1 ? EVS_OK : rc;
	for (size_t i = 0; rc == EVS_OK && i < l.n; i++) {
		uint64_t from;
		bool parked = false;
		if (!mine(o, l.names[i]))
			continue;
		evs__pm_cp_parked(m->pm->name, l.names[i], row);
		rc = evs_checkpoint_get(m->pm->s, row, &from);
		if (rc == EVS_OK) {
			evs__log(m->pm->s, EVS_LOG_INFO,
				 "process manager \"%s\": resuming instance \"%s\" from position "
				 "%llu",
				 m->pm->name, l.names[i], (unsigned long long)from);
			rc = replay(m, o, l.names[i], from, &parked);
			if (rc == EVS_OK && !parked)
				rc = evs_checkpoint_delete(m->pm->s, row);
		}
		if (rc == EVS_OK || rc == EVS_NOT_FOUND) {
			evs__pm_cp_resume(m->pm->name, l.names[i], row);
			rc = evs_checkpoint_delete(m->pm->s, row);
			rc = rc == EVS_NOT_FOUND ? EVS_OK : rc;
		}
	}
	free(l.names);
	return rc;
}

static int count_fn(void *ctx, evs_str name, uint64_t position)
{
	(void)name;
	(void)position;
	(*(uint64_t *)ctx)++;
	return 0;
}

static void progress(mgr *ms, size_t n, const evs_pm_run_opts *o)
{
	evs_store_info head;
	char prefix[EVS__PM_CP_MAX];

	if (evs_head(ms[0].pm->s, &head) != EVS_OK)
		return;
	for (size_t i = 0; i < n; i++) {
		mgr *m = &ms[i];
		m->st.position = m->pos;
		m->st.head = head.last_position;
		m->st.parked = 0;
		snprintf(prefix, sizeof prefix, "pm/%s/parked/", m->pm->name);
		evs_checkpoint_list(m->pm->s, prefix, count_fn, &m->st.parked);
		evs__log(m->pm->s, EVS_LOG_INFO,
			 "process manager \"%s\" (partition %u of %u): position %llu, lag %llu, "
			 "%llu steps, %llu skipped, %llu timers fired, %llu rejections, %llu "
			 "parked",
			 m->pm->name, o->partitions ? o->partition : 0,
			 o->partitions ? o->partitions : 1, (unsigned long long)m->pos,
			 (unsigned long long)(head.last_position - m->pos),
			 (unsigned long long)m->st.steps, (unsigned long long)m->st.skipped,
			 (unsigned long long)m->st.timers_fired,
			 (unsigned long long)m->st.rejections, (unsigned long long)m->st.parked);
		if (o->progress)
			o->progress(o->progress_ctx, &m->st);
	}
}

/* Hand one event to every manager that has not seen it. */
static int dispatch(mgr *ms, size_t n, const evs_pm_run_opts *o, const evs_event *ev)
{
	char inst[EVS_PM_MAX_INSTANCE + 1];
	int rc = EVS_OK;

	for (size_t i = 0; i < n; i++) {
		mgr *m = &ms[i];
		evs_pm_result r;
		int route;

		if (ev->position <= m->pos)
			continue;
		route = evs__pm_route(m->pm, ev, inst);
		if (route != EVS_PM_IGNORE && mine(o, inst)) {
			memset(&r, 0, sizeof r);
			rc = evs__pm_step_event(m->pm, ev, route, inst, now_of(o), m->cp, false,
						&r);
			if (rc != EVS_OK)
				return rc;
			m->st.steps += r.stepped;
			m->st.skipped += r.skipped;
			m->st.rejections += r.rejections;
			m->st.parked_now += r.parked;
			if (r.stepped || r.parked)
				m->written = ev->position;
		}
		m->pos = ev->position;
		if (m->pos - m->written >= FLUSH_EVERY && (rc = flush(m)) != EVS_OK)
			return rc;
	}
	return rc;
}

static int setup(mgr *ms, evs_pm *const *pms, size_t n, const evs_pm_run_opts *o, uint64_t *start)
{
	unsigned parts = o->partitions ? o->partitions : 1;
	int rc;

	*start = UINT64_MAX;
	for (size_t i = 0; i < n; i++) {
		mgr *m = &ms[i];
		if (pms[i] == NULL || pms[i]->s != pms[0]->s)
			return EVS_INVALID;
		m->pm = pms[i];
		m->st.manager = m->pm->name;
		snprintf(m->cp, sizeof m->cp, "pm/%s/pos/%u.%u", m->pm->name, parts,
			 o->partitions ? o->partition : 0);
		rc = evs_checkpoint_get(m->pm->s, m->cp, &m->pos);
		if (rc == EVS_NOT_FOUND) {
			char prefix[EVS__PM_CP_MAX];
			low_walk w;
			w.low = UINT64_MAX;
			snprintf(w.same, sizeof w.same, "pm/%s/pos/%u.", m->pm->name, parts);
			snprintf(prefix, sizeof prefix, "pm/%s/pos/", m->pm->name);
			if ((rc = evs_checkpoint_list(m->pm->s, prefix, min_pos, &w)) != EVS_OK)
				return rc;
			m->pos = w.low == UINT64_MAX ? 0 : w.low;
		} else if (rc != EVS_OK) {
			return rc;
		}
		m->written = m->pos;
		if (m->pos < *start)
			*start = m->pos;
	}
	return EVS_OK;
}

/* One subscription for all: the union of the managers' types, unless one
 * of them reads every type. */
static int subscribe(evs_pm *const *pms, size_t n, uint64_t start, evs_sub **sub)
{
	const char **types = NULL;
	evs_filter f;
	size_t nt = 0;
	int rc;

	for (size_t i = 0; i < n; i++) {
		if (pms[i]->def.ntypes == 0)
			return evs_subscribe(pms[0]->s, start, NULL, sub);
		nt += pms[i]->def.ntypes;
	}
	if ((types = calloc(nt, sizeof *types)) == NULL)
		return evs__fail(pms[0]->s, EVS_NOMEM, "out of memory");
	nt = 0;
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < pms[i]->def.ntypes; k++) {
			size_t j = 0;
			while (j < nt && strcmp(types[j], pms[i]->def.types[k]) != 0)
				j++;
			if (j == nt)
				types[nt++] = pms[i]->def.types[k];
		}
	memset(&f, 0, sizeof f);
	f.types = types;
	f.ntypes = nt;
	rc = evs_subscribe(pms[0]->s, start, &f, sub);
	free(types);
	return rc;
}

int evs_pm_run(evs_pm *const *pms, size_t n, const evs_pm_run_opts *opts)
{
	evs_pm_run_opts o;
	int64_t next_due = INT64_MIN, last_progress;
	int tick;
	uint64_t start;
	evs_sub *sub = NULL;
	evs_event ev;
	mgr *ms;
	int rc;

	if (pms == NULL || n == 0 || pms[0] == NULL)
		return EVS_INVALID;
	memset(&o, 0, sizeof o);
	if (opts)
		o = *opts;
	if (o.partitions && o.partition >= o.partitions)
		return evs__fail(pms[0]->s, EVS_INVALID, "partition %u of %u is out of range",
				 o.partition, o.partitions);
	tick = o.tick_ms > 0 ? o.tick_ms : 100;
	if ((ms = calloc(n, sizeof *ms)) == NULL)
		return evs__fail(pms[0]->s, EVS_NOMEM, "out of memory");
	if ((rc = setup(ms, pms, n, &o, &start)) != EVS_OK)
		goto out;
	if ((rc = subscribe(pms, n, start, &sub)) != EVS_OK)
		goto out;
	last_progress = real_clock(NULL);
	for (;;) {
		int64_t now = now_of(&o);
		bool idle = false;

		if (o.stop && o.stop(o.stop_ctx))
			break;
		if (now >= next_due) {
			next_due = INT64_MAX;
			for (size_t i = 0; rc == EVS_OK && i < n; i++)
				rc = fire_due(&ms[i], &o, &next_due);
			for (size_t i = 0; rc == EVS_OK && i < n; i++)
				rc = serve_resumes(&ms[i], &o);
			if (rc != EVS_OK)
				break;
			/* a timer may be set by a step of another runner: look again
			 * at the next tick even when none is due */
			int64_t tick_ns = (int64_t)tick * 1000000;
			if (next_due > now + tick_ns)
				next_due = now + tick_ns;
		}
		rc = evs_sub_next(sub, &ev, tick);
		if (rc == EVS_OK) {
			rc = dispatch(ms, n, &o, &ev);
		} else if (rc == EVS_TIMEOUT) {
			idle = true;
			rc = EVS_OK;
			next_due = INT64_MIN; /* check timers and requests now */
			for (size_t i = 0; rc == EVS_OK && i < n; i++) {
				/* what the filter skipped is read too */
				if (evs_sub_position(sub) > ms[i].pos)
					ms[i].pos = evs_sub_position(sub);
				rc = flush(&ms[i]);
			}
		}
		if (rc != EVS_OK)
			break;
		if (real_clock(NULL) - last_progress >=
		    (int64_t)(o.progress_ms > 0 ? o.progress_ms : 10000) * 1000000) {
			progress(ms, n, &o);
			last_progress = real_clock(NULL);
		}
		if (idle && o.until_idle) {
			int64_t later = INT64_MAX;
			for (size_t i = 0; rc == EVS_OK && i < n; i++)
				rc = fire_due(&ms[i], &o, &later);
			for (size_t i = 0; rc == EVS_OK && i < n; i++)
				rc = serve_resumes(&ms[i], &o);
			evs_store_info head;
			if (rc == EVS_OK && (rc = evs_head(pms[0]->s, &head)) == EVS_OK &&
			    head.last_position <= evs_sub_position(sub) && later > now_of(&o))
				break;
		}
	}
	for (size_t i = 0; i < n; i++) {
		int frc = flush(&ms[i]);
		rc = rc == EVS_OK ? frc : rc;
	}
	if (rc == EVS_OK)
		progress(ms, n, &o);
out:
	evs_sub_close(sub);
	free(ms);
	return rc;
}
