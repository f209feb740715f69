/*
 * state_main.c - "evs state" on its own, for test_cli_state until the evs
 * tool dispatches it: evs-state [--store DIR] STREAM [OPTION]...
 * (store/evs/cmd_state.c linked with the tool's helpers).
 */
int cmd_state(int argc, char **argv);

int main(int argc, char **argv)
{
	static char name[] = "state";

	if (argc < 1)
		return 2;
	argv[0] = name;
	return cmd_state(argc, argv);
}
