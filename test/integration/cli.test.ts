// The k8s-kv command-line tool, run as an OS process (Node strips the types of
// packages/core/src/cli.ts) against the real API server.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createClientNodeApi, createKV, LABEL_BUCKET, type KV } from '@k8s-kv/core';
import { adminKubeConfig, createTestNamespace, kubeconfigPath, type TestNamespace } from '../setup/cluster.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(ROOT, 'packages', 'core', 'src', 'cli.ts');
const README = join(ROOT, 'packages', 'core', 'README.md');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'packages', 'core', 'package.json'), 'utf8')) as { version: string }).version;

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  /** stdout as bytes. */
  out: Buffer;
  stderr: string;
}

interface RunOptions {
  /** Written to stdin, which is then closed (stdin is always closed). */
  input?: string | Uint8Array;
  /** Kubeconfig of this test user (default admin); null passes no --kubeconfig. */
  user?: 'admin' | 'alice' | null;
  /** Namespace for -n; null passes no -n. Default: the file's namespace. */
  namespace?: string | null;
  cwd?: string;
  /** The process must exit by itself within this time (default 60 s). */
  timeoutMs?: number;
}

interface Running {
  child: ChildProcessWithoutNullStreams;
  stdout: () => string;
  stderr: () => string;
  result: Promise<Result>;
}

let ns: TestNamespace;

function startCli(args: string[], options: RunOptions = {}): Running {
  const globals: string[] = [];
  if (options.user !== null) globals.push('--kubeconfig', kubeconfigPath(options.user ?? 'admin'));
  const namespace = options.namespace === undefined ? ns.name : options.namespace;
  if (namespace !== null) globals.push('-n', namespace);
  const child = spawn(process.execPath, ['--conditions=source', CLI, ...globals, ...args], {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, KUBECONFIG: '/nonexistent/kubeconfig', K8S_KV_DEBUG: '' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const out: Buffer[] = [];
  let err = '';
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin.on('error', () => {});
  child.stdin.end(options.input ?? '');
  const result = new Promise<Result>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`k8s-kv ${args.join(' ')} did not exit within ${options.timeoutMs ?? 60_000} ms; stderr: ${err}`));
    }, options.timeoutMs ?? 60_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const bytes = Buffer.concat(out);
      resolve({ code, signal, stdout: bytes.toString('utf8'), out: bytes, stderr: err });
    });
  });
  return { child, stdout: () => Buffer.concat(out).toString('utf8'), stderr: () => err, result };
}

function cli(args: string[], options?: RunOptions): Promise<Result> {
  return startCli(args, options).result;
}

function openKV(bucket: string, namespace = ns.name, app?: string): KV {
  return createKV({ bucket, namespace, kubeConfig: adminKubeConfig(), cache: false, ...(app ? { app } : {}) });
}

const tmp = mkdtempSync(join(tmpdir(), 'k8s-kv-cli-'));

beforeAll(async () => {
  ns = await createTestNamespace('cli');
});
afterAll(async () => {
  await ns?.cleanup();
  rmSync(tmp, { recursive: true, force: true });
});

describe('help, version and usage errors (exit code 2)', () => {
  it('prints help for the tool and for each command, and the version', async () => {
    const help = await cli(['--help'], { user: null, namespace: null });
    expect(help.code).toBe(0);
    for (const command of ['buckets', 'get', 'put', 'delete', 'keys', 'list', 'stats', 'clear', 'export', 'import', 'watch', 'teardown']) {
      expect(help.stdout).toContain(`  ${command}`);
      const own = await cli([command, '--help'], { user: null, namespace: null });
      expect(own.code, command).toBe(0);
      expect(own.stdout).toMatch(new RegExp(`^Usage: k8s-kv ${command}`));
      expect(own.stdout).toContain('--kubeconfig <file>');
    }
    expect((await cli(['help', 'put'], { user: null, namespace: null })).stdout).toContain('--ttl <duration>');
    expect((await cli([], { user: null, namespace: null })).stdout).toContain('Usage: k8s-kv <command>');
    const version = await cli(['--version'], { user: null, namespace: null });
    expect(version).toMatchObject({ code: 0, stdout: `${VERSION}\n` });
  });

  it.each([
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['get', 'b'], /missing required argument 'key'/],
    [['get'], /missing required argument 'bucket'/],
    [['get', 'b', 'k', 'extra'], /too many arguments for 'get'\. Expected 2 arguments but got 3/],
    [['delete', 'b'], /missing required argument 'keys'/],
    [['get', 'b', 'k', '--bogus'], /unknown option '--bogus'/],
    [['get', 'b', '-x'], /unknown option '-x' \(put -- before a key or value that starts with "-"\)/],
    [['get', 'b', 'k', '--yes'], /unknown option '--yes' for "get" \(--yes is an option of "clear", "teardown"\)/],
    [['put', 'b', 'k', 'v', '--ttl', '10'], /invalid --ttl "10": use a number with a unit/],
    [['put', 'b', 'k', 'v', '--ttl', 'soon'], /invalid --ttl "soon"/],
    [['put', 'b', 'k', 'v', '--ttl', '-5s'], /invalid --ttl "-5s": a duration cannot be negative; give a positive one/],
    [['put', 'b', 'k', 'v', '--file', 'f'], /either as VALUE or with --file/],
    [['put', 'b', 'k', '--ttl'], /option '--ttl <duration>' argument missing/],
    [['get', 'b', 'k', '-o', 'xml'], /Allowed choices are json, yaml/],
    [['get', 'b', 'k', '--timeout', '5'], /invalid --timeout "5": use a number with a unit/],
    [['clear', 'b'], /"clear" deletes every key of bucket "b".*add --yes/],
    [['teardown', 'b'], /"teardown" deletes bucket "b".*add --yes/],
    [['get', 'Not_A_Bucket', 'k'], /Invalid bucket name "Not_A_Bucket"/],
    [['get', 'b', 'k', '-n', 'Bad_NS'], /Invalid namespace "Bad_NS"/],
    [['get', 'b', 'k', '--context', 'no-such-context'], /Context "no-such-context" is not in the kubeconfig; it has: /],
  ])('k8s-kv %j exits with 2', async (args, message) => {
    const run = await cli(args);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^k8s-kv: /);
    expect(run.stderr).toMatch(message);
  });
});

