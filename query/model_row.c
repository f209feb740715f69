/*
 * model_row.c - how a declared read model's row is selected and written
 * in answers: one column a value, each written by its type's rule
 * (catalog.c gives each column its kind), so that what was appended
 * reads back the same over HTTP, in the product's one format:
 *
 *   integers, numeric   PostgreSQL's digits (numeric keeps its scale:
 *                       a numeric is not a double); NaN, Infinity as
 *                       strings (as to_jsonb writes them)
 *   float4, float8      the base's number policy (mpjson.h), as the
 *                       store and /streams write doubles
 *   boolean             true, false
 *   timestamptz         RFC 3339 in UTC with the microseconds PostgreSQL
 *                       keeps and "Z" (2026-03-01T10:00:00.123456Z), as
 *                       /streams writes times; infinity as PostgreSQL
 *                       writes it
 *   json, jsonb         compact, doubles by the policy (as /streams data)
 *   text and the like   JSON strings
 *   anything else       to_jsonb(), compact
 *
 * A row is {"column":value,...} in the table's column order; a history
 * table's row leaves out the four validity columns, written beside it
 * (evsq__validity_json) in the same format.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models.h"

static const char *const validity[] = {"valid_from_position", "valid_to_position", "valid_from_at",
				       "valid_to_at"};

static bool is_validity(const char *name)
{
	int i;

	for (i = 0; i < 4; i++)
		if (!strcmp(name, validity[i]))
			return true;
	return false;
}

static bool served(const struct evsq__tinfo *ti, int i, bool history)
{
	return !history || !is_validity(ti->cols[i].name);
}

#define TIME_FMT "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'"

void evsq__row_select(evs__buf *sql, const struct evsq__tinfo *ti, const char *alias, bool history)
{
	int i;

	for (i = 0; i < ti->ncols; i++) {
		const char *q = ti->cols[i].quoted;

		if (!served(ti, i, history))
			continue;
		switch (ti->cols[i].kind) {
		case EVSQ__V_TIME:
			evs__buf_printf(
				sql,
				", CASE WHEN isfinite(%s.%s) THEN to_char(%s.%s AT TIME ZONE "
				"'UTC', " TIME_FMT ") ELSE %s.%s::text END",
				alias, q, alias, q, alias, q);
			break;
		case EVSQ__V_OTHER:
			evs__buf_printf(sql, ", to_jsonb(%s.%s)::text", alias, q);
			break;
		default: /* the type's text output (char(n) keeps its padding) */
			evs__buf_printf(sql, ", %s.%s", alias, q);
			break;
		}
	}
}

void evsq__validity_select(evs__buf *sql, const char *alias)
{
	evs__buf_printf(sql,
			", %s.valid_from_position, %s.valid_to_position,"
			" to_char(%s.valid_from_at AT TIME ZONE 'UTC', " TIME_FMT "),"
			" to_char(%s.valid_to_at AT TIME ZONE 'UTC', " TIME_FMT ")",
			alias, alias, alias, alias);
}

/* A number PostgreSQL wrote that JSON cannot hold (NaN, Infinity) is
 * written as a string, as to_jsonb does. */
static bool json_number(const char *s)
{
	const char *p = s + (*s == '-');

	return *p >= '0' && *p <= '9';
}

static void put_value(evs__buf *b, int kind, const char *v, size_t n)
{
	double d;

	switch (kind) {
	case EVSQ__V_NUMBER:
		if (json_number(v))
			evs__buf_putn(b, v, n);
		else
			evs__json_str_lossy(b, v, n);
		break;
	case EVSQ__V_DOUBLE:
		d = strtod(v, NULL);
		if (!isfinite(d) || evs__json_double(b, d) != 0)
			evs__json_str_lossy(b, v, n);
		break;
	case EVSQ__V_BOOL: evs__buf_puts(b, v[0] == 't' ? "true" : "false"); break;
	case EVSQ__V_JSON: evsq__json_copy(b, v, n, true, true); break;
	case EVSQ__V_OTHER: evsq__json_copy(b, v, n, false, true); break;
	default: /* strings, times */ evs__json_str_lossy(b, v, n); break;
	}
}

void evsq__row_json(evs__buf *b, const struct evsq__tinfo *ti, bool history, const PGresult *r,
		    int row, int col)
{
	int i, k = 0;

	evs__buf_putc(b, '{');
	for (i = 0; i < ti->ncols; i++) {
		if (!served(ti, i, history))
			continue;
		if (k++)
			evs__buf_putc(b, ',');
		evsq__json_str(b, ti->cols[i].name);
		evs__buf_putc(b, ':');
		if (PQgetisnull(r, row, col))
			evs__buf_puts(b, "null");
		else
			put_value(b, ti->cols[i].kind, PQgetvalue(r, row, col),
				  (size_t)PQgetlength(r, row, col));
		col++;
	}
	evs__buf_putc(b, '}');
}

static void put_or_null(evs__buf *b, const PGresult *r, int row, int col, bool quoted)
{
	if (PQgetisnull(r, row, col))
		evs__buf_puts(b, "null");
	else if (quoted)
		evsq__json_str(b, PQgetvalue(r, row, col));
	else
		evs__buf_puts(b, PQgetvalue(r, row, col));
}

void evsq__validity_json(evs__buf *b, const PGresult *r, int row, int col)
{
	int i;

	for (i = 0; i < 4; i++) {
		evs__buf_printf(b, "%s\"%s\":", i ? "," : "", validity[i]);
		put_or_null(b, r, row, col + i, i >= 2);
	}
}

bool evsq__has_validity(const struct evsq__tinfo *hi)
{
	int i, found = 0;

	for (i = 0; i < hi->ncols; i++)
		found += is_validity(hi->cols[i].name);
	return found == 4;
}
