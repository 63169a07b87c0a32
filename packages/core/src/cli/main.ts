/**
 * The `k8s-kv` CLI: parses the command line (program.ts), builds the API port
 * from the kubeconfig, runs the command (commands.ts), and turns failures into
 * a message on stderr (JSON or YAML under -o json|yaml) and an exit code
 * (0 success, 1 failure, 2 usage error).
 */
import { readFileSync } from 'node:fs';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { KVError } from '../errors.ts';
import { createClientNodeApi, loadKubeConfig } from '../kube/client-node-api.ts';
import { resolveNamespace } from '../kube/namespace.ts';
import type { KubeApi } from '../kube/port.ts';
import { CliError, HintedError, RUN } from './commands.ts';
import { formatData, parseDuration, UsageError } from './format.ts';
import type { CliIo } from './io.ts';
import { buildProgram, COMMAND_NAMES, commandsWithOption, isCommanderExit, parseCommandLine, type OutputFormat } from './program.ts';

/** Exit code: success. */
export const EXIT_OK = 0;
/** Exit code: a failure (not found, forbidden, API error, ...). */
export const EXIT_FAILURE = 1;
/** Exit code: a mistake in the command line. */
export const EXIT_USAGE = 2;

/** KVError codes caused by what was typed on the command line. */
const USAGE_CODES = new Set(['KV_INVALID_OPTION', 'KV_INVALID_BUCKET_NAME']);

/** What a run needs from outside besides its streams; tests pass the in-memory port here. */
export interface CliDeps {
  /**
   * The port to the Kubernetes API. Default: client-node over the kubeconfig
   * (--kubeconfig, --context). When given, no kubeconfig is read and the
   * namespace defaults to "default".
   */
  api?: KubeApi;
  /**
   * Whether a namespace exists: true, false, or undefined when it cannot be
   * told (e.g. no right to read namespaces). Asked only after a bucket was not
   * found, to say which of the two is missing. Default: a GET of the namespace
   * with the kubeconfig's credentials; with `api` given and no function, undefined.
   */
  namespaceExists?: (namespace: string) => Promise<boolean | undefined>;
  /** Resolves when the process is asked to stop (for `watch`). Default: the first SIGINT or SIGTERM. */
  untilStopped?: () => Promise<string>;
}

function version(): string {
  try {
    // src/cli/main.ts and dist/cli/main.js both sit two levels below the package root.
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Resolves with the first SIGINT or SIGTERM, after removing its handlers. */
function untilSignal(): Promise<string> {
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

/** A GET of the namespace with the kubeconfig's credentials; undefined when the answer is not 200 or 404. */
function namespaceGetter(kubeConfig: KubeConfig): (namespace: string) => Promise<boolean | undefined> {
  return async (namespace) => {
    const core = kubeConfig.makeApiClient(CoreV1Api);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(resolve, 10_000, undefined)));
    const answer = core.readNamespace({ name: namespace }).then(
      () => true,
      (error: unknown) => ((error as { code?: number }).code === 404 ? false : undefined),
    );
    try {
      return await Promise.race([answer, timeout]);
    } finally {
      clearTimeout(timer);
    }
  };
}

/** Retry budget against an unreachable or failing API server when --timeout is not given. */
const DEFAULT_TIMEOUT_MS = 30_000;

/** What the user asked for with -o / --json, read from argv before parsing (so that usage errors follow it too). */
function requestedFormat(argv: string[]): OutputFormat | undefined {
  let format: OutputFormat | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') break;
    const value = arg === '-o' || arg === '--output' ? argv[i + 1] : /^(?:-o=?|--output=)(.+)$/.exec(arg)?.[1];
    if (value === 'json' || value === 'yaml') format = value;
    if (arg === '--json') format = 'json';
  }
  return format;
}

/** The command named on the line, if any (for "run k8s-kv COMMAND --help"). */
function commandOf(argv: string[]): string | undefined {
  return argv.find((arg) => (COMMAND_NAMES as readonly string[]).includes(arg));
}

interface Failure {
  /** A stable code: core's KVError code, or USAGE, NOT_FOUND, FAILED for the CLI's own. */
  code: string;
  message: string;
  hint?: string | undefined;
  exitCode: number;
}

