// GET /kv/:key: the stored value (JSON), 404 when missing.
export default defineEventHandler(async (event) => {
  const key = getRouterParam(event, 'key')!;
  const storage = useStorage('data');
  if (!(await storage.hasItem(key))) {
    throw createError({ statusCode: 404, statusMessage: `no item ${key}` });
  }
  return { key, value: await storage.getItem(key), meta: await storage.getMeta(key) };
});
