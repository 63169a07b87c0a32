// Helpers every part of the benchmark uses: timing, percentiles, values.
import { randomBytes } from 'node:crypto';

/** The `p`th percentile of an ascending list. */
export const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

/** p50, p99 and max (ms) of latencies, and how many. */
export function summarize(latencies) {
  const sorted = [...latencies].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1), count: sorted.length };
}

/** The median of numbers (of an even count: the mean of the two middle ones). */
export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length / 2;
  return Number.isInteger(middle) ? (sorted[middle - 1] + sorted[middle]) / 2 : sorted[Math.floor(middle)];
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Calls `op(i)` for i from 0 to `count - 1` with `concurrency` callers, each waiting for its call before taking the next i. */
export async function withCallers(count, concurrency, op) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await op(next++);
    }),
  );
}

/** Runs `op` `count` times with `concurrency` callers; returns ops/s and latency percentiles (ms). */
export async function measure(count, op, concurrency = 1) {
  const latencies = [];
  const started = performance.now();
  await withCallers(count, concurrency, async (i) => {
    const t0 = performance.now();
    await op(i);
    latencies.push(performance.now() - t0);
  });
  const elapsed = performance.now() - started;
  latencies.sort((a, b) => a - b);
  return { ops: (count / elapsed) * 1000, p50: percentile(latencies, 50), p99: percentile(latencies, 99), count };
}

/** A JSON-ish value of about `size` bytes that compresses like real application data. */
export function appValue(i, size) {
  const words = ['alpha', 'beta', 'gamma', 'delta', 'order', 'user', 'status', 'paid', 'pending', 'region'];
  let text = `{"id":${i},"token":"${randomBytes(16).toString('hex')}","items":[`;
  while (text.length < size - 20) text += `"${words[(text.length * 7 + i) % words.length]}-${(text.length * 31 + i) % 997}",`;
  return text.replace(/,$/, '') + ']}';
}

/** `size` random bytes: a value no compression shrinks (what the original library's limit was measured with). */
export const randomValue = (size) => randomBytes(size);

/** The benchmark's key number `i` (`key-00042`): sorts as it counts. */
export const benchKey = (i) => `key-${String(i).padStart(5, '0')}`;
