/*
 * test_dcb_race.c - append conditions under contention (issue 12, DCB):
 *
 * - deciders over overlapping tag sets from 8 threads of this process and
 *   4 processes (this executable re-run with --race) at once: each
 *   attempt reads the events carrying any of its tags (a seeded random
 *   subset of 8), then appends one event carrying those tags under the
 *   condition "no event with any of these tags after the last one I
 *   read". Every attempt's outcome is recorded. A model computed from the
 *   final log then checks that exactly the conflicting ones failed:
 *   replaying the log in position order, every accepted append's
 *   condition held at its position (no matching event between its read
 *   and its own position), every failed one reported the first matching
 *   event after its read, and every accepted event is in the log once at
 *   its reported position (none lost, none extra);
 * - the uniqueness example: 1,000 concurrent claims of one username
 *   through evs_decide() (threads and processes) leave exactly one
 *   UsernameClaimed in the log, every other claim rejected;
 * - evs_decide() itself: retries after a conflicting append, rejection,
 *   no events, events into two streams.
 *
 * Seeds are printed (EVS_TEST_SEED replays); EVS_DCB_ROUNDS sets attempts
 * per decider (default 60).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kit_store.h"

#define NTAGS    8
#define NTHREADS 8
#define NPROCS   4
#define CLAIMS   1000

static const char *tag_names[NTAGS] = {"t:0", "t:1", "t:2", "t:3", "t:4", "t:5", "t:6", "t:7"};

/* One attempt of a decider (written to a file by the processes). */
typedef struct attempt {
	uint64_t seq;
	uint32_t who, mask;
	uint64_t after, pos, conflict;
	int32_t rc, pad;
} attempt;

static uint32_t event_mask(const evs_event *ev)
{
	uint32_t m = 0;

	for (size_t i = 0; i < ev->ntags; i++)
		for (int t = 0; t < NTAGS; t++)
			if (tu_str_eq(ev->tags[i], tag_names[t]))
				m |= 1u << t;
	return m;
}

static int rounds(void)
{
	const char *e = getenv("EVS_DCB_ROUNDS");

	return e && atoi(e) > 0 ? atoi(e) : 60;
}

/* Wait until the parent closes the write end of the go pipe. */
static void wait_go(int fd)
{
	char c;

	while (read(fd, &c, 1) < 0 && errno == EINTR)
		;
}

/* ---- the tag-set deciders ---------------------------------------------- */

typedef struct decider {
	const char *dir;
	evs_store *st; /* shared by the threads of a process */
	uint32_t who;
	uint64_t seed;
	int rounds;
	attempt *out;
	pthread_barrier_t *go;
	int gofd;
} decider;

/* Append a's event (its tags: a->mask) under the condition "none of
 * these tags after a->after"; the outcome into a. */
static void attempt_append(evs_store *st, attempt *a)
{
	evs_query_item items[NTAGS];
	const char *one[NTAGS][1], *tags[NTAGS];
	size_t nitems = 0, ntags = 0;
	int rc;

	for (int t = 0; t < NTAGS; t++)
		if (a->mask & 1u << t) {
			one[nitems][0] = tag_names[t];
			items[nitems] = (evs_query_item){NULL, 0, one[nitems], 1};
			nitems++;
			tags[ntags++] = tag_names[t];
		}
	evs_query q = {items, nitems};
	evs_condition cond = {&q, a->after};
	evs_event_in e;
	memset(&e, 0, sizeof e);
	e.type = "Decided";
	e.tags = tags;
	e.ntags = ntags;
	tu_id(e.id, 1000 + a->who, a->seq);
	char stream[32];
	snprintf(stream, sizeof stream, "decider-%u", a->who);
	evs_append_part part = {stream, EVS_ANY, &e, 1};
	evs_append_result res;
	rc = evs_append_ex(st, &part, 1, NULL, 0, &cond, &res, &a->conflict);
	kit_child_check(rc == EVS_OK || rc == EVS_CONDITION_FAILED, "append: %s", evs_errmsg(st));
	a->rc = rc;
	a->pos = rc == EVS_OK ? res.first_position : 0;
}

