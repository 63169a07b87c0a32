/**
 * The command line of the `k8s-kv` CLI, declared with commander: commands,
 * their arguments and options, and the help texts commander prints. Parsing
 * produces an {@link Invocation}; running it is main.ts's job.
 */
import { Command, Option } from 'commander';

/** Values of the options, global and the command's. */
export interface ParsedOptions {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
  app?: string;
  timeout?: string;
  /** `-o json|yaml`; `--json` sets it to "json". */
  output?: OutputFormat;
  allNamespaces?: boolean;
  ttl?: string;
  file?: string;
  binary?: boolean;
  values?: boolean;
  yes?: boolean;
  out?: string;
  progress?: boolean;
  shards?: string;
}

/** Machine-readable output formats of `-o`. */
export const OUTPUT_FORMATS = ['json', 'yaml'] as const;
/** A format of `-o`. */
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** The commands, in the order the help lists them. */
export const COMMAND_NAMES = ['buckets', 'get', 'put', 'delete', 'keys', 'list', 'stats', 'clear', 'export', 'import', 'watch', 'teardown'] as const;
/** A command of the CLI. */
export type CommandName = (typeof COMMAND_NAMES)[number];

/** A parsed command line, ready to run. */
export interface Invocation {
  command: CommandName;
  /** Positional arguments, in order (a variadic one spread). */
  args: string[];
  options: ParsedOptions;
}

/** Thrown by an action to hand the parsed command line back to the caller. */
class Parsed {
  readonly invocation: Invocation;
  constructor(invocation: Invocation) {
    this.invocation = invocation;
  }
}

const GLOBAL_HELP = `
Exit codes: 0 success; 1 failure (key, bucket or namespace not found, API error,
forbidden, ...); 2 usage error (unknown command or option, missing argument,
invalid name or value).

Put -- before a key or value that starts with "-": k8s-kv get b -- -key`;

interface CommandSpec {
  name: CommandName;
  /** Arguments in commander's notation: <required>, [optional], <variadic...>. */
  args: string[];
  /** One line for the list of commands. */
  summary: string;
  /** The command's own help. */
  description: string;
  options?: Option[];
}

const shardsOption = (): Option =>
  new Option(
    '--shards <n>',
    'when this creates the bucket: spread it over N ConfigMaps (1-256; up to N MiB, writes stay fast as it grows); an existing bucket keeps its layout',
  );
const progressOption = (): Option => new Option('--progress', 'show progress on stderr even when it is not a terminal');
const yesOption = (): Option => new Option('--yes', 'confirm');

