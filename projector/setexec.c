/*
 * setexec.c - the declared statements of a batch, set-based (item 7 of
 * issue 10; the plan and its conditions: rules_set.c).
 *
 * Every statement of the projection touches one row named by its key
 * and reads no other, so two events interact only through a row both
 * touch. The batch is layered into rounds: a statement instance (event,
 * statement) gets round 1 + the round of the previous instance that
 * touched the same (table, key), and 1 if none did. Within a round no
 * two instances touch the same row, so each statement runs ONCE per round
 * over arrays of that round's values (its array form, rules_set.c),
 * rounds in order, statements within a round in the projection's order,
 * all pipelined (PIPE_GROUPS per sync). The effect is that of running
 * the events one at a time: per row, the same statements in the same
 * order with the same values.
 *
 * Keys are the texts of the key parameters (integer keys in canonical
 * digits, so "007" and "7" are one row). RETURNING rows of a temporal
 * table become versions (history_write.c) of their event: UPDATE and
 * DELETE return evs__ev.evs_ord, an INSERT's row is matched to its event
 * by key.
 *
 * All of it runs under SAVEPOINT evs_set: any failure of a statement
 * (or a returned row that matches no event) rolls it back with its
 * captures, and the caller runs the batch one event at a time, so a
 * failing event stops the projector or is parked exactly as before.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "setexec.h"

#define PIPE_GROUPS 64

static uint64_t hash(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ULL;

	while (n--)
		h = (h ^ (unsigned char)*p++) * 1099511628211ULL;
	return h;
}

/* The round of an instance with key keys[key, +len); remembered; *slot:
 * the key's slot. */
static uint32_t round_of(struct setrun *s, size_t key, uint32_t len, bool fold, uint32_t *slot)
{
	size_t i = hash(s->keys.ptr + key, len) & (s->nslots - 1);

	for (;; i = (i + 1) & (s->nslots - 1)) {
		struct slot *sl = &s->slots[i];

		*slot = (uint32_t)i;
		if (!sl->key) {
			sl->key = key;
			sl->keylen = len;
			sl->round = 1;
			sl->run = fold;
			return 1;
		}
		if (sl->keylen == len &&
		    memcmp(s->keys.ptr + sl->key, s->keys.ptr + key, len) == 0) {
			/* a run of folded UPDATEs of one row is one statement */
			if (fold && sl->run)
				return sl->round;
			sl->run = fold;
			return ++sl->round;
		}
	}
}

/* key: table index, then per key column a length and its text */
static void put_key(evs__buf *b, int table, const struct stmt *st, const char *const *pv, int npk)
{
	int k;

	evs__buf_putn(b, &table, sizeof table);
	for (k = 0; k < npk; k++) {
		const char *v = pv[st->set.keyparam[k] - 1];
		char canon[32];
		uint32_t l;

		if (v && st->set.int_key[k]) {
			char *end;
			long long x = strtoll(v, &end, 10);

			if (end != v && *end == '\0') {
				snprintf(canon, sizeof canon, "%lld", x);
				v = canon;
			}
		}
		l = v ? (uint32_t)strlen(v) : UINT32_MAX;
		evs__buf_putn(b, &l, sizeof l);
		if (v)
			evs__buf_putn(b, v, l);
	}
}

static int cmp_inst(const void *a, const void *b)
{
	const struct inst *x = a, *y = b;

	if (x->round != y->round)
		return x->round < y->round ? -1 : 1;
	if (x->gsid != y->gsid)
		return x->gsid < y->gsid ? -1 : 1;
	if (x->ev != y->ev)
		return x->ev < y->ev ? -1 : 1;
	return (x->sid > y->sid) - (x->sid < y->sid);
}

/* Instances of the batch with their values, keys and rounds; with
 * max_round, *cut = the events before the first that would need a later
 * round (at least one). */