describe.concurrent('commands against the API server', () => {
  it('put and get: text, stdin (- and omitted), --file, bytes, --binary, --json, --ttl', async ({ expect }) => {
    const started = Date.now();
    expect(await cli(['put', 'pg', 'greeting', 'hello world'])).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(await cli(['get', 'pg', 'greeting'])).toMatchObject({ code: 0, stdout: 'hello world', stderr: '' });

    expect((await cli(['put', 'pg', 'from-stdin', '-'], { input: 'line 1\nline 2\n' })).code).toBe(0);
    expect((await cli(['put', 'pg', 'omitted'], { input: '{"a":1}' })).code).toBe(0);
    const bytes = new Uint8Array([0, 255, 1, 128, 10, 13]);
    expect((await cli(['put', 'pg', 'bytes'], { input: bytes })).code).toBe(0);
    const file = join(tmp, 'value.txt');
    writeFileSync(file, 'from a file');
    expect((await cli(['put', 'pg', 'file', '--file', file])).code).toBe(0);
    expect((await cli(['put', 'pg', 'forced-binary', '--binary'], { input: 'looks like text' })).code).toBe(0);

    expect((await cli(['get', 'pg', 'from-stdin'])).stdout).toBe('line 1\nline 2\n');
    expect((await cli(['get', 'pg', 'omitted'])).stdout).toBe('{"a":1}');
    expect([...(await cli(['get', 'pg', 'bytes'])).out]).toEqual([...bytes]);
    expect((await cli(['get', 'pg', 'file'])).stdout).toBe('from a file');

    const kv = openKV('pg');
    try {
      expect((await kv.getEntry('omitted'))?.text).toBe(true);
      expect((await kv.getEntry('bytes'))?.text).toBe(false);
      expect((await kv.getEntry('forced-binary'))?.text).toBe(false);
      expect(await kv.getText('forced-binary')).toBe('looks like text');
    } finally {
      await kv.close();
    }

    const text = JSON.parse((await cli(['get', 'pg', 'greeting', '--json'])).stdout) as Record<string, unknown>;
    expect(text).toMatchObject({ key: 'greeting', value: 'hello world', text: true, expiresAt: null });
    expect(Date.parse(text.modifiedAt as string)).toBeGreaterThanOrEqual(started - 1000);
    expect(Date.parse(text.modifiedAt as string)).toBeLessThanOrEqual(Date.now());
    expect(text.size).toBeGreaterThan(11);
    const binary = JSON.parse((await cli(['get', 'pg', 'bytes', '--json'])).stdout) as Record<string, unknown>;
    expect(binary).toMatchObject({ key: 'bytes', value: Buffer.from(bytes).toString('base64'), text: false });

    const before = Date.now();
    const put = await cli(['put', 'pg', 'short-lived', 'x', '--ttl', '10m', '--json']);
    expect(put.code).toBe(0);
    const expiresAt = Date.parse((JSON.parse(put.stdout) as { expiresAt: string }).expiresAt);
    expect(expiresAt).toBeGreaterThanOrEqual(before + 600_000 - 1000);
    expect(expiresAt).toBeLessThan(Date.now() + 600_000 + 1000);

    expect((await cli(['put', 'pg', 'blink', 'x', '--ttl', '300ms'])).code).toBe(0);
    await new Promise((r) => setTimeout(r, 600));
    expect((await cli(['get', 'pg', 'blink'])).code).toBe(1);
  });

  it('get of a missing key exits with 1 and says so on stderr', async ({ expect }) => {
    expect((await cli(['put', 'missing', 'there', 'x'])).code).toBe(0);
    const run = await cli(['get', 'missing', 'not-there']);
    expect(run).toMatchObject({ code: 1, stdout: '' });
    expect(run.stderr).toBe(`k8s-kv: key "not-there" not found in bucket "missing" in namespace "${ns.name}"\n`);
    const json = await cli(['get', 'missing', 'not-there', '--json']);
    expect(json).toMatchObject({ code: 1, stdout: '' });
    // A bucket that does not exist: it says so.
    expect(await cli(['get', 'no-such-bucket', 'k'])).toMatchObject({
      code: 1,
      stderr: `k8s-kv: bucket "no-such-bucket" in namespace "${ns.name}" does not exist\nk8s-kv: list the buckets with "k8s-kv buckets" (-A for every namespace)\n`,
    });
  });

  it('global options after the command and --context work like before it', async ({ expect }) => {
    expect((await cli(['put', 'anywhere', 'k', 'v'])).code).toBe(0);
    const context = adminKubeConfig().getCurrentContext();
    const run = await cli(['get', 'anywhere', 'k', '--context', context, '-n', ns.name, '--kubeconfig', kubeconfigPath()], { user: null, namespace: null });
    expect(run).toMatchObject({ code: 0, stdout: 'v' });
    const dashDash = await cli(['put', 'anywhere', '--', '-dash-key', '-dash-value']);
    expect(dashDash.code).toBe(0);
    expect((await cli(['get', 'anywhere', '--', '-dash-key'])).stdout).toBe('-dash-value');
  });

  it('--timeout bounds the retries against an API server that cannot be reached', async ({ expect }) => {
    // A port on 127.0.0.1 that nothing listens on.
    const { createServer } = await import('node:net');
    const port = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
    });
    const kubeconfig = join(tmp, `unreachable-${port}.yaml`);
    writeFileSync(
      kubeconfig,
      `apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:${port}\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: x\n  context: {cluster: c, user: u, namespace: default}\ncurrent-context: x\n`,
    );
    const started = Date.now();
    const run = await cli(['get', 'b', 'k', '--timeout', '1500ms', '--kubeconfig', kubeconfig], { user: null, namespace: null, timeoutMs: 20_000 });
    const elapsed = Date.now() - started;
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /^k8s-kv: The API server at https:\/\/127\.0\.0\.1:\d+ \(kube context "x"\) could not be reached for "get" configmaps: .*ECONNREFUSED/,
    );
    // Well under the 30 s default (process start included); not a timing assertion on the retries themselves.
    expect(elapsed).toBeLessThan(15_000);
  });

  it('delete removes keys in one patch and exits with 1 naming missing keys', async ({ expect }) => {
    const kv = openKV('del');
    try {
      await kv.putMany([
        ['a', '1'],
        ['b', '2'],
        ['c', '3'],
        ['d', '4'],
      ]);
      expect(await cli(['delete', 'del', 'a', 'b'])).toMatchObject({ code: 0, stdout: '', stderr: '' });
      expect(await kv.keys()).toEqual(['c', 'd']);
      const partly = await cli(['delete', 'del', 'c', 'nope', 'zilch']);
      expect(partly.code).toBe(1);
      expect(partly.stderr).toBe(`k8s-kv: 2 keys not found in bucket "del" in namespace "${ns.name}": "nope", "zilch"\n`);
      expect(await kv.keys()).toEqual(['d']);
      const json = await cli(['delete', 'del', 'd', 'nope', '--json']);
      expect(json.code).toBe(1);
      expect(JSON.parse(json.stdout)).toEqual([
        { key: 'd', deleted: true },
        { key: 'nope', deleted: false },
      ]);
    } finally {
      await kv.close();
    }
  });

  it('keys and list, with a prefix, --values and --json', async ({ expect }) => {
    const kv = openKV('listing');
    try {
      await kv.putMany([
        ['user/1', 'alice'],
        ['user/2', 'bob'],
        ['order/1', 'paid'],
        ['line\nbreak', 'x'],
      ]);
      await kv.put('user/3', new Uint8Array([1, 2, 3]), { ttl: 3_600_000 });
    } finally {
      await kv.close();
    }
    expect((await cli(['keys', 'listing'])).stdout).toBe('"line\\nbreak"\norder/1\nuser/1\nuser/2\nuser/3\n');
    expect((await cli(['keys', 'listing', 'user/'])).stdout).toBe('user/1\nuser/2\nuser/3\n');
    expect(JSON.parse((await cli(['keys', 'listing', '--json'])).stdout)).toEqual(['line\nbreak', 'order/1', 'user/1', 'user/2', 'user/3']);
    expect(await cli(['keys', 'listing', 'nothing/'])).toMatchObject({ code: 0, stdout: '' });

    const table = (await cli(['list', 'listing', 'user/', '--values'])).stdout.split('\n');
    expect(table[0]).toMatch(/^KEY\s+SIZE\s+MODIFIED\s+EXPIRES\s+VALUE$/);
    expect(table[1]).toMatch(/^user\/1\s+\d+ B\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+-\s+alice$/);
    expect(table[3]).toMatch(/^user\/3\s+\d+ B\s+\S+Z\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+base64:AQID$/);
    expect(table).toHaveLength(5);
    expect((await cli(['list', 'listing'])).stdout).not.toContain('alice');

    const json = JSON.parse((await cli(['list', 'listing', 'user/', '--json', '--values'])).stdout) as Array<Record<string, unknown>>;
    expect(json.map((e) => [e.key, e.value, e.text])).toEqual([
      ['user/1', 'alice', true],
      ['user/2', 'bob', true],
      ['user/3', 'AQID', false],
    ]);
    expect(json[2]!.expiresAt).toMatch(/Z$/);
    const empty = await cli(['list', 'listing', 'nothing/']);
    expect(empty).toMatchObject({ code: 0, stdout: '' });
    expect(empty.stderr).toContain('No keys starting with "nothing/"');
  });

  it('stats, clear with a prefix, and clear refusing without --yes', async ({ expect }) => {
    const kv = openKV('tidy');
    try {
      await kv.putMany([
        ['tmp/1', 'a'],
        ['tmp/2', 'b'],
        ['keep', 'c'],
      ]);
      await kv.put('gone', 'x', { ttl: 1 });
      await new Promise((r) => setTimeout(r, 20));
      const stats = JSON.parse((await cli(['stats', 'tidy', '--json'])).stdout) as Record<string, number>;
      expect(stats).toMatchObject({ bucket: 'tidy', namespace: ns.name, keys: 3, expired: 1, corrupt: 0, limitBytes: 67108864, layout: 'single' });
      expect(stats.bytes).toBeGreaterThan(0);
      const text = (await cli(['stats', 'tidy'])).stdout;
      expect(text).toMatch(/^keys:\s+3$/m);
      expect(text).toMatch(/^expired:\s+1$/m);
      expect(text).toMatch(new RegExp(`^bytes:\\s+${stats.bytes} of 67108864 \\(${stats.bytes} B / 64 MiB, 0\\.0%\\)$`, 'm'));

      const refused = await cli(['clear', 'tidy', 'tmp/']);
      expect(refused.code).toBe(2);
      expect(await kv.keys()).toEqual(['keep', 'tmp/1', 'tmp/2']);
      expect(await cli(['clear', 'tidy', 'tmp/', '--yes'])).toMatchObject({ code: 0, stdout: `deleted 2 keys from bucket "tidy" in namespace "${ns.name}"\n` });
      expect(await kv.keys()).toEqual(['keep']);
      expect(JSON.parse((await cli(['clear', 'tidy', '--yes', '--json'])).stdout)).toEqual({ bucket: 'tidy', namespace: ns.name, prefix: '', deleted: 1 });
      expect((await kv.stats()).keys + (await kv.stats()).expired).toBe(0);
    } finally {
      await kv.close();
    }
  });

  it('put --shards creates a sharded bucket; stats and buckets show it as one bucket; a bad count is a usage error', async ({ expect }) => {
    expect(await cli(['put', 'spread', 'a', '1', '--shards', '8'])).toMatchObject({ code: 0 });
    expect(await cli(['put', 'spread', 'b', '2'])).toMatchObject({ code: 0 });
    const stats = JSON.parse((await cli(['stats', 'spread', '--json'])).stdout) as Record<string, number>;
    expect(stats).toMatchObject({ keys: 2, shards: 8, limitBytes: 8 * 1048576 });
    expect((await cli(['stats', 'spread'])).stdout).toMatch(/^shards:\s+8 ConfigMaps \(spread\.shard-0 \.\. spread\.shard-7\), 1 MiB each$/m);
    const listed = JSON.parse((await cli(['buckets', '--json'])).stdout) as Array<{ name: string; shards: number; keys: number }>;
    expect(listed.filter((b) => b.name.startsWith('spread'))).toEqual([expect.objectContaining({ name: 'spread', shards: 8, keys: 2 })]);
    expect((await cli(['buckets'])).stdout).toMatch(/^spread\s.*\ssharded\s+8\s+\S+Z$/m);
    expect((await cli(['keys', 'spread'])).stdout).toBe('a\nb\n');
    for (const bad of ['0', '257', '1.5', 'many']) {
      const refused = await cli(['put', 'spread2', 'a', '1', '--shards', bad]);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/--shards needs a whole number from 1 to 256/);
    }
    expect(await cli(['teardown', 'spread', '--yes'])).toMatchObject({ code: 0 });
  });

  it('stats and buckets show a bucket that split into parts as one bucket; teardown deletes every part', async ({ expect }) => {
    const kv = openKV('grown');
    for (let i = 0; i < 10; i++)
      await kv.putMany(Array.from({ length: 30 }, (_, j) => [`k${i}-${j}`, randomBytes(330).toString('base64')] as [string, string]));
    await kv.close();
    const stats = JSON.parse((await cli(['stats', 'grown', '--json'])).stdout) as Record<string, unknown>;
    expect(stats).toMatchObject({ keys: 300, layout: 'elastic', limitBytes: 64 * 1048576 });
    expect(stats.shards as number).toBeGreaterThan(1);
    expect((await cli(['stats', 'grown'])).stdout).toMatch(/^parts:\s+\d+ ConfigMaps \(grown\.p<depth>-<suffix>\), split as the bucket grows$/m);
    const listed = JSON.parse((await cli(['buckets', '--json'])).stdout) as Array<{ name: string; shards: number; keys: number }>;
    expect(listed.filter((b) => b.name.startsWith('grown'))).toEqual([expect.objectContaining({ name: 'grown', keys: 300, shards: stats.shards })]);
    expect((await cli(['buckets'])).stdout).toMatch(new RegExp(`^grown\\s.*\\selastic\\s+${stats.shards}\\s+\\S+Z$`, 'm'));
    expect((await cli(['teardown', 'grown', '--yes'])).code).toBe(0);
    const api = createClientNodeApi(adminKubeConfig());
    expect((await api.list('ConfigMap', ns.name, { labelSelector: 'k8s-kv.io/bucket=grown' })).items).toEqual([]);
  });

  it('teardown refuses without --yes, deletes with it, and exits with 1 when there is nothing to delete', async ({ expect }) => {
    expect((await cli(['put', 'doomed', 'k', 'v'])).code).toBe(0);
    expect((await cli(['teardown', 'doomed'])).code).toBe(2);
    expect((await cli(['get', 'doomed', 'k'])).stdout).toBe('v');
    expect(await cli(['teardown', 'doomed', '--yes'])).toMatchObject({ code: 0, stdout: `deleted bucket "doomed" in namespace "${ns.name}"\n` });
    const api = createClientNodeApi(adminKubeConfig());
    await expect(api.get({ kind: 'ConfigMap', namespace: ns.name, name: 'doomed' })).rejects.toMatchObject({ status: 404 });
    const again = await cli(['teardown', 'doomed', '--yes']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('does not exist; nothing was deleted');
  });

  it('a bucket of another app is refused, and the error says which --app to pass', async ({ expect }) => {
    const kv = openKV('shop-cart', ns.name, 'shop');
    try {
      await kv.put('item', 'socks');
    } finally {
      await kv.close();
    }
    const refused = await cli(['get', 'shop-cart', 'item']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^k8s-kv: ConfigMap "shop-cart" .* belongs to app "shop", not "default"/);
    expect(refused.stderr).toContain('k8s-kv: bucket "shop-cart" belongs to app "shop": pass --app shop\n');
    expect(await cli(['get', 'shop-cart', 'item', '--app', 'shop'])).toMatchObject({ code: 0, stdout: 'socks' });
  });

  it('errors print neither values nor credentials', async ({ expect }) => {
    const token = `secret-token-${randomBytes(8).toString('hex')}`;
    const badKubeconfig = join(tmp, 'broken-kubeconfig');
    writeFileSync(badKubeconfig, `apiVersion: v1\nusers:\n- name: x\n  user:\n    token: ${token}\n  : : [unclosed\n`);
    const broken = await cli(['--kubeconfig', badKubeconfig, 'get', 'b', 'k'], { user: null });
    expect(broken.code).toBe(2);
    expect(broken.stderr).toMatch(/^k8s-kv: Cannot load kubeconfig ".*broken-kubeconfig": it is not a valid kubeconfig file\. /);
    expect(broken.stderr).not.toContain(token);

    // Random base64 text: too large for a bucket even compressed.
    const value = randomBytes(1_600_000).toString('base64');
    const tooLarge = await cli(['put', 'big', 'huge'], { input: value });
    expect(tooLarge.code).toBe(1);
    expect(tooLarge.stderr).toMatch(/^k8s-kv: Value for key "huge" is \d+ bytes once encoded; a bucket holds at most 1048576 bytes/);
    expect(tooLarge.stderr).not.toContain(value.slice(0, 16));
  });
});

