/*
 * push_client.h - a small client of GET /events/stream for the push test
 * and benchmark: HTTP/1.0 over a raw socket (the body is then the stream
 * itself, no chunks), SSE or NDJSON frames parsed as they arrive.
 */
#ifndef EVS_PUSH_CLIENT_H
#define EVS_PUSH_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { PC_EVENT, PC_RESUME, PC_CUT, PC_HEARTBEAT };

typedef struct pc_frame {
	int kind;
	uint64_t id;      /* PC_EVENT: the position; PC_RESUME/PC_CUT: "after" */
	const char *data; /* the JSON (not NUL-terminated), valid until pc_fill */
	size_t len;
	const char *from; /* PC_RESUME: the "from" value's first byte */
} pc_frame;

typedef struct pc {
	int fd;
	bool ndjson;
	bool hdr_done, eof;
	int status;
	char *hdr; /* the response's header block, NUL-terminated */
	char *buf; /* received, not yet parsed: buf[off..len) */
	size_t len, cap, off;
} pc;

/* Connect to 127.0.0.1:port and send GET target (extra: more header
 * lines, each ending "\r\n", or NULL); rcvbuf > 0 sets SO_RCVBUF first.
 * The socket is left non-blocking. 0, or -1 (nothing listens). */
int pc_open(pc *c, unsigned port, const char *target, const char *extra, bool ndjson, int rcvbuf);
/* Read what the socket has: 1 bytes read, 0 none now, -1 end of stream
 * (c->eof). */
int pc_fill(pc *c);
/* The next whole frame (after the headers): 1, or 0 (need more bytes). */
int pc_next(pc *c, pc_frame *f);
/* Block (poll) up to timeout_ms for the next frame: 1, 0 timeout, -1
 * end of stream. */
int pc_wait(pc *c, pc_frame *f, int timeout_ms);
/* Block up to timeout_ms for the headers: the status, 0 on timeout, -1
 * at the end of the stream. */
int pc_wait_headers(pc *c, int timeout_ms);
/* A header's value (copied into out), or false. */
bool pc_header(const pc *c, const char *name, char *out, size_t n);
void pc_close(pc *c);

#endif
