/*
 * test_concurrency.c - evs_execute on one aggregate from 8 threads sharing
 * a handle and from 4 processes with their own handles, durable.
 *
 * Each contender runs its own random commands on one ledger stream:
 * credits, and debits that must be rejected when the balance would go
 * below zero, some with extra "Noted" events. Afterwards the stream is the
 * serial order, and it must hold:
 *
 *   - every accepted command's events are in the stream exactly once, as
 *     one contiguous decision at the versions and positions its result
 *     reported;
 *   - no rejected command (nor one that gave up on conflicts) left any
 *     event;
 *   - replaying the accepted commands in stream order, no debit ever took
 *     the balance below zero (each decision was right for the state it was
 *     appended after), and each rejected debit was right for the state at
 *     the version it reported;
 *   - the loaded state (snapshots on, written concurrently) equals the
 *     fold of the stream, and its balance is the sum of accepted deltas.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/wait.h>

#include "ledger.h"
#include "kit_store.h"

#define MAX_WORKERS 8
#define CMDS        20
#define MAX_ID      (MAX_WORKERS * 1000 + CMDS + 1)

typedef struct outcome {
	uint64_t id;
	int64_t delta;
	unsigned notes;
	int rc;
	evs_execute_result res;
} outcome;

typedef struct worker {
	evs_store *st;
	evs_aggregate *agg;
	const char *stream;
	int w;
	uint64_t seed;
	outcome out[CMDS];
	int bad_rc;
	char bad[256];
} worker;

static evs_aggregate *ledger_agg(evs_store *st)
{
	evs_aggregate_def def;
	evs_aggregate *a = NULL;

	ledger_def(&def, 7, 1);
	def.max_attempts = 400; /* 8 contenders on one stream */
	if (evs_aggregate_new(st, &def, &a) != EVS_OK)
		return NULL;
	return a;
}

/* Runs in a thread or a child process: no ck_assert here. */
static void run_worker(worker *wk)
{
	uint64_t r;

	r = wk->seed;
	for (int j = 0; j < CMDS; j++) {
		outcome *o = &wk->out[j];
		ledger_cmd c;

		memset(&c, 0, sizeof c);
		c.id = (uint64_t)wk->w * 1000 + (uint64_t)j + 1;
		c.delta = (int64_t)kit_rand_range(&r, 0, 22) - 12;
		if (c.delta == 0)
			c.delta = 1;
		c.notes = kit_rand_range(&r, 0, 3) == 0 ? 1 : 0;
		o->id = c.id;
		o->delta = c.delta;
		o->notes = c.notes;
		o->rc = evs_execute(wk->agg, wk->stream, &c, &o->res);
		if (o->rc != EVS_OK && o->rc != EVS_REJECTED && o->rc != EVS_WRONG_VERSION &&
		    wk->bad_rc == 0) {
			wk->bad_rc = o->rc;
			snprintf(wk->bad, sizeof wk->bad, "worker %d command %llu: %s: %s", wk->w,
				 (unsigned long long)c.id, evs_code_name(o->rc),
				 evs_errmsg(wk->st));
		}
	}
}

static void *thread_main(void *arg)
{
	run_worker(arg);
	return NULL;
}

