/**
 * A fault-injecting proxy for tests against the real API server.
 *
 * Usage:
 *
 *   const proxied = await startClusterProxy();          // test/support/cluster-proxy.ts
 *   const kv = createKV({ bucket, namespace, kubeConfig: proxied.kubeConfig() });
 *   proxied.proxy.inject({ match: { method: 'PATCH' }, fault: { kind: 'lose-answer' } });
 *   await kv.put('k', 'v');       // the server applies the patch, the answer is cut
 *   console.log(proxied.proxy.log); // what was injected, when, on which connection
 *   await proxied.close();
 *
 * What it is: a TCP listener on 127.0.0.1 in front of the API server that
 * TERMINATES TLS, presenting the test cluster's own serving certificate (signed
 * by the cluster CA that every test kubeconfig trusts, valid for 127.0.0.1),
 * and speaks HTTP/2 (or HTTP/1.1, whichever the client negotiates) to the
 * client and HTTP/2 to the server, one upstream connection per client
 * connection. Termination, not pass-through: undici negotiates HTTP/2 with the
 * API server, so one TLS connection carries every call of a process; a
 * pass-through proxy sees only encrypted bytes and could not tell one request
 * from another, so "the answer of the third PATCH" would be out of reach. Since
 * the proxy also owns the client-side TLS byte stream, it can still fault the
 * transport itself: flip a byte inside a TLS record, reset the TCP connection,
 * or let it go silent (half-open) while keeping it open.
 *
 * Faults:
 * - deterministic: {@link FaultProxy.inject} arms a rule that hits the Nth
 *   request matching a method/path (or predicate) from then on; connection
 *   faults ({@link FaultProxy.stallConnections}, {@link FaultProxy.resetConnections},
 *   {@link FaultProxy.corruptNextRecord}) act at once;
 * - seeded random: {@link FaultProxy.randomFaults} draws a fault for every
 *   matching request from a seeded generator (the decisions repeat for the same
 *   seed and the same order of requests; with several clients the order is up
 *   to the scheduler, so a run is replayed in kind, not byte for byte);
 * - {@link FaultProxy.log} records every injected fault.
 *
 * It needs no dependency beyond node:net and node:http2.
 */
import { EventEmitter } from 'node:events';
import type * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import type * as tls from 'node:tls';

/** What to do to a request (or its connection). */
export type Fault =
  /**
   * Forward the request, wait for the server's complete answer (so the server
   * has applied it), then cut: `connection` (default) resets the client's TCP
   * connection, failing every other call in flight on it too, as a broken
   * network does; `stream` resets only this HTTP/2 stream (RST_STREAM).
   * Not for watches (their answer never completes).
   */
  | { kind: 'lose-answer'; cut?: 'connection' | 'stream' }
  /** Reset the client's TCP connection before the request is forwarded: the server never sees it. */
  | { kind: 'reset' }
  /**
   * The connection goes silent from this request on, in both directions, and
   * stays open: a half-open connection (a NAT or load balancer that forgot it).
   * Nothing is forwarded; HTTP/2 PINGs go unanswered.
   */
  | { kind: 'stall' }
  /** Forward the request but never answer it; the connection stays healthy (PINGs are answered). */
  | { kind: 'hold' }
  /**
   * Flip one byte inside a TLS record. `to-client` (default): the next record
   * of the answer (forwarded first), so the client fails its MAC check
   * (`ERR_SSL_DECRYPTION_FAILED_OR_BAD_RECORD_MAC`). `to-server`: the next
   * record the client sends on this connection once the answer is out; the
   * proxy's TLS end fails it and sends the client a bad_record_mac alert
   * (`ERR_SSL_SSL/TLS_ALERT_BAD_RECORD_MAC`; `ERR_SSL_SSLV3_...` on Node 22).
   */
  | { kind: 'corrupt'; direction?: 'to-client' | 'to-server' }
  /** Forward the request after this delay. */
  | { kind: 'delay'; ms: number }
  /** Answer with this status (and headers, body) without forwarding, as an overloaded server or load balancer would. */
  | { kind: 'respond'; status: number; headers?: Record<string, string>; body?: string }
  /**
   * For a watch: pass `afterEvents` of the server's events (default 0), then
   * end the watch with the ERROR event a server sends when the watch's
   * resourceVersion has been compacted away (Status 410 Expired), as if the
   * watch fell behind compaction.
   */
  | { kind: 'expire-watch'; afterEvents?: number };

