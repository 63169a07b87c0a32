// DELETE /kv/:key
export default defineEventHandler(async (event) => {
  const key = getRouterParam(event, 'key')!;
  await useStorage('data').removeItem(key);
  return { key, removed: true };
});