static int layer(struct evp__run *r, struct setrun *s, uint32_t max_round, size_t *cut)
{
	evp_rules *rs = r->rules;
	struct unpacked u;
	size_t i, need = 1;
	int j, k;

	if (evp__unpacked_init(&u) != EVP_OK)
		return EVP_NOMEM;
	s->n = 0;
	evs__buf_reset(&s->vals);
	evs__buf_reset(&s->keys);
	evs__buf_putc(&s->keys, 0); /* offset 0 means "empty" */
	for (i = 0; i < r->batch.n; i++) {
		const struct rule *ru = evp__find_rule(rs, &r->batch.events[i].ev.type);

		need += ru ? (size_t)ru->nstmts : 0;
	}
	for (s->nslots = 16; s->nslots < 2 * need; s->nslots *= 2)
		;
	free(s->slots);
	if (!(s->slots = calloc(s->nslots, sizeof *s->slots)))
		goto oom;
	for (i = 0; i < r->batch.n; i++) {
		const evs_event *ev = &r->batch.events[i].ev;
		const struct rule *ru = evp__find_rule(rs, &ev->type);

		if (!ru)
			continue;
		evp__unpack_event(&u, ev);
		for (j = 0; j < ru->nstmts; j++) {
			const struct stmt *st = &ru->stmts[j];
			const struct htable *t = &rs->tables_v[st->target.table];
			struct inst *in;

			if (evp__bind_params(&u, st, ev) != EVP_OK)
				goto oom;
			if (s->n == s->cap) {
				size_t cap = s->cap ? s->cap * 2 : 4096;
				struct inst *p = realloc(s->in, cap * sizeof *p);

				if (!p)
					goto oom;
				s->in = p;
				s->cap = cap;
			}
			in = &s->in[s->n++];
			in->ev = (uint32_t)i;
			in->st = st;
			in->sid = (int)(st - ru->stmts) + (int)(ru - rs->rules) * 1000;
			in->grp =
				st->set.fold && t->fold ? (const void *)t->fold : (const void *)st;
			in->gsid = in->grp == st ? in->sid : -1 - st->target.table;
			in->vals = s->vals.len;
			for (k = 0; k < st->nparams; k++) {
				evs__buf_putc(&s->vals, u.pv[k] ? 1 : 0);
				if (u.pv[k])
					evs__buf_putn(&s->vals, u.pv[k], strlen(u.pv[k]) + 1);
			}
			in->key = s->keys.len;
			put_key(&s->keys, st->target.table, st, u.pv, t->npk);
			in->keylen = (uint32_t)(s->keys.len - in->key);
			if (s->vals.oom || s->keys.oom)
				goto oom;
			in->round = round_of(s, in->key, in->keylen, in->grp != st, &in->slot);
			if (max_round && in->round > max_round && i > 0) {
				*cut = i;
				evp__unpacked_free(&u);
				return EVP_OK;
			}
		}
	}
	if (cut)
		*cut = r->batch.n;
	evp__unpacked_free(&u);
	if (s->n)
		qsort(s->in, s->n, sizeof *s->in, cmp_inst);
	return EVP_OK;
oom:
	evp__unpacked_free(&u);
	snprintf(r->err, r->errlen, "out of memory");
	return EVP_NOMEM;
}

/* Send one group (instances [a, b) of one statement and round). */
static int send_group(struct evp__run *r, struct setrun *s, size_t a, size_t b)
{
	const struct stmt *st = s->in[a].st;
	const char *pv[MAX_PARAMS];
	int len[MAX_PARAMS], fmt[MAX_PARAMS];
	size_t i;
	int k;

	if (s->in[a].grp != st)
		return evp__set_send_fold(r, s, a, b);
	for (k = 0; k < st->nparams; k++)
		evp__array_start(&s->arr[k], st->set.etypes[k]);
	for (i = a; i < b; i++) {
		const char *p = s->vals.ptr + s->in[i].vals;

		for (k = 0; k < st->nparams; k++) {
			if (*p++) {
				size_t l = strlen(p);

				evp__array_add(&s->arr[k], p, l);
				p += l + 1;
			} else {
				evp__array_add(&s->arr[k], NULL, 0);
			}
		}
	}
	for (k = 0; k < st->nparams; k++)
		if (evp__array_finish(&s->arr[k], &pv[k], &len[k], &fmt[k])) {
			snprintf(r->err, r->errlen, "out of memory");
			return EVP_NOMEM;
		}
	if (PQsendQueryPrepared(r->conn, st->set.pname, st->nparams, pv, len, fmt, 0) != 1)
		return evp__pg_fail(r, NULL, "could not send a set-based statement");
	return EVP_OK;
}

