/**
 * Help texts of the `k8s-kv` CLI.
 */
import type { CommandName } from './args.ts';

const GLOBAL = `Global options:
  --kubeconfig FILE    kubeconfig to use (default: $KUBECONFIG, ~/.kube/config,
                       or the pod's service account)
  --context NAME       kubeconfig context to use (default: the current context)
  -n, --namespace NS   namespace (default: the pod's own, else the context's,
                       else "default")
  --app APP            app the bucket belongs to, label k8s-kv.io/app
                       (default "default")
  --timeout DURATION   give up on an unreachable or failing API server after
                       DURATION of retries, e.g. 5s (default 30s)
  --json               machine-readable output
  -h, --help           show help (also: k8s-kv COMMAND --help)
  --version            show the version`;

export const MAIN_HELP = `k8s-kv: operate k8s-kv buckets (key/value stores kept in Kubernetes ConfigMaps)

Usage: k8s-kv COMMAND [ARGUMENTS] [OPTIONS]

Commands:
  buckets [-A]                 list the buckets in the namespace (or all)
  get BUCKET KEY               print a value (raw bytes)
  put BUCKET KEY [VALUE]       store a value (VALUE, --file F, or stdin)
  delete BUCKET KEY...         delete keys
  keys BUCKET [PREFIX]         list keys
  list BUCKET [PREFIX]         list entries: key, size, modified, expires
  stats BUCKET                 show the bucket's usage
  clear BUCKET [PREFIX] --yes  delete every key (under PREFIX)
  export BUCKET [--out FILE]   write every entry as JSON lines
  import BUCKET FILE           store the entries of an export (FILE or -)
  watch BUCKET                 print changes as they happen, until Ctrl-C
  teardown BUCKET --yes        delete the bucket's ConfigMap

${GLOBAL}

Exit codes: 0 success; 1 failure (key not found, API error, forbidden, ...);
2 usage error (unknown command or option, missing argument, invalid name).

Put -- before a key or value that starts with "-": k8s-kv get b -- -key
`;

const COMMAND_HELP: Record<CommandName, string> = {
  buckets: `Usage: k8s-kv buckets [-A | --all-namespaces] [--app APP] [--json]

Lists the k8s-kv buckets (ConfigMaps labelled app.kubernetes.io/managed-by=k8s-kv)
in the namespace: name, app, live keys, expired and corrupt entries, bytes used
of the 1 MiB limit, and when the bucket was created. Lists every app's buckets
unless --app is given. Needs "list" on configmaps.

-A, --all-namespaces   list the buckets of every namespace (adds a NAMESPACE
                       column; needs "list" on configmaps cluster-wide, i.e.
                       a ClusterRole)`,

  get: `Usage: k8s-kv get BUCKET KEY [--json]

Prints the value of KEY as raw bytes (on a terminal, text gets a final
newline). With --json, prints {key, value, text, modifiedAt, expiresAt, size}:
value is the UTF-8 text when text is true, else base64. Exits with 1 when the
key does not exist.`,

  put: `Usage: k8s-kv put BUCKET KEY [VALUE] [--ttl DURATION] [--file FILE] [--binary] [--shards N]

Stores a value: VALUE as text; or the bytes of --file FILE; or stdin when VALUE
is "-" or omitted. Bytes from a file or stdin are stored as text when they are
valid UTF-8, unless --binary. Creates the bucket on first write.

Options:
  --ttl DURATION   expire the key after DURATION: 500ms, 30s, 10m, 1h, 1h30m, 7d
  --file FILE      read the value from FILE
  --binary         store bytes from a file or stdin as bytes, not text
  --shards N       when this creates the bucket: spread it over N ConfigMaps
                   (2-256; up to N MiB, writes stay fast as it grows). An
                   existing bucket keeps its layout`,

  delete: `Usage: k8s-kv delete BUCKET KEY...

Deletes the keys in one atomic patch. Exits with 1 and names the keys that did
not exist (the others are deleted).`,

  keys: `Usage: k8s-kv keys BUCKET [PREFIX] [--json]

Prints the live keys starting with PREFIX (default: all), sorted, one a line.
A key with control characters or surrounding spaces is printed JSON-quoted.`,

  list: `Usage: k8s-kv list BUCKET [PREFIX] [--values] [--json]

Prints a table of the live entries starting with PREFIX: key, size (bytes in
the bucket, after compression), when last modified, when it expires.

Options:
  --values   add a VALUE column (text as is, bytes as base64:...)`,

  stats: `Usage: k8s-kv stats BUCKET [--json]

Prints the bucket's live keys, expired and corrupt entries, and bytes used of
the 1 MiB ConfigMap limit.`,

  clear: `Usage: k8s-kv clear BUCKET [PREFIX] --yes

Deletes every key starting with PREFIX (default: every key, expired and corrupt
entries too) in one atomic patch. The bucket itself stays (see teardown).
Refuses without --yes.`,

  export: `Usage: k8s-kv export BUCKET [--out FILE] [--progress]

Writes every live entry as a JSON line {key, value, text, expiresAt}: value is
base64, text says whether it was stored as text, expiresAt is an ISO time or
null. Writes to stdout, or to FILE with --out. Progress and a summary go to
stderr (progress only when stderr is a terminal, or with --progress).`,

  import: `Usage: k8s-kv import BUCKET FILE [--progress] [--shards N]

Stores the entries of an export file (FILE, or - for stdin) in batches of about
200 KiB: each batch is one atomic patch. Entries already expired are skipped;
the others keep their expiry time. Keys not in the file are left alone. The
whole file is checked before anything is written. Progress and a summary go
to stderr (progress only when stderr is a terminal, or with --progress).
With --shards N, a bucket the import creates is spread over N ConfigMaps (in a
sharded bucket, each batch is one patch per shard).`,

  watch: `Usage: k8s-kv watch BUCKET [--json]

Prints "put KEY" or "delete KEY" for every change of a key, by any writer, as
it happens, until interrupted (Ctrl-C, SIGTERM); then exits with 0. With
--json, prints {"type","key"} lines. Expiry does not raise events.`,

  teardown: `Usage: k8s-kv teardown BUCKET --yes

Deletes the bucket's ConfigMap and everything in it. Refuses objects k8s-kv
does not own, and refuses without --yes.`,
};

/** Help of one command, or the main help. */
export function helpText(command: CommandName | undefined): string {
  if (!command) return MAIN_HELP;
  return `${COMMAND_HELP[command]}\n\n${GLOBAL}\n`;
}
