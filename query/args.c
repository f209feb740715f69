/*
 * args.c - the query parameters of a request, read once and checked the
 * same way for every endpoint (/streams/... and /models/...): a
 * parameter given twice, without a value ("?as_of"), or with a zero byte
 * in its name or value ("%00": C strings would cut it short and answer
 * for what remains) is refused with 400, and so is a name the endpoint
 * does not take. Each value's own syntax is its endpoint's business (an
 * empty value is refused there: no parameter of the streams takes "").
 *
 * The whole request is checked for malformed parameters before any name
 * is looked at, so a malformed request gets the same answer from every
 * endpoint.
 */
#include <stdio.h>
#include <string.h>

#include <microhttpd.h>

#include "internal.h"

struct walk {
	evsq__args *a;
	bool overflow, nul;
	const char *nul_key;
};

static enum MHD_Result collect(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
			       const char *value, size_t value_size)
{
	struct walk *w = cls;
	evsq__args *a = w->a;

	(void)kind;
	if (strlen(key) != key_size || (value && strlen(value) != value_size)) {
		w->nul = true;
		w->nul_key = key;
		return MHD_NO;
	}
	if (a->n == EVSQ__MAX_ARGS) {
		w->overflow = true;
		return MHD_NO;
	}
	a->a[a->n].key = key;
	a->a[a->n].value = value;
	a->n++;
	return MHD_YES;
}

static bool listed(const char *const *names, const char *key)
{
	for (int i = 0; names && names[i]; i++)
		if (!strcmp(names[i], key))
			return true;
	return false;
}

bool evsq__args_read(struct MHD_Connection *conn, const char *const *allowed, evsq__args *a,
		     char *msg, size_t msglen)
{
	return evsq__args_read_multi(conn, allowed, NULL, a, msg, msglen);
}

bool evsq__args_read_multi(struct MHD_Connection *conn, const char *const *allowed,
			   const char *const *repeatable, evsq__args *a, char *msg, size_t msglen)
{
	struct walk w = {a, false, false, NULL};
	int i, j;

	a->n = 0;
	MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND, collect, &w);
	if (w.nul) {
		snprintf(msg, msglen, "parameter \"%.100s\" contains a zero byte", w.nul_key);
		return false;
	}
	if (w.overflow) {
		snprintf(msg, msglen, "more than %d parameters", EVSQ__MAX_ARGS);
		return false;
	}
	for (i = 0; i < a->n; i++) {
		for (j = 0; j < i && !listed(repeatable, a->a[i].key); j++)
			if (!strcmp(a->a[i].key, a->a[j].key)) {
				snprintf(msg, msglen, "parameter \"%.100s\" given twice",
					 a->a[i].key);
				return false;
			}
		if (!a->a[i].value) {
			snprintf(msg, msglen, "parameter \"%.100s\" needs a value", a->a[i].key);
			return false;
		}
	}
	for (i = 0; allowed && i < a->n; i++) {
		for (j = 0; allowed[j] && strcmp(a->a[i].key, allowed[j]); j++)
			;
		if (!allowed[j]) {
			snprintf(msg, msglen, "unknown parameter \"%.100s\"", a->a[i].key);
			return false;
		}
	}
	return true;
}

unsigned evsq__args_check(struct MHD_Connection *conn, const char *const *allowed, evsq__args *a,
			  evs__buf *body)
{
	char msg[256];

	if (evsq__args_read(conn, allowed, a, msg, sizeof msg))
		return 0;
	evsq__error(body, "bad_request", msg);
	return 400;
}

unsigned evsq__args_check_multi(struct MHD_Connection *conn, const char *const *allowed,
				const char *const *repeatable, evsq__args *a, evs__buf *body)
{
	char msg[256];

	if (evsq__args_read_multi(conn, allowed, repeatable, a, msg, sizeof msg))
		return 0;
	evsq__error(body, "bad_request", msg);
	return 400;
}

const char *evsq__arg_next(const evsq__args *a, const char *key, int *i)
{
	for (; *i < a->n; (*i)++)
		if (!strcmp(a->a[*i].key, key))
			return a->a[(*i)++].value;
	return NULL;
}

const char *evsq__arg(const evsq__args *a, const char *key)
{
	int i;

	for (i = 0; i < a->n; i++)
		if (!strcmp(a->a[i].key, key))
			return a->a[i].value;
	return NULL;
}

unsigned evsq__bad_param(evs__buf *body, const char *name, const char *value, const char *expected)
{
	char msg[512];

	snprintf(msg, sizeof msg, "invalid %s \"%.100s\": expected %s", name, value, expected);
	evsq__error(body, "bad_request", msg);
	return 400;
}
