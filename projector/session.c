/*
 * session.c - a session with PostgreSQL: connect, migrate, take the
 * projection's lock, prepare the rules, read the checkpoint.
 *
 * PostgreSQL going away is ordinary: the projector reconnects with
 * exponential backoff (100 ms doubling to retry_max_ms) and resumes from
 * the committed checkpoint; with cfg->connect_timeout_ms it gives up once
 * that long has passed without a session (evs project --once must end).
 *
 * Server notices are routed to the log by severity: WARNING as a
 * warning, NOTICE and below (e.g. "relation ... already exists,
 * skipping" of an IF NOT EXISTS) at debug level, never to stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void on_notice(void *arg, const PGresult *res)
{
	const struct evp__run *r = arg;
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *msg = PQresultErrorMessage(res);
	int level = sev && strcmp(sev, "WARNING") == 0 ? EVS_LOG_WARNING : EVS_LOG_DEBUG;

	evp__logm(r, level, "server: %.*s", evp__msglen(msg), msg);
}

PGconn *evp__pg_open(struct evp__run *r, int64_t deadline_ms)
{
	/* the DSN is expanded in place of dbname: its own connect_timeout,
	 * if any, wins over ours, which keeps one attempt within the
	 * deadline when the host does not answer at all */
	const char *keys[] = {"connect_timeout", "dbname", NULL};
	const char *vals[] = {NULL, r->cfg->dsn ? r->cfg->dsn : "", NULL};
	char timeout[24];
	PGconn *conn;

	if (deadline_ms) {
		int64_t s = (deadline_ms - evp__now_ms() + 999) / 1000;

		snprintf(timeout, sizeof timeout, "%lld", (long long)(s < 2 ? 2 : s));
		vals[0] = timeout;
	}
	conn = PQconnectdbParams(keys, vals, 1);
	if (conn)
		PQsetNoticeReceiver(conn, on_notice, r);
	return conn;
}

/* Our lock, and that of the built-in models when we write them: they
 * have one writer per database, whatever the projection's name (a second
 * one would only collide on evs.events). */
static int take_locks(struct evp__run *r)
{
	bool taken = false;
	int rc;

	if ((rc = evp__try_lock(r, r->name, &taken)))
		return rc;
	if (!taken) {
		snprintf(r->err, r->errlen, "projection \"%s\" is already running elsewhere",
			 r->name);
		return EVP_LOCKED;
	}
	if (!r->builtin)
		return EVP_OK;
	if ((rc = evp__try_lock(r, "evs built-in read models", &taken)))
		return rc;
	if (!taken) {
		snprintf(r->err, r->errlen,
			 "the built-in read models are written by another projection;"
			 " run this one without them (--builtin false)");
		return EVP_LOCKED;
	}
	return EVP_OK;
}

/* A new projection that would write the built-in models while they hold
 * another projection's events would collide on evs.events: refused
 * before its checkpoint row is made. */
static int builtin_taken(struct evp__run *r)
{
	const char *vals[1] = {r->name};
	PGresult *res;
	int rc;

	if (!r->builtin)
		return EVP_OK;
	if ((rc = evp__exec(r, PGRES_TUPLES_OK, &res,
			    "SELECT (SELECT max(position) FROM evs.events),"
			    " (SELECT string_agg(projection, '\", \"' ORDER BY projection)"
			    "  FROM evs.checkpoints WHERE projection <> $1 AND position > 0),"
			    " EXISTS (SELECT 1 FROM evs.checkpoints WHERE projection = $1)",
			    1, vals, "could not read the built-in read models' position")))
		return rc;
	if (!PQgetisnull(res, 0, 0) && strcmp(PQgetvalue(res, 0, 2), "f") == 0) {
		snprintf(r->err, r->errlen,
			 "the built-in read models already hold events up to position %s"
			 " (written by projection \"%s\"): run projection \"%s\" without them"
			 " (--builtin false, or evs project --no-builtin)",
			 PQgetvalue(res, 0, 0),
			 PQgetisnull(res, 0, 1) ? "?" : PQgetvalue(res, 0, 1), r->name);
		rc = EVP_INVALID;
	}
	PQclear(res);
	return rc;
}

