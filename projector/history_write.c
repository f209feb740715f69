/*
 * history_write.c - the versions a batch made in temporal tables:
 * captured from the RETURNING rows of its statements, written at the
 * end of the batch (the scheme is drawn at the top of history.c).
 *
 * A capture is kept as its key (each primary-key column's text, length
 * prefixed) and its row as one line of COPY text, in the table's data
 * buffer, reset per batch. A failing event parked under a savepoint
 * takes its captures back with it (mark / rewind).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"

int evp__history_capture(evp_rules *rs, const struct stmt *st, const PGresult *res,
			 uint64_t position, int64_t recorded_at)
{
	int row, rc = EVP_OK;

	for (row = 0; row < PQntuples(res) && rc == EVP_OK; row++)
		rc = evp__history_capture_row(rs, st, res, row, position, recorded_at);
	return rc;
}

int evp__history_capture_row(evp_rules *rs, const struct stmt *st, const PGresult *res, int row,
			     uint64_t position, int64_t recorded_at)
{
	struct htable *t;
	int c, k;

	if (st->target.table < 0)
		return EVP_OK;
	t = &rs->tables_v[st->target.table];
	if (!t->active)
		return EVP_OK;
	if (PQnfields(res) < t->ncols)
		return EVP_INVALID;
	{
		struct hrow *h;

		if (t->nrows == t->cap) {
			size_t cap = t->cap ? t->cap * 2 : 1024;
			struct hrow *p = realloc(t->rows, cap * sizeof *p);

			if (!p)
				return EVP_NOMEM;
			t->rows = p;
			t->cap = cap;
		}
		h = &t->rows[t->nrows];
		h->pos = position;
		h->at = recorded_at;
		h->seq = rs->seq++;
		h->del = st->target.kind == 'D';
		h->end_pos = 0;
		h->off = t->data.len;
		for (k = 0; k < t->npk; k++) {
			uint32_t l = (uint32_t)PQgetlength(res, row, t->pk[k]);

			evs__buf_putn(&t->data, &l, sizeof l);
			evs__buf_putn(&t->data, PQgetvalue(res, row, t->pk[k]), l);
		}
		h->keylen = (uint32_t)(t->data.len - h->off);
		for (c = 0; c < t->ncols; c++) {
			if (c)
				evs__buf_putc(&t->data, '\t');
			evp_copy_field(&t->data,
				       PQgetisnull(res, row, c) ? NULL : PQgetvalue(res, row, c),
				       (size_t)PQgetlength(res, row, c));
		}
		h->rowlen = (uint32_t)(t->data.len - h->off - h->keylen);
		if (t->data.oom)
			return EVP_NOMEM;
		t->nrows++;
	}
	return EVP_OK;
}

void evp__history_end_last(evp_rules *rs, const struct stmt *st, uint64_t position,
			   int64_t recorded_at)
{
	struct htable *t = &rs->tables_v[st->target.table];

	if (t->active && t->nrows) {
		t->rows[t->nrows - 1].end_pos = position;
		t->rows[t->nrows - 1].end_at = recorded_at;
	}
}

uint32_t evp__history_mark(const evp_rules *rs)
{
	return rs ? rs->seq : 0;
}

void evp__history_rewind(evp_rules *rs, uint32_t mark)
{
	int i;

	for (i = 0; rs && i < rs->ntables; i++) {
		struct htable *t = &rs->tables_v[i];

		while (t->nrows && t->rows[t->nrows - 1].seq >= mark) {
			t->nrows--;
			t->data.len = t->rows[t->nrows].off;
		}
	}
}

void evp__history_reset(evp_rules *rs)
{
	int i;

	for (i = 0; rs && i < rs->ntables; i++) {
		rs->tables_v[i].nrows = 0;
		evs__buf_reset(&rs->tables_v[i].data);
	}
	if (rs)
		rs->seq = 0;
}

static int cmp_hrow(const void *a, const void *b)
{
	const struct hrow *x = a, *y = b;
	int c;

	if (x->keylen != y->keylen)
		return x->keylen < y->keylen ? -1 : 1;
	if ((c = memcmp(x->key, y->key, x->keylen)))
		return c;
	if (x->pos != y->pos)
		return x->pos < y->pos ? -1 : 1;
	return (x->seq > y->seq) - (x->seq < y->seq);
}

static void time_elem(evs__buf *arr, evs__buf *tmp, int64_t ns)
{
	evs__buf_reset(tmp);
	evs__time_pg_text(tmp, ns);
	evp_array_elem(arr, tmp->ptr, tmp->len);
}

static const char *close_sql(const struct evp__run *r, const struct htable *t)
{
	return r->bulk && t->close_bulk_sql ? t->close_bulk_sql : t->close_sql;
}

/* Close the versions earlier batches left open for the keys of this
 * one: arrays of keys, first positions and times. Sent into the
 * pipeline that ends the batch (txn.c), after this batch's versions are
 * in: the statement only looks at versions from before the batch's
 * first position. */
