/*
 * state_main.c - "evs state" on its own, for test_cli_state until the evs
 * tool dispatches it: evs-state state [--store DIR] STREAM [OPTION]...
 * (store/evs/cmd_state.c linked with the tool's helpers; the word "state"
 * is taken like the real tool's command name, so the test can run either).
 */
#include <string.h>

int cmd_state(int argc, char **argv);

int main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "state") != 0)
		return 2;
	return cmd_state(argc - 1, argv + 1);
}
