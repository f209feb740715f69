/*
 * cloudevent.h: one event as a CloudEvents 1.0 JSON object (structured
 * mode, the JSON event format), the one envelope of every channel that
 * carries the commit stream off the host: push over HTTP (SSE data and
 * NDJSON lines, query/push*.c) and the relays (webhook bodies, broker
 * messages, relay/).
 *
 * The object, members in this order (no whitespace, no newline):
 *
 *   specversion      "1.0"
 *   id               the event id, UUID text (8-4-12 lowercase hex); with
 *                    source the consumer's idempotency key: the same on
 *                    every retry and every channel
 *   source           the caller's text (a URI-reference naming the store,
 *                    e.g. "urn:evstore:/var/lib/app")
 *   type             the event type as stored
 *   subject          the stream id
 *   time             recorded_at, RFC 3339 UTC with nine fractional digits
 *                    ("2024-05-01T12:34:56.000000123Z"), as the product
 *                    prints times everywhere
 *   datacontenttype  "application/json"
 *   position         the global position      } extension attributes;
 *   streamversion    the version in its stream } decimal digits in JSON
 *   typeversion      the type's schema version } strings (see below)
 *   correlationid    UUID text, only when the event has one
 *   causationid      UUID text, only when the event has one
 *   occurredat       the producer's time, RFC 3339 as time, only when set
 *   producer         the service that produced the event, only when set
 *   tags             the event's tags, only when it has some: ONE String
 *                    holding a JSON array of strings in byte order,
 *                    "[\"account:42\",\"course:c1\"]" (the spec's
 *                    attribute types have no list, and binary mode puts
 *                    attributes in headers: a String is what fits both)
 *   data             the payload as JSON (mpjson.h's number policy, the
 *                    lenient mode: bin/ext as base64 strings)
 *
 * Extension names follow the spec's naming rule: lowercase ASCII letters
 * and digits only, at most 20 characters, never "data". The spec's
 * Integer type is a signed 32-bit number, and positions and versions are
 * 64-bit, so position, streamversion and typeversion are of the String
 * type (decimal digits, no sign, no leading zero) on every event rather
 * than an Integer on some and a String on others; a consumer compares
 * positions as numbers after parsing (or by length, then text).
 * Binary-mode header names are "ce-"/"ce_" + the attribute name; the
 * payload then goes alone in the body.
 */
#ifndef EVS_BASE_CLOUDEVENT_H
#define EVS_BASE_CLOUDEVENT_H

#include "../evstore.h"
#include "buf.h"

/* Append ev as one CloudEvents JSON object to out. EVS_OK; EVS_INVALID
 * (an argument NULL, source empty or not UTF-8); EVS_BAD_DATA (the payload
 * is not msgpack); EVS_NOMEM (out's memory or limit). On failure out is as
 * it was. */
int evs__cloudevent_json(const evs_event *ev, const char *source, evs__buf *out);

/* The value of the "tags" attribute: ev's tags as a JSON array of
 * strings (the text, appended to out; "[]" when none). Binary mode puts
 * it in a header as it is. */
void evs__cloudevent_tags(const evs_event *ev, evs__buf *out);

/* UUID text of id (36 characters and a NUL), lowercase, 8-4-4-4-12. */
void evs__cloudevent_uuid(const uint8_t id[16], char out[37]);

#endif