/* The rows a group's statement returned, as versions of their events. */
static int capture(struct evp__run *r, struct setrun *s, size_t a, size_t b, const PGresult *res)
{
	const struct stmt *st = s->in[a].st;
	const struct htable *t = &r->rules->tables_v[st->target.table];
	evs__buf key = {0};
	int row, rc = EVP_OK;

	if (s->in[a].grp != st)
		return evp__set_capture_fold(r, s, a, b, res);
	for (row = 0; row < PQntuples(res) && rc == EVP_OK; row++) {
		size_t i = b;

		if (st->target.kind != 'I') {
			long ord = atol(PQgetvalue(res, row, PQnfields(res) - 1));

			if (ord >= 1 && (size_t)ord <= b - a)
				i = a + (size_t)ord - 1;
		} else {
			/* an INSERT's row: the instance with its key */
			const char *pv[MAX_PARAMS] = {0};
			int k;

			for (k = 0; k < t->npk; k++)
				pv[st->set.keyparam[k] - 1] = PQgetvalue(res, row, t->pk[k]);
			evs__buf_reset(&key);
			put_key(&key, st->target.table, st, pv, t->npk);
			for (i = a; i < b; i++)
				if (s->in[i].keylen == key.len &&
				    memcmp(s->keys.ptr + s->in[i].key, key.ptr, key.len) == 0)
					break;
		}
		if (i == b) {
			rc = EVP_INVALID; /* cannot tell whose row it is: one at a time */
			break;
		}
		rc = evp__history_capture_row(r->rules, st, res, row,
					      r->batch.events[s->in[i].ev].ev.position,
					      r->batch.events[s->in[i].ev].ev.recorded_at);
	}
	evs__buf_free(&key);
	return rc;
}

/* Run the groups pipelined; EVP_SQL when a statement failed. */
static int pipeline(struct evp__run *r, struct setrun *s)
{
	size_t ga[PIPE_GROUPS], gb[PIPE_GROUPS];
	size_t i = 0;
	int rc = EVP_OK;

	if (PQenterPipelineMode(r->conn) != 1)
		return evp__pg_fail(r, NULL, "could not enter pipeline mode");
	while (i < s->n && rc == EVP_OK) {
		size_t sent = 0, got = 0;
		bool synced = false;

		/* the savepoint goes with the first groups: no round trip of its
		 * own (a failing statement aborts the rest of the pipeline, and
		 * the caller rolls back to it) */
		if (i == 0) {
			if (PQsendQueryParams(r->conn, "SAVEPOINT evs_set", 0, NULL, NULL, NULL,
					      NULL, 0) != 1)
				rc = evp__pg_fail(r, NULL, "could not send SAVEPOINT");
			ga[sent] = gb[sent] = SIZE_MAX;
			sent++;
		}
		while (i < s->n && sent < PIPE_GROUPS && rc == EVP_OK) {
			size_t j = i + 1;

			while (j < s->n && s->in[j].round == s->in[i].round &&
			       s->in[j].grp == s->in[i].grp)
				j++;
			rc = send_group(r, s, i, j);
			/* the server starts on it while the next one is built */
			if (rc == EVP_OK && PQflush(r->conn) != 0)
				rc = evp__pg_fail(r, NULL, "could not send a set-based statement");
			ga[sent] = i;
			gb[sent++] = j;
			i = j;
		}
		if (PQpipelineSync(r->conn) != 1) {
			if (!rc)
				rc = evp__pg_fail(r, NULL, "could not sync the pipeline");
			break;
		}
		while (!synced) {
			PGresult *res = PQgetResult(r->conn);

			if (!res) {
				if (PQstatus(r->conn) != CONNECTION_OK) {
					if (!rc)
						rc = evp__pg_fail(r, NULL, "connection lost");
					break;
				}
				if (++got > sent + 1) {
					if (!rc)
						rc = evp__pg_fail(r, NULL,
								  "lost the pipeline's sync");
					break;
				}
				continue;
			}
			switch (PQresultStatus(res)) {
			case PGRES_PIPELINE_SYNC: synced = true; break;
			case PGRES_TUPLES_OK:
				if (!rc && got < sent && ga[got] != SIZE_MAX &&
				    capture(r, s, ga[got], gb[got], res))
					rc = EVP_SQL;
				break;
			case PGRES_COMMAND_OK:
			case PGRES_PIPELINE_ABORTED: break;
			default:
				if (!rc) {
					rc = evp_retryable(r->conn, res) ? EVP_CONNECT : EVP_SQL;
					if (rc == EVP_CONNECT) {
						evp__pg_fail(r, res,
							     "a set-based statement failed");
						res = NULL;
					}
				}
			}
			PQclear(res);
		}
	}
	if (PQexitPipelineMode(r->conn) != 1 && !rc)
		rc = evp__pg_fail(r, NULL, "could not leave pipeline mode");
	return rc;
}