static void verify(evs_store *st, const char *stream, outcome *outs, size_t n)
{
	static outcome *by_id[MAX_ID];
	static bool seen[MAX_ID];
	int64_t *bal;
	uint64_t *pos;
	evs_stream_info h;
	evs_iter *it;
	evs_event ev;
	ledger ref = {0};
	int64_t sum = 0;
	size_t accepted = 0, rejected = 0, gave_up = 0;
	int rc;

	memset(by_id, 0, sizeof by_id);
	memset(seen, 0, sizeof seen);
	for (size_t i = 0; i < n; i++) {
		ck_assert_uint_lt(outs[i].id, MAX_ID);
		by_id[outs[i].id] = &outs[i];
		if (outs[i].rc == EVS_OK) {
			accepted++;
			sum += outs[i].delta;
			ck_assert_uint_eq(outs[i].res.events, 1 + outs[i].notes);
			ck_assert_int_eq(outs[i].res.idempotent, 0);
		} else if (outs[i].rc == EVS_REJECTED) {
			rejected++;
			ck_assert_int_lt(outs[i].delta, 0);
		} else {
			ck_assert_int_eq(outs[i].rc, EVS_WRONG_VERSION);
			gave_up++;
		}
	}
	tu_ok(st, evs_stream_head(st, stream, &h));
	bal = calloc(h.version + 1, sizeof *bal);
	pos = calloc(h.version + 1, sizeof *pos);
	ck_assert(bal != NULL && pos != NULL);

	/* walk the serial order */
	tu_ok(st, evs_read_stream(st, stream, 1, EVS_FORWARD, 0, &it));
	outcome *cur = NULL;
	unsigned left = 0;
	int64_t balance = 0;
	while ((rc = evs_iter_next(it, &ev)) == EVS_OK) {
		uint64_t id;
		int64_t d;
		ck_assert(ledger_event_fields(&ev, &id, &d));
		ck_assert_uint_lt(id, MAX_ID);
		outcome *o = by_id[id];
		ck_assert_msg(o != NULL, "event of unknown command %llu", (unsigned long long)id);
		ck_assert_msg(o->rc == EVS_OK, "command %llu left an event but got %s",
			      (unsigned long long)id, evs_code_name(o->rc));
		if (left == 0) {
			/* a decision starts: its first event carries the delta */
			ck_assert_msg(!seen[id], "command %llu appears twice",
				      (unsigned long long)id);
			seen[id] = true;
			cur = o;
			left = 1 + o->notes;
			ck_assert_uint_eq(ev.version, o->res.version - o->notes);
			ck_assert_uint_eq(ev.position, o->res.first_position);
			ck_assert_int_eq(d, o->delta);
			ck_assert_msg(balance + d >= 0, "command %llu took %lld from %lld",
				      (unsigned long long)id, (long long)-d, (long long)balance);
			balance += d;
		} else {
			ck_assert_msg(cur == o, "decision of command %llu interleaved with %llu",
				      (unsigned long long)cur->id, (unsigned long long)id);
		}
		if (--left == 0)
			ck_assert_uint_eq(ev.position, o->res.last_position);
		bal[ev.version] = balance;
		pos[ev.version] = ev.position;
		tu_ok(st, ledger_fold(&ref, &ev));
	}
	ck_assert_int_eq(rc, EVS_END);
	ck_assert_uint_eq(left, 0);
	evs_iter_free(it);

	for (size_t i = 0; i < n; i++) {
		const outcome *o = &outs[i];
		if (o->rc == EVS_OK) {
			ck_assert_msg(seen[o->id], "accepted command %llu has no event",
				      (unsigned long long)o->id);
		} else if (o->rc == EVS_REJECTED) {
			ck_assert_uint_le(o->res.version, h.version);
			ck_assert_msg(
				bal[o->res.version] + o->delta < 0,
				"command %llu (%lld) rejected at version %llu with balance %lld",
				(unsigned long long)o->id, (long long)o->delta,
				(unsigned long long)o->res.version, (long long)bal[o->res.version]);
		}
	}
	ck_assert_int_eq(balance, sum);

	evs_aggregate *a = ledger_agg(st);
	ck_assert_ptr_nonnull(a);
	ledger got;
	evs_loaded li;
	tu_ok(st, evs_aggregate_load(a, stream, NULL, &got, &li));
	ck_assert(ledger_equal(&got, &ref));
	ck_assert_int_eq(got.balance, sum);
	ck_assert_uint_eq(li.version, h.version);
	fprintf(stderr,
		"%zu commands: %zu accepted, %zu rejected, %zu gave up; %llu events; "
		"load from snapshot at %llu\n",
		n, accepted, rejected, gave_up, (unsigned long long)h.version,
		(unsigned long long)li.snapshot_version);
	ck_assert_uint_gt(accepted, 0);
	evs_aggregate_release(a, &got);
	evs_aggregate_free(a);
	ledger_free(&ref);
	free(bal);
	free(pos);
}