static int send_close(struct evp__run *r, struct htable *t, evs__buf *arr, evs__buf *tmp,
		      uint64_t first)
{
	const char *vals[35];
	char s_first[24], name[16];
	const char *type = t->pk_types.ptr;
	int k, rc = EVP_OK;
	size_t i;

	for (k = 0; k < t->npk + 2; k++) {
		evs__buf_reset(&arr[k]);
		evs__buf_putc(&arr[k], '{');
	}
	for (i = 0; i < t->nrows; i++) {
		const struct hrow *h = &t->rows[i];
		const char *p = h->key;

		if (i && h->keylen == h[-1].keylen && memcmp(h->key, h[-1].key, h->keylen) == 0)
			continue;
		for (k = 0; k < t->npk; k++) {
			uint32_t l;

			memcpy(&l, p, sizeof l);
			if (arr[k].len > 1)
				evs__buf_putc(&arr[k], ',');
			evp_array_elem(&arr[k], p + sizeof l, l);
			p += sizeof l + l;
		}
		if (arr[t->npk].len > 1) {
			evs__buf_putc(&arr[t->npk], ',');
			evs__buf_putc(&arr[t->npk + 1], ',');
		}
		evs__buf_printf(&arr[t->npk], "%llu", (unsigned long long)h->pos);
		time_elem(&arr[t->npk + 1], tmp, h->at);
	}
	for (k = 0; k < t->npk + 2; k++) {
		evs__buf_putc(&arr[k], '}');
		if (!evs__buf_cstr(&arr[k]))
			rc = EVP_NOMEM;
		vals[k] = arr[k].ptr;
	}
	if (rc) {
		snprintf(r->err, r->errlen, "out of memory");
		return rc;
	}
	snprintf(s_first, sizeof s_first, "%llu", (unsigned long long)first);
	vals[t->npk + 2] = s_first;
	(void)type;
	/* prepared before the pipeline (evp__history_prepare_closes): found */
	if ((rc = evp__prepare(r, close_sql(r, t), t->npk + 3, name)))
		return rc;
	if ((name[0] ? PQsendQueryPrepared(r->conn, name, t->npk + 3, vals, NULL, NULL, 0)
		     : PQsendQueryParams(r->conn, close_sql(r, t), t->npk + 3, NULL, vals, NULL,
					 NULL, 0)) != 1)
		return evp__pg_fail(r, NULL, "could not close the open versions of \"%s\"",
				    t->name);
	return EVP_OK;
}