/** What a request looks like to a matcher. */
export interface ProxiedRequest {
  method: string;
  /** Path with query, as sent. */
  path: string;
  /** True for `?watch=true` requests. */
  watch: boolean;
  /** The client connection's number (1, 2, ...). */
  connection: number;
}

/** Which requests a rule applies to: every field given must match. */
export interface RequestMatch {
  /** HTTP method(s), upper case. */
  method?: string | readonly string[];
  /** A substring of the path (with query), or a pattern. */
  path?: string | RegExp;
  /** Watches only (true) or no watches (false). Default: either. */
  watch?: boolean;
}

/** A rule armed by {@link FaultProxy.inject}. */
export interface FaultRule {
  match?: RequestMatch | ((request: ProxiedRequest) => boolean);
  fault: Fault;
  /** Hit the nth matching request from now on (1 = the next one; default 1). */
  nth?: number;
  /** How many matching requests, from the nth on, get the fault (default 1). */
  times?: number;
}

/** Rates of {@link FaultProxy.randomFaults}: the probability per matching request (they add up to at most 1). */
export interface RandomFaultRates {
  /** Forward, then cut the connection after the server answered. */
  loseAnswer?: number;
  /** Forward, then reset only the stream after the server answered. */
  loseAnswerStream?: number;
  /** Reset the connection before forwarding. */
  reset?: number;
  /** Flip a byte in the next TLS record of the answer. */
  corrupt?: number;
  /** Delay forwarding by up to `maxDelayMs`. */
  delay?: number;
}

/** Options of {@link FaultProxy.randomFaults}. */
export interface RandomFaultOptions {
  seed: number;
  rates: RandomFaultRates;
  /** Which requests may be hit (default: every request except watches). */
  match?: RequestMatch | ((request: ProxiedRequest) => boolean);
  /** Longest delay of the `delay` fault (default 200 ms). */
  maxDelayMs?: number;
}

/** One injected fault. */
export interface FaultLogEntry {
  /** Milliseconds since the proxy started. */
  atMs: number;
  /** The client connection's number. */
  connection: number;
  fault: Fault['kind'] | 'stall-connection' | 'reset-connection' | 'corrupt-record';
  /** `METHOD path` of the request it hit, if any. */
  request?: string;
  /** Status the server answered before the answer was lost. */
  status?: number;
  /** Other requests in flight on the connection when it was cut (they fail too). */
  alsoInFlight?: number;
  /** `random` when drawn by {@link FaultProxy.randomFaults}. */
  source: 'rule' | 'random' | 'direct';
}

/** Options of {@link startFaultProxy}. */
export interface FaultProxyOptions {
  /** The API server, e.g. `https://127.0.0.1:6443`. */
  upstream: string;
  /** CA bundle that verifies the upstream server. */
  upstreamCa: string | Buffer;
  /** Certificate and key presented to clients (PEM). */
  cert: string | Buffer;
  key: string | Buffer;
}

/** A client connection, from the TCP socket to the HTTP layer. */
interface Connection {
  id: number;
  /** The client's TCP connection. */
  raw: net.Socket;
  /** Our TCP connection to the proxy's own TLS and HTTP server (the bytes pass through us on the way). */
  hop: net.Socket;
  upstream?: http2.ClientHttp2Session;
  stalled: boolean;
  /** The TLS records sent to the client and received from it: where they start, which to corrupt. */
  toClient: RecordStream;
  toServer: RecordStream;
  inFlight: number;
  closed: boolean;
}

/** The event a server ends a watch with when its resourceVersion is too old (compacted away). */
const WATCH_EXPIRED = {
  type: 'ERROR',
  object: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'too old resource version: 1 (2)', reason: 'Expired', code: 410 },
};

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host', 'te', 'http2-settings']);
const TLS_APPLICATION_DATA = 23;

/**
 * One direction of a TLS byte stream: tracks where records start (5-byte
 * header: type, version, length) and flips a byte inside the next
 * application-data record when asked.
 */
class RecordStream {
  /** Flip a byte in the next application-data record. */
  corruptNext = false;
  private readonly header = Buffer.alloc(5);
  private headerBytes = 0;
  private remaining = 0;
  private type = 0;

