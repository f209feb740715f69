/*
 * test_migrate.c - the migration runner against a real PostgreSQL:
 * applies in order and records what it applied, is idempotent, refuses
 * an edited applied file, and two runners at once apply each file once.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "evsproj.h"
#include "kit_pg.h"

static int count_files(void)
{
	return 7;
}

START_TEST(migrate_fresh)
{
	char *dsn = pgh_new_db(), err[1024];
	PGconn *c = pgh_connect(dsn);
	evp_migrate_result r;
	char *v;

	ck_assert_int_eq(evp_migrate(c, pgh_migrations_dir(), NULL, NULL, &r, err, sizeof err),
			 EVP_OK);
	ck_assert_int_eq(r.applied, count_files());
	ck_assert_int_eq(r.total, count_files());
	ck_assert_int_eq(pgh_int(c, "SELECT count(*) FROM evs.schema_migrations"), count_files());
	ck_assert_int_eq(pgh_int(c, "SELECT count(*) FROM evs.schema_migrations"
				    " WHERE checksum ~ '^[0-9a-f]{64}$'"),
			 count_files());
	v = pgh_value(c,
		      "SELECT string_agg(name, ',' ORDER BY version) FROM evs.schema_migrations");
	ck_assert_str_eq(v, "bookkeeping,event_log,state,analyst_role,comments,event_tags,"
			    "history_fillfactor");
	free(v);
	/* every built-in table, column and function says what it is */
	ck_assert_int_eq(pgh_int(c,
				 "SELECT count(*) FROM pg_class t JOIN pg_attribute a"
				 " ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped"
				 " WHERE t.relnamespace = 'evs'::regnamespace AND t.relkind = 'r'"
				 " AND (col_description(t.oid, a.attnum) IS NULL"
				 " OR obj_description(t.oid, 'pg_class') IS NULL)"),
			 0);
	ck_assert_int_eq(
		pgh_int(c, "SELECT count(*) FROM pg_proc WHERE pronamespace ="
			   " 'evs'::regnamespace AND obj_description(oid, 'pg_proc') IS NULL"),
		0);
	/* again: nothing to do */
	ck_assert_int_eq(evp_migrate(c, pgh_migrations_dir(), NULL, NULL, &r, err, sizeof err),
			 EVP_OK);
	ck_assert_int_eq(r.applied, 0);
	/* the analyst role reads and cannot write */
	pgh_exec(c, "SET ROLE evs_analyst");
	ck_assert_int_eq(pgh_int(c, "SELECT count(*) FROM evs.events"), 0);
	ck_assert_ptr_null(pgh_value(c, "SELECT evs.state_at('x', now())"));
	{
		PGresult *res = PQexec(c, "INSERT INTO evs.checkpoints (projection) VALUES ('x')");

		ck_assert_int_eq(PQresultStatus(res), PGRES_FATAL_ERROR);
		ck_assert_str_eq(PQresultErrorField(res, PG_DIAG_SQLSTATE), "42501");
		PQclear(res);
	}
	PQfinish(c);
	free(dsn);
}
END_TEST

static void copy_file(const char *from, const char *to, const char *extra)
{
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	char buf[4096];
	size_t n;

	ck_assert_ptr_nonnull(in);
	ck_assert_ptr_nonnull(out);
	while ((n = fread(buf, 1, sizeof buf, in)) > 0)
		ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
	if (extra)
		fputs(extra, out);
	fclose(in);
	ck_assert_int_eq(fclose(out), 0);
}

static const char *const files[] = {"0001_bookkeeping.sql", "0002_event_log.sql", "0003_state.sql",
				    "0004_analyst_role.sql", "0006_comments.sql"};

