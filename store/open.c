/*
 * open.c - opening and closing a store handle.
 *
 * A process has one LMDB environment per store (evs__core, core.c); every
 * evs_open() of that store returns a handle on it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

static void handle_free(evs_store *s)
{
	evs__schema_close(s);
	pthread_mutex_destroy(&s->schema_mu);
	free(s->path);
	free(s);
}

int evs_open(const char *path, const evs_options *opts, evs_store **out)
{
	evs_store *s = NULL;
	evs__core *c = NULL;
	struct stat st;
	bool shared;
	int rc;

	if (out)
		*out = NULL;
	if (path == NULL || *path == 0 || out == NULL)
		return evs__fail(NULL, EVS_INVALID, "evs_open: path and out are required");

	s = evs__calloc(1, sizeof *s);
	if (s == NULL)
		return evs__fail(NULL, EVS_NOMEM, "out of memory");
	if (opts)
		s->opts = *opts;
	else
		evs_options_init(&s->opts);
	unsigned want_readers = s->opts.max_readers;
	if (s->opts.max_readers == 0)
		s->opts.max_readers = 512;
	if (s->opts.max_event_size == 0)
		s->opts.max_event_size = EVS_DEFAULT_MAX_EVENT;
	if (s->opts.max_batch == 0)
		s->opts.max_batch = EVS_DEFAULT_MAX_BATCH;
	s->notify.fd = -1;
	pthread_mutex_init(&s->schema_mu, NULL);
	if (s->opts.max_event_size > EVS_LIMIT_MAX_EVENT || s->opts.sync < EVS_SYNC_FULL ||
	    s->opts.sync > EVS_SYNC_NONE) {
		rc = evs__fail(NULL, EVS_INVALID,
			       "invalid options: max_event_size at most %u, sync 0..2",
			       EVS_LIMIT_MAX_EVENT);
		goto fail;
	}
	if ((s->path = evs__strdup(path)) == NULL) {
		rc = evs__fail(NULL, EVS_NOMEM, "out of memory");
		goto fail;
	}

	if (stat(path, &st) != 0) {
		if (errno != ENOENT || !s->opts.create || s->opts.read_only) {
			rc = evs__fail(NULL,
				       errno == ENOENT ? EVS_NO_STORE : evs__code_of_mdb(errno),
				       "could not open store \"%s\": %s", path, strerror(errno));
			goto fail;
		}
		if (mkdir(path, 0755) != 0 && errno != EEXIST) {
			rc = evs__fail(NULL, evs__code_of_mdb(errno),
				       "could not create store directory \"%s\": %s", path,
				       strerror(errno));
			goto fail;
		}
	} else if (!S_ISDIR(st.st_mode)) {
		rc = evs__fail(NULL, EVS_INVALID, "could not open store \"%s\": not a directory",
			       path);
		goto fail;
	}
	if (!s->opts.create && !s->opts.read_only) {
		char probe[4096];
		snprintf(probe, sizeof probe, "%s/data.mdb", path);
		if (stat(probe, &st) != 0) {
			rc = evs__fail(NULL, EVS_NO_STORE, "could not open store \"%s\": %s", path,
				       "no data.mdb (run evs init)");
			goto fail;
		}
	}

	rc = evs__core_acquire(s, want_readers, &c, &shared);
	if (rc != EVS_OK)
		goto fail;

	s->core = c;
	s->env = c->env;
	s->meta = c->meta;
	s->events = c->events;
	s->streams = c->streams;
	s->ids = c->ids;
	s->time = c->time;
	s->snapshots = c->snapshots;
	s->schemas = c->schemas;
	s->checkpoints = c->checkpoints;
	s->index = c->index;
	s->notify = c->notify;

	if (s->opts.category_separator && s->opts.category_separator != c->catsep) {
		char msg[1024];
		snprintf(msg, sizeof msg,
			 "could not open store \"%s\": its category separator is '%c', not '%c' "
			 "(it is fixed when the store is created)",
			 path, c->catsep, s->opts.category_separator);
		evs_close(s);
		return evs__fail_msg(NULL, EVS_INVALID, msg);
	}

	/* A larger map than the shared environment has: grow it, as the
	 * first open would have made it. */
	if (shared && s->opts.map_size && !s->opts.read_only &&
	    (rc = evs__map_at_least(s, s->opts.map_size)) != EVS_OK) {
		char msg[1024];
		snprintf(msg, sizeof msg, "could not open store \"%s\": %s", path, evs_errmsg(s));
		evs_close(s);
		return evs__fail_msg(NULL, rc, msg);
	}
	*out = s;
	return EVS_OK;

fail:
	handle_free(s);
	/* evs_open_errmsg() is a whole message that names the store, so a
	 * caller prints it as it is (PostgreSQL's voice, no doubled prefix) */
	if (!strstr(evs_open_errmsg(), path)) {
		char msg[1024];
		snprintf(msg, sizeof msg, "could not open store \"%s\": %s", path,
			 evs_open_errmsg());
		evs__fail_msg(NULL, rc, msg);
	}
	return rc;
}

void evs_close(evs_store *s)
{
	evs__core *c;

	if (s == NULL)
		return;
	c = s->core;
	handle_free(s);
	evs__core_release(c);
}
