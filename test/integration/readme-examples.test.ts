// Every TypeScript example in the READMEs runs as written, against the real
// API server (the admin kubeconfig's context, namespace "default"). A block is
// skipped only when the line before its fence is `<!-- example: not run (reason) -->`.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { kubeconfigPath } from '../setup/cluster.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const OUT = join(ROOT, 'test', '.examples');
// The Keyv adapter's README has its own runner (test/e2e/keyv-readme.test.ts): its Keyv 6
// example needs `keyv` to resolve to Keyv 6, and it runs as a user holding only the README's Role.
const OWN_RUNNER = new Set([join(ROOT, 'packages', 'keyv-adapter', 'README.md')]);
const readmes = [join(ROOT, 'README.md'), ...readdirSync(join(ROOT, 'packages')).map((p) => join(ROOT, 'packages', p, 'README.md'))].filter(
  (file) => existsSync(file) && !OWN_RUNNER.has(file),
);

interface Example {
  file: string;
  line: number;
  code: string;
}

function examples(file: string): Example[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  const found: Example[] = [];
  for (let i = 0; i < lines.length; i++) {
    const fence = lines[i]!.match(/^```(ts|typescript|js|javascript)\s*$/);
    if (!fence) continue;
    const end = lines.indexOf('```', i + 1);
    const skipped = /<!--\s*example:\s*not run/.test(lines[i - 1] ?? '') || /<!--\s*example:\s*not run/.test(lines[i - 2] ?? '');
    if (!skipped) found.push({ file, line: i + 1, code: lines.slice(i + 1, end).join('\n') });
    i = end;
  }
  return found;
}

describe('README examples run as written', () => {
  for (const readme of readmes) {
    for (const example of examples(readme)) {
      const name = `${relative(ROOT, example.file)}:${example.line}`;
      it(name, () => {
        mkdirSync(OUT, { recursive: true });
        const script = join(OUT, `${name.replace(/[^a-zA-Z0-9]+/g, '-')}.mts`);
        writeFileSync(script, example.code + '\n');
        const run = spawnSync(process.execPath, ['--conditions=source', script], {
          cwd: join(ROOT, 'test'),
          env: { ...process.env, KUBECONFIG: kubeconfigPath() },
          encoding: 'utf8',
          timeout: 90_000,
        });
        expect(run.stderr, `${name} wrote to stderr`).not.toMatch(/Error|error:/);
        expect(run.status, `${name} exited ${run.status}\n${run.stdout}\n${run.stderr}`).toBe(0);
      });
    }
  }
});
