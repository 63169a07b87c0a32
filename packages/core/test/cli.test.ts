// The k8s-kv CLI through its entry function, main(argv, io, deps), on the
// in-memory API: parsing, help, output formats and error messages, fast. The
// same behaviours run as a process against the real API server in
// test/integration/cli.test.ts.
import { readFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createKV } from '../src/index.ts';
import { createMemoryApi, type MemoryApi } from '../src/testing.ts';
import { main } from '../src/cli/main.ts';
import { buildProgram, COMMAND_NAMES } from '../src/cli/program.ts';
import { table } from '../src/cli/format.ts';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Streams for a run, `input` on stdin; out() and err() tell what was written so far. */
function streams(input = '') {
  const io = { stdin: new PassThrough(), stdout: new PassThrough(), stderr: new PassThrough() };
  let out = '';
  let err = '';
  io.stdout.on('data', (d: Buffer) => (out += d.toString()));
  io.stderr.on('data', (d: Buffer) => (err += d.toString()));
  io.stdin.end(input);
  return { io, out: () => out, err: () => err };
}

/** Runs the CLI on `api` with `input` on stdin; namespaces other than "default" and `extra` do not exist. */
async function run(api: MemoryApi, argv: string[], options: { input?: string; namespaces?: string[] } = {}): Promise<Run> {
  const { io, out, err } = streams(options.input);
  const known = new Set(['default', ...(options.namespaces ?? [])]);
  const code = await main(argv, io, { api, namespaceExists: async (ns) => known.has(ns) });
  return { code, stdout: out(), stderr: err() };
}

