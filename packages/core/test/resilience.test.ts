// Retries, backoff and the watch cache's own recovery, on the in-memory port
// (faults are injected; the real-server restart test is test/faults).
import { afterEach, describe, expect, it } from 'vitest';
import { createKV, UnavailableError, type KV, type KVChangeEvent, type KVOptions } from '@k8s-kv/core';
import { createMemoryApi, type MemoryApi } from '@k8s-kv/core/testing';

const open: KV[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((kv) => kv.close()));
});
function setup(options: Partial<KVOptions> = {}): { api: MemoryApi; kv: KV; make: (o?: Partial<KVOptions>) => KV } {
  const api = createMemoryApi();
  const make = (o: Partial<KVOptions> = {}): KV => {
    const kv = createKV({ bucket: 'r', namespace: 'default', api, retry: { initialDelayMs: 1, maxDelayMs: 5, maxElapsedMs: 500 }, ...options, ...o });
    open.push(kv);
    return kv;
  };
  return { api, kv: make(), make };
}
const networkError = (): Error =>
  Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443'), { code: 'ECONNREFUSED' }) });
/** The connection broke after the request was sent: the server may have applied it. */
const connectionReset = (): Error => Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' });
const until = async (check: () => boolean | Promise<boolean>): Promise<void> => {
  for (let i = 0; i < 400 && !(await check()); i++) await new Promise((r) => setTimeout(r, 5));
};

const decode = (v: Uint8Array | undefined): string => new TextDecoder().decode(v);
const increment = (v: Uint8Array | undefined): string => String(Number(decode(v)) + 1);

/**
 * Breaks the connection of the next JSON patch or create: `applied` says whether the
 * server applied it first (the answer is lost) or never saw it; `meanwhile` runs in
 * between, as another writer would; `error` is what the caller sees (by default a
 * reset after an applied call, a refused connection otherwise).
 */
function breakNext(
  api: MemoryApi,
  verb: 'jsonPatch' | 'create',
  applied: boolean,
  meanwhile?: () => Promise<unknown>,
  error: () => Error = applied ? connectionReset : networkError,
): void {
  const original = api[verb].bind(api) as (...args: unknown[]) => Promise<never>;
  let armed = true;
  (api as unknown as Record<string, unknown>)[verb] = async (...args: unknown[]) => {
    if (!armed) return original(...args);
    armed = false;
    if (applied) await original(...args);
    await meanwhile?.();
    throw error();
  };
}

