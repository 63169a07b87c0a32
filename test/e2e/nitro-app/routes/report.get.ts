// routes/report.get.ts (an example of packages/unstorage-driver/README.md): computed once per 60 s for ALL instances of the app
export default defineCachedEventHandler(() => ({ at: new Date().toISOString() }), { maxAge: 60, swr: false });