static int read_checkpoint(struct evp__run *r)
{
	const char *vals[1] = {r->name};
	PGresult *res;
	int rc;

	if ((rc = builtin_taken(r)))
		return rc;
	if ((rc = evp__exec(r, PGRES_COMMAND_OK, NULL,
			    "INSERT INTO evs.checkpoints (projection) VALUES ($1)"
			    " ON CONFLICT (projection) DO NOTHING",
			    1, vals, "could not create the checkpoint of \"%s\"", r->name)) ||
	    (rc = evp__exec(r, PGRES_TUPLES_OK, &res,
			    "SELECT position FROM evs.checkpoints WHERE projection = $1", 1, vals,
			    "could not read the checkpoint of \"%s\"", r->name)))
		return rc;
	if (PQntuples(res) != 1)
		return evp__pg_fail(r, res, "could not read the checkpoint of \"%s\"", r->name);
	r->checkpoint = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	r->stats->checkpoint = r->checkpoint;
	PQclear(res);
	return EVP_OK;
}

static int session_setup(struct evp__run *r, bool reconnecting)
{
	int rc;

	if (r->cfg->migrations_dir) {
		evp_migrate_result mr;

		rc = evp_migrate(r->conn, r->cfg->migrations_dir, r->cfg->log, r->cfg->log_ctx, &mr,
				 r->err, r->errlen);
		if (rc)
			return rc;
	}
	if ((rc = take_locks(r)))
		return rc;
	if (r->cfg->rebuild && !reconnecting && (rc = evp__shadow_prepare(r)))
		return rc;
	if (r->rules && evp_rules_schema(r->rules)) {
		char shadow[EVS_MAX_NAME + 16];

		evp__shadow_schema(r, shadow, sizeof shadow);
		rc = evp__cmd_ident(r, "SET search_path = %s, public",
				    r->cfg->rebuild ? shadow : evp_rules_schema(r->rules), NULL);
		if (rc || (rc = evp__history_setup(
				   r, r->cfg->rebuild ? shadow : evp_rules_schema(r->rules))))
			return rc;
	}
	if (r->rules && ((rc = evp__rules_prepare(r->rules, r->conn, r->err, r->errlen)) ||
			 (rc = evp__rules_plan_set(r))))
		return rc;
	return read_checkpoint(r);
}

/* Connect, migrate, lock, read the checkpoint; retry with backoff while
 * the server is away (until cfg->connect_timeout_ms, when set). After a
 * lost connection our old session may hold the projection's lock a
 * little longer (the server notices the dead client late): then "locked"
 * is retried too, for up to 30 s. */
int evp__connect(struct evp__run *r, bool reconnecting)
{
	int backoff = 100, wait, rc;
	int64_t start = evp__now_ms(), lock_deadline = start + 30000;
	int64_t give_up = r->cfg->connect_timeout_ms ? start + r->cfg->connect_timeout_ms : 0;

	for (;;) {
		if (evp__stopping(r))
			return EVP_STOPPED;
		r->conn = evp__pg_open(r, give_up);
		evp__prep_reset(r);
		if (PQstatus(r->conn) == CONNECTION_OK) {
			PQclear(PQexec(r->conn, "SET client_min_messages = warning"));
			rc = session_setup(r, reconnecting);
			if (rc == EVP_OK) {
				evp__logm(
					r, EVS_LOG_INFO,
					"projection \"%s\" connected, resuming after position %llu",
					r->name, (unsigned long long)r->checkpoint);
				return EVP_OK;
			}
			if (rc != EVP_CONNECT &&
			    !(rc == EVP_LOCKED && reconnecting && evp__now_ms() < lock_deadline))
				return rc;
		} else {
			const char *m = PQerrorMessage(r->conn);

			snprintf(r->err, r->errlen, "could not connect to the server: %.*s",
				 evp__msglen(m), m);
		}
		PQfinish(r->conn);
		r->conn = NULL;
		if (give_up && evp__now_ms() >= give_up) {
			size_t l = strlen(r->err);

			snprintf(r->err + l, r->errlen - l, " (gave up after %.1f s)",
				 (double)(evp__now_ms() - start) / 1000.0);
			return EVP_CONNECT;
		}
		wait = backoff;
		if (give_up && give_up - evp__now_ms() < wait)
			wait = (int)(give_up - evp__now_ms());
		evp__logm(r, EVS_LOG_WARNING, "%s; retrying in %d ms", r->err, wait);
		r->stats->reconnects++;
		evp__nap(r, wait);
		backoff = backoff * 2 > r->cfg->retry_max_ms ? r->cfg->retry_max_ms : backoff * 2;
	}
}

int evp__reconnect(struct evp__run *r)
{
	evp__logm(r, EVS_LOG_WARNING, "%s; reconnecting", r->err);
	PQfinish(r->conn);
	r->conn = NULL;
	r->stats->reconnects++;
	return evp__connect(r, true);
}