describe.concurrent('the first hour: missing buckets and namespaces, -o, wide keys, foreign objects', () => {
  it('keys, list, stats and get on a missing bucket, and -n on a missing namespace, say so and exit with 1', async ({ expect }) => {
    const bucketMissing = `k8s-kv: bucket "nosuch" in namespace "${ns.name}" does not exist\nk8s-kv: list the buckets with "k8s-kv buckets" (-A for every namespace)\n`;
    for (const args of [
      ['keys', 'nosuch'],
      ['list', 'nosuch'],
      ['stats', 'nosuch'],
      ['get', 'nosuch', 'k'],
    ]) {
      expect(await cli(args), args.join(' ')).toMatchObject({ code: 1, stdout: '', stderr: bucketMissing });
    }
    const json = await cli(['stats', 'nosuch', '-o', 'json']);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stderr)).toMatchObject({ error: { code: 'BUCKET_NOT_FOUND' } });
    // An empty bucket is not a missing one.
    expect((await cli(['put', 'emptied', 'k', 'v'])).code).toBe(0);
    expect((await cli(['delete', 'emptied', 'k'])).code).toBe(0);
    expect(await cli(['keys', 'emptied'])).toMatchObject({ code: 0, stdout: '', stderr: '' });

    const noNamespace = await cli(['keys', 'b'], { namespace: 'nosuchns' });
    expect(noNamespace).toMatchObject({ code: 1, stdout: '' });
    expect(noNamespace.stderr).toMatch(/^k8s-kv: Namespace "nosuchns" does not exist\. .*\nk8s-kv: pass the namespace with -n NAMESPACE\n$/);
    // alice may not read namespaces: the CLI cannot tell which is missing, and names the bucket.
    const alice = await cli(['keys', 'b'], { namespace: 'nosuchns', user: 'alice' });
    expect(alice.code).toBe(1);
  });

  it('-o yaml and -o json print data and errors in that format', async ({ expect }) => {
    expect((await cli(['put', 'formats', 'greeting', 'hello'])).code).toBe(0);
    const yaml = await cli(['get', 'formats', 'greeting', '-o', 'yaml']);
    expect(yaml.code).toBe(0);
    expect(yaml.stdout).toMatch(/^key: greeting\nvalue: hello\ntext: true\nmodifiedAt: '\S+Z'\nexpiresAt: null\nsize: \d+\n$/);
    expect((await cli(['keys', 'formats', '-o', 'json'])).stdout).toBe('[\n  "greeting"\n]\n');
    const missing = await cli(['get', 'formats', 'nope', '--json']);
    expect(missing.code).toBe(1);
    expect(JSON.parse(missing.stderr)).toEqual({
      error: { code: 'KEY_NOT_FOUND', message: `key "nope" not found in bucket "formats" in namespace "${ns.name}"` },
    });
    const forbidden = await cli(['get', 'formats', 'greeting', '-o', 'yaml'], { user: 'alice' });
    expect(forbidden.code).toBe(1);
    expect(forbidden.stderr).toMatch(/^error:\n {2}code: KV_FORBIDDEN\n {2}message: 'Forbidden: user "alice" may not "get" configmaps/);
  });

  it('list aligns CJK and emoji keys by their width on the terminal', async ({ expect }) => {
    const kv = openKV('wide-keys');
    try {
      await kv.putMany([
        ['日本語のキー', 'a'],
        ['ascii', 'b'],
        ['한국어', 'c'],
        ['🙂', 'd'],
      ]);
    } finally {
      await kv.close();
    }
    const lines = (await cli(['list', 'wide-keys'])).stdout.trimEnd().split('\n');
    const wide = (ch: string): boolean => /[\u1100-\u11ff\u3000-\u9fff\uac00-\ud7af\uff00-\uffef]|\p{Extended_Pictographic}/u.test(ch);
    const sizeColumn = (line: string): number => [...line.slice(0, line.search(/\d+ B/))].reduce((w, ch) => w + (wide(ch) ? 2 : 1), 0);
    expect(new Set(lines.slice(1).map(sizeColumn))).toEqual(new Set([14]));
  });

  it('get on a ConfigMap k8s-kv did not create does not speak of modifying it', async ({ expect }) => {
    await createClientNodeApi(adminKubeConfig()).create('ConfigMap', ns.name, { metadata: { name: 'someone-elses' }, data: { k: 'v' } });
    const run = await cli(['get', 'someone-elses', 'k']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /^k8s-kv: ConfigMap "someone-elses" in namespace ".*" was not created by k8s-kv for this bucket \(.*\); k8s-kv neither reads nor changes it, and changed nothing\./,
    );
    expect(run.stderr).not.toContain('modify');
  });
});

