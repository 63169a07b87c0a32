// The adapter's behaviour suite against the in-memory API server.
import { createMemoryApi } from '@k8s-kv/core/testing';
// @keyv/test-suite and Keyv 6 are installed in the test workspace (test/package.json), not
// as dev dependencies of this package: import them from there.
import keyvTestSuite, { keyvIteratorTests } from '@keyv/test-suite';
import { Keyv as Keyv6 } from 'keyv6';
import { describeKeyv6Contract, describeKeyvAdapter, type KeyvAdapterTestEnv } from './behaviour.ts';

const kubeNamespace = 'default';
const api = createMemoryApi();
const forbiddenApi = createMemoryApi();
for (const verb of ['get', 'list', 'watch', 'create', 'patch', 'delete'] as const) forbiddenApi.forbid(verb);
const noWatchApi = createMemoryApi();
noWatchApi.forbid('list');
noWatchApi.forbid('watch');

const env: KeyvAdapterTestEnv = { api, kubeNamespace, forbiddenApi, noWatchApi };

describeKeyvAdapter('in-memory API', { keyvTestSuite, keyvIteratorTests }, () => env);
describeKeyv6Contract('in-memory API', Keyv6, () => env);
