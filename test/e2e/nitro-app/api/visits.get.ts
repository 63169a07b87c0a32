// api/visits.get.ts (an example of packages/unstorage-driver/README.md, there as Nuxt's server/api/visits.get.ts)
export default defineEventHandler(async () => {
  const storage = useStorage('data');
  const visits = ((await storage.getItem<number>('visits')) ?? 0) + 1;
  await storage.setItem('visits', visits);
  return { visits };
});
