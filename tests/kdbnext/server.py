#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A reference kdb-next server for tests: kdbnext.v1.KV (storage/proto/kdbnext/v1/kv.proto)
served by a real gRPC implementation that is not ours (Debian's python3-grpcio, its asyncio
server with generic handlers), backed by SQLite (in memory by default, or a file that survives
restarts).

It checks bearer tokens (UNAUTHENTICATED otherwise), keeps tenants apart, refuses kdb-next's
preseeded tenant range 1..1000000 (PERMISSION_DENIED), and has knobs for faults:

  --read-latency-ms / --write-latency-ms   added to every Get/Scan, Put/CompareAndSwap/Delete
  --control FILE   a JSON object polled every 10 ms; when its "seq" changes, the server applies
                   it and writes the seq to FILE.ack (and, with "stats": true, its counters to
                   FILE.stats first). Keys:
                     read_latency_ms, write_latency_ms   as the flags
                     stall_ms         every call sleeps this long first (answers past deadlines)
                     unavailable_next the next N calls fail with UNAVAILABLE without touching
                                      storage
                     fail_writes      true: every Put, CompareAndSwap and Delete fails with
                                      UNAVAILABLE without touching storage (reads work)
                     oversize_get     true: Get answers with a 5 MiB value, past the contract's
                                      4 MiB message limit (the client must refuse it)
                     drop             true: stop the gRPC server at once (in-flight calls are
                                      cancelled, connections closed) and start a new one on the
                                      same port
                     down             true: stop serving (connections refused) until false
                     reset_stats      true: zero the counters
  SIGTERM / SIGINT stop it.

The chosen port is written to --port-file (atomically) once serving. Run with /usr/bin/python3.
"""
import argparse
import asyncio
import hmac
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

import grpc

PRESEEDED_MAX = 1000000
KEY_MAX = 511
VALUE_MAX = 1024 * 1024
SCAN_LIMIT_MAX = 1000
SCAN_BYTES_MAX = 3 * 1024 * 1024 + 512 * 1024
MSG_MAX = 4 * 1024 * 1024

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = os.path.join(HERE, '..', '..', 'storage', 'proto', 'kdbnext', 'v1', 'kv.proto')


def load_pb2():
    """Generates kv_pb2 with protoc into a private temporary folder and imports it."""
    out = tempfile.mkdtemp(prefix='kdbnext-pb2-')
    subprocess.run(['protoc', '--python_out=' + out, '--proto_path=' + os.path.dirname(PROTO),
                    os.path.basename(PROTO)], check=True)
    sys.path.insert(0, out)
    import kv_pb2  # noqa: E402
    return kv_pb2


pb = load_pb2()


def now_ms():
    return int(time.time() * 1000)


def sql_tenant(t):
    """uint64 -> SQLite's signed 64-bit integer, order-preserving enough for equality."""
    return t - (1 << 64) if t >= (1 << 63) else t


class Abort(Exception):
    def __init__(self, code, msg):
        super().__init__(msg)
        self.code = code
        self.msg = msg


