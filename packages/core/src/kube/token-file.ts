/**
 * The bearer token of a token file, read again whenever the file changes.
 *
 * In a pod, `KubeConfig.loadFromCluster()` authenticates with the projected
 * service-account token, a file the kubelet replaces (an atomic symlink swap)
 * well before the token expires; a token can also be revoked with the object
 * it is bound to. client-node reads such a file at most once a minute, so for
 * up to a minute after a rotation every call (and every watch that reconnects)
 * would still send the old token, and fail with 401 once that one is no longer
 * accepted. Comparing the file's identity and times on each call (one `stat`)
 * sends the new token from the next call on.
 */
import { readFileSync, statSync } from 'node:fs';

/** The current token of one file. */
export class TokenFile {
  /** The token file's path. */
  readonly path: string;
  private seen = '';
  private token: string | undefined;

  constructor(path: string) {
    this.path = path;
  }

  /** The file's token (surrounding whitespace removed), read again when the file changed; undefined when it cannot be read. */
  current(): string | undefined {
    try {
      const stat = statSync(this.path);
      const seen = `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeMs}:${stat.ctimeMs}`;
      if (seen !== this.seen) {
        this.token = readFileSync(this.path, 'utf8').trim() || undefined;
        this.seen = seen;
      }
      return this.token;
    } catch {
      return undefined;
    }
  }
}

/** The token file of a kubeconfig user as `loadFromCluster()` configures it (`authProvider.config.tokenFile`), if any. */
export function tokenFileOf(user: { authProvider?: { config?: Record<string, unknown> } } | null | undefined): string | undefined {
  const file = user?.authProvider?.config?.tokenFile;
  return typeof file === 'string' && file !== '' ? file : undefined;
}