/*
 * Rounds per transaction are bounded: a row updated many times in one
 * transaction leaves a chain of dead versions (and, once its page is
 * full, index entries) that every later update of it walks, so the cost
 * of a key grows with the square of its updates per transaction. A batch
 * whose events would need more than MAX_ROUNDS rounds is cut before the
 * first such event; the rest is the next batch (batch boundaries change
 * nothing in the result). Bank benchmark, 100 accounts, 10,000-event
 * batches: see BENCHMARKS.md, "After issue 10".
 */
#define MAX_ROUNDS 16

int evp__rules_set_cut(struct evp__run *r)
{
	struct setrun s;
	size_t cut = r->batch.n;
	const char *env = getenv("EVS_PROJECTOR_MAX_ROUNDS"); /* benchmarks */
	uint32_t max = env ? (uint32_t)atoi(env) : MAX_ROUNDS;
	int k, rc;

	if (!max)
		return EVP_OK;
	memset(&s, 0, sizeof s);
	rc = layer(r, &s, max, &cut);
	if (rc == EVP_OK && cut < r->batch.n) {
		evp__logm(r, EVS_LOG_DEBUG, "batch cut after %zu of %zu events (%u rounds)", cut,
			  r->batch.n, max);
		r->batch.n = cut;
	}
	free(s.in);
	free(s.slots);
	evs__buf_free(&s.vals);
	evs__buf_free(&s.keys);
	for (k = 0; k < MAX_PARAMS; k++)
		evp__array_free(&s.arr[k]);
	return rc;
}

/* A small batch (live, a few events) runs one event at a time, pipelined:
 * one round trip, where the set-based form takes a few more (savepoint,
 * release) for nothing to gain. */
#define SET_MIN_EVENTS 64

bool evp__rules_set_use(const struct evp__run *r)
{
	return r->rules && r->rules->set_ok && r->batch.n >= SET_MIN_EVENTS;
}

int evp__rules_apply_set(struct evp__run *r, bool *fallback)
{
	struct setrun s;
	uint32_t mark = evp__history_mark(r->rules);
	int k, rc;

	*fallback = false;
	memset(&s, 0, sizeof s);
	if ((rc = layer(r, &s, 0, NULL)) || s.n == 0)
		goto out;
	rc = pipeline(r, &s); /* SAVEPOINT evs_set first */
	if (rc == EVP_SQL) {
		/* one at a time finds the failing event, as before */
		evp__history_rewind(r->rules, mark);
		evp__logm(r, EVS_LOG_DEBUG,
			  "a set-based statement failed: the batch runs one event at a time");
		r->err[0] = '\0';
		*fallback = true;
		rc = evp__cmd(r, "ROLLBACK TO SAVEPOINT evs_set");
	} else if (rc == EVP_OK) {
		/* not released: a round trip for nothing, COMMIT ends it */
		r->set_batch = true;
	}
out:
	free(s.in);
	free(s.slots);
	evs__buf_free(&s.vals);
	evs__buf_free(&s.keys);
	for (k = 0; k < MAX_PARAMS; k++)
		evp__array_free(&s.arr[k]);
	return rc;
}
