"""relaykit.py - what the relay tests share: a seeded random source, a
temporary store filled through the evs tool, evs-relay started and killed,
waiting on conditions with generous bounds (never a sleep as a sync), and
the final check that a receiver's deliveries are the store's events.

The checks, for deliveries [(event id, stream, stream version, body)] in
arrival order and the store's events read back with "evs read":
  - every event of the store arrived at least once;
  - after dedup by id, exactly the store's events (no id the store lacks,
    body fields matching the event: id, subject, position, data);
  - per stream in order: when version v of a stream arrives, every version
    before v of that stream arrived before it (duplicates of older versions
    may come again after a restart; a later version never before an
    earlier one was seen).
"""
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time


def log(*a):
    print(*a, flush=True)


def seeded(name):
    env = os.environ.get('EVS_TEST_SEED')
    seed = int(env) if env else random.SystemRandom().randrange(1 << 31)
    log('%s: seed %d (replay with EVS_TEST_SEED=%d)' % (name, seed, seed))
    return random.Random(seed)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_for(cond, timeout, what, step=0.005):
    """Poll cond() until true; fail after timeout seconds (generous bounds)."""
    end = time.monotonic() + timeout
    while True:
        if cond():
            return
        if time.monotonic() > end:
            raise AssertionError('timed out after %ss waiting for %s' % (timeout, what))
        time.sleep(step)


class Env:
    def __init__(self, name, evs, relay):
        self.evs, self.relay_bin = evs, relay
        self.dir = tempfile.mkdtemp(prefix='evs-%s-' % name)
        self.store = os.path.join(self.dir, 'store')
        self.proc = None
        self.runs = 0
        self.evs_cmd('init')

    def close(self):
        self.stop_relay(signal.SIGKILL)
        if not os.environ.get('EVS_TEST_KEEP'):
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            log('kept', self.dir)

    def evs_cmd(self, *args, stdin=None, check=True):
        r = subprocess.run([self.evs] + list(args) + ['--store', self.store], input=stdin,
                           capture_output=True, text=True, timeout=120)
        if check and r.returncode != 0:
            raise AssertionError('evs %s: exit %d: %s' % (' '.join(args), r.returncode,
                                                          r.stderr))
        return r

    def append(self, stream, datas):
        lines = ''.join(json.dumps({'type': 'Happened', 'data': d}) + '\n' for d in datas)
        self.evs_cmd('append', stream, '-q', stdin=lines)

    def events(self):
        out = self.evs_cmd('read').stdout
        return [json.loads(l) for l in out.splitlines() if l.strip()]

    def head(self):
        return json.loads(self.evs_cmd('head').stdout)['last_position']

    def status(self, sink):
        """The sink's status line; {} before the relay first wrote it."""
        r = self.evs_cmd('relay', 'status', sink, check=False)
        if r.returncode == 1 and 'no relay sink' in r.stderr:
            return {}
        if r.returncode != 0:
            raise AssertionError('evs relay status: exit %d: %s' % (r.returncode, r.stderr))
        return json.loads(r.stdout)

    def write_config(self, text):
        path = os.path.join(self.dir, 'relay.conf')
        with open(path, 'w') as f:
            f.write(text)
        return path

    def start_relay(self, config, extra=()):
        assert self.proc is None
        self.runs += 1
        logf = open(os.path.join(self.dir, 'relay-%d.log' % self.runs), 'w')
        self.proc = subprocess.Popen([self.relay_bin, '--store', self.store, '--config', config,
                                      '--log-level', 'info'] + list(extra),
                                     stdout=logf, stderr=subprocess.STDOUT)
        logf.close()

    def stop_relay(self, sig=signal.SIGTERM, want=None):
        if self.proc is None:
            return None
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=60)
        self.proc = None
        if want is not None and rc != want:
            raise AssertionError('evs-relay exited %d, want %d; log: %s' %
                                 (rc, want, self.last_log()))
        return rc

    def last_log(self):
        with open(os.path.join(self.dir, 'relay-%d.log' % self.runs)) as f:
            return f.read()


def check_deliveries(name, store_events, deliveries):
    """deliveries: [(id, stream, version, body dict)] in arrival order."""
    by_id = {e['id']: e for e in store_events}
    seen = set()
    seen_version = {}
    for i, (eid, stream, version, body) in enumerate(deliveries):
        e = by_id.get(eid)
        if e is None:
            raise AssertionError('%s: delivery %d has id %s the store does not have' %
                                 (name, i, eid))
        if (stream, version) != (e['stream'], e['version']):
            raise AssertionError('%s: delivery %d: %s/%s is %s/%s in the store' %
                                 (name, i, stream, version, e['stream'], e['version']))
        if body is not None:
            if body.get('id') != eid or body.get('subject') != e['stream'] or \
               body.get('position') != str(e['position']) or body.get('data') != e['data']:
                raise AssertionError('%s: delivery %d: body %r does not match event %r' %
                                     (name, i, body, e))
        have = seen_version.get(stream, 0)
        if version > have + 1:
            raise AssertionError('%s: delivery %d: %s version %d arrived before version %d' %
                                 (name, i, stream, version, have + 1))
        seen_version[stream] = max(have, version)
        seen.add(eid)
    missing = [e for e in store_events if e['id'] not in seen]
    if missing:
        raise AssertionError('%s: %d events never delivered, first at position %d' %
                             (name, len(missing), missing[0]['position']))
    log('%s: %d events, %d deliveries (%d duplicates), every event at least once, in order '
        'per stream' % (name, len(store_events), len(deliveries),
                        len(deliveries) - len(store_events)))