class Store:
    """The data: one SQLite database, one lock (the server's concurrency is in latency)."""

    def __init__(self, path):
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.lock = threading.Lock()
        # A test server: a file (when given) is for inspection and restarts, not crash safety.
        self.db.execute('PRAGMA journal_mode=WAL' if path != ':memory:' else 'PRAGMA journal_mode=MEMORY')
        self.db.execute('PRAGMA synchronous=OFF')
        self.db.execute('CREATE TABLE IF NOT EXISTS kv (tenant INTEGER NOT NULL, key BLOB NOT NULL,'
                        ' value BLOB NOT NULL, version INTEGER NOT NULL, expires INTEGER NOT NULL,'
                        ' PRIMARY KEY (tenant, key)) WITHOUT ROWID')
        self.db.execute('CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER)')
        row = self.db.execute("SELECT value FROM meta WHERE name='version'").fetchone()
        self.version = row[0] if row else 0

    def _live(self, tenant, key, now):
        return self.db.execute('SELECT value, version, expires FROM kv WHERE tenant=? AND key=?'
                               ' AND (expires=0 OR expires>?)', (tenant, key, now)).fetchone()

    def _write(self, tenant, key, value, ttl_ms, now):
        self.version += 1
        expires = now + ttl_ms if ttl_ms > 0 else 0
        self.db.execute('INSERT OR REPLACE INTO kv VALUES (?,?,?,?,?)',
                        (tenant, key, value, self.version, expires))
        self.db.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?)", (self.version,))
        return self.version, expires

    def get(self, tenant, key):
        with self.lock:
            row = self._live(tenant, key, now_ms())
        if not row:
            raise Abort(grpc.StatusCode.NOT_FOUND, 'key not found')
        return pb.Entry(key=key, value=row[0], version=row[1], expires_at_ms=row[2])

    def put(self, tenant, key, value, ttl_ms):
        with self.lock:
            self.db.execute('BEGIN')
            try:
                r = self._write(tenant, key, value, ttl_ms, now_ms())
                self.db.execute('COMMIT')
            except BaseException:
                self.db.execute('ROLLBACK')
                raise
            return r

    def cas(self, tenant, key, expected, value, ttl_ms):
        with self.lock:
            now = now_ms()
            row = self._live(tenant, key, now)
            current = row[1] if row else 0
            if current != expected:
                raise Abort(grpc.StatusCode.ABORTED,
                            'version conflict: expected %d, current %d' % (expected, current))
            self.db.execute('BEGIN')
            try:
                r = self._write(tenant, key, value, ttl_ms, now)
                self.db.execute('COMMIT')
            except BaseException:
                self.db.execute('ROLLBACK')
                raise
            return r

    def delete(self, tenant, key, expected):
        with self.lock:
            row = self._live(tenant, key, now_ms())
            if not row:
                raise Abort(grpc.StatusCode.NOT_FOUND, 'key not found')
            if expected and row[1] != expected:
                raise Abort(grpc.StatusCode.ABORTED,
                            'version conflict: expected %d, current %d' % (expected, row[1]))
            self.db.execute('DELETE FROM kv WHERE tenant=? AND key=?', (tenant, key))
            return row[1]

    def scan(self, tenant, prefix, start_after, limit):
        lo = max(prefix, start_after)
        op = '>' if start_after >= prefix and start_after else '>='
        q = 'SELECT key, value, version, expires FROM kv WHERE tenant=? AND key %s ?' % op
        args = [tenant, lo]
        hi = prefix_upper(prefix)
        if hi is not None:
            q += ' AND key < ?'
            args.append(hi)
        q += ' AND (expires=0 OR expires>?) ORDER BY key LIMIT ?'
        args += [now_ms(), limit + 1]
        with self.lock:
            rows = self.db.execute(q, args).fetchall()
        entries, size, more = [], 0, False
        for i, (k, v, ver, exp) in enumerate(rows):
            if not k.startswith(prefix) or (start_after and k <= start_after):
                continue
            if len(entries) == limit or (entries and size + len(k) + len(v) + 32 > SCAN_BYTES_MAX):
                more = True
                break
            entries.append(pb.Entry(key=k, value=v, version=ver, expires_at_ms=exp))
            size += len(k) + len(v) + 32
        return entries, more

    def purge(self):
        with self.lock:
            self.db.execute('DELETE FROM kv WHERE expires!=0 AND expires<=?', (now_ms(),))


def prefix_upper(prefix):
    """The smallest key greater than every key starting with prefix, or None."""
    b = bytearray(prefix)
    while b:
        if b[-1] != 0xff:
            b[-1] += 1
            return bytes(b)
        b.pop()
    return None


class Knobs:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.read_latency_ms = args.read_latency_ms
        self.write_latency_ms = args.write_latency_ms
        self.stall_ms = 0
        self.unavailable_next = 0
        self.fail_writes = False
        self.oversize_get = False
        self.reset_stats()

    def reset_stats(self):
        self.calls = {}
        self.inflight = 0
        self.max_inflight = 0
        self.peers = set()
        self.unavailable_sent = 0

    def stats(self):
        with self.lock:
            return {'calls': dict(self.calls), 'inflight': self.inflight,
                    'max_inflight': self.max_inflight,
                    'connections': len(self.peers), 'unavailable_sent': self.unavailable_sent}