START_TEST(test_threads)
{
	uint64_t r;
	uint64_t seed = r = kit_seed("8 threads, one aggregate");
	evs_options o;
	tu_options(&o, EVS_SYNC_FULL);
	evs_store *st = tu_open(kit_dir, &o);
	evs_aggregate *a = ledger_agg(st);
	ck_assert_ptr_nonnull(a);
	static worker wk[MAX_WORKERS];
	pthread_t th[MAX_WORKERS];

	for (int w = 0; w < MAX_WORKERS; w++) {
		memset(&wk[w], 0, sizeof wk[w]);
		wk[w].st = st;
		wk[w].agg = a;
		wk[w].stream = "ledger";
		wk[w].w = w + 1;
		wk[w].seed = seed + (uint64_t)w;
		ck_assert_int_eq(pthread_create(&th[w], NULL, thread_main, &wk[w]), 0);
	}
	for (int w = 0; w < MAX_WORKERS; w++)
		pthread_join(th[w], NULL);

	static outcome all[MAX_WORKERS * CMDS];
	size_t n = 0;
	for (int w = 0; w < MAX_WORKERS; w++) {
		ck_assert_msg(wk[w].bad_rc == 0, "%s", wk[w].bad);
		memcpy(all + n, wk[w].out, sizeof wk[w].out);
		n += CMDS;
	}
	verify(st, "ledger", all, n);
	evs_aggregate_free(a);
	evs_close(st);
}
END_TEST

START_TEST(test_processes)
{
	enum { PROCS = 4 };
	uint64_t r;
	uint64_t seed = r = kit_seed("4 processes, one aggregate");
	evs_options o;
	tu_options(&o, EVS_SYNC_FULL);
	evs_close(tu_open(kit_dir, &o)); /* create it before the race */

	pid_t pids[PROCS];
	int fds[PROCS];
	for (int p = 0; p < PROCS; p++) {
		int fd[2];
		ck_assert_int_eq(pipe(fd), 0);
		pid_t pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			close(fd[0]);
			evs_store *st = NULL;
			int rc = evs_open(kit_dir, &o, &st);
			kit_child_check(rc == EVS_OK, "evs_open: %s", evs_open_errmsg());
			static worker wk;
			memset(&wk, 0, sizeof wk);
			wk.st = st;
			wk.agg = ledger_agg(st);
			kit_child_check(wk.agg != NULL, "aggregate: %s", evs_errmsg(st));
			wk.stream = "ledger";
			wk.w = p + 1;
			wk.seed = seed + (uint64_t)p;
			run_worker(&wk);
			kit_child_check(wk.bad_rc == 0, "%s", wk.bad);
			kit_child_check(tu_write_full(fd[1], wk.out, sizeof wk.out) == 0,
					"write: %s", strerror(errno));
			evs_aggregate_free(wk.agg);
			evs_close(st);
			_exit(0);
		}
		close(fd[1]);
		pids[p] = pid;
		fds[p] = fd[0];
	}
	static outcome all[PROCS * CMDS];
	for (int p = 0; p < PROCS; p++) {
		int rc = tu_read_full(fds[p], all + (size_t)p * CMDS, CMDS * sizeof(outcome),
				      300000);
		close(fds[p]);
		kit_wait_child(pids[p], 300000, 1);
		ck_assert_int_eq(rc, 0);
	}
	evs_store *st = tu_open(kit_dir, &o);
	verify(st, "ledger", all, PROCS * CMDS);
	evs_close(st);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		test_threads,
		test_processes,
		NULL,
	};

	return kit_main("aggregate-concurrency", 600, tests);
}