describe('help and usage', () => {
  it('prints help for the tool and each command, and the version', async () => {
    const api = createMemoryApi();
    const help = await run(api, ['--help']);
    expect(help.code).toBe(0);
    for (const command of COMMAND_NAMES) {
      expect(help.stdout).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
      const own = await run(api, [command, '--help']);
      expect(own.code, command).toBe(0);
      expect(own.stdout).toMatch(new RegExp(`^Usage: k8s-kv ${command} `));
      expect(own.stdout).toContain('--kubeconfig <file>');
    }
    expect((await run(api, ['help', 'put'])).stdout).toContain('--ttl <duration>');
    expect(await run(api, [])).toMatchObject({ code: 0, stdout: expect.stringContaining('Usage: k8s-kv <command>') });
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(await run(api, ['--version'])).toEqual({ code: 0, stdout: `${pkg.version}\n`, stderr: '' });
    expect(api.calls).toEqual(createMemoryApi().calls);
  });

  it.each([
    [['frobnicate'], "unknown command 'frobnicate'"],
    [['get', 'b'], "missing required argument 'key'"],
    [['get'], "missing required argument 'bucket'"],
    [['get', 'b', 'k', 'extra'], "too many arguments for 'get'. Expected 2 arguments but got 3: b, k, extra"],
    [['delete', 'b'], "missing required argument 'keys'"],
    [['get', 'b', 'k', '--bogus'], `unknown option '--bogus' (put -- before a key or value that starts with "-")`],
    [['get', 'b', 'k', '--yes'], `unknown option '--yes' for "get" (--yes is an option of "clear", "teardown")`],
    [['put', 'b', 'k', 'v', '--ttl', '10'], 'invalid --ttl "10": use a number with a unit (ms, s, m, h, d), e.g. 500ms, 30s, 10m, 1h30m or 7d'],
    [['put', 'b', 'k', 'v', '--ttl', '-5s'], 'invalid --ttl "-5s": a duration cannot be negative; give a positive one, e.g. 500ms, 30s, 10m, 1h30m or 7d'],
    [['put', 'b', 'k', 'v', '--ttl', '0s'], 'invalid --ttl "0s": a duration must be longer than 0, e.g. 500ms, 30s, 10m, 1h30m or 7d'],
    [['put', 'b', 'k', '--ttl'], "option '--ttl <duration>' argument missing"],
    [['get', 'b', 'k', '-o', 'xml'], "option '-o, --output <format>' argument 'xml' is invalid. Allowed choices are json, yaml"],
    [['put', 'b', 'k', 'v', '--file', 'f'], 'give the value either as VALUE or with --file, not both'],
    [['clear', 'b'], '"clear" deletes every key of bucket "b" in namespace "default"; add --yes to confirm'],
    [['get', 'Not_A_Bucket', 'k'], 'Invalid bucket name "Not_A_Bucket"'],
    [['get', 'b', 'k', '-n', 'Bad_NS'], 'Invalid namespace "Bad_NS"'],
  ])('k8s-kv %j exits with 2: %s', async (argv, message) => {
    const result = await run(createMemoryApi(), argv);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr.split('\n')[0]).toContain(`k8s-kv: ${message}`);
    expect(result.stderr).toMatch(/\nk8s-kv: run "k8s-kv (\w+ )?--help" for usage\n$|Use 1-63|use 1-63/);
  });

  it('under -o json and -o yaml, errors are JSON or YAML on stderr, usage errors included', async () => {
    const api = createMemoryApi();
    const usage = await run(api, ['get', 'b', '--json']);
    expect(usage.code).toBe(2);
    expect(JSON.parse(usage.stderr)).toEqual({
      error: { code: 'USAGE', message: "missing required argument 'key'", hint: 'run "k8s-kv get --help" for usage' },
    });
    await run(api, ['put', 'b', 'k', 'v']);
    const missing = await run(api, ['get', 'b', 'nope', '-o', 'json']);
    expect(missing).toMatchObject({ code: 1, stdout: '' });
    expect(JSON.parse(missing.stderr)).toEqual({ error: { code: 'KEY_NOT_FOUND', message: 'key "nope" not found in bucket "b" in namespace "default"' } });
    const yaml = await run(api, ['get', 'b', 'nope', '-o', 'yaml']);
    expect(yaml.stderr).toBe('error:\n  code: KEY_NOT_FOUND\n  message: key "nope" not found in bucket "b" in namespace "default"\n');
  });

  it('the README documents every command with its usage and every option, and nothing else', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('## Command-line tool'), readme.indexOf('### Example session'));
    const rows = [...section.matchAll(/^\| `(k8s-kv [^`]+)` \|/gm)].map((m) => m[1]!);
    const program = buildProgram('0', { writeOut: () => {}, writeErr: () => {} });
    const usages = program.commands
      .filter((c) => c.name() !== 'help')
      .map(
        (c) =>
          `k8s-kv ${c.name()}${c.registeredArguments.map((a) => ` ${a.required ? '<' : '['}${a.name()}${a.variadic ? '...' : ''}${a.required ? '>' : ']'}`).join('')}`,
      );
    expect(rows).toEqual(usages);
    for (const command of program.commands) {
      for (const option of command.options) if (option.long !== '--help') expect(section, `${command.name()} ${option.flags}`).toContain(`\`${option.flags}\``);
    }
    for (const option of program.options) if (option.long !== '--help') expect(section, option.flags).toContain(`\`${option.flags}\``);
  });
});

