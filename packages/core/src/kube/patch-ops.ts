/**
 * RFC 7386 merge patch and RFC 6902 JSON patch, applied the way the API server
 * applies them (used by the in-memory port). Failures throw {@link PatchError}.
 */

/** A patch that cannot be applied (the API server answers 422, or 400 for malformed patches). */
export class PatchError extends Error {
  override name = 'PatchError';
  readonly status: 400 | 422;
  constructor(message: string, status: 400 | 422 = 422) {
    super(message);
    this.status = status;
  }
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function isObject(value: unknown): value is Record<string, Json> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Applies an RFC 7386 merge patch; returns a new value. */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return structuredClone(patch);
  const result: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = applyMergePatch(result[key], value);
  }
  return result;
}

function unescapeToken(token: string): string {
  return token.replace(/~1/g, '/').replace(/~0/g, '~');
}

function parsePointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw new PatchError(`invalid JSON pointer ${JSON.stringify(path)}`, 400);
  return path.slice(1).split('/').map(unescapeToken);
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a as object);
  const kb = Object.keys(b as object);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/** Finds the container of the last token; throws when an intermediate value is missing. */
function parentOf(doc: unknown, tokens: string[], path: string, op: string): { container: Record<string, unknown> | unknown[]; key: string } {
  let node: unknown = doc;
  for (const token of tokens.slice(0, -1)) {
    if (Array.isArray(node)) node = node[Number(token)];
    else if (isObject(node)) node = node[token];
    else node = undefined;
    if (node === undefined || node === null) {
      throw new PatchError(`${op} operation does not apply: doc is missing path: "${path}": missing value`);
    }
  }
  if (!Array.isArray(node) && !isObject(node)) {
    throw new PatchError(`${op} operation does not apply: doc is missing path: "${path}": missing value`);
  }
  return { container: node as Record<string, unknown> | unknown[], key: tokens[tokens.length - 1]! };
}

function getAt(doc: unknown, path: string): unknown {
  let node: unknown = doc;
  for (const token of parsePointer(path)) {
    if (Array.isArray(node)) node = node[Number(token)];
    else if (isObject(node)) node = node[token];
    else return undefined;
    if (node === undefined) return undefined;
  }
  return node;
}

/** One JSON patch operation, loosely typed as it arrives on the wire. */
export interface WireJsonPatchOp {
  op: string;
  path: string;
  from?: string;
  value?: unknown;
}

/** Applies an RFC 6902 JSON patch; returns a new document. Like the API server, `test` with value null passes on a missing path. */
export function applyJsonPatch(document: unknown, ops: WireJsonPatchOp[]): unknown {
  if (!Array.isArray(ops)) throw new PatchError('JSON patch must be an array of operations', 400);
  if (ops.length > 10_000) throw new PatchError('The allowed maximum operations in a JSON patch is 10000', 422);
  let doc = structuredClone(document);
  for (const operation of ops) {
    const { op, path } = operation;
    if (typeof path !== 'string') throw new PatchError(`operation ${JSON.stringify(op)} has no path`, 400);
    const tokens = parsePointer(path);
    switch (op) {
      case 'test': {
        const actual = getAt(doc, path);
        const expected = operation.value ?? null;
        if (actual === undefined && expected === null) break;
        if (!deepEqual(actual, expected)) throw new PatchError(`testing value ${path} failed: test failed`);
        break;
      }
      case 'remove': {
        if (tokens.length === 0) throw new PatchError('remove operation does not apply: cannot remove the root');
        const { container, key } = parentOf(doc, tokens, path, 'remove');
        if (Array.isArray(container)) {
          const index = Number(key);
          if (!(index >= 0 && index < container.length)) throw new PatchError(`remove operation does not apply: doc is missing path: "${path}"`);
          container.splice(index, 1);
        } else {
          if (!(key in container)) throw new PatchError(`remove operation does not apply: doc is missing key: "${path}": missing value`);
          delete container[key];
        }
        break;
      }
      case 'add':
      case 'replace': {
        if (!('value' in operation)) throw new PatchError(`${op} operation has no value`, 400);
        if (tokens.length === 0) {
          doc = structuredClone(operation.value);
          break;
        }
        const { container, key } = parentOf(doc, tokens, path, op);
        const value = structuredClone(operation.value);
        if (Array.isArray(container)) {
          const index = key === '-' ? container.length : Number(key);
          if (!(index >= 0 && index <= container.length)) throw new PatchError(`${op} operation does not apply: index out of range`);
          if (op === 'add') container.splice(index, 0, value);
          else container[index] = value;
        } else {
          if (op === 'replace' && !(key in container)) {
            throw new PatchError(`replace operation does not apply: doc is missing key: ${path}: missing value`);
          }
          container[key] = value;
        }
        break;
      }
      case 'move':
      case 'copy': {
        if (typeof operation.from !== 'string') throw new PatchError(`${op} operation has no from`, 400);
        const value = getAt(doc, operation.from);
        if (value === undefined) throw new PatchError(`${op} operation does not apply: doc is missing from path: ${operation.from}`);
        if (op === 'move') doc = applyJsonPatch(doc, [{ op: 'remove', path: operation.from }]);
        doc = applyJsonPatch(doc, [{ op: 'add', path, value }]);
        break;
      }
      default:
        throw new PatchError(`Unexpected kind: ${String(op)}`, 400);
    }
  }
  return doc;
}