  /** The chunk as it goes on (a corrupted copy when a byte was flipped). */
  pass(chunk: Buffer): Buffer {
    let out: Buffer | undefined;
    let i = 0;
    while (i < chunk.length) {
      if (this.remaining === 0) {
        const take = Math.min(5 - this.headerBytes, chunk.length - i);
        chunk.copy(this.header, this.headerBytes, i, i + take);
        this.headerBytes += take;
        i += take;
        if (this.headerBytes === 5) {
          this.type = this.header[0]!;
          this.remaining = this.header.readUInt16BE(3);
          this.headerBytes = 0;
        }
        continue;
      }
      const take = Math.min(this.remaining, chunk.length - i);
      if (this.corruptNext && this.type === TLS_APPLICATION_DATA) {
        // The last byte of the record seen in this chunk: inside the ciphertext or its authentication tag.
        out ??= Buffer.from(chunk);
        const at = i + take - 1;
        out[at] = out[at]! ^ 0xff;
        this.corruptNext = false;
      }
      this.remaining -= take;
      i += take;
    }
    return out ?? chunk;
  }
}

/** A small seeded generator (mulberry32): the same seed gives the same sequence. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function matches(match: FaultRule['match'], request: ProxiedRequest): boolean {
  if (match === undefined) return true;
  if (typeof match === 'function') return match(request);
  if (match.method !== undefined) {
    const methods = typeof match.method === 'string' ? [match.method] : match.method;
    if (!methods.includes(request.method)) return false;
  }
  if (match.path !== undefined) {
    if (typeof match.path === 'string' ? !request.path.includes(match.path) : !match.path.test(request.path)) return false;
  }
  if (match.watch !== undefined && match.watch !== request.watch) return false;
  return true;
}

/** The proxy. Create it with {@link startFaultProxy}. */
export class FaultProxy extends EventEmitter {
  /** Every fault injected so far, in order. */
  readonly log: FaultLogEntry[] = [];
  /** Client connections accepted so far. */
  connectionsOpened = 0;
  /** Requests seen so far. */
  requests = 0;

  private readonly server: net.Server;
  /**
   * The TLS and HTTP server the client's bytes reach through a second TCP hop on
   * 127.0.0.1. A real socket under TLS, not an in-process stream: node:http2 over
   * TLS over a JavaScript stream crashed (native assertions, segfaults) when
   * connections were cut.
   */
  private readonly inner: http2.Http2SecureServer;
  /** Connections by the local port of their hop (the inner server sees it as the remote port). */
  private readonly byHopPort = new Map<number, Connection>();
  /** The inner server's TCP sockets, to end at close(). */
  private readonly innerSockets = new Set<net.Socket>();
  private readonly upstreamUrl: URL;
  private readonly upstreamCa: string | Buffer;
  private readonly connections = new Set<Connection>();
  private rules: Array<FaultRule & { seen: number; left: number }> = [];
  private random: (RandomFaultOptions & { next: () => number }) | undefined;
  private readonly started = Date.now();

  /** @internal use {@link startFaultProxy} */
  constructor(options: FaultProxyOptions) {
    super();
    this.upstreamUrl = new URL(options.upstream);
    this.upstreamCa = options.upstreamCa;
    this.server = net.createServer((raw) => this.accept(raw));
    this.inner = http2.createSecureServer({ cert: options.cert, key: options.key, allowHTTP1: true }, (req, res) => {
      const port = (req as { stream?: http2.ServerHttp2Stream }).stream?.session?.socket.remotePort ?? req.socket.remotePort;
      const conn = port === undefined ? undefined : this.byHopPort.get(port);
      if (conn) void this.handle(conn, req, res);
      else res.socket?.destroy();
    });
    // A TLS or HTTP/2 failure of one connection (a corrupted record, a reset) ends that connection only.
    this.inner.on('tlsClientError', () => undefined);
    this.inner.on('sessionError', () => undefined);
    this.inner.on('secureConnection', (socket: tls.TLSSocket) => socket.on('error', () => undefined));
    this.inner.on('connection', (socket: net.Socket) => {
      this.innerSockets.add(socket);
      socket.on('close', () => this.innerSockets.delete(socket));
    });
  }

