/**
 * withRetry: the budget (retry.maxElapsedMs) bounds the whole call and is
 * carried to the port as a deadline; a server's Retry-After is honoured;
 * onRetry is told of every retry. Transport failures through the real port are
 * tested against the real API server (test/integration/connections.test.ts,
 * server-errors.test.ts, priority-and-fairness.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { isTransient, toKVError } from '../src/engine/api-errors.ts';
import { withRetry } from '../src/engine/retry-policy.ts';
import type { RetryEvent } from '../src/types.ts';
import { currentDeadline } from '../src/kube/call-deadline.ts';
import { parseRetryAfter, pingIntervalFor } from '../src/kube/client-node-api.ts';
import { KubeApiError, KubeConnectionError } from '../src/kube/port.ts';
import { UnavailableError, UntrustedServerError } from '../src/errors.ts';

const refused = (): KubeConnectionError =>
  new KubeConnectionError(
    'connection',
    'https://api.example:6443',
    'prod',
    'connect ECONNREFUSED 10.0.0.1:6443',
    'ECONNREFUSED',
    new Error('connect ECONNREFUSED'),
  );
const ctx = { verb: 'get', kind: 'ConfigMap' as const, namespace: 'default' };

describe('withRetry', () => {
  it("gives every attempt the call's deadline, and none past the budget", async () => {
    const deadlines: Array<number | undefined> = [];
    const started = Date.now();
    const error = await withRetry(
      async () => {
        deadlines.push(currentDeadline());
        throw refused();
      },
      { maxElapsedMs: 200, initialDelayMs: 10, maxDelayMs: 20 },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KubeConnectionError);
    expect(deadlines.length).toBeGreaterThan(1);
    for (const deadline of deadlines) {
      expect(deadline).toBeGreaterThanOrEqual(started + 200);
      expect(deadline).toBeLessThanOrEqual(Date.now() + 200);
    }
    expect(new Set(deadlines).size).toBe(1);
  });

  it("keeps an outer call's earlier deadline", async () => {
    let inner: number | undefined;
    const record = async (): Promise<void> => {
      inner = currentDeadline();
    };
    await withRetry(() => withRetry(record, { maxElapsedMs: 60_000 }), { maxElapsedMs: 1_000 });
    expect(inner).toBeLessThanOrEqual(Date.now() + 1_000);
  });

  it('maxElapsedMs 0: one attempt, no deadline of its own', async () => {
    let attempts = 0;
    let deadline: number | undefined = 1;
    await withRetry(
      async () => {
        attempts += 1;
        deadline = currentDeadline();
        throw refused();
      },
      { maxElapsedMs: 0 },
    ).catch(() => undefined);
    expect(attempts).toBe(1);
    expect(deadline).toBeUndefined();
  });

  it('waits as long as Retry-After asks, and gives up at once when that is past the budget', async () => {
    const events: RetryEvent[] = [];
    let attempts = 0;
    const result = await withRetry(
      async () => {
        attempts += 1;
        if (attempts === 1) throw new KubeApiError(429, 'TooManyRequests', 'slow down', undefined, 1);
        return 'ok';
      },
      { initialDelayMs: 1, maxDelayMs: 2, onRetry: (e) => events.push(e) },
    );
    expect(result).toBe('ok');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ attempt: 1, reason: 'HTTP 429 TooManyRequests', server: undefined });
    expect(events[0]!.delayMs).toBeGreaterThanOrEqual(1000);

    const started = Date.now();
    const error = await withRetry(
      async () => {
        throw new KubeApiError(429, 'TooManyRequests', 'slow down', undefined, 60);
      },
      { maxElapsedMs: 5_000 },
    ).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(toKVError(error, ctx).message).toContain('asked to retry after 60 s');
  });

  it('a throwing onRetry does not fail the call', async () => {
    let attempts = 0;
    const result = await withRetry(
      async () => {
        if (++attempts < 3) throw refused();
        return attempts;
      },
      {
        initialDelayMs: 1,
        onRetry: () => {
          throw new Error('reporting failed');
        },
      },
    );
    expect(result).toBe(3);
  });
});

describe('transport failures', () => {
  it('are transient unless the certificate is untrusted', () => {
    expect(isTransient(refused())).toBe(true);
    expect(isTransient(new KubeConnectionError('timeout', 's', undefined, 'no answer within 10 ms', undefined, undefined))).toBe(true);
    expect(isTransient(new KubeConnectionError('untrusted', 's', undefined, 'x509', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', undefined))).toBe(false);
    // Raw errors from a port that does not classify them.
    expect(isTransient(Object.assign(new Error('bad record mac'), { code: 'ERR_SSL_SSL/TLS_ALERT_BAD_RECORD_MAC' }))).toBe(true);
    expect(isTransient(Object.assign(new Error('The session has been destroyed'), { code: 'ERR_HTTP2_INVALID_SESSION' }))).toBe(true);
  });

  it('map to UnavailableError naming the server and context, or UntrustedServerError', () => {
    const unavailable = toKVError(refused(), ctx);
    expect(unavailable).toBeInstanceOf(UnavailableError);
    expect(unavailable).toMatchObject({ server: 'https://api.example:6443', context: 'prod', retryable: true });
    expect(unavailable.message).toBe(
      'The API server at https://api.example:6443 (kube context "prod") could not be reached for "get" configmaps: connect ECONNREFUSED 10.0.0.1:6443.',
    );
    const untrusted = toKVError(
      new KubeConnectionError(
        'untrusted',
        'https://api.example:6443',
        undefined,
        'x509: certificate signed by unknown authority',
        'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
        undefined,
      ),
      ctx,
    );
    expect(untrusted).toBeInstanceOf(UntrustedServerError);
    expect(untrusted).toMatchObject({ code: 'KV_UNTRUSTED_SERVER', retryable: false });
  });
});

describe('port helpers', () => {
  it('parseRetryAfter reads seconds and HTTP dates', () => {
    expect(parseRetryAfter('1')).toBe(1);
    expect(parseRetryAfter(['3'])).toBe(3);
    expect(parseRetryAfter(undefined)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(new Date(10_000 + 5_000).toUTCString(), 10_000)).toBe(5);
    expect(parseRetryAfter(new Date(0).toUTCString(), 10_000)).toBe(0);
  });

  it('pings every third of the request timeout, from 1 s to 10 s', () => {
    expect(pingIntervalFor(30_000)).toBe(10_000);
    expect(pingIntervalFor(6_000)).toBe(2_000);
    expect(pingIntervalFor(500)).toBe(1_000);
    expect(pingIntervalFor(600_000)).toBe(10_000);
  });
});
