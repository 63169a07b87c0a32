// The baseline: the original Go k8s-kv's algorithm, for comparison in the same run.
import { gunzipSync, gzipSync, constants as zlib } from 'node:zlib';

/** The original design: one ConfigMap key "data" holding gzip(JSON of all entries), base64; UPDATE with the read resourceVersion. */
export class BaselineBucket {
  constructor(api, namespace, name) {
    this.api = api;
    this.ref = { kind: 'ConfigMap', namespace, name };
    this.lock = Promise.resolve();
  }
  async init() {
    try {
      await this.api.delete(this.ref);
    } catch {}
    await this.api.create('ConfigMap', this.ref.namespace, { metadata: { name: this.ref.name }, data: { data: this.encode({}) } });
  }
  encode(map) {
    return gzipSync(Buffer.from(JSON.stringify(map)), { level: zlib.Z_BEST_COMPRESSION }).toString('base64');
  }
  decode(object) {
    return JSON.parse(gunzipSync(Buffer.from(object.data.data, 'base64')).toString());
  }
  async read() {
    return this.decode(await this.api.get(this.ref));
  }
  async get(key) {
    const value = (await this.read())[key];
    return value === undefined ? undefined : Buffer.from(value, 'base64');
  }
  async list(prefix) {
    const map = await this.read();
    return new Map(
      Object.entries(map)
        .filter(([k]) => k.startsWith(prefix))
        .map(([k, v]) => [k, Buffer.from(v, 'base64')]),
    );
  }
  /** GET + decode + change + encode + UPDATE, one at a time (the original's mutex). */
  mutate(change) {
    const run = this.lock.then(async () => {
      const object = await this.api.get(this.ref);
      const map = this.decode(object);
      change(map);
      await this.replace(object, map);
    });
    this.lock = run.catch(() => {});
    return run;
  }
  async replace(object, map) {
    // UPDATE = PUT of the whole object with its resourceVersion (the port has no PUT: a merge
    // patch carrying the read resourceVersion is the same conditional whole-value write).
    await this.api.mergePatch(this.ref, { metadata: { resourceVersion: object.metadata.resourceVersion }, data: { data: this.encode(map) } });
  }
  put(key, value) {
    return this.mutate((map) => {
      map[key] = Buffer.from(value).toString('base64');
    });
  }
  delete(key) {
    return this.mutate((map) => {
      delete map[key];
    });
  }
  async putAll(entries) {
    await this.mutate((map) => {
      for (const [k, v] of entries) map[k] = Buffer.from(v).toString('base64');
    });
  }
}