const COMMANDS: CommandSpec[] = [
  {
    name: 'buckets',
    args: [],
    summary: 'list the buckets in the namespace (-A: in every namespace)',
    description:
      'Lists the k8s-kv buckets (ConfigMaps labelled app.kubernetes.io/managed-by=k8s-kv) in the ' +
      'namespace: name, app, live keys, expired and corrupt entries, bytes used of the limit, ' +
      'layout (single, elastic or sharded), the number of ConfigMaps it uses, and when the bucket ' +
      "was created. Lists every app's buckets unless --app is given. " +
      'Needs "list" on configmaps.',
    options: [
      new Option(
        '-A, --all-namespaces',
        'list the buckets of every namespace (adds a NAMESPACE column; needs "list" on configmaps cluster-wide: a ClusterRole)',
      ),
    ],
  },
  {
    name: 'get',
    args: ['<bucket>', '<key>'],
    summary: 'print a value (raw bytes)',
    description:
      'Prints the value of KEY as raw bytes (on a terminal, text gets a final newline). With ' +
      '-o json|yaml, prints {key, value, text, modifiedAt, expiresAt, size}: value is the UTF-8 ' +
      'text when text is true, else base64. Exits with 1 when the key, the bucket or the ' +
      'namespace does not exist.',
  },
  {
    name: 'put',
    args: ['<bucket>', '<key>', '[value]'],
    summary: 'store a value (VALUE, --file F, or stdin)',
    description:
      'Stores a value: VALUE as text; or the bytes of --file FILE; or stdin when VALUE is "-" or ' +
      'omitted. Bytes from a file or stdin are stored as text when they are valid UTF-8, unless ' +
      '--binary. Creates the bucket on first write.',
    options: [
      new Option('--ttl <duration>', 'expire the key after DURATION: 500ms, 30s, 10m, 1h, 1h30m, 7d'),
      new Option('--file <file>', 'read the value from FILE'),
      new Option('--binary', 'store bytes from a file or stdin as bytes, not text'),
      shardsOption(),
    ],
  },
  {
    name: 'delete',
    args: ['<bucket>', '<keys...>'],
    summary: 'delete keys',
    description: 'Deletes the keys in one atomic patch. Exits with 1 and names the keys that did not exist (the others are deleted).',
  },
  {
    name: 'keys',
    args: ['<bucket>', '[prefix]'],
    summary: 'list keys',
    description:
      'Prints the live keys starting with PREFIX (default: all), sorted, one a line. A key with control characters or surrounding spaces is printed JSON-quoted.',
  },
  {
    name: 'list',
    args: ['<bucket>', '[prefix]'],
    summary: 'list entries: key, size, modified, expires',
    description:
      'Prints a table of the live entries starting with PREFIX: key, size (bytes in the bucket, ' + 'after compression), when last modified, when it expires.',
    options: [new Option('--values', 'add a VALUE column (text as is, bytes as base64:...)')],
  },
  {
    name: 'stats',
    args: ['<bucket>'],
    summary: "show the bucket's usage",
    description:
      "Prints the bucket's live keys, expired and corrupt entries, bytes used of its limit (the default maxBytes, 64 MiB; 1 MiB per shard in a sharded bucket), and the ConfigMaps it uses (its parts or shards).",
  },
  {
    name: 'clear',
    args: ['<bucket>', '[prefix]'],
    summary: 'delete every key (under PREFIX); needs --yes',
    description:
      'Deletes every key starting with PREFIX (default: every key, expired and corrupt entries ' +
      'too) in one atomic patch. The bucket itself stays (see teardown). Refuses without --yes.',
    options: [yesOption()],
  },
  {
    name: 'export',
    args: ['<bucket>'],
    summary: 'write every entry as JSON lines',
    description:
      'Writes every live entry as a JSON line {key, value, text, expiresAt}: value is base64, ' +
      'text says whether it was stored as text, expiresAt is an ISO time or null. Writes to ' +
      'stdout, or to FILE with --out. Progress and a summary go to stderr (progress only when ' +
      'stderr is a terminal, or with --progress).',
    options: [new Option('--out <file>', 'write to FILE instead of stdout'), progressOption()],
  },
  {
    name: 'import',
    args: ['<bucket>', '<file>'],
    summary: 'store the entries of an export (FILE or -)',
    description:
      'Stores the entries of an export file (FILE, or - for stdin) in batches of about 200 KiB: ' +
      'each batch is one atomic patch per ConfigMap it goes to (its parts or shards, once the ' +
      'bucket has several). Entries already ' +
      'expired are skipped; the others keep their expiry time. Keys not in the file are left ' +
      'alone. The whole file is checked before anything is written. Progress and a summary go ' +
      'to stderr (progress only when stderr is a terminal, or with --progress).',
    options: [progressOption(), shardsOption()],
  },
  {
    name: 'watch',
    args: ['<bucket>'],
    summary: 'print changes as they happen, until Ctrl-C',
    description:
      'Prints "put KEY" or "delete KEY" for every change of a key, by any writer, as it ' +
      'happens, until interrupted (Ctrl-C, SIGTERM); then exits with 0. With -o json, prints ' +
      '{"type","key"} lines (-o yaml: one YAML document each). Expiry does not raise events.',
  },
  {
    name: 'teardown',
    args: ['<bucket>'],
    summary: "delete the bucket's ConfigMap; needs --yes",
    description: "Deletes the bucket's ConfigMap (and its shards) and everything in it. Refuses objects k8s-kv does not own, and refuses without --yes.",
    options: [yesOption()],
  },
];

