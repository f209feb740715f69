/*
 * bank_demo.c - the bank example end to end: accounts, a refused
 * withdrawal, transfers (one refused and returned), and the state of an
 * account now and as of an earlier moment.
 *
 *   bank-demo [--] [STORE_DIR]   (default ./bank-data; created if missing)
 *   bank-demo --help | --version
 *
 * Prints what it does, then the moment to give "evs state --as-of".
 * The store validates the bank's events against schemas/ (*.json)
 * ($BANK_SCHEMAS overrides the directory); the last part shows a
 * malformed event refused and an old AccountOpened read upcast.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <msgpack.h>

#include "bank.h"
#include "bank_schemas.h"

static void rfc3339(int64_t ns, char out[40])
{
	time_t sec = (time_t)(ns / 1000000000);
	struct tm tm;

	gmtime_r(&sec, &tm);
	size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 40 - n, ".%09lldZ", (long long)(ns % 1000000000));
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Print a command's outcome; exit on failures (not on rejections). */
static void step(bank *b, const char *what, int rc)
{
	if (rc == EVS_OK)
		printf("  ok        %s\n", what);
	else if (rc == EVS_REJECTED)
		printf("  rejected  %s: %s\n", what, evs_errmsg(b->store));
	else {
		fprintf(stderr, "bank-demo: %s: %s: %s\n", what, evs_code_name(rc),
			evs_errmsg(b->store));
		exit(1);
	}
}

static void show(bank *b, const char *account, const evs_at *at, const char *label)
{
	bank_account acc;
	evs_loaded li;
	int rc = bank_load(b, account, at, &acc, &li);

	if (rc != EVS_OK) {
		fprintf(stderr, "bank-demo: load %s: %s\n", account, evs_errmsg(b->store));
		exit(1);
	}
	printf("  %-8s %-16s balance %6lld.%02lld  %s  (version %llu, position %llu)\n", label,
	       account, (long long)(acc.balance / 100), (long long)(acc.balance % 100),
	       acc.closed   ? "closed"
	       : acc.opened ? "open  "
			    : "none  ",
	       (unsigned long long)li.version, (unsigned long long)li.position);
}

/* A malformed event refused; an AccountOpened of version 1 read as 2. */
static void schemas_at_work(evs_store *store)
{
	static const char bad[] = "\x81\xa6"
				  "amount"
				  "\xa3"
				  "ten"; /* {"amount":"ten"} */
	static const char old[] = "\x81\xa5"
				  "owner"
				  "\xa5"
				  "Carol"; /* {"owner":"Carol"} */
	evs_event_in ev = {.type = "MoneyDeposited", .data = bad, .data_len = sizeof bad - 1};
	evs_iter *it;
	evs_event e, up;
	char text[256];
	int rc;

	printf("\nschemas at work:\n");
	rc = evs_append(store, "account-alice", EVS_ANY, &ev, 1, NULL);
	printf("  refused   deposit {\"amount\":\"ten\"}: %s: %s\n", evs_code_name(rc),
	       evs_errmsg(store));
	/* an account opened before currencies existed: written as version 1 */
	ev = (evs_event_in){.type = "AccountOpened",
			    .type_version = 1,
			    .data = old,
			    .data_len = sizeof old - 1};
	if (evs_append(store, "account-carol", EVS_ANY, &ev, 1, NULL) != EVS_OK ||
	    evs_read_stream(store, "account-carol", 1, EVS_FORWARD, 1, &it) != EVS_OK) {
		fprintf(stderr, "bank-demo: %s\n", evs_errmsg(store));
		exit(1);
	}
	if (evs_iter_next(it, &e) == EVS_OK) {
		msgpack_unpacked u;
		msgpack_unpacked_init(&u);
		if (msgpack_unpack_next(&u, e.data, e.data_len, NULL) == MSGPACK_UNPACK_SUCCESS)
			msgpack_object_print_buffer(text, sizeof text, u.data);
		printf("  stored    AccountOpened v%u %s\n", e.type_version, text);
		msgpack_unpacked_destroy(&u);
	}
	evs_iter_free(it);
	/* the same event, asked for in the latest version */
	if (evs_read_stream(store, "account-carol", 1, EVS_FORWARD, 1, &it) == EVS_OK &&
	    evs_iter_upcast(it, 1) == EVS_OK && evs_iter_next(it, &up) == EVS_OK) {
		msgpack_unpacked u;
		msgpack_unpacked_init(&u);
		if (msgpack_unpack_next(&u, up.data, up.data_len, NULL) == MSGPACK_UNPACK_SUCCESS)
			msgpack_object_print_buffer(text, sizeof text, u.data);
		printf("  upcast    AccountOpened v%u %s\n", up.type_version, text);
		msgpack_unpacked_destroy(&u);
	} else {
		fprintf(stderr, "bank-demo: upcast: %s\n", evs_errmsg(store));
		exit(1);
	}
	evs_iter_free(it);
}

