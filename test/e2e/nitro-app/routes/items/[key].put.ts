// routes/items/[key].put.ts (an example of packages/unstorage-driver/README.md)
export default defineEventHandler(async (event) => {
  const key = getRouterParam(event, 'key')!;
  await useStorage('data').setItem(key, await readBody(event), { ttl: 3600 }); // seconds
  return { stored: key };
});