  /** @internal */
  async listen(): Promise<void> {
    for (const server of [this.inner, this.server]) {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: '127.0.0.1', port: 0 }, () => resolve());
      });
    }
  }

  /** The proxy's URL, `https://127.0.0.1:PORT`. */
  get url(): string {
    return `https://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  /** Client connections open now. */
  get openConnections(): number {
    return this.connections.size;
  }

  /** True while client connection number `id` is open (a stalled one stays open). */
  isOpen(id: number): boolean {
    return [...this.connections].some((conn) => conn.id === id);
  }

  /** Arms a rule: the nth matching request from now on (and `times - 1` after it) gets the fault. */
  inject(rule: FaultRule): void {
    this.rules.push({ ...rule, seen: 0, left: rule.times ?? 1 });
  }

  /** Draws a fault for every matching request from a seeded generator, until {@link clearFaults}. */
  randomFaults(options: RandomFaultOptions): void {
    this.random = { ...options, next: seededRandom(options.seed) };
  }

  /** Disarms every rule and the random mode (connection states stay as they are). */
  clearFaults(): void {
    this.rules = [];
    this.random = undefined;
  }

  /** Faults injected so far, by kind. */
  counts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const entry of this.log) counts[entry.fault] = (counts[entry.fault] ?? 0) + 1;
    return counts;
  }

  /** Every open client connection goes silent (half-open) and stays open. New connections are served normally. */
  stallConnections(): number {
    for (const conn of this.connections) this.stall(conn, 'direct');
    return this.connections.size;
  }

  /** Resets every open client connection (TCP RST). */
  resetConnections(): number {
    const count = this.connections.size;
    for (const conn of [...this.connections]) {
      this.note(conn, { fault: 'reset-connection', source: 'direct', alsoInFlight: conn.inFlight });
      this.destroy(conn, true);
    }
    return count;
  }

  /** Flips one byte in the next TLS record sent on every open client connection (by the proxy, or by the client with `to-server`). */
  corruptNextRecord(direction: 'to-client' | 'to-server' = 'to-client'): number {
    for (const conn of this.connections) {
      (direction === 'to-client' ? conn.toClient : conn.toServer).corruptNext = true;
      this.note(conn, { fault: 'corrupt-record', source: 'direct' });
    }
    return this.connections.size;
  }

  /** Stops listening and destroys every connection. */
  async close(): Promise<void> {
    this.clearFaults();
    for (const conn of [...this.connections]) this.destroy(conn, true);
    for (const socket of this.innerSockets) socket.destroy();
    await Promise.all([this.server, this.inner].map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }

  private note(conn: Connection, entry: Omit<FaultLogEntry, 'atMs' | 'connection'>): void {
    const full = { atMs: Date.now() - this.started, connection: conn.id, ...entry };
    this.log.push(full);
    this.emit('fault', full);
  }

  // ---------------------------------------------------------------- the TCP and TLS layer

  private accept(raw: net.Socket): void {
    const hop = net.connect({ host: '127.0.0.1', port: (this.inner.address() as net.AddressInfo).port });
    const conn: Connection = {
      id: ++this.connectionsOpened,
      raw,
      hop,
      stalled: false,
      toClient: new RecordStream(),
      toServer: new RecordStream(),
      inFlight: 0,
      closed: false,
    };
    this.connections.add(conn);
    raw.setNoDelay(true);
    hop.setNoDelay(true);
    // Registered before any request can arrive: the TLS handshake needs the hop to pass bytes first.
    hop.on('connect', () => this.byHopPort.set(hop.localPort!, conn));
    raw.on('data', (chunk: Buffer) => {
      if (!conn.stalled) hop.write(conn.toServer.pass(chunk));
    });
    hop.on('data', (chunk: Buffer) => {
      if (!conn.stalled && !raw.destroyed) raw.write(conn.toClient.pass(chunk));
    });
    raw.on('end', () => {
      if (!conn.stalled) hop.end();
    });
    hop.on('end', () => {
      if (!conn.stalled) raw.end();
    });
    for (const socket of [raw, hop]) {
      socket.on('close', () => this.destroy(conn, false));
      socket.on('error', () => this.destroy(conn, false));
    }
  }

  private stall(conn: Connection, source: FaultLogEntry['source'], request?: string): void {
    if (conn.stalled) return;
    conn.stalled = true;
    this.note(conn, { fault: request === undefined ? 'stall-connection' : 'stall', source, request, alsoInFlight: conn.inFlight });
    // Upstream streams of a silent connection stay open on the server until the client gives up.
  }

  private destroy(conn: Connection, reset: boolean): void {
    if (conn.closed) return;
    conn.closed = true;
    this.connections.delete(conn);
    if (conn.hop.localPort !== undefined) this.byHopPort.delete(conn.hop.localPort);
    // Both TCP connections end as a broken network ends them; the TLS and HTTP/2 ends close by themselves.
    for (const socket of [conn.raw, conn.hop]) {
      if (socket.destroyed) continue;
      if (reset) socket.resetAndDestroy();
      else socket.destroySoon(); // after what is written (a TLS alert, say) has gone out
    }
    // Not from inside one of its own stream's callbacks (a lost answer is cut on the upstream
    // stream's 'end'): destroying the session there crashed Node 22's http2 (a native assertion).
    const upstream = conn.upstream;
    if (upstream) setImmediate(() => upstream.destroy());
  }

  // ---------------------------------------------------------------- the HTTP layer

  private upstreamSession(conn: Connection): http2.ClientHttp2Session {
    if (conn.upstream && !conn.upstream.closed && !conn.upstream.destroyed) return conn.upstream;
    const session = http2.connect(this.upstreamUrl.origin, { ca: this.upstreamCa });
    // The server went away (a restart): the client sees its connection break, as it would without the proxy.
    session.on('error', () => this.destroy(conn, true));
    session.on('goaway', () => this.destroy(conn, false));
    session.on('close', () => {
      if (conn.upstream === session) this.destroy(conn, false);
    });
    conn.upstream = session;
    return session;
  }

  /** Picks the fault for a request: an armed rule first, then the random mode. */
  private decide(request: ProxiedRequest): { fault: Fault; source: FaultLogEntry['source'] } | undefined {
    // Every armed rule counts every request it matches; the first one due hits it.
    let due: (typeof this.rules)[number] | undefined;
    for (const rule of this.rules) {
      if (rule.left <= 0 || !matches(rule.match, request)) continue;
      rule.seen += 1;
      if (due === undefined && rule.seen >= (rule.nth ?? 1)) due = rule;
    }
    if (due) {
      due.left -= 1;
      this.rules = this.rules.filter((r) => r.left > 0);
      return { fault: due.fault, source: 'rule' };
    }
    const random = this.random;
    if (random && matches(random.match ?? { watch: false }, request)) {
      const draw = random.next();
      const rates = random.rates;
      let edge = 0;
      const pick: Array<[number | undefined, () => Fault]> = [
        [rates.loseAnswer, () => ({ kind: 'lose-answer' })],
        [rates.loseAnswerStream, () => ({ kind: 'lose-answer', cut: 'stream' })],
        [rates.reset, () => ({ kind: 'reset' })],
        [rates.corrupt, () => ({ kind: 'corrupt', direction: random.next() < 0.5 ? 'to-client' : 'to-server' })],
        [rates.delay, () => ({ kind: 'delay', ms: Math.floor(random.next() * (random.maxDelayMs ?? 200)) })],
      ];
      for (const [rate, make] of pick) {
        edge += rate ?? 0;
        if (draw < edge) return { fault: make(), source: 'random' };
      }
    }
    return undefined;
  }

  private async handle(
    conn: Connection,
    req: http.IncomingMessage | http2.Http2ServerRequest,
    res: http.ServerResponse | http2.Http2ServerResponse,
  ): Promise<void> {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const request: ProxiedRequest = { method, path, watch: /[?&]watch=(true|1)\b/.test(path), connection: conn.id };
    const line = `${method} ${path}`;
    this.requests += 1;
    const decision = conn.stalled ? undefined : this.decide(request);
    const fault = decision?.fault;
    const note = (entry: Omit<FaultLogEntry, 'atMs' | 'connection' | 'source' | 'request'>): void =>
      this.note(conn, { ...entry, request: line, source: decision!.source });

    if (conn.stalled) return; // silent: never answered
    if (fault?.kind === 'stall') {
      this.stall(conn, decision!.source, line);
      return;
    }
    if (fault?.kind === 'reset') {
      note({ fault: 'reset', alsoInFlight: conn.inFlight });
      this.destroy(conn, true);
      return;
    }
    if (fault?.kind === 'respond') {
      note({ fault: 'respond', status: fault.status });
      req.resume();
      (res as http.ServerResponse).writeHead(fault.status, { 'content-type': 'application/json', ...fault.headers });
      res.end(fault.body ?? '');
      return;
    }
    if (fault?.kind === 'delay') {
      note({ fault: 'delay' });
      await new Promise((resolve) => setTimeout(resolve, fault.ms));
      if (conn.closed || conn.stalled) return;
    }

    // Forward.
    const headers: http2.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (name.startsWith(':') || HOP_BY_HOP.has(name) || value === undefined) continue;
      headers[name] = value;
    }
    headers[':method'] = method;
    headers[':path'] = path;
    headers[':authority'] = this.upstreamUrl.host;
    headers[':scheme'] = 'https';
    let upstream: http2.ClientHttp2Stream;
    try {
      upstream = this.upstreamSession(conn).request(headers, { endStream: method === 'GET' || method === 'HEAD' });
    } catch {
      this.destroy(conn, true);
      return;
    }
    conn.inFlight += 1;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      conn.inFlight -= 1;
    };
    upstream.on('close', finish);
    res.on('close', () => {
      finish();
      if (!upstream.destroyed) upstream.close(http2.constants.NGHTTP2_CANCEL);
    });
    if (!(method === 'GET' || method === 'HEAD')) req.pipe(upstream);
    upstream.on('error', () => {
      // The server reset this stream or went away: the client's stream breaks too.
      if ('stream' in req) req.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      else this.destroy(conn, false);
    });
    upstream.on('response', (upstreamHeaders) => {
      const status = Number(upstreamHeaders[':status']);
      const out: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(upstreamHeaders)) {
        if (name.startsWith(':') || HOP_BY_HOP.has(name) || value === undefined) continue;
        out[name] = value as string | string[];
      }
      if (fault?.kind === 'hold') {
        note({ fault: 'hold', status });
        upstream.resume();
        return;
      }
      if (fault?.kind === 'lose-answer') {
        // Let the server finish its answer (it has applied the request), then cut.
        upstream.resume();
        upstream.on('end', () => {
          note({ fault: 'lose-answer', status, alsoInFlight: conn.inFlight - 1 });
          if (fault.cut === 'stream' && 'stream' in req) req.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
          else this.destroy(conn, true);
        });
        return;
      }
      if (fault?.kind === 'expire-watch' && status === 200) {
        (res as http.ServerResponse).writeHead(status, out);
        let passed = 0;
        let buffer = '';
        const expire = (): void => {
          note({ fault: 'expire-watch', status: 410 });
          res.end(`${JSON.stringify(WATCH_EXPIRED)}\n`);
          upstream.close(http2.constants.NGHTTP2_CANCEL);
        };
        if ((fault.afterEvents ?? 0) === 0) {
          expire();
          return;
        }
        upstream.on('data', (chunk: Buffer) => {
          if (res.writableEnded) return;
          buffer += chunk.toString('utf8');
          for (let newline = buffer.indexOf('\n'); newline >= 0; newline = buffer.indexOf('\n')) {
            (res as http.ServerResponse).write(buffer.slice(0, newline + 1));
            buffer = buffer.slice(newline + 1);
            if (++passed >= fault.afterEvents!) {
              expire();
              return;
            }
          }
        });
        upstream.on('end', () => {
          if (!res.writableEnded) res.end(buffer);
        });
        return;
      }
      if (fault?.kind === 'corrupt') {
        note({ fault: 'corrupt', status });
        // To the client: a record of this answer. From the client: its next record once this answer
        // is out (armed earlier, it could hit a record sent before the answer, e.g. a SETTINGS ack).
        if (fault.direction === 'to-server') res.on('finish', () => (conn.toServer.corruptNext = true));
        else conn.toClient.corruptNext = true;
      }
      if (res.headersSent || conn.closed) return;
      (res as http.ServerResponse).writeHead(status, out);
      upstream.pipe(res as NodeJS.WritableStream);
    });
  }
}

/** Starts a proxy on 127.0.0.1 (a free port) in front of `options.upstream`. */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const proxy = new FaultProxy(options);
  await proxy.listen();
  return proxy;
}