static void usage(FILE *f)
{
	fputs("usage: bank-demo [--] [STORE_DIR]\n\n"
	      "Run the bank example end to end in STORE_DIR (default ./bank-data,\n"
	      "created if missing); $BANK_SCHEMAS overrides the schema directory.\n\n"
	      "  -h, --help   show this help and exit\n"
	      "  --version    show the version and exit\n",
	      f);
}

/* The store directory from the command line: options are refused rather
 * than taken for a directory name ("bank-demo --help" once made one
 * called "--help"); "--" ends the options. NULL with *status set when
 * there is nothing to run. */
static const char *parse_args(int argc, char **argv, int *status)
{
	const char *dir = NULL;
	bool options = true;

	*status = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (options && (!strcmp(a, "-h") || !strcmp(a, "--help"))) {
			usage(stdout);
			return NULL;
		} else if (options && !strcmp(a, "--version")) {
			printf("bank-demo %s\n", EVS_VERSION_STRING);
			return NULL;
		} else if (options && !strcmp(a, "--")) {
			options = false;
		} else if (options && a[0] == '-' && a[1]) {
			fprintf(stderr, "bank-demo: unrecognized option \"%s\"\n", a);
			fputs("hint: see \"bank-demo --help\"\n", stderr);
			*status = 2;
			return NULL;
		} else if (dir) {
			fprintf(stderr, "bank-demo: too many arguments: \"%s\"\n", a);
			*status = 2;
			return NULL;
		} else if (!a[0]) {
			fprintf(stderr, "bank-demo: invalid store directory \"\": empty\n");
			*status = 2;
			return NULL;
		} else {
			dir = a;
		}
	}
	return dir ? dir : "./bank-data";
}

int main(int argc, char **argv)
{
	int status;
	const char *dir = parse_args(argc, argv, &status);
	evs_options opts;
	evs_store *store;
	bank b;
	char when[40];
	int rc;

	if (!dir)
		return status ? status : fflush(stdout) == 0 ? 0 : 1;
	evs_options_init(&opts);
	if ((rc = evs_open(dir, &opts, &store)) != EVS_OK) {
		fprintf(stderr, "bank-demo: %s\n", evs_open_errmsg());
		return 1;
	}
	if ((rc = bank_open_handle(&b, store, 100)) != EVS_OK) {
		fprintf(stderr, "bank-demo: %s\n", evs_errmsg(store));
		return 1;
	}

	const char *schemas = getenv("BANK_SCHEMAS") ? getenv("BANK_SCHEMAS") : BANK_SCHEMA_DIR;
	printf("schemas (%s):\n", schemas);
	if ((rc = bank_register_schemas(store, schemas, stdout)) != EVS_OK ||
	    (rc = evs_schema_set_unknown(store, EVS_UNKNOWN_REFUSE)) != EVS_OK) {
		fprintf(stderr, "bank-demo: schemas: %s\n", evs_errmsg(store));
		return 1;
	}

	printf("\ncommands:\n");
	step(&b, "open account-alice", bank_open(&b, "account-alice", "Alice"));
	step(&b, "open account-bob", bank_open(&b, "account-bob", "Bob"));
	step(&b, "deposit 100.00 to account-alice", bank_deposit(&b, "account-alice", 10000));
	step(&b, "withdraw 30.00 from account-alice", bank_withdraw(&b, "account-alice", 3000));
	step(&b, "withdraw 500.00 from account-alice", bank_withdraw(&b, "account-alice", 50000));

	int64_t before = now_ns();
	rfc3339(before, when);
	printf("  --        (the auditor's moment: %s)\n", when);

	uint8_t tid[16];
	step(&b, "transfer 50.00 account-alice -> account-bob",
	     bank_transfer(&b, "account-alice", "account-bob", 5000, tid));
	step(&b, "close account-bob", bank_close(&b, "account-bob"));
	step(&b, "withdraw 50.00 from account-bob", bank_withdraw(&b, "account-bob", 5000));
	step(&b, "close account-bob", bank_close(&b, "account-bob"));
	step(&b, "transfer 10.00 account-alice -> account-bob",
	     bank_transfer(&b, "account-alice", "account-bob", 1000, NULL));
	step(&b, "deposit 1.00 to account-bob", bank_deposit(&b, "account-bob", 100));

	printf("\nstate now:\n");
	show(&b, "account-alice", NULL, "now");
	show(&b, "account-bob", NULL, "now");
	printf("\nstate as of %s:\n", when);
	evs_at at = {.kind = EVS_AT_TIME, .time = before};
	show(&b, "account-alice", &at, "as of");
	show(&b, "account-bob", &at, "as of");

	printf("\nthe same with the evs tool (generic merge-patch state):\n"
	       "  evs --store %s state account-alice --as-of %s\n",
	       dir, when);

	schemas_at_work(store);

	bank_close_handle(&b);
	evs_close(store);
	return 0;
}
