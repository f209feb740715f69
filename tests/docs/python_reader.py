#!/usr/bin/env python3
"""A store written by evstore is readable with Python's lmdb and msgpack
using only docs/FORMAT.md: every event matches what `evs export` says."""
import json, os, struct, subprocess, sys, tempfile, uuid

import lmdb, msgpack

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

    env = lmdb.open(store, readonly=True, lock=False, max_dbs=8)
    meta = env.open_db(b"meta", create=False)
    events = env.open_db(b"events", create=False)
    streams = env.open_db(b"streams", create=False)
    ids = env.open_db(b"event_ids", create=False)
    with env.begin() as txn:
        assert struct.unpack(">I", txn.get(b"format", db=meta))[0] in (1, 2)
        rows = list(txn.cursor(db=events))
        assert len(rows) == len(exported) == 7, (len(rows), len(exported))
        for (key, value), ex in zip(rows, exported):
            position = struct.unpack(">Q", key)[0]
            rec = msgpack.unpackb(value, raw=False)
            assert len(rec) == 12 and rec[0] == 1
            (_, recorded_at, version, stream, event_id, type_, type_version,
             occurred_at, corr, caus, metadata, data) = rec
            assert value[:3] == b"\x9c\x01\xcf" and value[11:12] == b"\xcf"
            assert position == ex["position"] and stream == ex["stream"]
            assert version == ex["version"] and type_ == ex["type"]
            assert str(uuid.UUID(bytes=event_id)) == ex["id"]
            assert msgpack.unpackb(data, raw=False) == ex["data"], (data, ex["data"])
            assert msgpack.unpackb(metadata, raw=False) == ex.get("metadata", {})
            # indexes
            assert struct.unpack(">Q", txn.get(event_id, db=ids))[0] == position
            skey = stream.encode() + b"\0" + struct.pack(">Q", version)
            assert struct.unpack(">Q", txn.get(skey, db=streams))[0] == position
    print("ok: %d events decoded from Python" % len(rows))
