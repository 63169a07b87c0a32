// GET /cached: an expensive answer, cached for 60 s in the "cache" storage
// (a ConfigMap), so every instance of the app serves the same one.
let computed = 0;

export default defineCachedEventHandler(
  () => {
    computed++;
    return { computedBy: process.pid, computed, at: new Date().toISOString() };
  },
  { name: 'cached', maxAge: 60, swr: false },
);
