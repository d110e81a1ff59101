// The "cloud" of the gateway-tunnel tests on the apiserver lane (e2e/apiserver/tunnel-gateway*.test.ts):
// a namespace on the cluster's wire bridge with the cloud VPN gateway's address(es) and a VPC host
// on its loopback, charon with kernel-libipsec (the host kernel has no ESP) answering for the VPC.
// The agents run `--datapath auto`, which picks the userspace data path here. The cluster lane's VM
// has kernel ESP: its tests pass `mode: 'kernel'` and charon uses the kernel's XFRM.
import { WIRE_BRIDGE, type Cluster } from './cluster-net.js';
import { Netns, type Scope } from './netns.js';
import { StrongSwan } from './strongswan.js';

export const CLOUD_IKE = 'aes256gcm16-prfsha384-x25519';
export const CLOUD_IP = '192.0.2.100';
export const VPC_NET = '10.99.0.0/24';
export const VPC_HOST = '10.99.0.10';
/** An address every gateway node holds (as kube-proxy in IPVS mode puts a ClusterIP on every node). */
export const SERVICE_NET = '10.96.0.0/16';
export const SERVICE_IP = '10.96.0.10';
export const AUTO_DATAPATH = { args: ['--datapath', 'auto'], why: 'the host kernel has no ESP: the agents choose the userspace data path' };

export interface Cloud { readonly ns: Netns; readonly swan: StrongSwan }

/** The cloud namespace on `c`'s wire with `addresses` (the first is CLOUD_IP's /24 peer), VPC_HOST, and charon. */
export async function startCloud(t: Scope, c: Pick<Cluster, 'wire'>, swan: { readonly swanctl: string; readonly files?: Readonly<Record<string, string>>; readonly mode?: 'kernel' | 'libipsec' }, addresses: readonly string[] = [CLOUD_IP]): Promise<Cloud> {
  const ns = await Netns.create(t, 'cloud');
  await c.wire.run('ip', ['-batch', '-'], { input: `link add p-cloud type veth peer name eth0 netns ${ns.name}\nlink set p-cloud master ${WIRE_BRIDGE}\nlink set p-cloud up\n` });
  await ns.run('ip', ['-batch', '-'], { input: `${addresses.map((a) => `addr add ${a}/24 dev eth0\n`).join('')}link set eth0 up\nlink set lo up\naddr add ${VPC_HOST}/24 dev lo\n` });
  const s = await StrongSwan.start(t, ns, { mode: swan.mode ?? 'libipsec', swanctl: swan.swanctl, logIkeName: true, ...(swan.files ? { files: swan.files } : {}) });
  return { ns, swan: s };
}
