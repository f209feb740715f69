/*
 * rebuild.c - rebuild a declared projection beside the live one, then
 * swap it in.
 *
 * The projection is replayed from position 0 into a shadow schema
 * S__rebuild (empty copies of the listed tables, LIKE .. INCLUDING ALL)
 * under the checkpoint NAME__rebuild, while S keeps serving readers.
 * Caught up, swap_in() takes the live projection's lock, applies the
 * last events and, in one transaction, renames S away and S__rebuild
 * into its place, hands the position over to the live checkpoint and
 * drops the old schema.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

void evp__shadow_schema(const struct evp__run *r, char *out, size_t n)
{
	snprintf(out, n, "%s__rebuild", evp_rules_schema(r->rules));
}

/* CREATE TABLE shadow.T (LIKE schema.T INCLUDING ALL) */
static int copy_table(struct evp__run *r, const char *shadow, const char *schema, const char *table)
{
	const char *dot = strchr(table, '.');
	const char *t = dot ? dot + 1 : table;
	char *qt = PQescapeIdentifier(r->conn, t, strlen(t));
	char *qs = PQescapeIdentifier(r->conn, shadow, strlen(shadow));
	char *ql = PQescapeIdentifier(r->conn, schema, strlen(schema));
	char sql[2048];
	int rc;

	if (qt && qs && ql) {
		snprintf(sql, sizeof sql, "CREATE TABLE %s.%s (LIKE %s.%s INCLUDING ALL)", qs, qt,
			 ql, qt);
		rc = evp__cmd(r, sql);
	} else {
		rc = evp__pg_fail(r, NULL, "could not quote an identifier");
	}
	PQfreemem(qt);
	PQfreemem(qs);
	PQfreemem(ql);
	return rc;
}

int evp__shadow_prepare(struct evp__run *r)
{
	const char *schema = evp_rules_schema(r->rules), *p = evp_rules_tables(r->rules);
	const char *vals[1] = {r->name};
	char shadow[EVS_MAX_NAME + 16];
	int rc;

	evp__shadow_schema(r, shadow, sizeof shadow);
	if ((rc = evp__cmd(r, "BEGIN")) ||
	    (rc = evp__cmd_ident(r, "DROP SCHEMA IF EXISTS %s CASCADE", shadow, NULL)) ||
	    (rc = evp__cmd_ident(r, "CREATE SCHEMA %s", shadow, NULL)))
		goto fail;
	while (*p) {
		char table[EVS_MAX_NAME + 1];
		size_t len = strcspn(p, " \t");

		if (len == 0) {
			p++;
			continue;
		}
		snprintf(table, sizeof table, "%.*s", (int)len, p);
		p += len;
		if ((rc = copy_table(r, shadow, schema, table)))
			goto fail;
	}
	if ((rc = evp__cmd_ident(r, "GRANT USAGE ON SCHEMA %s TO evs_analyst", shadow, NULL)) ||
	    (rc = evp__cmd_ident(r, "GRANT SELECT ON ALL TABLES IN SCHEMA %s TO evs_analyst",
				 shadow, NULL)) ||
	    (rc = evp__exec(r, PGRES_COMMAND_OK, NULL,
			    "DELETE FROM evs.checkpoints WHERE projection = $1", 1, vals,
			    "could not reset the checkpoint of \"%s\"", r->name)))
		goto fail;
	if ((rc = evp__cmd(r, "COMMIT")))
		return rc;
	evp__logm(r, EVS_LOG_INFO,
		  "rebuilding projection \"%s\" into schema \"%s\" from position 0", r->live_name,
		  shadow);
	return EVP_OK;
fail:
	evp__rollback(r);
	return rc;
}

/* Hold the live projection's lock: its projector must not run meanwhile. */
static int lock_live(struct evp__run *r)
{
	bool taken = false, warned = false;
	int rc;

	for (;;) {
		if ((rc = evp__try_lock(r, r->live_name, &taken)) || taken)
			return rc;
		if (!warned)
			evp__logm(r, EVS_LOG_WARNING,
				  "rebuild of \"%s\" caught up: waiting for its live projector to"
				  " stop before swapping the tables in",
				  r->live_name);
		warned = true;
		evp__nap(r, 500);
		if (evp__stopping(r))
			return EVP_STOPPED;
	}
}

/* The last events, under the lock. */
static int catch_up(struct evp__run *r)
{
	evs_store_info head;
	int rc;

	if (evs_head(r->store, &head) != EVS_OK) {
		snprintf(r->err, r->errlen, "could not read the store head: %s",
			 evs_errmsg(r->store));
		return EVP_STORE;
	}
	while (r->checkpoint < head.last_position) {
		if ((rc = evp__collect(r, head.last_position, 1000)))
			return rc;
		if (r->batch.n && (rc = evp__apply_batch(r)))
			return rc;
	}
	return EVP_OK;
}

/* Readers of the live schema see the old tables until the COMMIT and the
 * rebuilt ones after it. */
int evp__swap_in(struct evp__run *r)
{
	const char *schema = evp_rules_schema(r->rules);
	char shadow[EVS_MAX_NAME + 16], old[EVS_MAX_NAME + 16], cls[16], pos[24];
	const char *vals[3];
	int rc;

	evp__shadow_schema(r, shadow, sizeof shadow);
	snprintf(old, sizeof old, "%s__old", schema);
	if ((rc = lock_live(r)) || (rc = catch_up(r)))
		return rc;
	snprintf(pos, sizeof pos, "%llu", (unsigned long long)r->checkpoint);
	vals[0] = r->live_name;
	vals[1] = pos;
	vals[2] = r->name;
	if ((rc = evp__cmd(r, "BEGIN")) ||
	    (rc = evp__cmd_ident(r, "ALTER SCHEMA %s RENAME TO %s", schema, old)) ||
	    (rc = evp__cmd_ident(r, "ALTER SCHEMA %s RENAME TO %s", shadow, schema)) ||
	    (rc = evp__exec(r, PGRES_TUPLES_OK, NULL,
			    "WITH u AS (INSERT INTO evs.checkpoints (projection, position)"
			    " VALUES ($1, $2) ON CONFLICT (projection) DO UPDATE SET"
			    " position = excluded.position, updated_at = now()"
			    " RETURNING projection, position)"
			    " SELECT pg_notify('evs_checkpoint', u.projection || ' ' || u.position)"
			    " FROM u",
			    2, vals, "could not hand over the checkpoint")) ||
	    (rc = evp__exec(r, PGRES_COMMAND_OK, NULL,
			    "DELETE FROM evs.checkpoints WHERE projection = $1", 1, vals + 2,
			    "could not drop the rebuild's checkpoint")) ||
	    (rc = evp__cmd_ident(r, "DROP SCHEMA %s CASCADE", old, NULL)) ||
	    (rc = evp__cmd(r, "COMMIT")))
		goto fail;
	evp__logm(r, EVS_LOG_INFO, "projection \"%s\" rebuilt up to position %s and swapped in",
		  r->live_name, pos);
	snprintf(cls, sizeof cls, "%d", EVP__LOCK_CLASS);
	vals[0] = cls;
	vals[1] = r->live_name;
	PQclear(PQexecParams(r->conn, "SELECT pg_advisory_unlock($1::int, hashtext($2))", 2, NULL,
			     vals, NULL, NULL, 0));
	return EVP_OK;
fail:
	evp__rollback(r);
	return rc;
}