static void *decider_run(void *arg)
{
	decider *d = arg;
	uint64_t r = d->seed;
	uint32_t *masks = NULL; /* tag mask of each position seen, [0] unused */
	size_t seen = 0, cap = 0;

	if (d->go)
		pthread_barrier_wait(d->go);
	for (int k = 0; k < d->rounds; k++) {
		attempt *a = &d->out[k];
		evs_iter *it;
		evs_event ev;
		int rc;

		/* catch up with the log (only what is new) */
		rc = evs_read_all(d->st, seen + 1, EVS_FORWARD, NULL, 0, &it);
		kit_child_check(rc == EVS_OK, "read: %s", evs_errmsg(d->st));
		while ((rc = evs_iter_next(it, &ev)) == EVS_OK) {
			if (ev.position >= cap) {
				cap = cap ? cap * 2 : 1024;
				while (cap <= ev.position)
					cap *= 2;
				masks = realloc(masks, cap * sizeof *masks);
				kit_child_check(masks != NULL, "out of memory");
			}
			masks[ev.position] = event_mask(&ev);
			seen = ev.position;
		}
		kit_child_check(rc == EVS_END, "iter: %s", evs_errmsg(d->st));
		evs_iter_free(it);

		memset(a, 0, sizeof *a);
		a->seq = (uint64_t)k;
		a->who = d->who;
		a->mask = (uint32_t)kit_rand_range(&r, 1, (1u << NTAGS) - 1);
		if (kit_rand_range(&r, 0, 1)) /* mostly small sets */
			a->mask &= a->mask >> 3 | 1u << kit_rand_range(&r, 0, NTAGS - 1);
		if (a->mask == 0)
			a->mask = 1;
		for (size_t p = seen; p > 0 && a->after == 0; p--)
			if (masks[p] & a->mask)
				a->after = p;

		attempt_append(d->st, a);
	}
	free(masks);
	return NULL;
}

