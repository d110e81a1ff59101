// IPsecTunnel with certificate authentication on a gateway node (DESIGN.md §3, §4), on this host's
// kernel (userspace data path) with the lane's real kube-apiserver, as tunnel-gateway.test.ts does
// for PSK. One node labelled kipsec.io/gateway=true runs a cluster-mode agent; a "cloud" namespace
// runs strongSwan's charon as the remote VPN gateway with its own certificate from a test CA ("cloud
// VPN CA"), trusting the cluster CA it was given from the operator's trust bundle (ConfigMap
// kipsec-trust-bundle, key ca.crt), as docs/gateway-tunnels.md tells an admin to do. What the product
// promises: the gateway presents the node certificate the operator issued (IKE ID: the node name),
// checks charon's against the CA bundle in spec.auth.certificate.caSecretRef; the tunnel comes up,
// traffic crosses it, IPsecTunnel.status says Established; after `kipsec renew` the next IKE_AUTH
// presents the renewed certificate, with no agent restart; a CA bundle that did not issue charon's
// certificate shows the chain error in status and as a Warning Event; a bundle that is not PEM
// shows which Secret and what is wrong.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { execFile } from 'node:child_process';
import { RESOURCES, resourcePath } from '../../src/api/kube/client.js';
import { TRUST_BUNDLE_CONFIGMAP, TRUST_BUNDLE_KEY } from '../../src/api/names.js';
import type { IPsecTunnel } from '../../src/api/types.js';
import { createCa, createCsr, exportPrivateKeyPem, generateKeyPair, issueNodeCertificate, parseCsr } from '../../src/pki/index.js';
import { nodeByName } from '../lib/cluster-net.js';
import { eventually, uniqueName } from '../lib/kube.js';
import { hostLaneSocket } from '../lib/lane-kube.js';
import { startMeshLane } from '../lib/mesh-lane.js';
import { StrongSwan } from '../lib/strongswan.js';
import { AUTO_DATAPATH, CLOUD_IKE, CLOUD_IP, SERVICE_IP, SERVICE_NET, VPC_HOST, VPC_NET, startCloud } from '../lib/cloud-gateway.js';
import { pingCounts } from '../lib/traffic.js';
import { agentBundle } from '../vm/agent-harness.js';
import { repoPath } from '../../test/lib/paths.js';
import { deleteQuietly } from './support.js';

const IKE = CLOUD_IKE;
const AUTO = AUTO_DATAPATH;
const CLOUD_ID = 'vpn.cloud.test';

/** charon as docs/gateway-tunnels.md shows it: its own certificate, the cluster CA as the only CA it accepts for the gateways. */
function swanConf(clusterCas: number): string {
  return `connections {
  vpc {
    version = 2
    local_addrs = ${CLOUD_IP}
    remote_addrs = %any
    proposals = ${IKE}
    local {
      auth = pubkey
      certs = cloud.crt
      id = ${CLOUD_ID}
    }
    remote {
      auth = pubkey
      cacerts = ${Array.from({ length: clusterCas }, (_, i) => `cluster-ca-${i}.crt`).join(',')}
      id = %any
    }
    children {
      vpc {
        local_ts = ${VPC_NET}
        remote_ts = ${SERVICE_NET},10.244.0.0/16
        esp_proposals = aes256gcm16
        start_action = none
      }
    }
  }
}
`;
}

const sha256 = (der: Buffer): string => createHash('sha256').update(der).digest('hex');

