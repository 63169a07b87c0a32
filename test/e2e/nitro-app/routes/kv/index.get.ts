// GET /kv: the keys of the data storage.
export default defineEventHandler(async () => {
  return { keys: await useStorage('data').getKeys() };
});