START_TEST(migrate_edited_refused)
{
	char *dsn = pgh_new_db(), *dir = kit_tmpdir("mig"), err[1024], from[512], to[512];
	PGconn *c = pgh_connect(dsn);
	evp_migrate_result r;
	size_t i;
	FILE *f;

	for (i = 0; i < 3; i++) {
		snprintf(from, sizeof from, "%s/%s", pgh_migrations_dir(), files[i]);
		snprintf(to, sizeof to, "%s/%s", dir, files[i]);
		copy_file(from, to, NULL);
	}
	ck_assert_int_eq(evp_migrate(c, dir, NULL, NULL, &r, err, sizeof err), EVP_OK);
	ck_assert_int_eq(r.applied, 3);
	/* edit an applied file and add a new one */
	snprintf(from, sizeof from, "%s/%s", pgh_migrations_dir(), files[1]);
	snprintf(to, sizeof to, "%s/%s", dir, files[1]);
	copy_file(from, to, "-- an innocent comment\n");
	snprintf(to, sizeof to, "%s/0009_more.sql", dir);
	ck_assert_ptr_nonnull(f = fopen(to, "w"));
	fputs("CREATE TABLE evs.more (x int);\n", f);
	fclose(f);
	ck_assert_int_eq(evp_migrate(c, dir, NULL, NULL, &r, err, sizeof err), EVP_EDITED);
	ck_assert_msg(strstr(err, "migration 0002 \"event_log\" was edited") != NULL, "%s", err);
	ck_assert_int_eq(r.applied, 0);
	ck_assert_int_eq(pgh_int(c, "SELECT count(*) FROM evs.schema_migrations"), 3);
	ck_assert_ptr_null(pgh_value(c, "SELECT to_regclass('evs.more')::text"));
	/* restoring the file lets the new one through */
	snprintf(to, sizeof to, "%s/%s", dir, files[1]);
	copy_file(from, to, NULL);
	ck_assert_int_eq(evp_migrate(c, dir, NULL, NULL, &r, err, sizeof err), EVP_OK);
	ck_assert_int_eq(r.applied, 1);
	/* a failing migration is rolled back and not recorded */
	snprintf(to, sizeof to, "%s/0010_bad.sql", dir);
	ck_assert_ptr_nonnull(f = fopen(to, "w"));
	fputs("CREATE TABLE evs.half (x int);\nSELECT 1/0;\n", f);
	fclose(f);
	ck_assert_int_eq(evp_migrate(c, dir, NULL, NULL, &r, err, sizeof err), EVP_SQL);
	ck_assert_msg(strstr(err, "migration 0010 \"bad\" failed") != NULL, "%s", err);
	ck_assert_ptr_null(pgh_value(c, "SELECT to_regclass('evs.half')::text"));
	ck_assert_int_eq(pgh_int(c, "SELECT count(*) FROM evs.schema_migrations"), 4);
	/* a file numbered below the last applied one is refused, not run late */
	ck_assert_int_eq(unlink(to), 0);
	snprintf(to, sizeof to, "%s/0005_late.sql", dir);
	ck_assert_ptr_nonnull(f = fopen(to, "w"));
	fputs("CREATE TABLE evs.late (x int);\n", f);
	fclose(f);
	ck_assert_int_eq(evp_migrate(c, dir, NULL, NULL, &r, err, sizeof err), EVP_EDITED);
	ck_assert_msg(strstr(err, "migration 0005 \"late\" is pending but 0009 is applied") != NULL,
		      "%s", err);
	ck_assert_ptr_null(pgh_value(c, "SELECT to_regclass('evs.late')::text"));
	PQfinish(c);
	kit_rmrf(dir);
	free(dir);
	free(dsn);
}
END_TEST

/* An example's folder after the product's (issue 10): applied in its own
 * order, 0005 of a database from before issue 10 (when bank's tables were
 * a product migration) is left alone, a number taken by another folder
 * is refused. */
