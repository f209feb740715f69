/*
 * setfold.c - the groups of a fold in set-based execution (setexec.c
 * lays the batch out; fold.c and fold_sql.c make the statement): the
 * arrays of a run's instances, and the rows that come back.
 *
 * Besides the values, the projector computes what it knows without
 * reading a row: each key's number in the batch (its slot, the window's
 * partition), and per instance the next instance of its key (its place
 * in the group, position and recorded_at) and the position of the key's
 * first instance, so that the statement needs no lead() or first_value()
 * over its window.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "setexec.h"

/* arr[k], arr[k + 1]: the event's position and recorded_at */
static void pos_time(struct setrun *s, int k, evs__buf *tmp, const evs_event *ev)
{
	char num[24];

	snprintf(num, sizeof num, "%llu", (unsigned long long)ev->position);
	evp__array_add(&s->arr[k], num, strlen(num));
	evs__buf_reset(tmp);
	evs__time_pg_text(tmp, ev->recorded_at);
	evp__array_add(&s->arr[k + 1], tmp->ptr, tmp->len);
}

/* Send a fold's group: its arrays are the statement of each instance
 * (its place in the fold), the key columns, then every folded
 * statement's parameters (NULL for the other statements' instances). */
int evp__set_send_fold(struct evp__run *r, struct setrun *s, size_t a, size_t b)
{
	const struct fold *f = s->in[a].grp;
	const struct htable *t = &r->rules->tables_v[s->in[a].st->target.table];
	/* arrays: sid, keys, parameter slots, then (at pb) pos, at, kid,
	 * nexto, npos, nat, fpos */
	int qb = 1 + t->npk, pb = qb + evp__fold_nparams(f), na = pb + 7, k;
	static const Oid tail[7] = {20, 1184, 23, 23, 20, 1184, 20};
	evs__buf tmp = {0};
	const char *pv[MAX_PARAMS], *v[MAX_PARAMS];
	int len[MAX_PARAMS], fmt[MAX_PARAMS];
	size_t i, *next = malloc(2 * (b - a) * sizeof *next), *first = next + (b - a);
	uint32_t *seen = malloc(s->nslots * sizeof *seen);

	if (!next || !seen) {
		free(next);
		free(seen);
		snprintf(r->err, r->errlen, "out of memory");
		return EVP_NOMEM;
	}
	/* per instance: the next one of its key (b - a: none) and the first */
	for (i = a; i < b; i++)
		seen[s->in[i].slot] = UINT32_MAX;
	for (i = a; i < b; i++) {
		uint32_t sl = s->in[i].slot;

		next[i - a] = b - a;
		if (seen[sl] == UINT32_MAX) {
			first[i - a] = i - a;
		} else {
			next[seen[sl]] = i - a;
			first[i - a] = first[seen[sl]];
		}
		seen[sl] = (uint32_t)(i - a);
	}
	evp__array_start(&s->arr[0], 23); /* int4 */
	for (k = 0; k < t->npk; k++)
		evp__array_start(&s->arr[1 + k], evp__fold_ktype(f, k));
	for (k = qb; k < pb; k++)
		evp__array_start(&s->arr[k], evp__fold_etype(f, k - qb));
	for (k = 0; k < 7; k++)
		evp__array_start(&s->arr[pb + k], tail[k]);
	for (i = a; i < b; i++) {
		const struct stmt *st = s->in[i].st;
		const char *p = s->vals.ptr + s->in[i].vals, *x[MAX_PARAMS] = {0};
		char num[24];

		for (k = 0; k < st->nparams; k++) {
			v[k] = *p++ ? p : NULL;
			if (v[k])
				p += strlen(p) + 1;
			x[1 + t->npk + evp__fold_slot(f, st->set.fold - 1, k)] = v[k];
		}
		snprintf(num, sizeof num, "%d", st->set.fold - 1);
		evp__array_add(&s->arr[0], num, strlen(num));
		for (k = 0; k < t->npk; k++) {
			const char *kv = v[st->set.keyparam[k] - 1];

			evp__array_add(&s->arr[1 + k], kv, kv ? strlen(kv) : 0);
		}
		for (k = qb; k < pb; k++)
			evp__array_add(&s->arr[k], x[k], x[k] ? strlen(x[k]) : 0);
		pos_time(s, pb, &tmp, &r->batch.events[s->in[i].ev].ev);
		snprintf(num, sizeof num, "%u", s->in[i].slot);
		evp__array_add(&s->arr[pb + 2], num, strlen(num));
		if (next[i - a] < b - a) {
			snprintf(num, sizeof num, "%zu", next[i - a] + 1);
			evp__array_add(&s->arr[pb + 3], num, strlen(num));
			pos_time(s, pb + 4, &tmp, &r->batch.events[s->in[a + next[i - a]].ev].ev);
		} else {
			evp__array_add(&s->arr[pb + 3], NULL, 0);
			evp__array_add(&s->arr[pb + 4], NULL, 0);
			evp__array_add(&s->arr[pb + 5], NULL, 0);
		}
		/* the first instance of the key: its position */
		snprintf(num, sizeof num, "%llu",
			 (unsigned long long)r->batch.events[s->in[a + first[i - a]].ev]
				 .ev.position);
		evp__array_add(&s->arr[pb + 6], num, strlen(num));
	}
	evs__buf_free(&tmp);
	free(next);
	free(seen);
	for (k = 0; k < na; k++)
		if (evp__array_finish(&s->arr[k], &pv[k], &len[k], &fmt[k])) {
			snprintf(r->err, r->errlen, "out of memory");
			return EVP_NOMEM;
		}
	if (PQsendQueryPrepared(r->conn, evp__fold_name(f), na, pv, len, fmt, 0) != 1)
		return evp__pg_fail(r, NULL, "could not send a folded statement");
	return EVP_OK;
}