describe('running the CLI from a clone', () => {
  const BIN = join(ROOT, 'packages', 'core', 'bin', 'k8s-kv.mjs');

  it('the bin launcher runs the built CLI (pnpm links it as node_modules/.bin/k8s-kv)', async () => {
    const run = spawnSync(process.execPath, [BIN, '--version'], { encoding: 'utf8' });
    expect(run).toMatchObject({ status: 0, stdout: `${VERSION}\n` });
    const linked = spawnSync(join(ROOT, 'node_modules', '.bin', 'k8s-kv'), ['--kubeconfig', kubeconfigPath(), '-n', ns.name, 'buckets', '-o', 'json'], {
      encoding: 'utf8',
      env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH}` },
    });
    expect(linked.status, linked.stderr).toBe(0);
    expect(Array.isArray(JSON.parse(linked.stdout))).toBe(true);
  });

  it('on a Node.js older than the engines field, it says what is needed before loading anything', () => {
    const run = spawnSync(
      process.execPath,
      ['--import', 'data:text/javascript,Object.defineProperty(process.versions,"node",{value:"20.20.2"})', BIN, '--help'],
      { encoding: 'utf8' },
    );
    expect(run.status).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^k8s-kv: Node\.js 22\.19\.0 or newer is needed; this is Node\.js 20\.20\.2 \(.*\)\.\nk8s-kv: install a current Node\.js/);
  });

  it("./dev k8s-kv runs it from the sources, in the caller's directory", () => {
    const dir = join(tmp, 'dev-cwd');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'value.txt'), "from the caller's directory");
    const globals = ['--kubeconfig', kubeconfigPath(), '-n', ns.name];
    const put = spawnSync(join(ROOT, 'dev'), ['k8s-kv', ...globals, 'put', 'dev-bucket', 'k', '--file', 'value.txt'], { cwd: dir, encoding: 'utf8' });
    expect(put.status, put.stderr).toBe(0);
    const get = spawnSync(join(ROOT, 'dev'), ['k8s-kv', ...globals, 'get', 'dev-bucket', 'k'], { cwd: dir, encoding: 'utf8' });
    expect(get).toMatchObject({ status: 0, stdout: "from the caller's directory" });
  });
});

describe.concurrent('buckets', () => {
  it('lists the buckets of the namespace with app, keys, bytes, percent and created; --app filters', async ({ expect }) => {
    const started = Date.now();
    await using own = await createTestNamespace('cli-buckets');
    const a = openKV('alpha', own.name);
    const b = openKV('beta', own.name, 'shop');
    try {
      await a.putMany([
        ['k1', 'v1'],
        ['k2', 'v2'],
      ]);
      await a.put('old', 'x', { ttl: 1 });
      await b.put('k', randomBytes(2048));
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
    // Not a bucket: no k8s-kv labels.
    await createClientNodeApi(adminKubeConfig()).create('ConfigMap', own.name, { metadata: { name: 'unrelated' }, data: { x: 'y' } });
    await new Promise((r) => setTimeout(r, 20));

    const json = JSON.parse((await cli(['buckets', '--json'], { namespace: own.name })).stdout) as Array<Record<string, unknown>>;
    expect(json.map((x) => x.name)).toEqual(['alpha', 'beta']);
    expect(json[0]).toMatchObject({ name: 'alpha', namespace: own.name, app: 'default', keys: 2, expired: 1, corrupt: 0, limitBytes: 67108864 });
    expect(json[1]).toMatchObject({ name: 'beta', app: 'shop', keys: 1, expired: 0 });
    expect(json[1]!.bytes).toBeGreaterThan(2048);
    expect(json[1]!.percent).toBeCloseTo(((json[1]!.bytes as number) / 67108864) * 100, 1);
    // creationTimestamp has whole seconds.
    expect(Date.parse(json[0]!.createdAt as string)).toBeGreaterThanOrEqual(started - 2000);
    expect(Date.parse(json[0]!.createdAt as string)).toBeLessThanOrEqual(Date.now());

    const table = (await cli(['buckets'], { namespace: own.name })).stdout.split('\n');
    expect(table[0]).toMatch(/^NAME\s+APP\s+KEYS\s+EXPIRED\s+CORRUPT\s+BYTES\s+USED\s+LAYOUT\s+OBJECTS\s+CREATED$/);
    expect(table[1]).toMatch(/^alpha\s+default\s+2\s+1\s+0\s+\d+ B \/ 64 MiB\s+0\.0%\s+single\s+1\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(table[2]).toMatch(/^beta\s+shop\s+1\s+0\s+0\s+2(\.\d)? KiB \/ 64 MiB\s+0\.0%\s+single\s+1\s+\S+Z$/);

    const shop = JSON.parse((await cli(['buckets', '--app', 'shop', '--json'], { namespace: own.name })).stdout) as Array<{ name: string }>;
    expect(shop.map((x) => x.name)).toEqual(['beta']);
    const none = await cli(['buckets', '--app', 'nobody'], { namespace: own.name });
    expect(none).toMatchObject({ code: 0, stdout: '' });
    expect(none.stderr).toContain(`No k8s-kv buckets in namespace "${own.name}" for app "nobody"`);
  });

  it('-A lists the buckets of every namespace, with a NAMESPACE column; without cluster-wide rights it says what is missing', async ({ expect }) => {
    await using first = await createTestNamespace('cli-all-a');
    await using second = await createTestNamespace('cli-all-b');
    const app = `all-${randomBytes(3).toString('hex')}`;
    const a = openKV('gamma', first.name, app);
    const b = openKV('gamma', second.name, app);
    const c = openKV('delta', second.name, app);
    try {
      await Promise.all([
        a.put('k', '1'),
        b.putMany([
          ['k', '1'],
          ['l', '2'],
        ]),
        c.put('k', '1'),
      ]);
    } finally {
      await Promise.all([a.close(), b.close(), c.close()]);
    }
    const json = JSON.parse((await cli(['buckets', '-A', '--app', app, '--json'], { namespace: null })).stdout) as Array<{
      name: string;
      namespace: string;
      keys: number;
    }>;
    // Sorted by namespace, then name.
    expect(json.map((x) => [x.namespace, x.name, x.keys])).toEqual([
      [first.name, 'gamma', 1],
      [second.name, 'delta', 1],
      [second.name, 'gamma', 2],
    ]);
    const table = (await cli(['buckets', '--all-namespaces', '--app', app])).stdout.trimEnd().split('\n');
    expect(table[0]).toMatch(/^NAMESPACE\s+NAME\s+APP\s+KEYS\s/);
    expect(table.slice(1).map((line) => line.split(/\s+/).slice(0, 4))).toEqual([
      [first.name, 'gamma', app, '1'],
      [second.name, 'delta', app, '1'],
      [second.name, 'gamma', app, '2'],
    ]);
    const none = await cli(['buckets', '-A', '--app', 'nobody']);
    expect(none.stderr).toContain('No k8s-kv buckets in any namespace for app "nobody"');

    const refused = await cli(['buckets', '-A'], { user: 'alice' });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      /^k8s-kv: Forbidden: user "alice" may not "list" configmaps in every namespace \(cluster-wide\)\. Grant a ClusterRole with verb list on configmaps/,
    );
  });
});

describe('export and import', () => {
  it('round-trips 2000 keys through a file, importing in several atomic patches with progress', async () => {
    const source = openKV('big-source');
    const expected = Array.from({ length: 2000 }, (_, i) => ({
      key: `item/${String(i).padStart(4, '0')}`,
      value: i % 10 === 0 ? `text value ${i}` : new Uint8Array(randomBytes(200)),
      ...(i % 100 === 0 ? { ttl: 3_600_000 } : {}),
    }));
    try {
      await source.putMany(expected);
    } finally {
      await source.close();
    }

    const file = join(tmp, 'big.jsonl');
    const exported = await cli(['export', 'big-source', '--out', file, '--progress']);
    expect(exported.code).toBe(0);
    expect(exported.stdout).toBe('');
    const exportLines = exported.stderr.trim().split('\n');
    expect(exportLines.at(-1)).toBe(`exported 2000 keys from bucket "big-source" in namespace "${ns.name}" to ${file}`);
    expect(exportLines.slice(0, -1).every((l) => /^exported \d+\/2000 keys \(\d+%\)$/.test(l))).toBe(true);
    expect(exportLines.at(-2)).toBe('exported 2000/2000 keys (100%)');
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(2000);
    const first = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(first).toEqual({ key: 'item/0000', value: Buffer.from('text value 0').toString('base64'), text: true, expiresAt: expect.stringMatching(/Z$/) });
    expect(JSON.parse(lines[1]!)).toMatchObject({ key: 'item/0001', text: false, expiresAt: null });

    // The same lines on stdout, and only the summary on stderr (not a TTY, no --progress).
    const toStdout = await cli(['export', 'big-source']);
    expect(toStdout.stdout.trim().split('\n')).toEqual(lines);
    expect(toStdout.stderr).toBe(`exported 2000 keys from bucket "big-source" in namespace "${ns.name}"\n`);

    // Count the writes to the target bucket's ConfigMaps (it splits as it grows) with a watch of our own.
    const api = createClientNodeApi(adminKubeConfig());
    const selector = { labelSelector: `${LABEL_BUCKET}=big-copy` };
    const listed = await api.list('ConfigMap', ns.name, selector);
    const versions = new Set<string>();
    const handle = await api.watch('ConfigMap', ns.name, {
      ...selector,
      resourceVersion: listed.resourceVersion,
      onEvent: (event) => {
        if (event.type === 'ADDED' || event.type === 'MODIFIED') versions.add(event.object.metadata.resourceVersion!);
      },
      onClose: () => {},
    });
    let batches: number;
    try {
      const imported = await cli(['import', 'big-copy', file, '--progress']);
      expect(imported.code, imported.stderr).toBe(0);
      const stderr = imported.stderr.trim().split('\n');
      const summary = /^imported 2000 keys into bucket "big-copy" in namespace "(.+)" in (\d+) batches$/.exec(stderr.at(-1)!);
      expect(summary, stderr.at(-1)).not.toBeNull();
      batches = Number(summary![2]);
      expect(batches).toBeGreaterThanOrEqual(3);
      const progress = stderr.slice(0, -1);
      expect(progress).toHaveLength(batches);
      expect(progress.every((l) => /^imported \d+\/2000 keys \(\d+%\)$/.test(l))).toBe(true);
      expect(progress.at(-1)).toBe('imported 2000/2000 keys (100%)');
      // Each batch was written with one patch per object it went to (and the splits' own writes), not key by key:
      // the objects changed far fewer times than there are keys.
      await vi.waitFor(() => expect(versions.size).toBeGreaterThanOrEqual(batches), { timeout: 10_000 });
      expect(versions.size).toBeLessThan(500);
    } finally {
      handle.stop();
    }

    const a = openKV('big-source');
    const b = openKV('big-copy');
    try {
      const [from, to] = await Promise.all([a.entries(), b.entries()]);
      expect(to.map((e) => e.key)).toEqual(from.map((e) => e.key));
      expect(to).toHaveLength(2000);
      for (let i = 0; i < from.length; i++) {
        expect(Buffer.from(to[i]!.value).equals(Buffer.from(from[i]!.value)), from[i]!.key).toBe(true);
        expect(to[i]!.text).toBe(from[i]!.text);
        if (from[i]!.expiresAt) expect(Math.abs(to[i]!.expiresAt!.getTime() - from[i]!.expiresAt!.getTime())).toBeLessThan(5000);
        else expect(to[i]!.expiresAt).toBeUndefined();
      }
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('imports from stdin, skips expired entries, and checks the whole file before writing', async () => {
    const past = new Date(Date.now() - 60_000).toISOString();
    const input = [
      JSON.stringify({ key: 'a', value: Buffer.from('alpha').toString('base64'), text: true, expiresAt: null }),
      '',
      JSON.stringify({ key: 'old', value: Buffer.from('x').toString('base64'), text: true, expiresAt: past }),
      JSON.stringify({ key: 'b', value: 'AAEC', text: false, expiresAt: null }),
    ].join('\n');
    const run = await cli(['import', 'small', '-', '--json'], { input });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toBe(`imported 2 keys into bucket "small" in namespace "${ns.name}" in 1 batch (skipped 1 expired)\n`);
    expect(JSON.parse(run.stdout)).toEqual({ bucket: 'small', namespace: ns.name, imported: 2, skippedExpired: 1, batches: 1 });
    expect((await cli(['keys', 'small'])).stdout).toBe('a\nb\n');

    const bad = [JSON.stringify({ key: 'c', value: 'AAEC' }), '{"key": "d", "value": "not base64!"}'].join('\n');
    const refused = await cli(['import', 'small', '-'], { input: bad });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^k8s-kv: stdin line 2: "value" must be a base64 string; nothing was imported\n/);
    expect((await cli(['keys', 'small'])).stdout).toBe('a\nb\n');

    const missing = await cli(['import', 'small', join(tmp, 'no-such-file.jsonl')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/cannot read ".*no-such-file.jsonl": ENOENT/);
  });
});

describe('watch', () => {
  it.each([
    ['SIGTERM', []],
    ['SIGINT', ['--json']],
  ] as const)('prints changes until %s, then closes the watch and exits with 0', async (signal, extra) => {
    const bucket = `watched-${signal.toLowerCase()}`;
    const watcher = startCli(['watch', bucket, ...extra]);
    await vi.waitFor(() => expect(watcher.stderr()).toContain(`Watching bucket "${bucket}" in namespace "${ns.name}"`), { timeout: 30_000 });
    const kv = openKV(bucket);
    try {
      await kv.put('first', '1');
      await kv.put('second', '2');
      await kv.delete('first');
    } finally {
      await kv.close();
    }
    const expected = extra.length
      ? ['{"type":"put","key":"first"}', '{"type":"put","key":"second"}', '{"type":"delete","key":"first"}']
      : ['put first', 'put second', 'delete first'];
    await vi.waitFor(() => expect(watcher.stdout().trim().split('\n')).toEqual(expected), { timeout: 15_000 });
    watcher.child.kill(signal);
    const result = await watcher.result;
    expect(result).toMatchObject({ code: 0, signal: null });
    expect(result.stderr).toBe(`Watching bucket "${bucket}" in namespace "${ns.name}"; stop with Ctrl-C.\n`);
  });
});

describe('an identity without rights', () => {
  it.each([
    [['get', 'any', 'k'], 'get'],
    [['put', 'any', 'k', 'v'], 'get'],
    [['buckets'], 'list'],
    [['watch', 'any'], 'watch'],
  ])('k8s-kv %j gets a KV_FORBIDDEN message and exit code 1', async (args, verb) => {
    const run = await cli(args, { user: 'alice' });
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(
      new RegExp(
        `^k8s-kv: Forbidden: user "alice" may not "${verb}" configmaps in namespace "${ns.name}"\\. Grant a Role with verbs get, list, watch, create, patch, delete on configmaps`,
      ),
    );
  });
});

describe('the README example session', () => {
  it('runs as written and prints what the README shows', async () => {
    const readme = readFileSync(README, 'utf8').split('\n');
    const marker = readme.findIndex((l) => l.startsWith('<!-- cli-session'));
    expect(marker, 'the README has a <!-- cli-session --> block').toBeGreaterThan(0);
    expect(readme[marker + 1]).toBe('```console');
    const end = readme.indexOf('```', marker + 2);
    const steps: Array<{ command: string; expected: string[] }> = [];
    for (const line of readme.slice(marker + 2, end)) {
      if (line.startsWith('$ ')) steps.push({ command: line.slice(2), expected: [] });
      else steps.at(-1)!.expected.push(line);
    }
    expect(steps.length).toBeGreaterThan(10);

    // `k8s-kv` on the PATH, and a kubeconfig whose context's namespace is a fresh one.
    await using own = await createTestNamespace('cli-session');
    const dir = join(tmp, 'session');
    mkdirSync(join(dir, 'bin'), { recursive: true });
    const shim = join(dir, 'bin', 'k8s-kv');
    writeFileSync(shim, `#!/bin/sh\nexec "${process.execPath}" --conditions=source "${CLI}" "$@"\n`);
    chmodSync(shim, 0o755);
    const kubeConfig = adminKubeConfig();
    const current = kubeConfig.getCurrentContext();
    kubeConfig.contexts = kubeConfig.contexts.map((c) => (c.name === current ? { ...c, namespace: own.name } : c));
    const kubeconfigFile = join(dir, 'kubeconfig');
    writeFileSync(kubeconfigFile, kubeConfig.exportConfig());

    const normalize = (lines: string[]): string[] => {
      const out = lines.map((l) =>
        l
          .replaceAll(own.name, 'default')
          .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, 'TIME')
          .trimEnd(),
      );
      while (out.length > 0 && out.at(-1) === '') out.pop();
      return out;
    };
    for (const step of steps) {
      const run = await new Promise<{ code: number | null; output: string }>((resolve) => {
        const child = spawn('bash', ['-c', `{ ${step.command}\n} 2>&1`], {
          cwd: dir,
          env: { ...process.env, PATH: `${join(dir, 'bin')}:${process.env.PATH}`, KUBECONFIG: kubeconfigFile },
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        let output = '';
        child.stdout.on('data', (d: Buffer) => (output += d.toString()));
        child.on('close', (code) => resolve({ code, output }));
      });
      expect(run.code, `$ ${step.command}\n${run.output}`).toBe(0);
      expect(normalize(run.output.split('\n')), `$ ${step.command}`).toEqual(normalize(step.expected));
    }
  });
});
