/*
 * migrate.c - ordered, checksummed SQL migrations.
 *
 * Bookkeeping (created by the runner itself, before migration 1):
 *
 *     evs.schema_migrations (
 *         version     integer PRIMARY KEY,  -- NNNN of NNNN_name.sql
 *         name        text,                 -- name without .sql
 *         checksum    text,                 -- hex SHA-256 of the file bytes
 *         applied_at  timestamptz)
 *
 * The checksum is computed by the server (sha256() of the file sent as a
 * bytea parameter), so the runner needs no crypto library and every
 * client computes it the same way. Order of work, under a session
 * advisory lock (EVP_MIGRATE_LOCK) so a second runner waits and then
 * finds nothing to do: read the directory, check every applied file's
 * checksum (an edited file refuses the whole run), then apply each
 * pending file in its own transaction with its bookkeeping row.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define MAX_FILES      10000
#define MAX_FILE_BYTES ((size_t)16 << 20)

struct mfile {
	int version;
	char *name; /* without .sql */
	char *path;
	char *text;
	size_t len;
	char checksum[65];
};

static int cmp_mfile(const void *a, const void *b)
{
	const struct mfile *x = a, *y = b;

	return (x->version > y->version) - (x->version < y->version);
}

static void logf_(evs_log_fn log, void *ctx, int level, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void logf_(evs_log_fn log, void *ctx, int level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	log(ctx, level, msg);
}

static int read_file(const char *path, char **text, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0;

	if (!f) {
		snprintf(err, errlen, "could not open file \"%s\": %s", path, strerror(errno));
		return EVP_IO;
	}
	for (;;) {
		size_t r;

		if (n + 4096 + 1 > cap) {
			char *p;

			cap = cap ? cap * 2 : 8192;
			if (cap > MAX_FILE_BYTES + 4097) {
				snprintf(err, errlen, "file \"%s\" is too large", path);
				goto fail;
			}
			p = realloc(buf, cap);
			if (!p) {
				snprintf(err, errlen, "out of memory");
				goto fail;
			}
			buf = p;
		}
		r = fread(buf + n, 1, 4096, f);
		n += r;
		if (r < 4096) {
			if (ferror(f)) {
				snprintf(err, errlen, "could not read file \"%s\"", path);
				goto fail;
			}
			break;
		}
	}
	fclose(f);
	buf[n] = '\0';
	*text = buf;
	*len = n;
	return EVP_OK;
fail:
	free(buf);
	fclose(f);
	return EVP_IO;
}

static int scan_dir(const char *dir, struct mfile **out, int *count, char *err, size_t errlen)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	struct mfile *files = NULL;
	int n = 0, cap = 0, rc = EVP_OK, i;

	if (!d) {
		snprintf(err, errlen, "could not open migrations directory \"%s\": %s", dir,
			 strerror(errno));
		return EVP_IO;
	}
	while ((de = readdir(d))) {
		const char *s = de->d_name;
		size_t len = strlen(s);
		int v = 0, digits = 0;
		struct mfile *m;

		if (len < 6 || strcmp(s + len - 4, ".sql") != 0)
			continue;
		while (s[digits] >= '0' && s[digits] <= '9' && digits < 9)
			v = v * 10 + (s[digits++] - '0');
		if (digits == 0 || s[digits] != '_') {
			snprintf(err, errlen,
				 "migration file name \"%s\" does not match NNNN_name.sql", s);
			rc = EVP_INVALID;
			goto out;
		}
		if (n == cap) {
			struct mfile *p;

			cap = cap ? cap * 2 : 16;
			if (cap > MAX_FILES || !(p = realloc(files, (size_t)cap * sizeof *p))) {
				snprintf(err, errlen, "too many migration files");
				rc = EVP_NOMEM;
				goto out;
			}
			files = p;
		}
		m = &files[n];
		memset(m, 0, sizeof *m);
		m->version = v;
		m->name = strndup(s + digits + 1, len - 4 - (size_t)digits - 1);
		m->path = malloc(strlen(dir) + len + 2);
		n++;
		if (!m->name || !m->path) {
			snprintf(err, errlen, "out of memory");
			rc = EVP_NOMEM;
			goto out;
		}
		sprintf(m->path, "%s/%s", dir, s);
	}
	qsort(files, (size_t)n, sizeof *files, cmp_mfile);
	for (i = 1; i < n; i++)
		if (files[i].version == files[i - 1].version) {
			snprintf(err, errlen,
				 "two migration files have version %d: \"%s\" and \"%s\"",
				 files[i].version, files[i - 1].name, files[i].name);
			rc = EVP_INVALID;
			goto out;
		}
	for (i = 0; i < n && rc == EVP_OK; i++)
		rc = read_file(files[i].path, &files[i].text, &files[i].len, err, errlen);
out:
	closedir(d);
	*out = files;
	*count = n;
	return rc;
}