class KV:
    """The five methods, as coroutines on one asyncio loop: injected latency is an
    asyncio.sleep, so a thousand calls can wait at once without a thread each."""

    def __init__(self, store, knobs, tokens):
        self.store = store
        self.knobs = knobs
        self.tokens = tokens

    async def _enter(self, name, request, context, write):
        k = self.knobs
        k.calls[name] = k.calls.get(name, 0) + 1
        k.inflight += 1
        k.max_inflight = max(k.max_inflight, k.inflight)
        k.peers.add(context.peer())
        latency = k.write_latency_ms if write else k.read_latency_ms
        unavailable = k.unavailable_next > 0 or (write and k.fail_writes)
        if unavailable:
            k.unavailable_next = max(0, k.unavailable_next - 1)
            k.unavailable_sent += 1
        if k.stall_ms:
            await asyncio.sleep(k.stall_ms / 1000.0)
        auth = ''
        for key, value in context.invocation_metadata() or ():
            if key == 'authorization':
                auth = value
        if not auth.startswith('Bearer ') or not any(
                hmac.compare_digest(auth[7:].encode(), t) for t in self.tokens):
            raise Abort(grpc.StatusCode.UNAUTHENTICATED, 'bad or missing bearer token')
        if unavailable:
            raise Abort(grpc.StatusCode.UNAVAILABLE, 'injected fault: storage unavailable')
        t = request.tenant_id
        if t == 0:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, 'tenant_id is required')
        if t <= PRESEEDED_MAX:
            raise Abort(grpc.StatusCode.PERMISSION_DENIED, 'tenant %d is in the preseeded range' % t)
        if latency:
            await asyncio.sleep(latency / 1000.0)
        return sql_tenant(t)

    def _method(self, name, write, fn):
        async def run(request, context):
            try:
                try:
                    tenant = await self._enter(name, request, context, write)
                    return fn(tenant, request)
                finally:
                    self.knobs.inflight -= 1
            except Abort as a:
                await context.abort(a.code, a.msg)
        return run

    @staticmethod
    def _key(k, what='key'):
        if not 1 <= len(k) <= KEY_MAX:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, '%s length %d out of range' % (what, len(k)))
        return k

    @staticmethod
    def _value(v, ttl):
        if len(v) > VALUE_MAX:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, 'value too large')
        if ttl < 0:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, 'negative ttl_ms')

    def get(self, t, r):
        entry = self.store.get(t, self._key(r.key))
        if self.knobs.oversize_get:
            entry.value = b'x' * (5 * 1024 * 1024)
        return pb.GetResponse(entry=entry)

    def put(self, t, r):
        self._value(r.value, r.ttl_ms)
        v, exp = self.store.put(t, self._key(r.key), r.value, r.ttl_ms)
        return pb.PutResponse(version=v, expires_at_ms=exp)

    def cas(self, t, r):
        self._value(r.value, r.ttl_ms)
        v, exp = self.store.cas(t, self._key(r.key), r.expected_version, r.value, r.ttl_ms)
        return pb.CompareAndSwapResponse(version=v, expires_at_ms=exp)

    def delete(self, t, r):
        return pb.DeleteResponse(deleted_version=self.store.delete(t, self._key(r.key),
                                                                   r.expected_version))

    def scan(self, t, r):
        if len(r.prefix) > KEY_MAX or len(r.start_after) > KEY_MAX:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, 'prefix or start_after too long')
        if not 1 <= r.limit <= SCAN_LIMIT_MAX:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, 'limit out of range 1..1000')
        entries, more = self.store.scan(t, r.prefix, r.start_after, r.limit)
        resp = pb.ScanResponse(entries=entries, more=more)
        if more and entries:
            resp.next_start_after = entries[-1].key
        return resp


def handler(kv):
    def h(name, write, fn, req_cls, resp_cls):
        return grpc.unary_unary_rpc_method_handler(
            kv._method(name, write, fn), request_deserializer=req_cls.FromString,
            response_serializer=resp_cls.SerializeToString)
    return grpc.method_handlers_generic_handler('kdbnext.v1.KV', {
        'Get': h('Get', False, kv.get, pb.GetRequest, pb.GetResponse),
        'Put': h('Put', True, kv.put, pb.PutRequest, pb.PutResponse),
        'CompareAndSwap': h('CompareAndSwap', True, kv.cas, pb.CompareAndSwapRequest,
                            pb.CompareAndSwapResponse),
        'Delete': h('Delete', True, kv.delete, pb.DeleteRequest, pb.DeleteResponse),
        'Scan': h('Scan', False, kv.scan, pb.ScanRequest, pb.ScanResponse),
    })