struct ordrow {
	long ord;
	int row;
};

static int cmp_ord(const void *a, const void *b)
{
	const struct ordrow *x = a, *y = b;

	return (x->ord > y->ord) - (x->ord < y->ord);
}

/* A fold's rows (t's columns, ok, the next instance of its key when the
 * row is the first version of a run of several, evs_ord), in run order:
 * versions of their events. Not ok: a NOT NULL column would be NULL
 * after that event; one at a time fails there. */
int evp__set_capture_fold(struct evp__run *r, struct setrun *s, size_t a, size_t b,
			  const PGresult *res)
{
	int n = PQntuples(res), row, rc = EVP_OK;
	struct ordrow *o = malloc(sizeof *o * (size_t)(n ? n : 1));

	if (!o)
		return EVP_NOMEM;
	for (row = 0; row < n; row++) {
		o[row].ord = atol(PQgetvalue(res, row, PQnfields(res) - 1));
		o[row].row = row;
		if (o[row].ord < 1 || (size_t)o[row].ord > b - a ||
		    PQgetvalue(res, row, PQnfields(res) - 3)[0] != 't')
			rc = EVP_INVALID;
	}
	if (n)
		qsort(o, (size_t)n, sizeof *o, cmp_ord);
	for (row = 0; row < n && rc == EVP_OK; row++) {
		const struct inst *in = &s->in[a + (size_t)o[row].ord - 1];
		const evs_event *end = NULL;
		int nc = PQnfields(res) - 2;

		if (!PQgetisnull(res, o[row].row, nc)) {
			long e = atol(PQgetvalue(res, o[row].row, nc));

			if (e < 1 || (size_t)e > b - a) {
				rc = EVP_INVALID;
				break;
			}
			end = &r->batch.events[s->in[a + (size_t)e - 1].ev].ev;
		}
		rc = evp__history_capture_row(r->rules, in->st, res, o[row].row,
					      r->batch.events[in->ev].ev.position,
					      r->batch.events[in->ev].ev.recorded_at);
		if (rc == EVP_OK && end)
			evp__history_end_last(r->rules, in->st, end->position, end->recorded_at);
	}
	free(o);
	return rc;
}