static void free_files(struct mfile *files, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		free(files[i].name);
		free(files[i].path);
		free(files[i].text);
	}
	free(files);
}

static int exec_ok(PGconn *conn, const char *sql, const char *what, char *err, size_t errlen)
{
	PGresult *res = PQexec(conn, sql);

	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
		return evp__pg_error(conn, res, what, err, errlen);
	PQclear(res);
	return EVP_OK;
}

static int migrate_dir(PGconn *conn, const char *dir, bool several, evs_log_fn log, void *log_ctx,
		       evp_migrate_result *result, char *err, size_t errlen)
{
	struct mfile *files = NULL;
	int n = 0, i, rc, locked = 0;
	PGresult *res = NULL;
	evp_migrate_result r = {0, 0};

	rc = scan_dir(dir, &files, &n, err, errlen);
	if (rc)
		goto out;
	r.total = n;
	rc = exec_ok(conn,
		     "SELECT pg_advisory_lock("
		     "1702261504"
		     ")",
		     "could not take the migration lock", err, errlen);
	if (rc)
		goto out;
	locked = 1;
	rc = exec_ok(conn,
		     "SET client_min_messages = warning;"
		     "CREATE SCHEMA IF NOT EXISTS evs;"
		     "CREATE TABLE IF NOT EXISTS evs.schema_migrations ("
		     " version integer PRIMARY KEY, name text NOT NULL,"
		     " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());"
		     "RESET client_min_messages",
		     "could not create the migrations table", err, errlen);
	if (rc)
		goto out;

	/* checksums, computed by the server */
	for (i = 0; i < n; i++) {
		const char *vals[1] = {files[i].text};
		int lens[1] = {(int)files[i].len}, fmts[1] = {1};
		Oid types[1] = {17}; /* bytea */

		res = PQexecParams(conn, "SELECT encode(sha256($1), 'hex')", 1, types, vals, lens,
				   fmts, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			rc = evp__pg_error(conn, res, "could not compute a checksum", err, errlen);
			res = NULL;
			goto out;
		}
		snprintf(files[i].checksum, sizeof files[i].checksum, "%s", PQgetvalue(res, 0, 0));
		PQclear(res);
	}

	/* applied files must be unchanged */
	res = PQexec(conn,
		     "SELECT version, name, checksum FROM evs.schema_migrations ORDER BY version");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = evp__pg_error(conn, res, "could not read evs.schema_migrations", err, errlen);
		res = NULL;
		goto out;
	}
	for (int row = 0; row < PQntuples(res); row++) {
		int v = atoi(PQgetvalue(res, row, 0));
		const char *sum = PQgetvalue(res, row, 2);
		struct mfile *m = NULL;

		for (i = 0; i < n; i++)
			if (files[i].version == v)
				m = &files[i];
		if (!m) {
			/* applied from another folder (an example's), or a file
			 * that left the product (0005, the bank example's until
			 * issue 10): left alone (said only when there is one
			 * folder: with several, each has the others' files) */
			if (!several)
				logf_(log, log_ctx, EVS_LOG_DEBUG,
				      "applied migration %04d \"%s\" has no file in \"%s\"", v,
				      PQgetvalue(res, row, 1), dir);
			continue;
		}
		if (strcmp(m->name, PQgetvalue(res, row, 1)) != 0) {
			snprintf(err, errlen,
				 "migration %04d \"%s\" has the number of applied migration"
				 " \"%s\" (of another folder?): give it another number",
				 v, m->name, PQgetvalue(res, row, 1));
			rc = EVP_EDITED;
			goto out;
		}
		if (strcmp(m->checksum, sum) != 0) {
			snprintf(err, errlen,
				 "migration %04d \"%s\" was edited after it was applied "
				 "(checksum %.12s..., applied %.12s...)",
				 v, m->name, m->checksum, sum);
			rc = EVP_EDITED;
			goto out;
		}
		m->version = -m->version - 1; /* mark applied */
	}
	/* A pending file numbered below an applied one of its folder came too
	 * late: applying it now would run it after migrations that were
	 * written after it. (Folders are ordered on their own: an example's
	 * migrations may be applied after the product's later ones.) */
	int last_applied = 0;
	for (i = 0; i < n; i++)
		if (files[i].version < 0 && -files[i].version - 1 > last_applied)
			last_applied = -files[i].version - 1;
	for (i = 0; i < n; i++) {
		if (files[i].version >= 0 && files[i].version < last_applied) {
			snprintf(err, errlen,
				 "migration %04d \"%s\" is pending but %04d is applied already: "
				 "give it a number after %04d",
				 files[i].version, files[i].name, last_applied, last_applied);
			rc = EVP_EDITED;
			goto out;
		}
	}
	PQclear(res);
	res = NULL;

	for (i = 0; i < n; i++) {
		struct mfile *m = &files[i];
		char vbuf[16];
		const char *vals[3];

		if (m->version < 0)
			continue;
		rc = exec_ok(conn, "BEGIN", "could not begin a migration", err, errlen);
		if (rc)
			goto out;
		res = PQexec(conn, m->text);
		if (PQresultStatus(res) != PGRES_COMMAND_OK &&
		    PQresultStatus(res) != PGRES_TUPLES_OK) {
			char what[512];

			snprintf(what, sizeof what, "migration %04d \"%s\" failed", m->version,
				 m->name);
			rc = evp__pg_error(conn, res, what, err, errlen);
			res = NULL;
			PQclear(PQexec(conn, "ROLLBACK"));
			goto out;
		}
		PQclear(res);
		snprintf(vbuf, sizeof vbuf, "%d", m->version);
		vals[0] = vbuf;
		vals[1] = m->name;
		vals[2] = m->checksum;
		res = PQexecParams(conn,
				   "INSERT INTO evs.schema_migrations (version, name, checksum)"
				   " VALUES ($1, $2, $3)",
				   3, NULL, vals, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			rc = evp__pg_error(conn, res, "could not record a migration", err, errlen);
			res = NULL;
			PQclear(PQexec(conn, "ROLLBACK"));
			goto out;
		}
		PQclear(res);
		res = NULL;
		rc = exec_ok(conn, "COMMIT", "could not commit a migration", err, errlen);
		if (rc)
			goto out;
		r.applied++;
		logf_(log, log_ctx, EVS_LOG_INFO, "applied migration %04d \"%s\"", m->version,
		      m->name);
	}
out:
	PQclear(res);
	if (locked && PQstatus(conn) == CONNECTION_OK)
		PQclear(PQexec(conn, "SELECT pg_advisory_unlock(1702261504)"));
	free_files(files, n);
	if (result)
		*result = r;
	return rc;
}

int evp_migrate(PGconn *conn, const char *dirs, evs_log_fn log, void *log_ctx,
		evp_migrate_result *result, char *err, size_t errlen)
{
	evp_migrate_result sum = {0, 0}, one;
	const char *p = dirs;
	int rc = EVP_OK;

	do {
		size_t l = strcspn(p, ":");
		char *dir = strndup(p, l);

		if (!dir) {
			snprintf(err, errlen, "out of memory");
			rc = EVP_NOMEM;
			break;
		}
		rc = migrate_dir(conn, dir, strchr(dirs, ':') != NULL, log, log_ctx, &one, err,
				 errlen);
		free(dir);
		sum.applied += one.applied;
		sum.total += one.total;
		p += l;
	} while (rc == EVP_OK && *p++ == ':');
	if (result)
		*result = sum;
	return rc;
}