START_TEST(migrate_example_folder)
{
	char *dsn = pgh_new_db(), *old = pgh_new_db(), *dir = kit_tmpdir("mig"), err[1024];
	char from[512], to[512], both[1024];
	PGconn *c = pgh_connect(dsn), *o = pgh_connect(old);
	evp_migrate_result r;
	size_t i;
	FILE *f;

	snprintf(both, sizeof both, "%s:%s/examples/bank/migrations", pgh_migrations_dir(),
		 pgh_source_dir());
	ck_assert_int_eq(evp_migrate(c, pgh_migrations_dir(), NULL, NULL, &r, err, sizeof err),
			 EVP_OK);
	ck_assert_msg(evp_migrate(c, both, NULL, NULL, &r, err, sizeof err) == EVP_OK, "%s", err);
	ck_assert_int_eq(r.applied, 1);
	ck_assert_int_eq(pgh_int(c, "SELECT count(*) FROM bank.accounts"), 0);
	ck_assert_int_eq(evp_migrate(c, both, NULL, NULL, &r, err, sizeof err), EVP_OK);
	ck_assert_int_eq(r.applied, 0);
	/* a database migrated before issue 10: 0001-0005 with bank's 0005 */
	for (i = 0; i < 4; i++) {
		snprintf(from, sizeof from, "%s/%s", pgh_migrations_dir(), files[i]);
		snprintf(to, sizeof to, "%s/%s", dir, files[i]);
		copy_file(from, to, NULL);
	}
	snprintf(from, sizeof from, "%s/examples/bank/migrations/0005_bank.sql", pgh_source_dir());
	snprintf(to, sizeof to, "%s/0005_bank.sql", dir);
	copy_file(from, to, NULL);
	ck_assert_int_eq(evp_migrate(o, dir, NULL, NULL, &r, err, sizeof err), EVP_OK);
	ck_assert_msg(evp_migrate(o, pgh_migrations_dir(), NULL, NULL, &r, err, sizeof err) ==
			      EVP_OK,
		      "%s", err);
	ck_assert_int_eq(r.applied, 3); /* 0006, 0007, 0008 */
	ck_assert_int_eq(evp_migrate(o, both, NULL, NULL, &r, err, sizeof err), EVP_OK);
	ck_assert_int_eq(r.applied, 0);
	/* a number another folder took */
	kit_rmrf(dir);
	free(dir);
	dir = kit_tmpdir("mig");
	snprintf(to, sizeof to, "%s/0006_mine.sql", dir);
	ck_assert_ptr_nonnull(f = fopen(to, "w"));
	fputs("CREATE TABLE evs.mine (x int);\n", f);
	fclose(f);
	ck_assert_int_eq(evp_migrate(c, dir, NULL, NULL, &r, err, sizeof err), EVP_EDITED);
	ck_assert_msg(strstr(err, "migration 0006 \"mine\" has the number of applied migration"
				  " \"comments\"") != NULL,
		      "%s", err);
	PQfinish(c);
	PQfinish(o);
	kit_rmrf(dir);
	free(dir);
	free(dsn);
	free(old);
}
END_TEST

struct runner {
	const char *dsn;
	int rc;
	evp_migrate_result r;
	char err[1024];
};

static void *run_migrate(void *arg)
{
	struct runner *m = arg;
	PGconn *c = PQconnectdb(m->dsn);

	m->rc = PQstatus(c) == CONNECTION_OK ? evp_migrate(c, pgh_migrations_dir(), NULL, NULL,
							   &m->r, m->err, sizeof m->err)
					     : EVP_CONNECT;
	PQfinish(c);
	return NULL;
}

START_TEST(migrate_two_runners)
{
	char *dsn = pgh_new_db();
	struct runner a = {.dsn = dsn}, b = {.dsn = dsn};
	pthread_t ta, tb;
	PGconn *c;

	ck_assert_int_eq(pthread_create(&ta, NULL, run_migrate, &a), 0);
	ck_assert_int_eq(pthread_create(&tb, NULL, run_migrate, &b), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	ck_assert_msg(a.rc == EVP_OK, "%s", a.err);
	ck_assert_msg(b.rc == EVP_OK, "%s", b.err);
	ck_assert_int_eq(a.r.applied + b.r.applied, count_files());
	c = pgh_connect(dsn);
	ck_assert_int_eq(pgh_int(c, "SELECT count(*) FROM evs.schema_migrations"), count_files());
	PQfinish(c);
	free(dsn);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		migrate_fresh, migrate_edited_refused, migrate_two_runners, migrate_example_folder,
		NULL,
	};

	return pgh_main("migrate", 300, tests);
}