class Server:
    """The grpc.aio server, restartable on the same port (for 'drop' and 'down')."""

    def __init__(self, args, kv):
        self.args = args
        self.kv = kv
        self.port = args.port
        self.server = None
        self.creds = None
        if args.tls_cert:
            with open(args.tls_cert, 'rb') as f:
                cert = f.read()
            with open(args.tls_key, 'rb') as f:
                key = f.read()
            client_ca = None
            if args.client_ca:
                with open(args.client_ca, 'rb') as f:
                    client_ca = f.read()
            self.creds = grpc.ssl_server_credentials([(key, cert)], root_certificates=client_ca,
                                                     require_client_auth=bool(client_ca))

    async def start(self):
        opts = [('grpc.max_receive_message_length', MSG_MAX),
                ('grpc.max_send_message_length', -1),  # oversize_get breaks the limit on purpose
                ('grpc.so_reuseport', 1)]
        if self.args.max_concurrent_streams:
            opts.append(('grpc.max_concurrent_streams', self.args.max_concurrent_streams))
        addr = '%s:%d' % (self.args.host, self.port)
        port = 0
        for attempt in range(100):
            s = grpc.aio.server(options=opts)
            s.add_generic_rpc_handlers((handler(self.kv),))
            try:
                port = s.add_secure_port(addr, self.creds) if self.creds else s.add_insecure_port(addr)
            except RuntimeError:
                port = 0
            if port:
                break
            await asyncio.sleep(0.05)
        if not port:
            raise SystemExit('server.py: cannot bind %s' % addr)
        self.port = port
        await s.start()
        self.server = s

    async def stop(self):
        if self.server:
            await self.server.stop(None)
            self.server = None


def write_atomic(path, text):
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        f.write(text)
    os.replace(tmp, path)


async def control_loop(path, knobs, srv, store, stop):
    last_seq = None
    last_purge = time.time()
    down = False
    while not stop.is_set():
        await asyncio.sleep(0.01)
        if time.time() - last_purge > 1:
            store.purge()
            last_purge = time.time()
        if not path:
            continue
        try:
            with open(path) as f:
                c = json.load(f)
        except (OSError, ValueError):
            continue
        seq = c.get('seq')
        if seq is None or seq == last_seq:
            continue
        last_seq = seq
        for name in ('read_latency_ms', 'write_latency_ms', 'stall_ms', 'unavailable_next',
                     'fail_writes', 'oversize_get'):
            if name in c:
                setattr(knobs, name, c[name])
        if c.get('reset_stats'):
            knobs.reset_stats()
        if c.get('drop') and not down:
            await srv.stop()
            await srv.start()
        if 'down' in c and c['down'] != down:
            down = c['down']
            if down:
                await srv.stop()
            else:
                await srv.start()
        if c.get('stats'):
            write_atomic(path + '.stats', json.dumps(knobs.stats()))
        write_atomic(path + '.ack', str(seq))


async def serve(args, tokens):
    store = Store(args.db)
    knobs = Knobs(args)
    srv = Server(args, KV(store, knobs, tokens))
    await srv.start()
    if args.port_file:
        write_atomic(args.port_file, '%d\n' % srv.port)
    print('kdbnext test server on %s:%d (%s)' % (args.host, srv.port, 'tls' if args.tls_cert else 'h2c'),
          file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    ctl = asyncio.create_task(control_loop(args.control, knobs, srv, store, stop))
    await stop.wait()
    await ctl
    await srv.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--host', default='127.0.0.1')
    ap.add_argument('--port', type=int, default=0)
    ap.add_argument('--port-file')
    ap.add_argument('--token-file', required=True, help='accepted bearer tokens, one per line')
    ap.add_argument('--tls-cert')
    ap.add_argument('--tls-key')
    ap.add_argument('--client-ca', help='require client certificates signed by this CA')
    ap.add_argument('--db', default=':memory:', help='SQLite file (default: in memory)')
    ap.add_argument('--control')
    ap.add_argument('--read-latency-ms', type=float, default=0)
    ap.add_argument('--write-latency-ms', type=float, default=0)
    ap.add_argument('--max-concurrent-streams', type=int, default=0)
    args = ap.parse_args()
    if bool(args.tls_cert) != bool(args.tls_key):
        ap.error('--tls-cert and --tls-key go together')
    with open(args.token_file, 'rb') as f:
        tokens = [line.strip() for line in f.read().splitlines() if line.strip()]
    if not tokens:
        ap.error('no token in --token-file')
    asyncio.run(serve(args, tokens))


if __name__ == '__main__':
    main()
