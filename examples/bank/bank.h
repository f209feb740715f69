/*
 * bank.h - an example domain on libevstore's public API: bank accounts.
 *
 * One account is one stream ("account-<name>" is a good id; the stream id
 * is whatever the caller passes). Its events, each data a msgpack map:
 *
 *   AccountOpened     {"owner": str}
 *   MoneyDeposited    {"amount": int}
 *   MoneyWithdrawn    {"amount": int}
 *   TransferSent      {"amount": int, "to": str}      on the payer's stream
 *   TransferReceived  {"amount": int, "from": str}    on the payee's stream
 *   TransferReturned  {"amount": int, "to": str}      on the payer's stream,
 *                                                     when the payee refused
 *   AccountClosed     {}
 *
 * Amounts are integers in the smallest unit (cents). A transfer touches two
 * aggregates, so it is two commands, not one transaction: the payer's
 * TransferSent, then the payee's TransferReceived, or, if the payee
 * refuses (closed, never opened), the payer's TransferReturned. All events
 * of one transfer carry the transfer id as correlation id; the payee's and
 * the return's causation id is the TransferSent event's id. A crash between
 * the two steps leaves a TransferSent with neither follow-up, which a
 * process manager would finish (TransferSent events are easy to find by
 * type); this example does not include one.
 *
 * Rejections (EVS_REJECTED, the reason in evs_errmsg()): opening an open
 * or closed account, anything on an account that is not open, amounts not
 * above 0, withdrawals and transfers above the balance ("insufficient
 * funds"), a transfer to the same account, closing an account that holds
 * money.
 */
#ifndef BANK_H
#define BANK_H

#include <stdbool.h>
#include <stdint.h>

#include <evstore.h>

#define BANK_MAX_OWNER 127

/* The aggregate's state. */
typedef struct bank_account {
	bool opened; /* AccountOpened seen */
	bool closed; /* AccountClosed seen */
	int64_t balance;
	char owner[BANK_MAX_OWNER + 1];
	uint64_t transactions; /* money movements folded */
	int64_t opened_at;     /* recorded_at of AccountOpened */
} bank_account;

enum bank_op {
	BANK_OPEN,
	BANK_DEPOSIT,
	BANK_WITHDRAW,
	BANK_CLOSE,
	BANK_TRANSFER_OUT, /* steps of bank_transfer() */
	BANK_TRANSFER_IN,
	BANK_TRANSFER_RETURN
};

/* A command; zero it, then set what the operation needs. */
typedef struct bank_cmd {
	int op;              /* enum bank_op */
	const char *account; /* the stream the command is for */
	int64_t amount;
	const char *owner; /* BANK_OPEN */
	const char *other; /* transfers: the other account */
	uint8_t id[16];    /* id of the event; zero = generated */
	uint8_t correlation_id[16];
	uint8_t causation_id[16];
} bank_cmd;

typedef struct bank {
	evs_store *store;
	evs_aggregate *accounts;
} bank;

/* The definition (snapshot every `snapshot_every` events; 0 = none). */
void bank_account_def(evs_aggregate_def *def, uint64_t snapshot_every);

int bank_open_handle(bank *b, evs_store *store, uint64_t snapshot_every);
void bank_close_handle(bank *b);

/* Commands: EVS_OK, EVS_REJECTED (reason in evs_errmsg(b->store)), or a
 * failure of the store. result may be NULL. */
int bank_execute(bank *b, const bank_cmd *cmd, evs_execute_result *result);
int bank_open(bank *b, const char *account, const char *owner);
int bank_deposit(bank *b, const char *account, int64_t amount);
int bank_withdraw(bank *b, const char *account, int64_t amount);
int bank_close(bank *b, const char *account);

/* Move amount from one account to another (see above). transfer_id gets
 * the correlation id of the transfer's events (may be NULL). EVS_REJECTED
 * when the payer refused (nothing happened) or the payee refused (the
 * money went back: TransferSent then TransferReturned). */
int bank_transfer(bank *b, const char *from, const char *to, int64_t amount,
		  uint8_t transfer_id[16]);

/* The account as of `at` (NULL = now); info may be NULL. */
int bank_load(bank *b, const char *account, const evs_at *at, bank_account *out, evs_loaded *info);

#endif /* BANK_H */
