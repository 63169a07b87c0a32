/**
 * The API server's validation rules for ConfigMaps and Secrets, as pure
 * functions: object names, data keys, labels and the 1 MiB size limit. The
 * in-memory port enforces them; the engine uses the same numbers.
 */
import type { KubeObject, ObjectKind } from './port.ts';

/** The most bytes the values of one ConfigMap or Secret may hold together. */
export const MAX_OBJECT_DATA_BYTES = 1024 * 1024;

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DATA_KEY = /^[-._a-zA-Z0-9]+$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Returns why `name` is not a DNS-1123 subdomain, or undefined when it is one. */
export function dns1123SubdomainError(name: string): string | undefined {
  if (name.length === 0) return 'must not be empty';
  if (name.length > 253) return 'must be no more than 253 characters';
  if (!DNS1123_SUBDOMAIN.test(name)) {
    return "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
  }
  return undefined;
}

/** Returns why `key` is not a legal ConfigMap/Secret data key, or undefined. */
export function dataKeyError(key: string): string | undefined {
  if (key.length > 253) return 'must be no more than 253 characters';
  if (!DATA_KEY.test(key)) return "a valid config key must consist of alphanumeric characters, '-', '_' or '.'";
  if (key === '.') return "must not be '.'";
  if (key === '..') return "must not be '..'";
  if (key.startsWith('..')) return "must not start with '..'";
  return undefined;
}

/** Returns why a label value is illegal, or undefined. */
export function labelValueError(value: string): string | undefined {
  if (value.length > 63) return 'must be no more than 63 characters';
  if (value !== '' && !LABEL_NAME.test(value)) {
    return "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
  }
  return undefined;
}

/** Returns why a label key is illegal, or undefined. */
export function labelKeyError(key: string): string | undefined {
  const slash = key.lastIndexOf('/');
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  if (prefix !== undefined && dns1123SubdomainError(prefix)) return 'prefix part must be a DNS-1123 subdomain';
  if (name.length === 0 || name.length > 63 || !LABEL_NAME.test(name))
    return 'name part must be 1-63 characters of [-A-Za-z0-9_.], starting and ending with an alphanumeric character';
  return undefined;
}

/** Decoded length of a base64 string (no validation). */
export function base64DecodedLength(b64: string): number {
  const padding = b64.endsWith('==') ? 2 : b64.endsWith('=') ? 1 : 0;
  return (b64.length / 4) * 3 - padding;
}

/** True when `text` is canonical standard base64. */
export function isBase64(text: string): boolean {
  return text.length % 4 === 0 && BASE64.test(text);
}

/** Bytes the API server counts against the 1 MiB limit for an object's values. */
export function objectDataBytes(kind: ObjectKind, object: KubeObject): number {
  let total = 0;
  if (kind === 'Secret') {
    for (const value of Object.values(object.data ?? {})) total += base64DecodedLength(value);
    return total;
  }
  for (const value of Object.values(object.data ?? {})) total += Buffer.byteLength(value, 'utf8');
  for (const value of Object.values(object.binaryData ?? {})) total += base64DecodedLength(value);
  return total;
}

/** One validation failure, shaped like a Status cause. */
export interface FieldError {
  field: string;
  message: string;
}

/** Validates an object the way the API server does on create and update. */
export function validateObject(kind: ObjectKind, object: KubeObject): FieldError[] {
  const errors: FieldError[] = [];
  const nameError = dns1123SubdomainError(object.metadata?.name ?? '');
  if (nameError) errors.push({ field: 'metadata.name', message: `Invalid value: ${JSON.stringify(object.metadata?.name ?? '')}: ${nameError}` });
  for (const [key, value] of Object.entries(object.metadata?.labels ?? {})) {
    const keyError = labelKeyError(key);
    if (keyError) errors.push({ field: 'metadata.labels', message: `Invalid value: ${JSON.stringify(key)}: ${keyError}` });
    const valueError = typeof value === 'string' ? labelValueError(value) : 'must be a string';
    if (valueError) errors.push({ field: 'metadata.labels', message: `Invalid value: ${JSON.stringify(value)}: ${valueError}` });
  }
  const maps: Array<['data' | 'binaryData', Record<string, string> | undefined]> =
    kind === 'Secret'
      ? [['data', object.data]]
      : [
          ['data', object.data],
          ['binaryData', object.binaryData],
        ];
  for (const [field, map] of maps) {
    for (const [key, value] of Object.entries(map ?? {})) {
      const keyError = dataKeyError(key);
      if (keyError) errors.push({ field: `${field}[${key}]`, message: `Invalid value: ${JSON.stringify(key)}: ${keyError}` });
      if (typeof value !== 'string') errors.push({ field: `${field}[${key}]`, message: 'must be a string' });
    }
  }
  if (kind === 'ConfigMap') {
    for (const key of Object.keys(object.data ?? {})) {
      if (object.binaryData && key in object.binaryData) {
        errors.push({ field: `data[${key}]`, message: `Invalid value: ${JSON.stringify(key)}: duplicate of key present in binaryData` });
      }
    }
  }
  if (objectDataBytes(kind, object) > MAX_OBJECT_DATA_BYTES) {
    errors.push({ field: kind === 'Secret' ? 'data' : '[]', message: `Too long: may not be more than ${MAX_OBJECT_DATA_BYTES} bytes` });
  }
  return errors;
}