test('IPsecTunnel with certificate authentication: the gateway presents the operator-issued node certificate and trusts the caSecretRef bundle; Established, traffic crosses, a renewed certificate is presented at the next IKE_AUTH without a restart; a wrong CA bundle shows the chain error in status and as an Event; a bundle that is not PEM names the Secret', { timeout: 240_000 }, async (t) => {
  assert.equal(process.getuid?.(), 0, 'this test builds network namespaces: run it as root (the lanes do)');
  assert.ok(StrongSwan.available(), 'strongSwan (charon, swanctl, libipsec) is not installed: scripts/setup.sh installs it');
  await hostLaneSocket(t);
  const lane = await startMeshLane(t, { nodes: 2, overlay: 'none', mesh: { datapath: 'auto' }, label: 'gwc', agentArgs: AUTO });
  const { kube, cluster: c, install } = lane;
  const ns = install.namespace;
  const a = nodeByName(c, 'node-a');

  // The remote side's PKI: a test CA and charon's certificate for vpn.cloud.test.
  const now = Date.now();
  const cloudCa = await createCa(await generateKeyPair(), 'cloud VPN CA', now);
  const otherCa = await createCa(await generateKeyPair(), 'some other CA', now);
  const cloudKeys = await generateKeyPair();
  const cloudCsr = await parseCsr(await createCsr(cloudKeys, CLOUD_ID));
  const cloudCert = issueNodeCertificate(cloudCa, cloudCsr, { nowMs: now, lifetimeMs: 3_600_000, dnsNames: [CLOUD_ID] });

  await lane.startOperator();
  await lane.applyMesh({ datapath: 'auto' });
  await lane.startAgent(a);
  await lane.waitAllUp(90_000, [a]); // node-b (buildCluster's minimum) runs no agent

  // The admin's step for the remote side: the cluster CA from the operator's trust bundle.
  const bundle = (await kube.get<{ data?: Record<string, string> }>(resourcePath(RESOURCES.configMaps, { namespace: ns, name: TRUST_BUNDLE_CONFIGMAP }))).data?.[TRUST_BUNDLE_KEY] ?? '';
  const clusterCas = [...bundle.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g)].map((m) => m[0]);
  assert.ok(clusterCas.length >= 1, `ConfigMap ${ns}/${TRUST_BUNDLE_CONFIGMAP} holds the cluster CA: ${bundle}`);
  const { swan } = await startCloud(t, c, {
    swanctl: swanConf(clusterCas.length),
    files: { 'x509/cloud.crt': cloudCert.pem, 'pkcs8/cloud.key': await exportPrivateKeyPem(cloudKeys), ...Object.fromEntries(clusterCas.map((p, i) => [`x509ca/cluster-ca-${i}.crt`, p])) },
  });
  await a.ns.run('ip', ['addr', 'add', `${SERVICE_IP}/32`, 'dev', 'lo']);
  await kube.mergePatch(resourcePath(RESOURCES.nodes, { name: a.name }), { metadata: { labels: { 'kipsec.io/gateway': 'true' } } });

  // The CA bundles as Secrets, readable by the agents by name only (deploy/rbac.yaml), as PSK Secrets are.
  const good = uniqueName('gwc-vpc');
  const wrongCa = uniqueName('gwc-wrongca');
  const notPem = uniqueName('gwc-notpem');
  const bundles = { [good]: cloudCa.cert.toString('pem'), [wrongCa]: otherCa.cert.toString('pem'), [notPem]: 'this is not a certificate' };
  for (const [name, pem] of Object.entries(bundles)) {
    await kube.create(resourcePath(RESOURCES.secrets, { namespace: ns }), { apiVersion: 'v1', kind: 'Secret', metadata: { name }, data: { 'ca.crt': Buffer.from(pem).toString('base64') } });
  }
  const roles = { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'roles' } as const;
  const bindings = { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'rolebindings' } as const;
  await kube.create(resourcePath(roles, { namespace: ns }), { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'kipsec-agent-tunnel-ca' }, rules: [{ apiGroups: [''], resources: ['secrets'], resourceNames: Object.keys(bundles), verbs: ['get'] }] });
  await kube.create(resourcePath(bindings, { namespace: ns }), { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'kipsec-agent-tunnel-ca' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'kipsec-agent-tunnel-ca' }, subjects: [{ kind: 'ServiceAccount', name: 'kipsec-agent', namespace: ns }] });

  const tunnelPath = (name: string): string => resourcePath(RESOURCES.ipsecTunnels, { name });
  t.after(async () => {
    for (const name of Object.keys(bundles)) {
      await kube.mergePatch(tunnelPath(name), { metadata: { finalizers: [] } }).catch(() => undefined);
      await deleteQuietly(kube, tunnelPath(name));
    }
  });
  const apply = async (name: string, remoteSubnet: string): Promise<void> => {
    await kube.create(resourcePath(RESOURCES.ipsecTunnels), {
      apiVersion: 'kipsec.io/v1alpha1', kind: 'IPsecTunnel', metadata: { name },
      spec: {
        local: { subnets: [SERVICE_NET, '10.244.0.0/16'] },
        remote: { address: CLOUD_IP, id: CLOUD_ID, subnets: [remoteSubnet] },
        auth: { certificate: { caSecretRef: { name, namespace: ns } } },
        ike: { proposals: [IKE] }, esp: { proposals: ['aes256gcm16'] },
      },
    });
  };
  const tunnel = (name: string): Promise<IPsecTunnel> => kube.get<IPsecTunnel>(tunnelPath(name));
  const events = async (name: string): Promise<{ reason: string; note: string; type: string }[]> =>
    (await kube.get<{ items: { reason: string; note: string; type: string; regarding: { kind: string; name: string } }[] }>(resourcePath(RESOURCES.events, { namespace: 'default' }))).items
      .filter((e) => e.regarding.kind === 'IPsecTunnel' && e.regarding.name === name);
  const explain = (name: string) => ({ what: `IPsecTunnel ${name}`, state: async () => `${JSON.stringify((await tunnel(name).catch(() => undefined))?.status, null, 1)}\n${lane.logs(2500)}\n--- charon ---\n${swan.log().slice(-2500)}` });
  const kipsec = (args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> => new Promise((resolve) => {
    execFile(process.execPath, [agentBundle(), ...args, '--control-socket', lane.controlSocket(a)], { cwd: repoPath(), timeout: 60_000, killSignal: 'SIGKILL', encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
  /** The node certificate charon last received from the gateway (its cache, `swanctl --list-certs --pem`): SHA-256 of the DER. */
  const charonSees = async (): Promise<string[]> => {
    const r = await swan.swanctl(['--list-certs', '--pem'], false);
    return [...r.stdout.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)].map((m) => new X509Certificate(m[0])).filter((x) => x.subject === `CN=${a.name}`).map((x) => sha256(x.raw));
  };

  const t0 = Date.now();
  await apply(good, VPC_NET);
  const up = await eventually(async () => {
    const st = (await tunnel(good)).status;
    const g = st?.gateways?.find((x) => x.role === 'active');
    return g?.childSaState === 'established' && st?.conditions?.some((x) => x.type === 'Established' && x.status === 'True') ? st : undefined;
  }, 30_000, 250, explain(good));
  t.diagnostic(`certificate tunnel established and reported ${((Date.now() - t0) / 1000).toFixed(1)} s after it was applied`);

  await t.test('Established: status names the node as active gateway with the negotiated suite; charon authenticated the gateway as its node name with a certificate from the cluster CA; traffic crosses', async () => {
    assert.equal(up.activeGateway, a.name);
    assert.equal(up.conditions?.find((x) => x.type === 'Ready')?.status, 'True', JSON.stringify(up.conditions));
    const g = up.gateways!.find((x) => x.role === 'active')!;
    assert.equal(g.ikeSaState, 'established');
    assert.match(g.negotiatedSuite ?? '', /ESP:aes256gcm16/);
    assert.equal(g.lastError, undefined, JSON.stringify(g.lastError));
    const sas = await swan.listSas();
    assert.match(sas, new RegExp(`remote '${a.name}' @ ${a.ip.replace(/\./g, '\\.')}`), sas);
    assert.match(swan.log(), new RegExp(`authentication of '${a.name}' with ECDSA[^\\n]* successful`), 'charon verified our signature against the node certificate');
    const ping = await a.ns.run('ping', ['-n', '-c', '3', '-i', '0.2', '-W', '2', '-I', SERVICE_IP, VPC_HOST], { check: false, timeoutMs: 20_000 });
    assert.equal(pingCounts(ping.stdout).received, 3, `${ping.stdout}\n${sas}`);
  });

  await t.test('`kipsec renew` on the gateway: the next IKE_AUTH (`kipsec rekey --reauth`) presents the renewed certificate, the agent not restarted', async (tt) => {
    const pid = lane.agents.get(a.name)!.pid;
    const before = await charonSees();
    const r = await kipsec(['renew']);
    assert.equal(r.code, 0, `kipsec renew: ${r.stderr}${r.stdout}`);
    const fp = /node certificate renewed: sha256 ([0-9a-f]{64})/.exec(r.stdout)?.[1];
    assert.ok(fp, r.stdout);
    assert.ok(!before.includes(fp), 'charon has not seen the renewed certificate before the re-authentication');
    // The engine takes the new credentials with the next recompute (200 ms debounce); reauth until charon holds them.
    await eventually(async () => {
      await kipsec(['rekey', good, '--reauth']);
      return (await charonSees()).includes(fp) ? true : undefined;
    }, 20_000, 1_000, { what: `charon received the renewed certificate ${fp}`, state: async () => `${(await charonSees()).join(', ')}\n${lane.logs(2000)}` });
    assert.equal(lane.agents.get(a.name)!.pid, pid, 'the same agent process');
    const st = await eventually(async () => { const s = (await tunnel(good)).status; return s?.gateways?.[0]?.childSaState === 'established' ? s : undefined; }, 15_000, 250, explain(good));
    tt.diagnostic(`renewed certificate ${fp.slice(0, 16)}… presented at the re-authentication; tunnel ${st.gateways?.[0]?.ikeSaState}`);
    const ping = await a.ns.run('ping', ['-n', '-c', '3', '-i', '0.2', '-W', '2', '-I', SERVICE_IP, VPC_HOST], { check: false, timeoutMs: 20_000 });
    assert.equal(pingCounts(ping.stdout).received, 3, ping.stdout);
  });

  await t.test('a CA bundle that did not issue charon\'s certificate: the chain error in IPsecTunnel.status and as a Warning Event; a bundle that is not PEM: which Secret and what is wrong', async (tt) => {
    const appliedAt = Date.now();
    await apply(wrongCa, '10.98.0.0/24');
    await apply(notPem, '10.97.0.0/24');
    const st = await eventually(async () => {
      const s = (await tunnel(wrongCa)).status;
      return s?.gateways?.find((x) => x.role === 'active')?.lastError ? s : undefined;
    }, 30_000, 250, explain(wrongCa));
    const g = st.gateways!.find((x) => x.role === 'active')!;
    tt.diagnostic(`wrong CA reported ${((Date.now() - appliedAt) / 1000).toFixed(1)} s after the tunnel was applied: ${JSON.stringify(g.lastError)}`);
    assert.match(g.lastError?.message ?? '', /no path from "CN=vpn\.cloud\.test" to a configured CA/, JSON.stringify(g.lastError));
    assert.equal(g.lastError?.notify, 'AUTHENTICATION_FAILED', JSON.stringify(g.lastError));
    assert.equal(st.conditions?.find((x) => x.type === 'Established')?.status, 'False');
    const ev = await eventually(async () => (await events(wrongCa)).find((e) => e.reason === 'GatewayError'), 15_000, 250, explain(wrongCa));
    assert.equal(ev.type, 'Warning');
    assert.match(ev.note, /no path from "CN=vpn\.cloud\.test" to a configured CA/);
    tt.diagnostic(`Event GatewayError: ${ev.note}`);
    const bad = await eventually(async () => (await tunnel(notPem)).status?.gateways?.find((x) => x.role === 'active')?.lastError, 15_000, 250, explain(notPem));
    assert.equal(bad.message, `the CA Secret ${ns}/${notPem} (key "ca.crt") holds no PEM certificate (-----BEGIN CERTIFICATE-----)`, JSON.stringify(bad));
    // The working tunnel is untouched by its neighbours' failures.
    assert.equal((await tunnel(good)).status?.gateways?.[0]?.childSaState, 'established');
  });
});
