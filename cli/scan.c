/*
 * scan.c - print a range of events as JSON Lines (read and export).
 *
 * An open iterator pins a read snapshot, and stdout may be a slow pipe,
 * so events are formatted into a memory buffer and the iterator is closed
 * before the buffer is written: at most SCAN_EVENTS events or SCAN_BYTES
 * bytes per iterator, then a new iterator resumes after the last key.
 * A forward scan stops at the head seen when it started, so its output is
 * the store as of that moment even while others append.
 */
#include <string.h>

#include "cli.h"

#define SCAN_EVENTS 4096
#define SCAN_BYTES  ((size_t)16 << 20)

static bool type_wanted(const struct cli_scan *sc, const evs_event *ev)
{
	if (sc->ntypes == 0)
		return true;
	for (size_t i = 0; i < sc->ntypes; i++)
		if (strlen(sc->types[i]) == ev->type.len &&
		    memcmp(sc->types[i], ev->type.ptr, ev->type.len) == 0)
			return true;
	return false;
}

static int open_iter(evs_store *store, const struct cli_scan *sc, uint64_t from, evs_iter **it)
{
	int rc;

	if (sc->stream)
		rc = evs_read_stream(store, sc->stream, from, sc->direction, 0, it);
	else
		rc = evs_read_all(store, from, sc->direction, sc->filter, 0, it);
	if (rc == EVS_OK && sc->upcast && (rc = evs_iter_upcast(*it, 1)) != EVS_OK) {
		evs_iter_free(*it);
		*it = NULL;
	}
	if (rc != EVS_OK) {
		if (sc->stream)
			cli_store_error(store, rc, "could not read stream \"%s\"", sc->stream);
		else
			cli_store_error(store, rc, "could not read events");
	}
	return rc;
}

int cli_scan_print(evs_store *store, const struct cli_scan *sc)
{
	bool forward = sc->direction == EVS_FORWARD;
	uint64_t from = sc->from, stop = UINT64_MAX, printed = 0;
	evs__buf buf;
	bool done = false;
	int rc, status = CLI_EXIT_FAIL;

	buf = (evs__buf){0};
	if (forward && sc->stream) {
		evs_stream_info h;

		rc = evs_stream_head(store, sc->stream, &h);
		if (rc == EVS_NOT_FOUND)
			done = true;
		else if (rc != EVS_OK) {
			cli_store_error(store, rc, "could not read stream \"%s\"", sc->stream);
			goto out;
		}
		stop = h.version;
	} else if (forward) {
		evs_store_info h;

		if (cli_store_head(store, &h) != EVS_OK)
			goto out;
		stop = h.last_position;
	}

	while (!done) {
		evs_iter *it = NULL;
		evs_event ev;
		size_t got = 0;

		if (open_iter(store, sc, from, &it) != EVS_OK)
			goto out;
		for (;;) {
			uint64_t key;

			if (got == SCAN_EVENTS || buf.len >= SCAN_BYTES)
				break;
			rc = evs_iter_next(it, &ev);
			if (rc == EVS_END) {
				done = true;
				break;
			}
			if (rc != EVS_OK) {
				cli_store_error(store, rc, "could not read events");
				evs_iter_free(it);
				goto out;
			}
			got++;
			key = sc->stream ? ev.version : ev.position;
			if (forward && key > stop) {
				done = true;
				break;
			}
			cli_progress_add(sc->progress, 1);
			if (type_wanted(sc, &ev)) {
				if (cli_event_to_json(&buf, &ev) != 0) {
					evs_iter_free(it);
					goto out;
				}
				if (sc->limit && ++printed == sc->limit)
					done = true;
			}
			/* resume after this event if the iterator is renewed */
			if (forward ? key == UINT64_MAX : key <= 1)
				done = true;
			else
				from = forward ? key + 1 : key - 1;
			if (done)
				break;
		}
		evs_iter_free(it);
		if (jb_write(&buf, stdout) != 0)
			break; /* reported by cli_finish_output */
		buf.len = 0;
	}
	status = CLI_EXIT_OK;
out:
	evs__buf_free(&buf);
	return status;
}

static int scan_with_progress(evs_store *store, struct cli_ctx *ctx, void *arg)
{
	struct cli_scan *sc = arg;
	evs_store_info head;
	int status;

	(void)ctx;
	/* the total is the head now; cli_scan_print stops there too */
	if (sc->what && evs_head(store, &head) == EVS_OK && head.last_position >= sc->from)
		sc->progress = cli_progress_start(sc->what, head.last_position - sc->from + 1);
	status = cli_scan_print(store, sc);
	cli_progress_done(sc->progress);
	return status;
}

int cli_scan_store(struct cli_ctx *ctx, struct cli_scan *scan, const char *progress_what)
{
	scan->what = progress_what;
	return cli_with_store(ctx, CLI_OPEN_READ, NULL, scan_with_progress, scan);
}