class NatsServer:
    """nats-server -js in a temporary directory on a free loopback port;
    ready when its log says so (a condition, not a delay)."""

    def __init__(self, base):
        self.dir = os.path.join(base, 'nats')
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.url = 'nats://127.0.0.1:%d' % self.port
        self.proc = None
        self.starts = 0
        self.start_seconds = []

    def start(self):
        self.starts += 1
        self.log = os.path.join(self.dir, 'server-%d.log' % self.starts)
        t0 = time.monotonic()
        with open(self.log, 'w') as logf:
            self.proc = subprocess.Popen(['nats-server', '-js', '-a', '127.0.0.1', '-p',
                                          str(self.port), '-sd', os.path.join(self.dir, 'js')],
                                         stdout=logf, stderr=subprocess.STDOUT)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError('nats-server exited: ' + open(self.log).read())
            with open(self.log) as f:
                return 'Server is ready' in f.read()
        wait_for(ready, 60, 'nats-server ready')
        self.start_seconds.append(time.monotonic() - t0)
        log('nats-server on port %d ready in %.2f s' % (self.port, self.start_seconds[-1]))

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=60)
            self.proc = None


class RabbitServer:
    """rabbitmq-server (Debian's, run directly as the current user, root in
    CI) with its own node name, ports (AMQP, distribution and a private
    epmd), Mnesia and log directories and Erlang cookie, all in a temporary
    directory; ready when the broker says so and its port accepts."""

    def __init__(self, base):
        self.dir = os.path.join(base, 'rabbit')
        os.makedirs(self.dir, exist_ok=True)
        self.port, self.dist, self.epmd = free_port(), free_port(), free_port()
        self.url = 'amqp://guest:guest@127.0.0.1:%d' % self.port
        with open(os.path.join(self.dir, 'rabbitmq.conf'), 'w') as f:
            f.write('listeners.tcp.default = 127.0.0.1:%d\nloopback_users = none\n' % self.port)
        with open(os.path.join(self.dir, 'enabled_plugins'), 'w') as f:
            f.write('[].\n')
        self.env = dict(os.environ, HOME=self.dir, ERL_EPMD_PORT=str(self.epmd),
                        RABBITMQ_MNESIA_BASE=os.path.join(self.dir, 'mnesia'),
                        RABBITMQ_LOG_BASE=os.path.join(self.dir, 'log'),
                        RABBITMQ_NODENAME='evs%d@localhost' % self.port,
                        RABBITMQ_NODE_IP_ADDRESS='127.0.0.1', RABBITMQ_NODE_PORT=str(self.port),
                        RABBITMQ_DIST_PORT=str(self.dist),
                        RABBITMQ_CONFIG_FILE=os.path.join(self.dir, 'rabbitmq'),
                        RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(self.dir, 'enabled_plugins'),
                        RABBITMQ_PID_FILE=os.path.join(self.dir, 'pid'))
        self.proc = None
        self.starts = 0
        self.start_seconds = []

    def start(self):
        self.starts += 1
        self.log = os.path.join(self.dir, 'server-%d.log' % self.starts)
        t0 = time.monotonic()
        with open(self.log, 'w') as logf:
            self.proc = subprocess.Popen(['/usr/lib/rabbitmq/bin/rabbitmq-server'],
                                         env=self.env, cwd=self.dir, stdout=logf,
                                         stderr=subprocess.STDOUT, start_new_session=True)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError('rabbitmq-server exited: ' + open(self.log).read())
            with open(self.log) as f:
                if 'Starting broker... completed' not in f.read():
                    return False
            with socket.socket() as s:
                return s.connect_ex(('127.0.0.1', self.port)) == 0
        wait_for(ready, 240, 'rabbitmq-server ready', step=0.05)
        self.start_seconds.append(time.monotonic() - t0)
        log('rabbitmq-server on port %d ready in %.1f s' % (self.port, self.start_seconds[-1]))

    def stop(self):
        if self.proc:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=120)
            self.proc = None

    def close(self):
        self.stop()
        # the private epmd the node started (nobody else uses its port)
        subprocess.run(['epmd', '-port', str(self.epmd), '-kill'], env=self.env,
                       capture_output=True, timeout=60)
