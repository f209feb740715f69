/*
 * bank_schemas.c - registering the bank's schema documents.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "bank_schemas.h"

#define MAX_FILES 256
#define MAX_DOC   (256u << 10)

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int bank_register_schemas(evs_store *store, const char *dir, FILE *out)
{
	char *names[MAX_FILES], *buf = NULL;
	size_t n = 0;
	struct dirent *de;
	DIR *d = opendir(dir);
	int rc = EVS_OK;

	if (d == NULL)
		return EVS_IO;
	while ((de = readdir(d)) != NULL && n < MAX_FILES) {
		size_t len = strlen(de->d_name);
		if (len > 5 && strcmp(de->d_name + len - 5, ".json") == 0 &&
		    (names[n] = strdup(de->d_name)) != NULL)
			n++;
	}
	closedir(d);
	qsort(names, n, sizeof *names, by_name);
	if ((buf = malloc(MAX_DOC)) == NULL)
		rc = EVS_NOMEM;
	for (size_t i = 0; i < n && rc == EVS_OK; i++) {
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		FILE *f = fopen(path, "rb");
		size_t len = f ? fread(buf, 1, MAX_DOC, f) : 0;
		if (f == NULL) {
			rc = EVS_IO;
			break;
		}
		fclose(f);
		rc = evs_schema_add(store, buf, len);
		if (out && rc == EVS_OK)
			fprintf(out, "  schema    %s\n", names[i]);
		else if (out)
			fprintf(out, "  refused   %s: %s\n", names[i], evs_errmsg(store));
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(buf);
	return rc;
}
