#!/usr/bin/env node
/**
 * The `k8s-kv` command-line tool for operators: list buckets, read, write,
 * export, import and watch keys. Run `k8s-kv --help`.
 */
import { main } from './cli/main.ts';

// A reader that goes away (`k8s-kv export b | head`) is not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

process.exitCode = await main(process.argv.slice(2));
