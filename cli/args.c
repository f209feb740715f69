/*
 * args.c - command lines from option tables.
 *
 * Every command declares one table of its options (name, value name,
 * help). The same table drives getopt_long and the "evs CMD --help" text,
 * so the two cannot disagree. --store DIR, -q/--quiet and -h/--help are
 * accepted by every command; options and positional arguments may be mixed, and "--"
 * ends the options.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define OPT_BASE    256
#define OPT_STORE   'S'
#define OPT_HELP    'h'
#define OPT_QUIET   'q'
#define HELP_COLUMN 26

static size_t count_options(const struct cli_option *o)
{
	size_t n = 0;

	while (o && o[n].name)
		n++;
	return n;
}

/* "  --name VALUE   help", the help wrapped at 80 columns */
static void help_line(FILE *f, const char *left, const char *help)
{
	const int width = 80 - HELP_COLUMN;
	size_t w = strlen(left);

	if (w + 2 >= HELP_COLUMN)
		fprintf(f, "  %s\n%*s", left, HELP_COLUMN, "");
	else
		fprintf(f, "  %-*s", HELP_COLUMN - 2, left);
	while (*help) {
		int n = (int)strlen(help);

		if (n > width) {
			n = width;
			while (n > 0 && help[n] != ' ')
				n--;
			if (n == 0)
				n = width;
		}
		fprintf(f, "%.*s\n", n, help);
		help += n;
		while (*help == ' ')
			help++;
		if (*help)
			fprintf(f, "%*s", HELP_COLUMN, "");
	}
}

void cli_command_help(FILE *f, const struct cli_command *cmd)
{
	const struct cli_option *o;
	char left[128];

	fprintf(f, "usage: evs %s%s%s [OPTION]...\n\n", cmd->name, cmd->synopsis[0] ? " " : "",
		cmd->synopsis);
	fprintf(f, "%s\n\noptions:\n", cmd->description);
	for (o = cmd->options; o && o->name; o++) {
		snprintf(left, sizeof left, "--%s%s%s", o->name, o->metavar ? " " : "",
			 o->metavar ? o->metavar : "");
		help_line(f, left, o->help);
	}
	help_line(f, "--store DIR",
		  "store directory (default: $EVS_STORE, else " CLI_DEFAULT_STORE ")");
	help_line(f, "-q, --quiet", "no progress line on stderr");
	help_line(f, "-h, --help", "show this help and exit");
}

int cli_bad_value(const char *option, const char *value, const char *why)
{
	cli_error("invalid value \"%s\" for option --%s: %s", value, option, why);
	return CLI_EXIT_USAGE;
}

static int usage_error(const struct cli_command *cmd)
{
	cli_hint("see \"evs %s --help\"", cmd->name);
	return CLI_EXIT_USAGE;
}

int cli_run_command(const struct cli_command *cmd, const char *store_path, int argc, char **argv)
{
	size_t nopt = count_options(cmd->options);
	struct option *longopts = cli_xcalloc(nopt + 4, sizeof *longopts);
	void *state = cmd->state_size ? cli_xcalloc(1, cmd->state_size) : NULL;
	struct cli_ctx ctx = {.cmd = cmd, .store_path = store_path};
	int status = CLI_EXIT_OK;
	int c, npos;
	size_t i;

	for (i = 0; i < nopt; i++) {
		longopts[i].name = cmd->options[i].name;
		longopts[i].has_arg = cmd->options[i].metavar ? required_argument : no_argument;
		longopts[i].val = OPT_BASE + (int)i;
	}
	longopts[nopt].name = "store";
	longopts[nopt].has_arg = required_argument;
	longopts[nopt].val = OPT_STORE;
	longopts[nopt + 1].name = "help";
	longopts[nopt + 1].val = OPT_HELP;
	longopts[nopt + 2].name = "quiet";
	longopts[nopt + 2].val = OPT_QUIET;

	opterr = 0;
	optind = 0; /* GNU: reinitialise, permuting options to the front */
	while ((c = getopt_long(argc, argv, ":hq", longopts, NULL)) != -1) {
		if (c == OPT_HELP) {
			cli_command_help(stdout, cmd);
			status = cli_finish_output(CLI_EXIT_OK);
			goto out;
		} else if (c == OPT_QUIET) {
			cli_progress_quiet();
		} else if (c == OPT_STORE) {
			if (optarg[0] == '\0') {
				status = cli_bad_value("store", optarg, "empty directory name");
				goto out;
			}
			ctx.store_path = optarg;
		} else if (c >= OPT_BASE) {
			status = cmd->on_option(&ctx, state, c - OPT_BASE, optarg);
			if (status != CLI_EXIT_OK) {
				usage_error(cmd);
				goto out;
			}
		} else if (c == ':') {
			cli_error("option \"%s\" requires a value", argv[optind - 1]);
			status = usage_error(cmd);
			goto out;
		} else {
			if (optopt >= OPT_BASE)
				cli_error("option \"--%s\" does not take a value",
					  cmd->options[optopt - OPT_BASE].name);
			else if (optopt == OPT_HELP || optopt == OPT_QUIET)
				cli_error("option \"--%s\" does not take a value",
					  optopt == OPT_HELP ? "help" : "quiet");
			else if (optopt)
				cli_error("unrecognized option \"-%c\" for command \"%s\"", optopt,
					  cmd->name);
			else
				cli_error("unrecognized option \"%s\" for command \"%s\"",
					  argv[optind - 1], cmd->name);
			status = usage_error(cmd);
			goto out;
		}
	}

	npos = argc - optind;
	if (npos < cmd->min_args) {
		cli_error("missing arguments for command \"%s\"", cmd->name);
		fprintf(stderr, "usage: evs %s %s\n", cmd->name, cmd->synopsis);
		status = usage_error(cmd);
		goto out;
	}
	if (npos > cmd->max_args) {
		cli_error("too many arguments for command \"%s\": \"%s\"", cmd->name,
			  argv[optind + cmd->max_args]);
		fprintf(stderr, "usage: evs %s %s\n", cmd->name, cmd->synopsis);
		status = usage_error(cmd);
		goto out;
	}
	ctx.argc = npos;
	ctx.argv = argv + optind;
	if (cmd->run)
		status = cmd->run(&ctx, state);
	else
		status = cli_with_store(&ctx, CLI_OPEN_READ, NULL, cmd->run_store, state);

out:
	if (state && cmd->cleanup)
		cmd->cleanup(state);
	free(state);
	free(longopts);
	return status;
}