function failureOf(error: unknown): Failure {
  if (error instanceof UsageError) {
    return { code: 'USAGE', message: error.message, hint: `run "k8s-kv ${error.command ? `${error.command} ` : ''}--help" for usage`, exitCode: EXIT_USAGE };
  }
  if (error instanceof HintedError) {
    return { code: error.error.code, message: error.error.message, hint: error.hint, exitCode: USAGE_CODES.has(error.error.code) ? EXIT_USAGE : EXIT_FAILURE };
  }
  if (error instanceof KVError) return { code: error.code, message: error.message, exitCode: USAGE_CODES.has(error.code) ? EXIT_USAGE : EXIT_FAILURE };
  if (error instanceof CliError) return { code: error.code, message: error.message, hint: error.hint, exitCode: EXIT_FAILURE };
  return { code: 'FAILED', message: error instanceof Error ? error.message : String(error), exitCode: EXIT_FAILURE };
}

/** Turns commander's usage error into ours: "unknown option '--yes'" and which commands take it. */
function usageErrorOf(error: Error & { code: string }, argv: string[], program: ReturnType<typeof buildProgram>): UsageError {
  const command = commandOf(argv);
  let message = error.message.replace(/^error: /, '').replace(/\.$/, '');
  if (error.code === 'commander.unknownOption') {
    const flag = /'([^']+)'/.exec(message)?.[1] ?? '';
    const owners = commandsWithOption(program, flag.replace(/=.*$/, ''));
    if (owners.length > 0) message += ` for "${command}" (${flag} is an option of ${owners.map((c) => `"${c}"`).join(', ')})`;
    else message += ' (put -- before a key or value that starts with "-")';
  }
  return new UsageError(message, command);
}

/**
 * Runs the CLI with `argv` (without node and the script); resolves to the
 * exit code. Writes only to `io`; reads the kubeconfig unless `deps.api` is given.
 */
export async function main(argv: string[], io: CliIo = process, deps: CliDeps = {}): Promise<number> {
  const format = requestedFormat(argv);
  const program = buildProgram(version(), {
    writeOut: (text) => io.stdout.write(text),
    writeErr: (text) => io.stderr.write(text),
  });
  try {
    let invocation;
    try {
      invocation = await parseCommandLine(program, argv);
    } catch (error) {
      if (isCommanderExit(error)) throw usageErrorOf(error, argv, program);
      throw error;
    }
    if (!invocation) return EXIT_OK;
    const { command, args, options } = invocation;
    const timeoutMs = options.timeout === undefined ? DEFAULT_TIMEOUT_MS : parseDuration(options.timeout, '--timeout', command);
    let api = deps.api;
    let namespaceExists = deps.namespaceExists;
    let namespace: string;
    if (api) {
      namespace = resolveNamespace(options.namespace, undefined, '');
    } else {
      const kubeConfig = loadKubeConfig(options.kubeconfig, options.context === undefined ? {} : { context: options.context });
      api = createClientNodeApi(kubeConfig, { requestTimeoutMs: Math.min(timeoutMs, DEFAULT_TIMEOUT_MS) });
      namespace = resolveNamespace(options.namespace, kubeConfig);
      namespaceExists ??= namespaceGetter(kubeConfig);
    }
    await RUN[command]({
      io,
      args,
      options,
      api,
      namespace,
      retry: { maxElapsedMs: timeoutMs },
      untilStopped: deps.untilStopped ?? untilSignal,
      namespaceExists: namespaceExists ?? (async () => undefined),
    });
    return EXIT_OK;
  } catch (error) {
    const failure = failureOf(error);
    if (format) {
      const { exitCode: _, ...rest } = failure;
      io.stderr.write(formatData({ error: rest.hint === undefined ? { code: rest.code, message: rest.message } : rest }, format));
    } else {
      io.stderr.write(`k8s-kv: ${failure.message}\n`);
      if (failure.hint) io.stderr.write(`k8s-kv: ${failure.hint}\n`);
    }
    if (failure.code === 'FAILED' && process.env.K8S_KV_DEBUG && error instanceof Error && error.stack) io.stderr.write(`${error.stack}\n`);
    return failure.exitCode;
  }
}
