/**
 * The `k8s-kv` CLI: parses the command line, builds the API port from the
 * kubeconfig, runs the command, and turns failures into a message on stderr
 * and an exit code (0 success, 1 failure, 2 usage error).
 */
import { readFileSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import { KVError } from '../errors.ts';
import { createClientNodeApi } from '../kube/client-node-api.ts';
import { resolveNamespace } from '../kube/namespace.ts';
import { parseCommandLine, UsageError } from './args.ts';
import { CliError, HintedError, RUN } from './commands.ts';
import { parseDuration } from './format.ts';
import { helpText } from './help.ts';
import type { CliIo } from './io.ts';

/** Exit codes. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** KVError codes caused by what was typed on the command line. */
const USAGE_CODES = new Set(['KV_INVALID_OPTION', 'KV_INVALID_BUCKET_NAME']);

function version(): string {
  try {
    // src/cli/main.ts and dist/cli/main.js both sit two levels below the package root.
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Loads the kubeconfig; never echoes its contents (they may hold tokens). */
function loadKubeConfig(file: string | undefined, context: string | undefined): KubeConfig {
  const kubeConfig = new KubeConfig();
  if (file !== undefined) {
    try {
      kubeConfig.loadFromFile(file);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new CliError(`cannot load --kubeconfig ${JSON.stringify(file)}: ${code ?? 'it is not a valid kubeconfig file'}`);
    }
  } else {
    try {
      kubeConfig.loadFromDefault();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new CliError(`cannot load the kubeconfig ($KUBECONFIG or ~/.kube/config): ${code ?? 'it is not a valid kubeconfig file'}`, 'Pass one with --kubeconfig FILE.');
    }
  }
  if (context !== undefined) {
    if (!kubeConfig.getContextObject(context)) {
      const known = kubeConfig.getContexts().map((c) => c.name);
      throw new UsageError(`context ${JSON.stringify(context)} is not in the kubeconfig${known.length ? `; it has: ${known.join(', ')}` : ''}`);
    }
    kubeConfig.setCurrentContext(context);
  }
  if (!kubeConfig.getCurrentCluster()) {
    throw new CliError('the kubeconfig has no current context with a cluster', 'Pick one with --context NAME or kubectl config use-context.');
  }
  return kubeConfig;
}

/** Resolves with the first SIGINT or SIGTERM, after removing its handlers. */
function untilStopped(): Promise<string> {
  return new Promise((resolve) => {
    const stop = (signal: string): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve(signal);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

function report(io: CliIo, message: string, hint?: string): void {
  io.stderr.write(`k8s-kv: ${message}\n`);
  if (hint) io.stderr.write(`k8s-kv: ${hint}\n`);
}

/** Retry budget against an unreachable or failing API server when --timeout is not given. */
const DEFAULT_TIMEOUT_MS = 30_000;

/** Runs the CLI with `argv` (without node and the script); resolves to the exit code. */
export async function main(argv: string[], io: CliIo = process): Promise<number> {
  try {
    const { command, args, options } = parseCommandLine(argv);
    if (options.version && !options.help) {
      io.stdout.write(`${version()}\n`);
      return EXIT_OK;
    }
    if (options.help || !command) {
      io.stdout.write(helpText(command));
      return EXIT_OK;
    }
    const timeoutMs = options.timeout === undefined ? DEFAULT_TIMEOUT_MS : parseDuration(options.timeout, '--timeout', command);
    const kubeConfig = loadKubeConfig(options.kubeconfig, options.context);
    const api = createClientNodeApi(kubeConfig, { requestTimeoutMs: Math.min(timeoutMs, DEFAULT_TIMEOUT_MS) });
    const namespace = resolveNamespace(options.namespace, kubeConfig);
    await RUN[command]({ io, args, options, api, namespace, retry: { maxElapsedMs: timeoutMs }, untilStopped });
    return EXIT_OK;
  } catch (error) {
    if (error instanceof UsageError) {
      report(io, error.message, `run "k8s-kv ${error.command ? `${error.command} ` : ''}--help" for usage`);
      return EXIT_USAGE;
    }
    if (error instanceof HintedError) {
      report(io, error.error.message, error.hint);
      return USAGE_CODES.has(error.error.code) ? EXIT_USAGE : EXIT_FAILURE;
    }
    if (error instanceof KVError) {
      report(io, error.message);
      return USAGE_CODES.has(error.code) ? EXIT_USAGE : EXIT_FAILURE;
    }
    if (error instanceof CliError) {
      report(io, error.message, error.hint);
      return EXIT_FAILURE;
    }
    report(io, error instanceof Error ? error.message : String(error));
    if (process.env.K8S_KV_DEBUG && error instanceof Error && error.stack) io.stderr.write(`${error.stack}\n`);
    return EXIT_FAILURE;
  }
}
