/*
 * bank_schemas.h - registering the bank example's event schemas (the
 * JSON documents in examples/bank/schemas) in a store.
 */
#ifndef BANK_SCHEMAS_H
#define BANK_SCHEMAS_H

#include <stdio.h>

#include <evstore.h>

/* Register every *.json document of dir, in name order (so X.v1.json
 * comes before X.v2.json), printing one line per document to out (NULL =
 * silent). EVS_OK, or the first failure (evs_errmsg(store) says which
 * file and why; EVS_IO if dir cannot be read). */
int bank_register_schemas(evs_store *store, const char *dir, FILE *out);

#endif
