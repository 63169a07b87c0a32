#!/usr/bin/env node
// The `k8s-kv` command. Plain JavaScript that imports nothing at first, so that
// it can say what is wrong before the CLI's dependencies load: an old Node.js
// (undici, under @kubernetes/client-node, crashes on Node 20 at import), or a
// source checkout that was not built yet (dist/ is what runs).
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const needed = /(\d+)\.(\d+)\.(\d+)/
  .exec(pkg.engines?.node ?? '')
  ?.slice(1)
  .map(Number) ?? [0, 0, 0];
const running = process.versions.node.split('.').map(Number);
const older = running[0] !== needed[0] ? running[0] < needed[0] : running[1] !== needed[1] ? running[1] < needed[1] : running[2] < needed[2];
if (older) {
  process.stderr.write(
    `k8s-kv: Node.js ${needed.join('.')} or newer is needed; this is Node.js ${process.versions.node} (${process.execPath}).\n` +
      'k8s-kv: install a current Node.js (22.19+ or 24), e.g. with nvm, fnm or volta, and run k8s-kv with it.\n',
  );
  process.exit(1);
}

const cli = new URL('../dist/cli.js', import.meta.url);
try {
  await import(cli.href);
} catch (error) {
  if (error?.code === 'ERR_MODULE_NOT_FOUND' && String(error.message).includes(cli.pathname)) {
    process.stderr.write(
      'k8s-kv: this @k8s-kv/core has no dist/ yet: it is a source checkout that was not built.\n' +
        'k8s-kv: build it with "pnpm build" at the repository root, or run the CLI from source with "./dev k8s-kv ...".\n',
    );
    process.exit(1);
  }
  throw error;
}
