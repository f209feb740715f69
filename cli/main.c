/*
 * main.c - the evs command-line tool: global options and dispatch.
 *
 *   evs [--store DIR] COMMAND [ARG]... [OPTION]...
 *
 * The store directory comes from --store (before or after the command),
 * else $EVS_STORE, else ./evstore-data. Each command lives in its own
 * cmd_*.c and declares its options as a table (see args.c).
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "evs_version.h"
#include "log.h"

const struct cli_command *const cli_commands[] = {
	&cli_cmd_init,    &cli_cmd_append,  &cli_cmd_read,   &cli_cmd_tail,
	&cli_cmd_head,    &cli_cmd_stat,    &cli_cmd_as_of,  &cli_cmd_state,
	&cli_cmd_export,  &cli_cmd_import,  &cli_cmd_verify,
#ifdef EVS_WITH_PROJECTOR /* the read side, built with -Dprojector=true */
	&cli_cmd_migrate, &cli_cmd_project,
#endif
	&cli_cmd_schema,  &cli_cmd_relay,   &cli_cmd_pm,     NULL};

static void usage(FILE *f)
{
	const struct cli_command *const *c;

	fputs("usage: evs [--store DIR] COMMAND [ARG]... [OPTION]...\n\n"
	      "evs reads and writes an evstore event store.\n\n"
	      "commands:\n",
	      f);
	for (c = cli_commands; *c; c++)
		fprintf(f, "  %-10s%s\n", (*c)->name, (*c)->summary);
	fputs("\nglobal options:\n"
	      "  --store DIR          store directory (default: $EVS_STORE, else " CLI_DEFAULT_STORE
	      ")\n"
	      "  -q, --quiet          no progress line on stderr (also per command)\n"
	      "  --log-format FORMAT  library log lines as text or json (default: $EVS_LOG_FORMAT,\n"
	      "                       else text; the level is $EVS_LOG_LEVEL, else warning)\n"
	      "  -h, --help           show this help and exit\n"
	      "  --version            show the version and exit\n\n"
	      "\"evs COMMAND --help\" describes a command.\n"
	      "exit status: 0 success, 1 error, 2 bad usage, 3 expected version does not match\n",
	      f);
}

static const struct cli_command *find_command(const char *name)
{
	const struct cli_command *const *c;

	for (c = cli_commands; *c; c++)
		if (strcmp((*c)->name, name) == 0)
			return *c;
	return NULL;
}

static int unknown_command(const char *name)
{
	cli_error("unknown command \"%s\"", name);
	cli_hint("see \"evs --help\" for the list of commands");
	return CLI_EXIT_USAGE;
}

/* The library's log lines go to the shared sink (store/base/log.c):
 * level from $EVS_LOG_LEVEL, format from --log-format or $EVS_LOG_FORMAT. */
static int setup_log(const char *format)
{
	const char *env = getenv("EVS_LOG_LEVEL"), *origin = "option --log-format";
	int level = EVS_LOG_WARNING, fmt;

	for (int i = 0; env && i <= EVS_LOG_DEBUG; i++)
		if (strcmp(env, evs__log_level_name(i)) == 0)
			level = i;
	if (!format && (format = getenv("EVS_LOG_FORMAT")))
		origin = "EVS_LOG_FORMAT";
	if (!format || strcmp(format, "text") == 0)
		fmt = EVS__LOG_TEXT;
	else if (strcmp(format, "json") == 0)
		fmt = EVS__LOG_JSON;
	else {
		cli_error("invalid value \"%s\" for %s: not a log format (text or json)", format,
			  origin);
		return CLI_EXIT_USAGE;
	}
	evs__log_setup("evs", level, fmt);
	return CLI_EXIT_OK;
}

int main(int argc, char **argv)
{
	const char *store_path = getenv("EVS_STORE");
	const char *log_format = NULL;
	const struct cli_command *cmd;
	int i = 1, rc;

	if (!store_path || store_path[0] == '\0')
		store_path = CLI_DEFAULT_STORE;

	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return cli_finish_output(CLI_EXIT_OK);
		} else if (strcmp(a, "--version") == 0) {
			printf("evs %s\n", EVS_VERSION_STRING);
			return cli_finish_output(CLI_EXIT_OK);
		} else if (strcmp(a, "--store") == 0) {
			if (i + 1 >= argc) {
				cli_error("option \"--store\" requires a value");
				return CLI_EXIT_USAGE;
			}
			store_path = argv[++i];
		} else if (strncmp(a, "--store=", 8) == 0) {
			store_path = a + 8;
		} else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
			cli_progress_quiet();
			continue;
		} else if (strcmp(a, "--log-format") == 0 || strncmp(a, "--log-format=", 13) == 0) {
			if (a[12] == '=')
				log_format = a + 13;
			else if (i + 1 < argc)
				log_format = argv[++i];
			else {
				cli_error("option \"--log-format\" requires a value");
				return CLI_EXIT_USAGE;
			}
			continue;
		} else if (strcmp(a, "--") == 0) {
			i++;
			break;
		} else {
			cli_error("unrecognized option \"%s\"", a);
			cli_hint("see \"evs --help\"");
			return CLI_EXIT_USAGE;
		}
		if (store_path[0] == '\0') {
			cli_error("invalid value \"\" for option --store: empty directory name");
			return CLI_EXIT_USAGE;
		}
	}
	if ((rc = setup_log(log_format)) != CLI_EXIT_OK)
		return rc;
	if (i >= argc) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}

	if (strcmp(argv[i], "help") == 0) {
		if (i + 1 >= argc) {
			usage(stdout);
			return cli_finish_output(CLI_EXIT_OK);
		}
		cmd = find_command(argv[i + 1]);
		if (!cmd)
			return unknown_command(argv[i + 1]);
		cli_command_help(stdout, cmd);
		return cli_finish_output(CLI_EXIT_OK);
	}

	cmd = find_command(argv[i]);
	if (!cmd)
		return unknown_command(argv[i]);
	return cli_run_command(cmd, store_path, argc - i, argv + i);
}
