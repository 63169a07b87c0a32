// GET /whoami: which instance answers.
export default defineEventHandler(() => ({ pid: process.pid }));
