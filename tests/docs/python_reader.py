#!/usr/bin/env python3
"""A store written by evstore is readable with Python's lmdb and msgpack
using only docs/FORMAT.md: every event matches what `evs export` says."""
import json, os, struct, subprocess, sys, tempfile, uuid

import lmdb, msgpack

def crc32c(data):
    crc = 0xffffffff
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82f63b78 if crc & 1 else crc >> 1
    return crc ^ 0xffffffff

evs = sys.argv[1]
with tempfile.TemporaryDirectory() as tmp:
    store = os.path.join(tmp, "store")
    env_vars = dict(os.environ, EVS_STORE=store)
    run = lambda *a, **k: subprocess.run([evs, *a], env=env_vars, check=True,
                                         capture_output=True, text=True, **k)
    run("init")
    run("append", "order-1", "OrderPlaced", '{"sku":"A-1","qty":2,"price":9.5,"tags":["x"]}')
    lines = "\n".join(json.dumps({"type": "LineAdded", "data": {"n": i}}) for i in range(5))
    run("append", "order-1", input=lines + "\n")
    run("append", "order-2", "OrderPlaced", '{"sku":"B"}', "--metadata", '{"user":"u1"}')
    exported = [json.loads(l) for l in run("export").stdout.splitlines()]

    env = lmdb.open(store, readonly=True, lock=False, max_dbs=16)
    meta = env.open_db(b"meta", create=False)
    events = env.open_db(b"events", create=False)
    streams = env.open_db(b"streams", create=False)
    ids = env.open_db(b"event_ids", create=False)
    index = env.open_db(b"index", create=False)
    with env.begin() as txn:
        assert struct.unpack(">I", txn.get(b"format", db=meta))[0] == 3
        rows = list(txn.cursor(db=events))
        assert len(rows) == len(exported) == 7, (len(rows), len(exported))
        for (key, value), ex in zip(rows, exported):
            position = struct.unpack(">Q", key)[0]
            rec = msgpack.unpackb(value, raw=False)
            assert len(rec) == 14 and rec[0] == 2
            (_, recorded_at, version, stream, event_id, type_, type_version,
             occurred_at, corr, caus, metadata, data) = rec[:12]
            tags, producer = rec[12], rec[13]
            assert value[:3] == b"\x9e\x02\xcf" and value[11:12] == b"\xcf"
            assert tags == sorted(set(tags), key=lambda t: t.encode())
            assert tags == ex.get("tags", []) and producer == ex.get("producer")
            print(position, stream, version, type_, tags, producer)
            assert position == ex["position"] and stream == ex["stream"]
            assert version == ex["version"] and type_ == ex["type"]
            assert str(uuid.UUID(bytes=event_id)) == ex["id"]
            assert msgpack.unpackb(data, raw=False) == ex["data"], (data, ex["data"])
            assert msgpack.unpackb(metadata, raw=False) == ex.get("metadata", {})
            # indexes
            assert struct.unpack(">Q", txn.get(event_id, db=ids))[0] == position
            skey = stream.encode() + b"\0" + struct.pack(">Q", version)
            assert struct.unpack(">Q", txn.get(skey, db=streams))[0] == position
            # the event indexes (docs/FORMAT.md, "Event indexes")
            tkey = b"t" + type_.encode() + b"\0" + struct.pack(">Q", position)
            assert txn.get(tkey, db=index) == b"", tkey
            ckey = b"c" + stream.split("-")[0].encode() + b"\0" + struct.pack(">Q", position)
            assert txn.get(ckey, db=index) == b"", ckey
            for t in tags:
                gkey = b"g" + t.encode() + b"\0" + struct.pack(">Q", position)
                assert txn.get(gkey, db=index) == b"", gkey
        # the journal (docs/FORMAT.md, "The journal"): this small store's
        # ring never wrapped, so the chain from lsn 0 holds every commit
        head_lsn = struct.unpack(">QQ", txn.get(b"journal", db=meta))[0]
        stored = {struct.unpack(">Q", k)[0]: bytes(v) for k, v in rows}
    jr = open(os.path.join(store, "journal"), "rb").read()
    slots = [jr[i * 4096:(i + 1) * 4096] for i in (0, 1)]
    slots = [s for s in slots if s[:8] == b"EVSJCKPT"
             and struct.unpack(">I", s[112:116])[0] == crc32c(s[:112])
             and struct.unpack(">I", s[4092:])[0] == crc32c(s[:4092])]
    ck = max(slots, key=lambda s: struct.unpack(">Q", s[40:48])[0])
    juuid, ring = ck[16:32], struct.unpack(">Q", ck[32:40])[0]
    lsn, position = 0, 1
    while lsn < head_lsn:
        off = 8192 + lsn % ring
        h = jr[off:off + 48]
        assert struct.unpack(">I", h[44:48])[0] == crc32c(h[:44]), lsn
        length, own = struct.unpack(">IQ", h[4:16])
        assert own == lsn and h[16:32] == juuid
        if h[:4] == b"EVSS":
            lsn += ring - lsn % ring
            continue
        assert h[:4] == b"EVSR"
        rec = jr[off:off + length]
        assert struct.unpack(">I", rec[-4:])[0] == crc32c(rec[:-4])
        first, n = struct.unpack(">QI", rec[32:44])
        assert first == position, (first, position)
        p = 48
        for i in range(n):
            (ln,) = struct.unpack(">I", rec[p:p + 4])
            assert rec[p + 4:p + 4 + ln] == stored[first + i]
            p += 4 + ln
        position, lsn = first + n, lsn + length
    assert lsn == head_lsn and position == len(rows) + 1, (lsn, head_lsn, position)
    print("ok: %d events decoded from Python, the journal agrees" % len(rows))
