#!/usr/bin/env python3
"""Lint checks of issue 16's "Done when", run as tests (suite 'lint').

  lint.py registered SRC BUILD  every tests/**/test_*.c, bench_*.c, fuzz_*.c,
                                *.sh and *.py is used by some target, test or
                                benchmark of the build (meson's introspection
                                files), is sourced by a script that is, or is
                                named in its folder's meson.build (registered
                                under an option this build has off); folders
                                whose meson.build this build skipped (an
                                option off) are not judged
  lint.py lines SRC [MAX]       no .c/.h of library or daemon code (store/,
                                schema/, projector/, query/, cli/, relay/;
                                store/evstore.h
                                aside) is over MAX (600) lines
  lint.py cycles SRC BUILD      the file-level call graph of library code has
                                no cycles: from nm on the objects of every
                                library, an edge A -> B when A's object uses a
                                global symbol defined by B's object

Each prints its findings, one line each, and exits 1 when there are any.
"""
import json
import os
import re
import subprocess
import sys

LIBRARY_DIRS = ('store', 'schema', 'projector', 'query')
CODE_DIRS = LIBRARY_DIRS + ('cli', 'relay')


def rel(src, path):
    return os.path.relpath(os.path.realpath(path), os.path.realpath(src))


def load(build, name):
    with open(os.path.join(build, 'meson-info', name)) as f:
        return json.load(f)


def registered(src, build):
    used = set()
    for t in load(build, 'intro-targets.json'):
        for ts in t.get('target_sources', []):
            for s in ts.get('sources', []) + ts.get('generated_sources', []):
                used.add(os.path.realpath(s))
    for name in ('intro-tests.json', 'intro-benchmarks.json'):
        for t in load(build, name):
            for a in t['cmd']:
                if os.path.isabs(a):
                    used.add(os.path.realpath(a))
    want = re.compile(r'^(test_.*\.c|bench_.*\.c|fuzz_.*\.c|.*\.sh|.*\.py)$')
    files = []
    for d, dirs, names in os.walk(os.path.join(src, 'tests')):
        dirs[:] = [x for x in dirs if x != 'corpus']
        files += [os.path.realpath(os.path.join(d, n)) for n in names if want.match(n)]
    # a script sourced (". lib.sh", "source lib.sh") by a registered one counts
    sourced = set()
    for f in files:
        if f in used and f.endswith('.sh'):
            with open(f, errors='replace') as fh:
                for m in re.finditer(r'^\s*(?:\.|source)\s+(.*)$', fh.read(), re.M):
                    sourced.add(os.path.basename(m.group(1).strip().strip('"\'')))
    # folders whose meson.build this configuration read, and their text
    read = {}
    for f in load(build, 'intro-buildsystem_files.json'):
        if os.path.basename(f) == 'meson.build':
            with open(f, errors='replace') as fh:
                read[os.path.dirname(os.path.realpath(f))] = fh.read()

    def named(f):
        text = read.get(os.path.dirname(f))
        return text is not None and re.search(r"'%s'" % re.escape(os.path.basename(f)), text)

    judged = [f for f in files if os.path.dirname(f) in read]
    bad = sorted(f for f in judged
                 if f not in used and os.path.basename(f) not in sourced and not named(f))
    for f in bad:
        print('not registered in any meson.build: %s' % rel(src, f))
    print('%d test files checked (%d in folders this build skipped), %d not registered' %
          (len(judged), len(files) - len(judged), len(bad)))
    return 1 if bad else 0


def lines(src, limit):
    bad = []
    n = 0
    for top in CODE_DIRS:
        for d, _, names in os.walk(os.path.join(src, top)):
            for name in names:
                if not name.endswith(('.c', '.h')):
                    continue
                path = os.path.join(d, name)
                if rel(src, path) == 'store/evstore.h':
                    continue
                n += 1
                with open(path, 'rb') as f:
                    count = f.read().count(b'\n')
                if count > limit:
                    bad.append((count, rel(src, path)))
    for count, path in sorted(bad, reverse=True):
        print('%s: %d lines (more than %d)' % (path, count, limit))
    print('%d files of library and daemon code checked, %d over %d lines' % (n, len(bad), limit))
    return 1 if bad else 0


def nm(objs):
    """{object: [(symbol, type)]} of the global symbols, one nm for all."""
    out = subprocess.run(['nm', '-A', '-g', '--format=posix'] + objs, capture_output=True,
                         text=True, check=True).stdout
    syms = {o: [] for o in objs}
    for line in out.splitlines():
        obj, _, rest = line.rpartition(': ')
        parts = rest.split()
        if obj in syms and len(parts) >= 2:
            syms[obj].append((parts[0], parts[1]))
    return syms


def library_objects(src, build):
    """(object, source) of every file compiled into a library of library code."""
    with open(os.path.join(build, 'compile_commands.json')) as f:
        cmds = json.load(f)
    objs = []
    for c in cmds:
        out = c.get('output') or re.search(r'-o (\S+)', c['command']).group(1)
        pdir = os.path.basename(os.path.dirname(out))
        if not (pdir.startswith('lib') and pdir.endswith('.p')):
            continue  # an executable's object
        source = rel(src, os.path.join(c['directory'], c['file']))
        if source.split('/')[0] not in LIBRARY_DIRS:
            continue
        objs.append((os.path.join(c['directory'], out), source))
    return objs


def strongly_connected(graph):
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def cycles(src, build):
    objs = library_objects(src, build)
    if not objs:
        print('no library objects found under %s (build first)' % build)
        return 1
    defined, uses = {}, {}
    missing = [o for o, _ in objs if not os.path.exists(o)]
    if missing:
        print('missing object %s (build first)' % missing[0])
        return 1
    table = nm([o for o, _ in objs])
    for obj, source in objs:
        uses.setdefault(source, set())
        for sym, kind in table[obj]:
            if kind in ('U', 'w', 'v'):
                uses[source].add(sym)
            else:
                defined.setdefault(sym, set()).add(source)
    graph, why = {}, {}
    for a, syms in uses.items():
        graph.setdefault(a, set())
        for sym in syms:
            for b in defined.get(sym, ()):
                if b != a:
                    graph[a].add(b)
                    why.setdefault((a, b), []).append(sym)
    found = [c for c in strongly_connected(graph) if len(c) > 1]
    for comp in found:
        print('cycle among %d files: %s' % (len(comp), ' '.join(comp)))
        for a in comp:
            for b in sorted(graph[a]):
                if b in comp:
                    syms = sorted(why[(a, b)])
                    more = ' (+%d more)' % (len(syms) - 3) if len(syms) > 3 else ''
                    print('  %s -> %s: %s%s' % (a, b, ', '.join(syms[:3]), more))
    print('%d files of library code, %d edges, %d cycles' %
          (len(graph), sum(len(v) for v in graph.values()), len(found)))
    return 1 if found else 0


def main(argv):
    if len(argv) >= 3 and argv[1] == 'registered':
        return registered(argv[2], argv[3])
    if len(argv) >= 3 and argv[1] == 'lines':
        return lines(argv[2], int(argv[3]) if len(argv) > 3 else 600)
    if len(argv) >= 4 and argv[1] == 'cycles':
        return cycles(argv[2], argv[3])
    sys.stderr.write(__doc__)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv))
