/*
 * nats_dump.c - the relay tests' reader of a JetStream stream (libnats),
 * independent of evs-relay's code:
 *
 *   nats_dump URL STREAM          one JSON line per message, by sequence:
 *                                 {"seq":N,"subject":S,"msgid":..,"id":..,
 *                                  "stream":..,"version":..,"position":..,
 *                                  "data":<the body as it is>}
 *   nats_dump URL STREAM --last   the stream's last sequence (0: none or
 *                                 no stream)
 *   nats_dump URL STREAM --show N message N as a consumer sees it: the
 *                                 subject, the headers sorted by name, the
 *                                 data (README's example output)
 *
 * Exit status 0, or 1 with a message on stderr.
 */
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *hdr(natsMsg *m, const char *k)
{
	const char *v = NULL;

	return natsMsgHeader_Get(m, k, &v) == NATS_OK && v ? v : "";
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int show(jsCtx *js, const char *stream, uint64_t seq)
{
	natsMsg *m = NULL;
	const char **keys = NULL;
	int n = 0;

	if (js_GetMsg(&m, js, stream, seq, NULL, NULL) != NATS_OK ||
	    natsMsgHeader_Keys(m, &keys, &n) != NATS_OK) {
		fprintf(stderr, "nats_dump: no message %llu\n", (unsigned long long)seq);
		return 1;
	}
	qsort(keys, (size_t)n, sizeof keys[0], by_name);
	printf("subject: %s\n", natsMsg_GetSubject(m));
	for (int i = 0; i < n; i++)
		printf("%s: %s\n", keys[i], hdr(m, keys[i]));
	printf("data: %.*s\n", natsMsg_GetDataLength(m), natsMsg_GetData(m));
	free((void *)keys);
	natsMsg_Destroy(m);
	return 0;
}

int main(int argc, char **argv)
{
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsStatus st;
	int rc = 1;

	if (argc < 3) {
		fputs("usage: nats_dump URL STREAM [--last]\n", stderr);
		return 2;
	}
	if ((st = natsConnection_ConnectTo(&nc, argv[1])) != NATS_OK ||
	    (st = natsConnection_JetStream(&js, nc, NULL)) != NATS_OK) {
		fprintf(stderr, "nats_dump: %s\n", natsStatus_GetText(st));
		goto out;
	}
	st = js_GetStreamInfo(&si, js, argv[2], NULL, &jerr);
	if (st != NATS_OK) {
		if (argc > 3 && (st == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr)) {
			puts("0");
			rc = 0;
		} else {
			fprintf(stderr, "nats_dump: stream info: %s %d\n", natsStatus_GetText(st),
				(int)jerr);
		}
		goto out;
	}
	if (argc > 4 && !strcmp(argv[3], "--show")) {
		rc = show(js, argv[2], strtoull(argv[4], NULL, 10));
		goto out;
	}
	if (argc > 3) {
		printf("%llu\n", (unsigned long long)si->State.LastSeq);
		rc = 0;
		goto out;
	}
	for (uint64_t seq = si->State.FirstSeq; seq && seq <= si->State.LastSeq; seq++) {
		natsMsg *m = NULL;
		if ((st = js_GetMsg(&m, js, argv[2], seq, NULL, &jerr)) != NATS_OK) {
			fprintf(stderr, "nats_dump: message %llu: %s %d\n", (unsigned long long)seq,
				natsStatus_GetText(st), (int)jerr);
			goto out;
		}
		printf("{\"seq\":%llu,\"subject\":\"%s\",\"msgid\":\"%s\",\"id\":\"%s\","
		       "\"stream\":\"%s\",\"version\":%s,\"position\":%s,\"data\":%.*s}\n",
		       (unsigned long long)seq, natsMsg_GetSubject(m), hdr(m, "Nats-Msg-Id"),
		       hdr(m, "ce-id"), hdr(m, "ce-subject"), hdr(m, "ce-streamversion"),
		       hdr(m, "ce-position"), natsMsg_GetDataLength(m), natsMsg_GetData(m));
		natsMsg_Destroy(m);
	}
	rc = 0;
out:
	jsStreamInfo_Destroy(si);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	nats_Close();
	return fflush(stdout) == 0 ? rc : 1;
}