describe('retries', () => {
  it('retries 429, 5xx and network errors on reads and writes, then succeeds', async () => {
    const { api, kv } = setup({ cache: false });
    await kv.put('a', '1');
    for (const error of [429, 500, 503, 504, networkError()]) {
      api.injectFault({ verb: 'patch', error, count: 2 });
      await kv.put('a', String(error));
      api.injectFault({ verb: 'get', error, count: 2 });
      expect(await kv.getText('a')).toBe(String(error));
    }
  });

  it('gives up with a typed, retryable UnavailableError that keeps the cause', async () => {
    const { api, kv } = setup({ cache: false });
    api.injectFault({ verb: 'get', error: networkError(), count: 1000 });
    const error = await kv.get('a').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnavailableError);
    expect(error).toMatchObject({ code: 'KV_UNAVAILABLE', retryable: true });
    expect((error as Error).message).toContain('ECONNREFUSED');
    expect((error as Error).cause).toBeInstanceOf(TypeError);
  });

  it('does not retry what cannot succeed (400, 403, 422)', async () => {
    const { api, kv } = setup({ cache: false });
    await kv.put('a', '1');
    api.resetCalls();
    api.injectFault({ verb: 'patch', error: 400, count: 1 });
    await expect(kv.put('a', '2')).rejects.toMatchObject({ code: 'KV_API_ERROR', status: 400 });
    expect(api.calls.patch).toBe(1);
  });

  it.each([
    ['applied, then its answer is lost (a server dying mid-request): done, fn ran once', true, 1],
    ['lost before it reached the server: planned again from a fresh read', false, 2],
  ] as const)('update whose patch is %s', async (_name, applied, expectedCalls) => {
    const { api, kv } = setup({ cache: false });
    await kv.put('n', '0');
    let calls = 0;
    breakNext(api, 'jsonPatch', applied);
    const after = await kv.update('n', (v) => {
      calls += 1;
      return increment(v);
    });
    expect(decode(after)).toBe('1');
    expect(await kv.getText('n')).toBe('1');
    expect(calls).toBe(expectedCalls);
  });

  it('a lost answer is never confused with an identical write by another writer (same value, same millisecond)', async () => {
    const clock = (): number => 1_000;
    const { api, kv, make } = setup({ cache: false, now: clock });
    const other = make({ cache: false, now: clock });
    await kv.put('n', '0');
    // Our patch is not applied, but the connection breaks as if its answer were lost; meanwhile
    // the other writer makes the same increment in the same millisecond, so the plain value and
    // time are identical.
    breakNext(api, 'jsonPatch', false, () => other.update('n', increment), connectionReset);
    const error = await kv.update('n', increment).catch((e: unknown) => e);
    // Counting it as done would lose an increment; trying again could apply it twice.
    expect(error).toBeInstanceOf(UnavailableError);
    expect(error).toMatchObject({ code: 'KV_UNAVAILABLE', retryable: true });
    expect((error as Error).message).toMatch(/may or may not have been applied/);
    expect(await kv.getText('n')).toBe('1');
  });

  it("a lost answer followed by another writer's change is reported as unknown, never applied twice", async () => {
    const { api, kv, make } = setup({ cache: false });
    const other = make({ cache: false });
    await kv.put('n', '0');
    // Applied; before we can look, another writer increments again; then our answer is lost.
    breakNext(api, 'jsonPatch', true, () => other.update('n', increment));
    await expect(kv.update('n', increment)).rejects.toMatchObject({ code: 'KV_UNAVAILABLE' });
    expect(await kv.getText('n')).toBe('2');
  });

  it('a delete whose answer was lost is repeated; the key is gone and it reports false', async () => {
    const { api, kv } = setup({ cache: false });
    await kv.putMany([
      ['a', '1'],
      ['b', '2'],
    ]);
    breakNext(api, 'jsonPatch', true);
    expect(await kv.delete('a')).toBe(false);
    expect(await kv.keys()).toEqual(['b']);
  });

  it('a lost answer to the write of a new key, then the key deleted by another writer: reported as unknown, never applied twice', async () => {
    const { api, kv, make } = setup({ cache: false });
    const other = make();
    await kv.put('other-key', 'x'); // the bucket exists: the update's write is a JSON patch
    breakNext(api, 'jsonPatch', true, () => other.delete('token'));
    let calls = 0;
    const error = await kv
      .update('token', () => {
        calls += 1;
        return 'issued';
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnavailableError);
    expect((error as Error).message).toMatch(/may or may not have been applied/);
    expect(calls).toBe(1);
    expect(await kv.has('token')).toBe(false);
  });

  it("a lost answer to the create of the bucket, then another writer's increment: reported as unknown, never applied twice", async () => {
    const { api, kv, make } = setup({ cache: false });
    const other = make();
    breakNext(api, 'create', true, () => other.update('n', increment));
    let calls = 0;
    const error = await kv
      .update('n', (v) => {
        calls += 1;
        return increment(v);
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnavailableError);
    expect(calls).toBe(1);
    expect(await kv.getText('n')).toBe('2');
  });

  it('a write that never reached the server (connection refused, 429) is planned again, not reported as unknown', async () => {
    const { api, kv, make } = setup({ cache: false });
    const other = make();
    await kv.put('other-key', 'x');
    for (const error of [networkError(), 429]) {
      await other.put('other-key', `changed by ${String(error)}`); // the object moves on between the plan and the retry
      api.injectFault({ verb: 'patch', error, count: 1 });
      let calls = 0;
      await kv.update(`new-${String(error)}`, () => {
        calls += 1;
        return 'v';
      });
      expect(calls).toBe(2);
    }
  });

  it('a create whose answer was lost is recognised as its own', async () => {
    const { api, kv } = setup({ cache: false });
    breakNext(api, 'create', true);
    let calls = 0;
    const after = await kv.update('n', () => {
      calls += 1;
      return 'first';
    });
    expect(new TextDecoder().decode(after)).toBe('first');
    expect(calls).toBe(1);
  });
});

describe('watch cache recovery', () => {
  it('resumes after the server ends the watch, and relists after 410 Gone', async () => {
    const { api, kv, make } = setup();
    const writer = make({ cache: false });
    const events: KVChangeEvent[] = [];
    await kv.watch((e) => events.push(e));
    await writer.put('a', '1');
    await until(() => events.length === 1);
    api.closeWatches(); // a server-side timeout
    await writer.put('b', '2');
    await until(() => events.length === 2);
    api.expireWatches(); // etcd compacted: the resourceVersion is gone
    await writer.put('c', '3');
    await writer.delete('a');
    await until(() => events.length === 4);
    expect(events).toEqual([
      { type: 'put', key: 'a' },
      { type: 'put', key: 'b' },
      { type: 'put', key: 'c' },
      { type: 'delete', key: 'a' },
    ]);
    await until(async () => (await kv.keys()).join() === 'b,c');
    expect(await kv.keys()).toEqual(['b', 'c']);
  });

  it('keeps serving reads while the watch cannot reconnect (by GET), and reports the watch errors', async () => {
    const errors: unknown[] = [];
    const { api, kv, make } = setup({ onError: (e) => errors.push(e) });
    const writer = make({ cache: false });
    await writer.put('a', '1');
    expect(await kv.getText('a')).toBe('1');
    api.injectFault({ verb: 'watch', error: 503, count: 3 });
    api.closeWatches();
    await writer.put('a', '2');
    expect(await kv.getText('a')).toBe('2'); // the watch is down: read with GET
    await until(() => errors.length >= 3);
    api.resetCalls();
    await until(async () => (await kv.getText('a')) === '2' && api.calls.get === 0);
    await writer.put('a', '3');
    await until(async () => (await kv.getText('a')) === '3');
    expect(errors.length).toBeGreaterThanOrEqual(3);
  });

  it('ignores events older than what it holds (a write answer can arrive before its watch event)', async () => {
    const { kv } = setup();
    await kv.keys();
    for (let i = 0; i < 50; i++) await kv.put('k', String(i));
    expect(await kv.getText('k')).toBe('49');
  });

  it('sees the bucket deleted and re-created', async () => {
    const { kv, make } = setup();
    const other = make({ cache: false });
    await other.put('a', '1');
    expect(await kv.keys()).toEqual(['a']);
    await other.teardown();
    await until(async () => (await kv.keys()).length === 0);
    await other.put('b', '2');
    await until(async () => (await kv.keys()).join() === 'b');
    expect(await kv.keys()).toEqual(['b']);
  });

  it('close() stops the watch and its timers', async () => {
    const { api, kv } = setup();
    await kv.keys();
    await kv.close();
    api.resetCalls();
    api.closeWatches();
    await new Promise((r) => setTimeout(r, 50));
    expect(api.calls.watch + api.calls.list).toBe(0);
  });

  it('keeps read-your-writes for a write made while the first list is under way', async () => {
    const api = createMemoryApi();
    let releaseList!: () => void;
    const gate = new Promise<void>((resolve) => (releaseList = resolve));
    // The list answers with the state before the write, and only after it; watch events come late.
    const slow = {
      ...api,
      list: async (...args: Parameters<MemoryApi['list']>) => {
        const result = await api.list(...args);
        await gate;
        return result;
      },
      watch: (kind: Parameters<MemoryApi['watch']>[0], namespace: string, options: Parameters<MemoryApi['watch']>[2]) =>
        api.watch(kind, namespace, { ...options, onEvent: (event) => setTimeout(() => options.onEvent(event), 200) }),
    };
    const kv = createKV({ bucket: 'startup', namespace: 'default', api: slow });
    open.push(kv);
    const reading = kv.get('x');
    await kv.put('a', '1');
    releaseList();
    await reading;
    expect(await kv.getText('a')).toBe('1');
  });

  it('keeps read-your-writes when the cache starts while a metadata-only write is in flight', async () => {
    const api = createMemoryApi();
    let releasePatch!: () => void;
    const gate = new Promise<void>((resolve) => (releasePatch = resolve));
    let metadataOnly: boolean | undefined;
    const held = {
      ...api,
      // The put leaves before any cache runs (so it asks for metadata only), and lands after the cache is up.
      jsonPatch: async (...args: Parameters<MemoryApi['jsonPatch']>) => {
        metadataOnly = args[2]?.metadataOnly;
        await gate;
        return api.jsonPatch(...args);
      },
      // No watch event ever arrives: only the write's own path can show the write.
      watch: (kind: Parameters<MemoryApi['watch']>[0], namespace: string, options: Parameters<MemoryApi['watch']>[2]) =>
        api.watch(kind, namespace, { ...options, onEvent: () => {} }),
    };
    const seed = createKV({ bucket: 'late-cache', namespace: 'default', api, cache: false });
    await seed.put('seed', 's');
    await seed.close();
    // A bucket that never splits (maxBytes of one object): only then does a write ask for a metadata-only answer.
    const kv = createKV({ bucket: 'late-cache', namespace: 'default', api: held, maxBytes: 1_048_576 });
    open.push(kv);
    const writing = kv.put('a', '1');
    await until(() => metadataOnly !== undefined);
    expect(metadataOnly).toBe(true);
    expect(await kv.getText('seed')).toBe('s'); // starts the cache: list + watch
    releasePatch();
    await writing;
    expect(await kv.getText('a')).toBe('1');
  });
});