/* argv: --race DIR WHO SEED ROUNDS GOFD OUTFILE */
static int race_main(char **argv)
{
	decider d = {0};
	int fd;

	d.dir = argv[2];
	d.who = (uint32_t)atoi(argv[3]);
	d.seed = strtoull(argv[4], NULL, 10);
	d.rounds = atoi(argv[5]);
	d.gofd = atoi(argv[6]);
	d.out = calloc((size_t)d.rounds, sizeof *d.out);
	kit_child_check(d.out != NULL, "out of memory");
	kit_child_check(evs_open(d.dir, NULL, &d.st) == EVS_OK, "open: %s", evs_open_errmsg());
	wait_go(d.gofd);
	decider_run(&d);
	evs_close(d.st);
	fd = open(argv[7], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	kit_child_check(fd >= 0, "open %s", argv[7]);
	kit_child_check(tu_write_full(fd, d.out, (size_t)d.rounds * sizeof *d.out) == 0, "write");
	close(fd);
	free(d.out);
	return 0;
}

static pid_t spawn(const char *mode, const char *dir, uint32_t who, uint64_t seed, int n, int gofd,
		   const char *out)
{
	char a_who[16], a_seed[32], a_n[16], a_fd[16];

	snprintf(a_who, sizeof a_who, "%u", who);
	snprintf(a_seed, sizeof a_seed, "%llu", (unsigned long long)seed);
	snprintf(a_n, sizeof a_n, "%d", n);
	snprintf(a_fd, sizeof a_fd, "%d", gofd);
	char *argv[] = {"/proc/self/exe", (char *)mode, (char *)dir, a_who, a_seed, a_n, a_fd,
			(char *)out,      NULL};
	return kit_spawn(argv);
}

static void read_attempts(const char *path, attempt *out, int n)
{
	int fd = open(path, O_RDONLY);

	ck_assert_msg(fd >= 0, "no attempts from a child: %s", path);
	ck_assert_int_eq(tu_read_full(fd, out, (size_t)n * sizeof *out, 10000), 0);
	close(fd);
}

/* The model: the final log in position order against every attempt. */
static void check_model(evs_store *st, const attempt *att, size_t natt)
{
	tu_ev *log;
	size_t n = tu_read_all(st, &log), ok = 0, failed = 0;
	uint32_t *masks = calloc(n + 1, sizeof *masks);
	uint8_t *claimed = calloc(n + 1, 1);

	ck_assert(masks && claimed);
	for (size_t i = 0; i < n; i++) {
		tu_check_u64_eq(log[i].ev.position, i + 1);
		masks[i + 1] = event_mask(&log[i].ev);
	}
	for (size_t k = 0; k < natt; k++) {
		const attempt *a = &att[k];
		uint8_t id[16];
		tu_id(id, 1000 + a->who, a->seq);
		ck_assert(a->after <= n);
		if (a->rc == EVS_OK) {
			ok++;
			ck_assert_msg(a->pos > a->after && a->pos <= n,
				      "decider %u attempt %llu: position %llu after %llu", a->who,
				      (unsigned long long)a->seq, (unsigned long long)a->pos,
				      (unsigned long long)a->after);
			ck_assert_msg(memcmp(log[a->pos - 1].ev.id, id, 16) == 0,
				      "position %llu is not decider %u's attempt %llu",
				      (unsigned long long)a->pos, a->who,
				      (unsigned long long)a->seq);
			ck_assert_int_eq(masks[a->pos], a->mask);
			ck_assert(!claimed[a->pos]);
			claimed[a->pos] = 1;
			for (uint64_t p = a->after + 1; p < a->pos; p++)
				tu_check(!(masks[p] & a->mask),
					 "decider %u attempt %llu accepted at %llu, but position "
					 "%llu (after its read %llu) matches its tags",
					 a->who, (unsigned long long)a->seq,
					 (unsigned long long)a->pos, (unsigned long long)p,
					 (unsigned long long)a->after);
		} else {
			failed++;
			ck_assert_int_eq(a->rc, EVS_CONDITION_FAILED);
			ck_assert_msg(a->conflict > a->after && a->conflict <= n,
				      "conflict %llu after %llu", (unsigned long long)a->conflict,
				      (unsigned long long)a->after);
			ck_assert_msg(masks[a->conflict] & a->mask,
				      "reported conflict %llu does not match",
				      (unsigned long long)a->conflict);
			for (uint64_t p = a->after + 1; p < a->conflict; p++)
				tu_check(!(masks[p] & a->mask),
					 "conflict %llu is not the first: %llu matches",
					 (unsigned long long)a->conflict, (unsigned long long)p);
		}
	}
	/* none lost, none extra */
	for (size_t p = 1; p <= n; p++)
		tu_check(claimed[p], "position %zu belongs to no accepted attempt", p);
	printf("dcb race: %zu attempts, %zu accepted, %zu failed on their condition, log %zu\n",
	       natt, ok, failed, n);
	ck_assert_uint_gt(ok, 0);
	ck_assert_uint_gt(failed, 0);
	free(masks);
	free(claimed);
	tu_evs_free(log, n);
}

START_TEST(test_race_threads_and_processes)
{
	char dir[4096], out[NPROCS][4200];
	uint64_t seed = kit_seed("dcb race");
	int nr = rounds(), pipefd[2];
	decider d[NTHREADS];
	pthread_t th[NTHREADS];
	pthread_barrier_t go;
	pid_t pids[NPROCS];
	size_t natt = (size_t)(NTHREADS + NPROCS) * (size_t)nr;
	attempt *att = calloc(natt + 1, sizeof *att);
	evs_store *st;

	ck_assert_ptr_nonnull(att);
	tu_path(dir, sizeof dir, "store");
	st = tu_open(dir, NULL);
	ck_assert_int_eq(pipe(pipefd), 0);
	/* only the read end goes to the children: the write end's close is
	 * their start signal */
	ck_assert_int_eq(fcntl(pipefd[1], F_SETFD, FD_CLOEXEC), 0);
	for (int i = 0; i < NPROCS; i++) {
		snprintf(out[i], sizeof out[i], "%s/att-%d", kit_dir, i);
		pids[i] = spawn("--race", dir, NTHREADS + (uint32_t)i, seed + 100 + (uint64_t)i, nr,
				pipefd[0], out[i]);
	}
	pthread_barrier_init(&go, NULL, NTHREADS + 1);
	for (int i = 0; i < NTHREADS; i++) {
		d[i] = (decider){dir, st,           (uint32_t)i, seed + (uint64_t)i,
				 nr,  att + i * nr, &go,         -1};
		ck_assert_int_eq(pthread_create(&th[i], NULL, decider_run, &d[i]), 0);
	}
	close(pipefd[1]); /* the processes go */
	pthread_barrier_wait(&go);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	close(pipefd[0]);
	for (int i = 0; i < NPROCS; i++) {
		kit_wait_child(pids[i], 300000, 1);
		read_attempts(out[i], att + (NTHREADS + i) * nr, nr);
	}
	/* one attempt sure to lose, so that the failed path is checked
	 * whatever the scheduler interleaved: it read nothing (after 0) and
	 * every event carries one of its tags (the first accepted append
	 * met an empty log: there is one) */
	att[natt] = (attempt){.seq = 0, .who = NTHREADS + NPROCS, .mask = (1u << NTAGS) - 1};
	attempt_append(st, &att[natt]);
	ck_assert_int_eq(att[natt].rc, EVS_CONDITION_FAILED);
	check_model(st, att, natt + 1);
	ck_assert_uint_eq(tu_verify(st), 0);
	evs_close(st);
	pthread_barrier_destroy(&go);
	free(att);
}
END_TEST

/* ---- the username claims -------------------------------------------- */

typedef struct claim {
	bool taken;
	uint32_t who;
	int k;
} claim;

static const char *claim_types[] = {"UsernameClaimed"};
static const char *claim_tags[] = {"username:alice"};
static const evs_query_item claim_item = {claim_types, 1, claim_tags, 1};
static const evs_query claim_query = {&claim_item, 1};

static int claim_init(void *ctx)
{
	((claim *)ctx)->taken = false;
	return EVS_OK;
}

static int claim_apply(void *ctx, const evs_event *ev)
{
	(void)ev;
	((claim *)ctx)->taken = true;
	return EVS_OK;
}

static int claim_decide(void *ctx, evs_dcb_decision *d)
{
	claim *c = ctx;
	evs_event_in e;
	char stream[48];

	if (c->taken)
		return evs_dcb_reject(d, "username \"alice\" is taken");
	memset(&e, 0, sizeof e);
	e.type = "UsernameClaimed";
	e.tags = claim_tags;
	e.ntags = 1;
	snprintf(stream, sizeof stream, "user-%u-%d", c->who, c->k);
	return evs_dcb_emit(d, stream, &e);
}

typedef struct claimer {
	evs_store *st;
	uint32_t who;
	int n, ok, rejected;
	pthread_barrier_t *go;
} claimer;

static void *claimer_run(void *arg)
{
	claimer *c = arg;

	if (c->go)
		pthread_barrier_wait(c->go);
	for (int k = 0; k < c->n; k++) {
		claim cl = {false, c->who, k};
		evs_decider dc = {&claim_query, &cl, claim_init, claim_apply, claim_decide, 0};
		evs_decide_result r;
		int rc = evs_decide(c->st, &dc, &r);
		kit_child_check(rc == EVS_OK || rc == EVS_REJECTED, "decide: %s",
				evs_errmsg(c->st));
		if (rc == EVS_OK)
			c->ok++;
		else
			c->rejected++;
	}
	return NULL;
}

/* argv: --claim DIR WHO SEED N GOFD OUTFILE */
static int claim_main(char **argv)
{
	claimer c = {0};
	int fd, counts[2];

	c.who = (uint32_t)atoi(argv[3]);
	c.n = atoi(argv[5]);
	kit_child_check(evs_open(argv[2], NULL, &c.st) == EVS_OK, "open: %s", evs_open_errmsg());
	wait_go(atoi(argv[6]));
	claimer_run(&c);
	evs_close(c.st);
	counts[0] = c.ok;
	counts[1] = c.rejected;
	fd = open(argv[7], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	kit_child_check(fd >= 0 && tu_write_full(fd, counts, sizeof counts) == 0, "write");
	close(fd);
	return 0;
}

START_TEST(test_username_claimed_once)
{
	char dir[4096], out[NPROCS][4200];
	int per_proc = 100, per_thread = (CLAIMS - NPROCS * 100) / NTHREADS, pipefd[2];
	claimer c[NTHREADS];
	pthread_t th[NTHREADS];
	pthread_barrier_t go;
	pid_t pids[NPROCS];
	int ok = 0, rejected = 0;
	evs_store *st;
	tu_ev *log;

	tu_path(dir, sizeof dir, "store");
	st = tu_open(dir, NULL);
	tu_ok(st, tu_append_simple(st, "noise", EVS_ANY, "Other", 10, 0, 0, NULL));
	ck_assert_int_eq(pipe(pipefd), 0);
	/* only the read end goes to the children: the write end's close is
	 * their start signal */
	ck_assert_int_eq(fcntl(pipefd[1], F_SETFD, FD_CLOEXEC), 0);
	for (int i = 0; i < NPROCS; i++) {
		snprintf(out[i], sizeof out[i], "%s/claims-%d", kit_dir, i);
		pids[i] = spawn("--claim", dir, NTHREADS + (uint32_t)i, 0, per_proc, pipefd[0],
				out[i]);
	}
	pthread_barrier_init(&go, NULL, NTHREADS + 1);
	for (int i = 0; i < NTHREADS; i++) {
		c[i] = (claimer){st, (uint32_t)i, per_thread, 0, 0, &go};
		ck_assert_int_eq(pthread_create(&th[i], NULL, claimer_run, &c[i]), 0);
	}
	close(pipefd[1]);
	pthread_barrier_wait(&go);
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		ok += c[i].ok;
		rejected += c[i].rejected;
	}
	close(pipefd[0]);
	for (int i = 0; i < NPROCS; i++) {
		int counts[2], fd;
		kit_wait_child(pids[i], 300000, 1);
		fd = open(out[i], O_RDONLY);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(tu_read_full(fd, counts, sizeof counts, 10000), 0);
		close(fd);
		ok += counts[0];
		rejected += counts[1];
	}
	ck_assert_int_eq(ok + rejected, CLAIMS);
	ck_assert_int_eq(ok, 1);
	size_t n = tu_read_all(st, &log), claimed = 0;
	for (size_t i = 0; i < n; i++)
		claimed += tu_str_eq(log[i].ev.type, "UsernameClaimed");
	ck_assert_uint_eq(claimed, 1);
	ck_assert_uint_eq(n, 11);
	tu_evs_free(log, n);
	ck_assert_uint_eq(tu_verify(st), 0);
	evs_close(st);
	pthread_barrier_destroy(&go);
}
END_TEST

/* ---- evs_decide() on one thread --------------------------------------- */

typedef struct transfer {
	evs_store *st;
	int64_t balance; /* of account 1: deposits - transfers out */
	int64_t amount;
	int interfere; /* decide appends a conflicting deposit this many times */
	int decided;
} transfer;

static const char *acct_tags[] = {"account:1"};
static const evs_query_item acct_item = {NULL, 0, acct_tags, 1};
static const evs_query acct_query = {&acct_item, 1};

static int tr_init(void *ctx)
{
	((transfer *)ctx)->balance = 0;
	return EVS_OK;
}

static int tr_apply(void *ctx, const evs_event *ev)
{
	transfer *t = ctx;
	int64_t v = 0;

	tu_mp_get_int(ev->data, ev->data_len, "n", &v);
	t->balance += tu_str_eq(ev->type, "Deposited") ? v : -v;
	return EVS_OK;
}

static int tr_decide(void *ctx, evs_dcb_decision *d)
{
	transfer *t = ctx;
	const char *from_tags[] = {"account:1"}, *to_tags[] = {"account:2"};
	tu_mp data;
	evs_event_in e;
	int rc;

	t->decided++;
	if (t->interfere > 0) { /* another writer gets in between */
		t->interfere--;
		tu_mp_init(&data);
		tu_mp_map_ints(&data, 1, "n", 5LL);
		tu_event(&e, "Deposited", &data, NULL);
		e.tags = from_tags;
		e.ntags = 1;
		rc = evs_append(t->st, "account-1", EVS_ANY, &e, 1, NULL);
		tu_mp_destroy(&data);
		if (rc != EVS_OK)
			return rc;
	}
	if (t->balance < t->amount)
		return evs_dcb_reject(d, "insufficient funds");
	tu_mp_init(&data);
	tu_mp_map_ints(&data, 1, "n", (long long)t->amount);
	tu_event(&e, "TransferredOut", &data, NULL);
	e.tags = from_tags;
	e.ntags = 1;
	rc = evs_dcb_emit(d, "account-1", &e);
	tu_event(&e, "TransferredIn", &data, NULL);
	e.tags = to_tags;
	e.ntags = 1;
	if (rc == EVS_OK)
		rc = evs_dcb_emit(d, "account-2", &e);
	tu_mp_destroy(&data); /* emit copied it */
	return rc;
}

START_TEST(test_decide_retries_and_rejects)
{
	char dir[4096];
	evs_store *st;
	transfer t = {0};
	evs_decider dc = {&acct_query, &t, tr_init, tr_apply, tr_decide, 0};
	evs_decide_result r;
	tu_mp data;
	evs_event_in e;

	tu_path(dir, sizeof dir, "store");
	st = tu_open(dir, NULL);
	t.st = st;
	/* nothing deposited: rejected, nothing written */
	t.amount = 3;
	tu_assert_rc(st, evs_decide(st, &dc, &r), EVS_REJECTED);
	ck_assert_str_eq(evs_errmsg(st), "insufficient funds");
	tu_check_u64_eq(r.attempts, 1);
	/* a deposit, then a transfer while another deposit lands in between:
	 * the first attempt fails on its condition, the second folds the new
	 * deposit and wins */
	tu_mp_init(&data);
	tu_mp_map_ints(&data, 1, "n", 4LL);
	tu_event(&e, "Deposited", &data, NULL);
	e.tags = acct_tags;
	e.ntags = 1;
	tu_ok(st, evs_append(st, "account-1", EVS_ANY, &e, 1, NULL));
	tu_mp_destroy(&data);
	t.interfere = 1;
	t.amount = 3;
	tu_ok(st, evs_decide(st, &dc, &r));
	tu_check_u64_eq(r.attempts, 2);
	tu_check_u64_eq(r.conflict, 2);
	tu_check_u64_eq(r.after, 2);
	tu_check_u64_eq(r.folded, 2);
	tu_check_u64_eq(r.events, 2);
	tu_check_u64_eq(r.first_position, 3);
	tu_check_u64_eq(r.last_position, 4);
	ck_assert_int_eq(t.balance, 9);
	/* 9 - 3 left: 7 is too much, after folding the transfer out (the
	 * transfer in carries another account's tag and is not folded) */
	t.amount = 7;
	tu_assert_rc(st, evs_decide(st, &dc, &r), EVS_REJECTED);
	ck_assert_int_eq(t.balance, 6);
	tu_check_u64_eq(r.after, 3);
	t.amount = 1;
	/* every attempt interfered with: EVS_CONDITION_FAILED after 3 */
	t.interfere = 100;
	dc.max_attempts = 3;
	tu_assert_rc(st, evs_decide(st, &dc, &r), EVS_CONDITION_FAILED);
	tu_check_u64_eq(r.attempts, 3);
	ck_assert_uint_gt(r.conflict, 4);
	/* a decider with no apply is refused */
	dc.apply = NULL;
	tu_assert_rc(st, evs_decide(st, &dc, &r), EVS_INVALID);
	ck_assert_uint_eq(tu_verify(st), 0);
	evs_close(st);
}
END_TEST

int main(int argc, char **argv)
{
	if (argc == 8 && strcmp(argv[1], "--race") == 0)
		return race_main(argv);
	if (argc == 8 && strcmp(argv[1], "--claim") == 0)
		return claim_main(argv);
	const TTest *tests[] = {
		test_decide_retries_and_rejects,
		test_username_claimed_once,
		test_race_threads_and_processes,
		NULL,
	};

	return kit_main("store-dcb-race", 600, tests);
}
