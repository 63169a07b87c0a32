import { createMemoryApi } from '@k8s-kv/core/testing';
import { describeSecretBucket } from './behaviour/secret-behaviour.ts';

const api = createMemoryApi({ namespaces: ['default'] });
const forbiddenApi = createMemoryApi({ namespaces: ['default'] });
for (const verb of ['get', 'list', 'watch', 'create', 'patch', 'delete'] as const) forbiddenApi.forbid(verb);

describeSecretBucket('in-memory port', () => ({ api, namespace: 'default', missingNamespace: 'nope', forbiddenApi }));
