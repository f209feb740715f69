/*
 * bank_balance.c - the bank example's C aggregate (examples/bank) as of a
 * moment, for the browser test: what the page must show.
 *
 *   bank_balance STORE_DIR TIME_NS   ->  "balance 4000 version 4 position 12"
 *
 * TIME_NS: nanoseconds since the Unix epoch; the account "account-alice"
 * (or $BANK_ACCOUNT) loaded with evs_at EVS_AT_TIME (events recorded at
 * or before it), the store opened read-only.
 */
#include <stdio.h>
#include <stdlib.h>

#include "bank.h"

int main(int argc, char **argv)
{
	const char *account = getenv("BANK_ACCOUNT") ? getenv("BANK_ACCOUNT") : "account-alice";
	evs_options opts;
	evs_store *store;
	evs_loaded li;
	bank_account acc;
	bank b;
	char *end;
	evs_at at = {.kind = EVS_AT_TIME};
	int rc;

	if (argc != 3) {
		fprintf(stderr, "usage: bank_balance STORE_DIR TIME_NS\n");
		return 2;
	}
	at.time = strtoll(argv[2], &end, 10);
	if (*end || end == argv[2]) {
		fprintf(stderr, "bank_balance: invalid time \"%s\"\n", argv[2]);
		return 2;
	}
	evs_options_init(&opts);
	opts.create = 0;
	opts.read_only = 1;
	if (evs_open(argv[1], &opts, &store) != EVS_OK) {
		fprintf(stderr, "bank_balance: %s\n", evs_open_errmsg());
		return 1;
	}
	if ((rc = bank_open_handle(&b, store, 0)) != EVS_OK ||
	    (rc = bank_load(&b, account, &at, &acc, &li)) != EVS_OK) {
		fprintf(stderr, "bank_balance: %s: %s\n", evs_code_name(rc), evs_errmsg(store));
		return 1;
	}
	printf("balance %lld version %llu position %llu\n", (long long)acc.balance,
	       (unsigned long long)li.version, (unsigned long long)li.position);
	bank_close_handle(&b);
	evs_close(store);
	return 0;
}
