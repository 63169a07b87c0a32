// PUT /kv/:key?ttl=seconds: stores the JSON body.
export default defineEventHandler(async (event) => {
  const key = getRouterParam(event, 'key')!;
  const body = await readBody(event);
  const ttl = getQuery(event).ttl;
  await useStorage('data').setItem(key, body, ttl ? { ttl: Number(ttl) } : {});
  return { key, stored: true };
});
