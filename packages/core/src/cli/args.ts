/**
 * Command-line parsing for the `k8s-kv` CLI, on node:util parseArgs: global
 * options anywhere on the line, one command, its own options and positionals.
 */
import { parseArgs } from 'node:util';

/** A mistake in the command line (exit code 2). */
export class UsageError extends Error {
  override name = 'UsageError';
  /** The command whose help to point at, if any. */
  readonly command: string | undefined;
  constructor(message: string, command?: string) {
    super(message);
    this.command = command;
  }
}

type OptionSpec = { type: 'string' | 'boolean'; short?: string };

/** Options every command accepts. */
export const GLOBAL_OPTIONS = {
  kubeconfig: { type: 'string' },
  context: { type: 'string' },
  namespace: { type: 'string', short: 'n' },
  app: { type: 'string' },
  timeout: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} as const satisfies Record<string, OptionSpec>;

/** Every option a command may take besides the global ones. */
const COMMAND_OPTIONS = {
  'all-namespaces': { type: 'boolean', short: 'A' },
  ttl: { type: 'string' },
  file: { type: 'string' },
  binary: { type: 'boolean' },
  values: { type: 'boolean' },
  yes: { type: 'boolean' },
  out: { type: 'string' },
  progress: { type: 'boolean' },
  shards: { type: 'string' },
} as const satisfies Record<string, OptionSpec>;

type CommandOptionName = keyof typeof COMMAND_OPTIONS;

/** What a command accepts. */
export interface CommandSpec {
  /** Positional argument names; a trailing "..." means one or more, a "[NAME]" is optional. */
  args: string[];
  options: CommandOptionName[];
}

/** The commands and what each accepts. */
export const COMMANDS = {
  buckets: { args: [], options: ['all-namespaces'] },
  get: { args: ['BUCKET', 'KEY'], options: [] },
  put: { args: ['BUCKET', 'KEY', '[VALUE]'], options: ['ttl', 'file', 'binary', 'shards'] },
  delete: { args: ['BUCKET', 'KEY...'], options: [] },
  keys: { args: ['BUCKET', '[PREFIX]'], options: [] },
  list: { args: ['BUCKET', '[PREFIX]'], options: ['values'] },
  stats: { args: ['BUCKET'], options: [] },
  clear: { args: ['BUCKET', '[PREFIX]'], options: ['yes'] },
  export: { args: ['BUCKET'], options: ['out', 'progress'] },
  import: { args: ['BUCKET', 'FILE'], options: ['progress', 'shards'] },
  watch: { args: ['BUCKET'], options: [] },
  teardown: { args: ['BUCKET'], options: ['yes'] },
} as const satisfies Record<string, CommandSpec>;

export type CommandName = keyof typeof COMMANDS;

/** Values of the options, global and the command's. */
export interface ParsedOptions {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
  app?: string;
  timeout?: string;
  json?: boolean;
  help?: boolean;
  version?: boolean;
  'all-namespaces'?: boolean;
  ttl?: string;
  file?: string;
  binary?: boolean;
  values?: boolean;
  yes?: boolean;
  out?: string;
  progress?: boolean;
  shards?: string;
}

/** A parsed command line. */
export interface ParsedCommandLine {
  /** The command, or undefined for `k8s-kv`, `k8s-kv --help` and `k8s-kv --version`. */
  command: CommandName | undefined;
  /** Positional arguments after the command. */
  args: string[];
  options: ParsedOptions;
}

export function isCommand(name: string): name is CommandName {
  return Object.hasOwn(COMMANDS, name);
}

function optionName(token: string): string {
  return token.replace(/^--?/, '').replace(/=.*$/, '');
}

/** Turns parseArgs' own errors into one-line usage messages. */
function rethrow(error: unknown, command: string | undefined): never {
  if (error instanceof TypeError && 'code' in error && typeof error.code === 'string' && error.code.startsWith('ERR_PARSE_ARGS')) {
    const unknown = /Unknown option '([^']+)'/.exec(error.message);
    if (unknown) {
      const where = command ? ` for "${command}"` : '';
      const hint = /^-[^-]/.test(unknown[1]!) || command ? ' (put -- before a key or value that starts with "-")' : '';
      throw new UsageError(`unknown option ${unknown[1]}${where}${hint}`, command);
    }
    const missing = /Option '(?:-\w, )?(--[\w-]+)[^']*' argument missing/.exec(error.message);
    if (missing) throw new UsageError(`option ${missing[1]} needs a value`, command);
    throw new UsageError(error.message.split('\n')[0]!.replace(/\.$/, ''), command);
  }
  throw error;
}

/** Parses argv (without node and script). Throws {@link UsageError}. */
export function parseCommandLine(argv: string[]): ParsedCommandLine {
  // Pass 1: find the command (the first positional), knowing which options take a value.
  let tokens;
  try {
    ({ tokens } = parseArgs({ args: argv, options: { ...GLOBAL_OPTIONS, ...COMMAND_OPTIONS }, allowPositionals: true, strict: false, tokens: true }));
  } catch (error) {
    rethrow(error, undefined);
  }
  const first = tokens.find((t) => t.kind === 'positional');
  const name = first?.kind === 'positional' ? first.value : undefined;
  if (name !== undefined && !isCommand(name)) {
    if (name === 'help') {
      const topic = tokens.filter((t) => t.kind === 'positional')[1];
      const about = topic?.kind === 'positional' && isCommand(topic.value) ? topic.value : undefined;
      return { command: about, args: [], options: { help: true } };
    }
    throw new UsageError(`unknown command "${name}"`);
  }
  const command = name as CommandName | undefined;
  const allowed: Record<string, OptionSpec> = { ...GLOBAL_OPTIONS };
  if (command) for (const option of COMMANDS[command].options) allowed[option] = COMMAND_OPTIONS[option];
  const args = first?.kind === 'positional' ? [...argv.slice(0, first.index), ...argv.slice(first.index + 1)] : argv;

  // Pass 2: strict, with only the options this command accepts.
  let parsed;
  try {
    parsed = parseArgs({ args, options: allowed, allowPositionals: true, strict: true, tokens: true });
  } catch (error) {
    if (command && error instanceof TypeError) {
      // A known option in the wrong place: say whose it is.
      const unknown = /Unknown option '([^']+)'/.exec(error.message);
      if (unknown && Object.hasOwn(COMMAND_OPTIONS, optionName(unknown[1]!))) {
        throw new UsageError(`"${command}" does not take ${unknown[1]}`, command);
      }
    }
    rethrow(error, command);
  }
  const options = parsed.values as ParsedOptions;
  if (options.help || options.version || !command) return { command, args: parsed.positionals, options };

  const spec: readonly string[] = COMMANDS[command].args;
  const required = spec.filter((a) => !a.startsWith('[')).length;
  const variadic = spec.at(-1)?.endsWith('...') ?? false;
  const positionals = parsed.positionals;
  if (positionals.length < required) {
    const missing = spec[positionals.length]!.replace(/\.\.\.$/, '');
    throw new UsageError(`"${command}" needs ${missing}`, command);
  }
  if (!variadic && positionals.length > spec.length) {
    const takes = spec.length === 0 ? 'no arguments' : `at most ${spec.length} argument${spec.length === 1 ? '' : 's'} (${spec.join(' ')})`;
    throw new UsageError(`"${command}" takes ${takes}, got ${positionals.length}`, command);
  }
  return { command, args: positionals, options };
}
