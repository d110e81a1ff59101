// How large may an IPsecNode's status grow before the apiserver (etcd) refuses it, with one full
// status.peers entry per mesh peer as agents wrote them before status.peersListed? Not a test: it
// prints the size of each write and whether it was accepted.
//   KIPSEC_KUBECONFIG=$(bash e2e/apiserver.sh start | tail -1) node --import tsx bench/ipsecnode-status-size.ts
import { adminClient, installKipsecCrds } from '../e2e/apiserver/support.js';
import { RESOURCES, resourcePath } from '../src/api/kube/client.js';
const kube = adminClient();
await installKipsecCrds(kube);
const name = 'big-status-probe';
const path = resourcePath(RESOURCES.ipsecNodes, { name });
await kube.delete(path).catch(() => undefined);
await kube.create(resourcePath(RESOURCES.ipsecNodes), { apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecNode', metadata: { name }, spec: { endpoint: { address: '10.0.0.1', ikePort: 500, nattPort: 4500 }, podCIDRs: ['10.244.0.0/24'] } }).catch((e: unknown) => { console.log('create', String(e).slice(0, 300)); });
const entry = (i: number) => ({ node: `ip-10-0-${i >> 8}-${i & 255}.eu-west-1.compute.internal`, state: 'established', role: 'initiator', address: `10.0.${i >> 8}.${i & 255}`, ikeSuite: 'aes256gcm16-prfsha384-x25519', espSuite: 'aes256gcm16', ikeSpis: '0123456789abcdef_i 0123456789abcdef_r', children: [{ name: 'pods', mode: 'tunnel', spiIn: 'c1234567', spiOut: 'c7654321' }], establishedTime: '2026-12-07T12:00:00Z', lastRekeyTime: '2026-12-07T12:30:00Z', bytesIn: 123456789, bytesOut: 123456789, packetsIn: 123456, packetsOut: 123456 });
for (const n of [100, 1000, 2000, 3000, 4000, 5000]) {
  const peers = Array.from({ length: n }, (_, i) => entry(i));
  const cur = await kube.get<{ metadata: { resourceVersion: string } }>(path);
  const body = { apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecNode', metadata: { name, resourceVersion: cur.metadata.resourceVersion }, status: { peers, peersUp: n, peersExpected: n, lastUpdateTime: '2026-12-07T12:31:00Z' } };
  const bytes = JSON.stringify(body).length;
  const t0 = Date.now();
  try { await kube.update(resourcePath(RESOURCES.ipsecNodes, { name, sub: 'status' }), body); console.log(`${n} peers: ${(bytes / 1024).toFixed(0)} KiB accepted in ${Date.now() - t0} ms`); }
  catch (e) { console.log(`${n} peers: ${(bytes / 1024).toFixed(0)} KiB REFUSED: ${String((e as Error).message ?? e).slice(0, 200)}`); }
}
await kube.delete(path).catch(() => undefined);
kube.close();