/** Where commander writes help and errors. */
export interface ProgramOutput {
  writeOut(text: string): void;
  writeErr(text: string): void;
}

/**
 * Builds the command line's commander program. Its commands' actions do not
 * run anything: parsing throws a `Parsed` carrying the {@link Invocation}
 * (see {@link parseCommandLine}). Help and version are written to `output`
 * and end the parse with a CommanderError of exit code 0.
 */
export function buildProgram(version: string, output: ProgramOutput): Command {
  const program = new Command('k8s-kv')
    .description('k8s-kv: operate k8s-kv buckets (key/value stores kept in Kubernetes ConfigMaps)')
    .usage('<command> [arguments] [options]')
    .version(version, '--version', 'show the version')
    .helpOption('-h, --help', 'show help (also: k8s-kv <command> --help)')
    .helpCommand('help [command]', 'show help of a command')
    .option('--kubeconfig <file>', "kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, or the pod's service account)")
    .option('--context <name>', 'kubeconfig context to use (default: the current context)')
    .option('-n, --namespace <ns>', 'namespace (default: the pod\'s own, else the context\'s, else "default")')
    .option('--app <app>', 'app the bucket belongs to, label k8s-kv.io/app (default "default")')
    .option('--timeout <duration>', 'give up on an unreachable or failing API server after DURATION of retries, e.g. 5s (default 30s)')
    .addOption(new Option('-o, --output <format>', 'machine-readable output, errors included').choices(OUTPUT_FORMATS))
    .addOption(new Option('--json', 'same as -o json').implies({ output: 'json' }))
    .addHelpText('after', GLOBAL_HELP)
    .configureHelp({ showGlobalOptions: true })
    .exitOverride()
    .configureOutput({
      writeOut: (text) => output.writeOut(text),
      writeErr: (text) => output.writeErr(text),
      // Usage errors are thrown (exitOverride) and reported by main, in the format asked for.
      outputError: () => {},
    });
  for (const spec of COMMANDS) {
    const command = program.command(spec.name).summary(spec.summary).description(spec.description);
    for (const argument of spec.args) command.argument(argument);
    for (const option of spec.options ?? []) command.addOption(option);
    command.action((...values: unknown[]) => {
      const own = values.at(-1) as Command;
      const positionals = values.slice(0, spec.args.length).flatMap((v) => (v === undefined ? [] : Array.isArray(v) ? (v as string[]) : [v as string]));
      throw new Parsed({ command: spec.name, args: positionals, options: own.optsWithGlobals<ParsedOptions>() });
    });
  }
  return program;
}

/** The commands that take an option (by its long flag), for "which command takes --yes?". */
export function commandsWithOption(program: Command, flag: string): string[] {
  return program.commands.filter((c) => c.options.some((o) => o.long === flag || o.short === flag)).map((c) => c.name());
}

/**
 * Parses argv (without node and the script). Resolves to the invocation, or
 * to undefined when commander printed help or the version. Throws commander's
 * CommanderError for a usage error (after commander wrote it to `writeErr`).
 */
export async function parseCommandLine(program: Command, argv: string[]): Promise<Invocation | undefined> {
  if (argv.length === 0) {
    program.outputHelp();
    return undefined;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (error) {
    if (error instanceof Parsed) return error.invocation;
    if (isCommanderExit(error) && error.exitCode === 0) return undefined;
    throw error;
  }
  // Only global options, no command: as `k8s-kv --help`.
  program.outputHelp();
  return undefined;
}

/** A CommanderError (commander's usage errors and its help/version exits). */
export function isCommanderExit(error: unknown): error is Error & { code: string; exitCode: number } {
  const code = (error as { code?: unknown } | null)?.code;
  return error instanceof Error && typeof code === 'string' && code.startsWith('commander.');
}
