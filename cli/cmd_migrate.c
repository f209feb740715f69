/*
 * cmd_migrate.c - "evs migrate": apply the read-model database's pending
 * SQL migrations (projector/, migrations/; see evsproj.h).
 */
#include <stdlib.h>

#include "evsproj.h"
#include "cli.h"

enum { OPT_DSN, OPT_MIGRATIONS };

static const struct cli_option options[] = {
	[OPT_DSN] = {"dsn", "DSN",
		     "libpq connection string (default: $EVS_PG_DSN, else the PG* environment)"},
	[OPT_MIGRATIONS] =
		{"migrations", "DIR",
		 "directory of NNNN_name.sql files (default: $EVS_MIGRATIONS, else ./migrations)"},
	{NULL, NULL, NULL}};

struct migrate_state {
	const char *dsn, *dir;
};

static int on_option(struct cli_ctx *ctx, void *state, int index, const char *value)
{
	struct migrate_state *st = state;

	(void)ctx;
	if (index == OPT_DSN)
		st->dsn = value;
	else if (index == OPT_MIGRATIONS)
		st->dir = value;
	else
		return CLI_EXIT_USAGE;
	return CLI_EXIT_OK;
}

static void log_info(void *ctx, int level, const char *message)
{
	(void)ctx;
	if (level <= EVS_LOG_WARNING)
		cli_error("%s", message);
	else
		printf("%s\n", message);
}

const char *cli_pg_dsn(const char *given);
const char *cli_pg_dsn(const char *given)
{
	const char *env = getenv("EVS_PG_DSN");

	return given ? given : env ? env : "";
}

static int run(struct cli_ctx *ctx, void *state)
{
	struct migrate_state *st = state;
	const char *dir = st->dir                    ? st->dir
			  : getenv("EVS_MIGRATIONS") ? getenv("EVS_MIGRATIONS")
						     : "migrations";
	evp_migrate_result r = {0, 0};
	char err[2048];
	PGconn *conn;
	int rc;

	(void)ctx;
	conn = PQconnectdb(cli_pg_dsn(st->dsn));
	if (PQstatus(conn) != CONNECTION_OK) {
		cli_error("could not connect to the server: %s", PQerrorMessage(conn));
		PQfinish(conn);
		return CLI_EXIT_FAIL;
	}
	rc = evp_migrate(conn, dir, log_info, NULL, &r, err, sizeof err);
	PQfinish(conn);
	if (rc != EVP_OK) {
		cli_error("%s", err);
		if (rc == EVP_EDITED)
			cli_hint("applied migrations are never edited: add a new file instead");
		return CLI_EXIT_FAIL;
	}
	printf("ok: %d applied, %d files\n", r.applied, r.total);
	return cli_finish_output(CLI_EXIT_OK);
}

const struct cli_command cli_cmd_migrate = {
	.name = "migrate",
	.synopsis = "[--dsn DSN] [--migrations DIR]",
	.summary = "apply pending read-model migrations to PostgreSQL",
	.description =
		"Apply the pending NNNN_name.sql files in version order, each in its own\n"
		"transaction, recording version, name and SHA-256 in evs.schema_migrations.\n"
		"Refuses to go on when an applied file was edited. Safe to run twice at once.",
	.options = options,
	.min_args = 0,
	.max_args = 0,
	.state_size = sizeof(struct migrate_state),
	.on_option = on_option,
	.run = run,
};