describe('commands on the in-memory API', () => {
  it('-o json and -o yaml print the same data; --json is -o json', async () => {
    const api = createMemoryApi();
    expect((await run(api, ['put', 'settings', 'greeting', 'hello'])).code).toBe(0);
    const json = JSON.parse((await run(api, ['get', 'settings', 'greeting', '-o', 'json'])).stdout) as Record<string, unknown>;
    expect(json).toMatchObject({ key: 'greeting', value: 'hello', text: true, expiresAt: null });
    expect(JSON.parse((await run(api, ['get', 'settings', 'greeting', '--json'])).stdout)).toEqual(json);
    const yaml = (await run(api, ['get', 'settings', 'greeting', '-o', 'yaml'])).stdout;
    expect(yaml).toBe(`key: greeting\nvalue: hello\ntext: true\nmodifiedAt: '${json.modifiedAt}'\nexpiresAt: null\nsize: ${json.size}\n`);
    expect((await run(api, ['keys', 'settings', '-oyaml'])).stdout).toBe('- greeting\n');
    expect((await run(api, ['--output=json', 'keys', 'settings'])).stdout).toBe('[\n  "greeting"\n]\n');
  });

  it('buckets -A (--all-namespaces) lists every namespace, with a NAMESPACE column', async () => {
    const api = createMemoryApi();
    await run(api, ['put', 'one', 'k', 'v', '-n', 'team-a']);
    await run(api, ['put', 'two', 'k', 'v', '-n', 'team-b']);
    const json = JSON.parse((await run(api, ['buckets', '-A', '-o', 'json'])).stdout) as Array<{ namespace: string; name: string }>;
    expect(json.map((b) => [b.namespace, b.name])).toEqual([
      ['team-a', 'one'],
      ['team-b', 'two'],
    ]);
    const table = (await run(api, ['buckets', '--all-namespaces'])).stdout.split('\n');
    expect(table[0]).toMatch(/^NAMESPACE\s+NAME\s+APP/);
    expect((await run(api, ['buckets', '-o', 'json'])).stdout).toBe('[]\n');
  });

  it('tables align CJK and emoji keys by display width', async () => {
    const api = createMemoryApi();
    await run(api, ['put', 'wide', '日本語のキー', 'v']);
    await run(api, ['put', 'wide', 'ascii', 'v']);
    await run(api, ['put', 'wide', '🙂', 'v']);
    const lines = (await run(api, ['list', 'wide'])).stdout.trimEnd().split('\n');
    expect(lines.map((line) => line.split(/\s+/)[0])).toEqual(['KEY', 'ascii', '日本語のキー', '🙂']);
    // Every SIZE cell starts at the same terminal column: 12 columns of key + 2 spaces.
    const column = (line: string): number => {
      const prefix = line.slice(0, line.search(/\d+ B/));
      return [...prefix].reduce((width, ch) => width + (/[\u3000-\u9fff\uff00-\uffef]|\p{Extended_Pictographic}/u.test(ch) ? 2 : 1), 0);
    };
    expect(new Set(lines.slice(1).map(column)).size).toBe(1);
    expect(column(lines[1]!)).toBe(14);
    expect(
      table(
        ['A', 'B'],
        [
          ['中', 'x'],
          ['ab', 'y'],
        ],
      ),
    ).toBe('A   B\n中  x\nab  y\n');
  });

  it('a missing bucket is not an empty one: keys, list, stats, get, delete, clear and export say so and exit 1', async () => {
    const api = createMemoryApi();
    await run(api, ['put', 'there', 'k', 'v']);
    await run(api, ['delete', 'there', 'k']);
    // An existing, empty bucket: exit 0.
    expect(await run(api, ['keys', 'there'])).toEqual({ code: 0, stdout: '', stderr: '' });
    expect((await run(api, ['stats', 'there'])).code).toBe(0);
    const message = 'k8s-kv: bucket "nosuch" in namespace "default" does not exist\nk8s-kv: list the buckets with "k8s-kv buckets" (-A for every namespace)\n';
    for (const argv of [
      ['keys', 'nosuch'],
      ['list', 'nosuch'],
      ['stats', 'nosuch'],
      ['get', 'nosuch', 'k'],
      ['delete', 'nosuch', 'k'],
      ['clear', 'nosuch', '--yes'],
      ['export', 'nosuch'],
    ]) {
      expect(await run(api, argv), argv.join(' ')).toEqual({ code: 1, stdout: '', stderr: message });
    }
    expect(JSON.parse((await run(api, ['keys', 'nosuch', '-o', 'json'])).stderr).error.code).toBe('BUCKET_NOT_FOUND');
    // A key missing from a bucket that exists is a missing key.
    expect((await run(api, ['get', 'there', 'k'])).stderr).toBe('k8s-kv: key "k" not found in bucket "there" in namespace "default"\n');
  });

  it('a missing namespace says so and exits 1', async () => {
    const api = createMemoryApi();
    const result = await run(api, ['-n', 'nosuchns', 'keys', 'b']);
    expect(result).toMatchObject({ code: 1, stdout: '' });
    expect(result.stderr).toMatch(/^k8s-kv: Namespace "nosuchns" does not exist\. .*\nk8s-kv: pass the namespace with -n NAMESPACE\n$/);
    // When it cannot be told whether the namespace exists, the bucket is named as missing.
    const { io, err } = streams();
    expect(await main(['-n', 'other', 'keys', 'b'], io, { api })).toBe(1);
    expect(err()).toMatch(/^k8s-kv: bucket "b" in namespace "other" does not exist\n/);
  });

  it('names the user the API server refused, and reads of a foreign ConfigMap do not speak of modifying it', async () => {
    const api = createMemoryApi();
    api.forbid('get');
    expect((await run(api, ['get', 'b', 'k'])).stderr).toMatch(/^k8s-kv: Forbidden: user "memory-user" may not "get" configmaps in namespace "default"\./);
    api.allowAll();
    api.plant('ConfigMap', 'default', { metadata: { name: 'foreign' }, data: { k: 'v' } });
    const foreign = await run(api, ['get', 'foreign', 'k']);
    expect(foreign.code).toBe(1);
    expect(foreign.stderr).toContain('k8s-kv neither reads nor changes it');
    expect(foreign.stderr).not.toContain('modify');
  });

  it('put and get through stdin; delete names the keys it did not find', async () => {
    const api = createMemoryApi();
    expect((await run(api, ['put', 'b', 'from-stdin'], { input: 'line\n' })).code).toBe(0);
    expect((await run(api, ['get', 'b', 'from-stdin'])).stdout).toBe('line\n');
    const partly = await run(api, ['delete', 'b', 'from-stdin', 'nope']);
    expect(partly).toEqual({ code: 1, stdout: '', stderr: 'k8s-kv: key "nope" not found in bucket "b" in namespace "default"\n' });
    const kv = createKV({ bucket: 'b', api, namespace: 'default', cache: false });
    expect(await kv.keys()).toEqual([]);
    await kv.close();
  });

  it('watch prints changes until stopped, as text, JSON lines or YAML documents', async () => {
    for (const [extra, expected] of [
      [[], 'put a\ndelete a\n'],
      [['-o', 'json'], '{"type":"put","key":"a"}\n{"type":"delete","key":"a"}\n'],
      [['-o', 'yaml'], '---\ntype: put\nkey: a\n---\ntype: delete\nkey: a\n'],
    ] as const) {
      const api = createMemoryApi();
      const { io, out, err } = streams();
      let stop!: (signal: string) => void;
      const stopped = new Promise<string>((resolve) => (stop = resolve));
      const running = main(['watch', 'w', ...extra], io, { api, untilStopped: () => stopped });
      await expect.poll(err).toContain('Watching bucket "w"');
      const kv = createKV({ bucket: 'w', api, namespace: 'default' });
      await kv.put('a', '1');
      await kv.delete('a');
      await kv.close();
      await expect.poll(out).toBe(expected);
      stop('SIGTERM');
      expect(await running).toBe(0);
    }
  });
});

describe('retries on a terminal', () => {
  it('says once that a call is being retried, for how long and how to change it; says nothing when stderr is not a terminal', async () => {
    for (const tty of [true, false]) {
      const api = createMemoryApi();
      await createKV({ api, bucket: 'flaky', namespace: 'default', cache: false }).put('k', 'v');
      api.injectFault({ verb: 'get', error: 503, count: 3 });
      const { io, out, err } = streams();
      Object.assign(io.stderr, { isTTY: tty });
      const code = await main(['get', 'flaky', 'k', '--timeout', '20s'], io, { api, namespaceExists: async () => true });
      expect(code).toBe(0);
      expect(out()).toBe('v');
      if (tty)
        expect(err()).toMatch(/^k8s-kv: the API server failed a call \(HTTP 503[^)]*\); retrying for up to (19|20) s more \(--timeout DURATION to change\)\n$/);
      else expect(err()).toBe('');
    }
  });
});
