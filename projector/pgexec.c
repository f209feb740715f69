/*
 * pgexec.c - what every part of the projector needs: its log, clocks,
 * one way to run a statement and check its status, and libpq's errors in
 * PostgreSQL's voice ("could not ...: <server message>").
 *
 * A failure is EVP_CONNECT when it means "the server went away or asked
 * us to retry" (evp_retryable), which the loop answers by reconnecting,
 * and EVP_SQL otherwise, which stops the projector.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

const char *evp_strerror(int code)
{
	switch (code) {
#define EVP__STR(name, value, text) \
	case value: return text;
		EVP_ERRNO_MAP(EVP__STR)
#undef EVP__STR
	}
	return "unknown error";
}

void evp__logm(const struct evp__run *r, int level, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	if (!r->cfg->log || level > r->cfg->log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	r->cfg->log(r->cfg->log_ctx, level, msg);
}

int64_t evp__now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t evp__now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

bool evp__stopping(const struct evp__run *r)
{
	return r->cfg->stop && *r->cfg->stop;
}

void evp__nap(const struct evp__run *r, int ms)
{
	while (ms > 0 && !evp__stopping(r)) {
		int slice = ms < 50 ? ms : 50;
		struct timespec ts = {0, (long)slice * 1000000L};

		nanosleep(&ts, NULL);
		ms -= slice;
	}
}

int evp__msglen(const char *msg)
{
	size_t l = strlen(msg);

	while (l > 0 && msg[l - 1] == '\n')
		l--;
	return (int)l;
}

int evp__pg_error(PGconn *conn, PGresult *res, const char *what, char *err, size_t errlen)
{
	const char *msg = res ? PQresultErrorMessage(res) : "";
	int rc;

	if (!msg[0])
		msg = PQerrorMessage(conn);
	snprintf(err, errlen, "%s: %.*s", what, evp__msglen(msg), msg);
	rc = evp_retryable(conn, res) ? EVP_CONNECT : EVP_SQL;
	PQclear(res);
	return rc;
}

static int vfail(struct evp__run *r, PGresult *res, const char *fmt, va_list ap)
{
	char what[512];

	vsnprintf(what, sizeof what, fmt, ap);
	return evp__pg_error(r->conn, res, what, r->err, r->errlen);
}

int evp__pg_fail(struct evp__run *r, PGresult *res, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vfail(r, res, fmt, ap);
	va_end(ap);
	return rc;
}

int evp__exec(struct evp__run *r, ExecStatusType want, PGresult **out, const char *sql, int n,
	      const char *const *vals, const char *fmt, ...)
{
	PGresult *res = vals ? PQexecParams(r->conn, sql, n, NULL, vals, NULL, NULL, 0)
			     : PQexec(r->conn, sql);
	va_list ap;
	int rc;

	if (out)
		*out = NULL;
	if (PQresultStatus(res) != want) {
		va_start(ap, fmt);
		rc = vfail(r, res, fmt, ap);
		va_end(ap);
		return rc;
	}
	if (out)
		*out = res;
	else
		PQclear(res);
	return EVP_OK;
}

/*
 * Statements run every batch (the states, the closes of temporal tables,
 * the checkpoint) are prepared once per session: sent with their text
 * (PQexecParams), PostgreSQL parsed and planned them for every batch,
 * which in live batches of a few events was a fifth of the server's time.
 * A statement is known by its text (a copy: a caller may reuse its
 * buffer), named evs_q<i>; parameter types are inferred as they were
 * when the text was sent. Beyond EVP__NPREP texts, statements go
 * unprepared.
 */
void evp__prep_reset(struct evp__run *r)
{
	while (r->nprep > 0)
		free(r->prep[--r->nprep]);
}

int evp__prepare(struct evp__run *r, const char *sql, int n, char name[16])
{
	PGresult *res;
	int i;

	for (i = 0; i < r->nprep && strcmp(r->prep[i], sql) != 0; i++)
		;
	if (i == EVP__NPREP) {
		name[0] = '\0';
		return EVP_OK;
	}
	snprintf(name, 16, "evs_q%d", i);
	if (i < r->nprep)
		return EVP_OK;
	res = PQprepare(r->conn, name, sql, n, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		return evp__pg_fail(r, res, "could not prepare \"%.200s\"", sql);
	PQclear(res);
	if (!(r->prep[r->nprep] = strdup(sql))) {
		snprintf(r->err, r->errlen, "out of memory");
		return EVP_NOMEM;
	}
	r->nprep++;
	return EVP_OK;
}

int evp__exec_prep(struct evp__run *r, ExecStatusType want, PGresult **out, const char *sql, int n,
		   const char *const *vals, const char *what)
{
	char name[16];
	PGresult *res;
	int rc;

	if (out)
		*out = NULL;
	if ((rc = evp__prepare(r, sql, n, name)))
		return rc;
	res = name[0] ? PQexecPrepared(r->conn, name, n, vals, NULL, NULL, 0)
		      : PQexecParams(r->conn, sql, n, NULL, vals, NULL, NULL, 0);
	if (PQresultStatus(res) != want)
		return evp__pg_fail(r, res, "could not %s", what);
	if (out)
		*out = res;
	else
		PQclear(res);
	return EVP_OK;
}

int evp__cmd(struct evp__run *r, const char *sql)
{
	return evp__exec(r, PGRES_COMMAND_OK, NULL, sql, 0, NULL, "could not run \"%s\"", sql);
}

int evp__cmd_ident(struct evp__run *r, const char *fmt, const char *a, const char *b)
{
	char *qa = PQescapeIdentifier(r->conn, a, strlen(a));
	char *qb = b ? PQescapeIdentifier(r->conn, b, strlen(b)) : NULL;
	char sql[1024];

	if (!qa || (b && !qb)) {
		PQfreemem(qa);
		PQfreemem(qb);
		return evp__pg_fail(r, NULL, "could not quote an identifier");
	}
	snprintf(sql, sizeof sql, fmt, qa, qb ? qb : "");
	PQfreemem(qa);
	PQfreemem(qb);
	return evp__cmd(r, sql);
}

void evp__rollback(struct evp__run *r)
{
	if (r->conn && PQstatus(r->conn) == CONNECTION_OK)
		PQclear(PQexec(r->conn, "ROLLBACK"));
}

int evp__try_lock(struct evp__run *r, const char *name, bool *taken)
{
	char cls[16];
	const char *vals[2] = {cls, name};
	PGresult *res;
	int rc;

	snprintf(cls, sizeof cls, "%d", EVP__LOCK_CLASS);
	rc = evp__exec(r, PGRES_TUPLES_OK, &res,
		       "SELECT pg_try_advisory_lock($1::int, hashtext($2))", 2, vals,
		       "could not take the lock of \"%s\"", name);
	if (rc)
		return rc;
	*taken = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return EVP_OK;
}
