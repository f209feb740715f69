/*
 * error.c - the code table, per-thread messages and the log callback.
 *
 * Messages are kept per thread: one handle is shared by many appending
 * threads, so a single per-handle buffer would mix their errors. A thread's
 * message belongs to the handle it was set for; evs_errmsg() of another
 * handle gives "".
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static _Thread_local const evs_store *tl_store;
static _Thread_local char tl_msg[1024];

const char *evs_strerror(int code)
{
	switch (code) {
#define EVS__TEXT(name, value, text) \
	case EVS_##name: return text;
		EVS_ERRNO_MAP(EVS__TEXT)
#undef EVS__TEXT
	}
	return "unknown error code";
}

const char *evs_code_name(int code)
{
	switch (code) {
#define EVS__NAME(name, value, text) \
	case EVS_##name: return #name;
		EVS_ERRNO_MAP(EVS__NAME)
#undef EVS__NAME
	}
	return "UNKNOWN";
}

const char *evs_errmsg(const evs_store *s)
{
	if (s == NULL || tl_store != s)
		return "";
	return tl_msg;
}

const char *evs_open_errmsg(void)
{
	return tl_store == NULL ? tl_msg : "";
}

int evs__fail_msg(const evs_store *s, int code, const char *msg)
{
	tl_store = s;
	snprintf(tl_msg, sizeof tl_msg, "%s", msg);
	return code;
}

int evs__fail(const evs_store *s, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tl_msg, sizeof tl_msg, fmt, ap);
	va_end(ap);
	tl_store = s;
	return code;
}

int evs__code_of_mdb(int rc)
{
	switch (rc) {
	case 0: return EVS_OK;
	case MDB_NOTFOUND: return EVS_NOT_FOUND;
	case ENOMEM: return EVS_NOMEM;
	case ENOSPC:
	case EDQUOT: return EVS_FULL;
	case EACCES:
	case EPERM: return EVS_PERMISSION;
	case EROFS: return EVS_READONLY;
	case ENOENT: return EVS_NO_STORE;
	case MDB_READERS_FULL:
	case EAGAIN:
	case EBUSY: return EVS_BUSY;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID:
	case MDB_BAD_TXN:
	case MDB_PANIC: return EVS_CORRUPT;
	case MDB_VERSION_MISMATCH: return EVS_FORMAT;
	default: return EVS_IO;
	}
}

int evs__fail_mdb(const evs_store *s, int rc, const char *what)
{
	/* mdb_strerror() also covers errno values. */
	return evs__fail(s, evs__code_of_mdb(rc), "%s: %s", what, mdb_strerror(rc));
}

void evs__log(const evs_store *s, int level, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	if (s == NULL || s->opts.log == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	s->opts.log(s->opts.log_ctx, level, buf);
}