/* The versions of the batch, as COPY text lines. */
static int copy_versions(struct evp__run *r, struct htable *t, evs__buf *tmp)
{
	evs__buf *b = &r->copy;
	size_t i;
	int rc;

	if ((rc = evp__copy_begin(r, t->copy_sql)))
		return rc;
	evs__buf_reset(b);
	for (i = 0; i < t->nrows; i++) {
		const struct hrow *h = &t->rows[i], *next = NULL;
		struct hrow end;
		size_t j = i + 1;

		/* the last capture of its key and position counts */
		if (j < t->nrows && h->keylen == h[1].keylen &&
		    memcmp(h->key, h[1].key, h->keylen) == 0 && h[1].pos == h->pos)
			continue;
		if (h->del)
			continue;
		/* the next capture of the key (at a later position) ends it */
		if (j < t->nrows && h->keylen == h[1].keylen &&
		    memcmp(h->key, h[1].key, h->keylen) == 0)
			next = &h[1];
		if (h->end_pos) {
			end.pos = h->end_pos;
			end.at = h->end_at;
			next = &end;
		}
		evs__buf_putn(b, t->data.ptr + h->off + h->keylen, h->rowlen);
		evs__buf_printf(b, "\t%llu\t", (unsigned long long)h->pos);
		if (next)
			evs__buf_printf(b, "%llu\t", (unsigned long long)next->pos);
		else
			evs__buf_puts(b, "\\N\t");
		evs__buf_reset(tmp);
		evs__time_pg_text(tmp, h->at);
		evs__buf_putn(b, tmp->ptr, tmp->len);
		evs__buf_putc(b, '\t');
		if (next) {
			evs__buf_reset(tmp);
			evs__time_pg_text(tmp, next->at);
			evs__buf_putn(b, tmp->ptr, tmp->len);
		} else {
			evs__buf_puts(b, "\\N");
		}
		evs__buf_putc(b, '\n');
		if ((rc = evp__copy_flush(r, b, false)))
			return rc;
	}
	return evp__copy_end(r, b, "COPY of a history table");
}

/* The versions of the batch (COPY per temporal table); the closing
 * statements follow with evp__history_send_closes. */
int evp__history_write(struct evp__run *r)
{
	evp_rules *rs = r->rules;
	evs__buf tmp = {0};
	int i, rc = EVP_OK;

	for (i = 0; rs && i < rs->ntables && rc == EVP_OK; i++) {
		struct htable *t = &rs->tables_v[i];
		size_t j;

		if (!t->active || t->nrows == 0)
			continue;
		for (j = 0; j < t->nrows; j++)
			t->rows[j].key = t->data.ptr + t->rows[j].off;
		qsort(t->rows, t->nrows, sizeof *t->rows, cmp_hrow);
		rc = copy_versions(r, t, &tmp);
	}
	evs__buf_free(&tmp);
	return rc;
}

/* Before the pipeline (txn.c): the closing UPDATEs this batch sends,
 * prepared on the session (once). */
int evp__history_prepare_closes(struct evp__run *r)
{
	evp_rules *rs = r->rules;
	char name[16];
	int i, rc = EVP_OK;

	for (i = 0; rs && i < rs->ntables && rc == EVP_OK; i++) {
		struct htable *t = &rs->tables_v[i];

		if (t->active && t->nrows)
			rc = evp__prepare(r, close_sql(r, t), t->npk + 3, name);
	}
	return rc;
}

/* In pipeline mode (txn.c): one closing UPDATE per temporal table with
 * versions in the batch; *n: how many were sent. The captures are reset. */
int evp__history_send_closes(struct evp__run *r, int *n)
{
	evp_rules *rs = r->rules;
	const uint64_t first = r->batch.events[0].ev.position;
	evs__buf arr[34] = {{0}}, tmp = {0};
	int i, k, rc = EVP_OK;

	*n = 0;
	for (i = 0; rs && i < rs->ntables && rc == EVP_OK; i++) {
		struct htable *t = &rs->tables_v[i];

		if (!t->active || t->nrows == 0)
			continue;
		if ((rc = send_close(r, t, arr, &tmp, first)) == EVP_OK)
			(*n)++;
	}
	for (k = 0; k < 34; k++)
		evs__buf_free(&arr[k]);
	evs__buf_free(&tmp);
	evp__history_reset(rs);
	return rc;
}
