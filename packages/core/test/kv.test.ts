import { createMemoryApi } from '@k8s-kv/core/testing';
import { describeKvBehaviour } from './behaviour/kv-behaviour.ts';

const api = createMemoryApi({ namespaces: ['default', 'team-a'] });
const forbiddenApi = createMemoryApi({ namespaces: ['default', 'team-a'] });
for (const verb of ['get', 'list', 'watch', 'create', 'patch', 'delete'] as const) forbiddenApi.forbid(verb);

describeKvBehaviour('in-memory port', () => ({ api, namespace: 'team-a', missingNamespace: 'no-such-namespace', forbiddenApi }));
