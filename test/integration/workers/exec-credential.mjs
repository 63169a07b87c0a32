// An exec credential plugin, as EKS (`aws eks get-token`) and GKE (gke-gcloud-auth-plugin) put into
// kubeconfigs: prints an ExecCredential holding the token in the file K8S_KV_EXEC_TOKEN_FILE, valid
// for K8S_KV_EXEC_TTL_MS, and appends the credential's expiry to K8S_KV_EXEC_LOG on every run.
import { appendFileSync, readFileSync } from 'node:fs';

const token = readFileSync(process.env.K8S_KV_EXEC_TOKEN_FILE, 'utf8').trim();
const expirationTimestamp = new Date(Date.now() + Number(process.env.K8S_KV_EXEC_TTL_MS)).toISOString();
appendFileSync(process.env.K8S_KV_EXEC_LOG, `${expirationTimestamp}\n`);
process.stdout.write(JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token, expirationTimestamp } }));
