// A Kubernetes cluster's network, without Kubernetes: "nodes" are network namespaces on a shared
// bridge (`br0` in the wire namespace, where captures run), each node has a pod CIDR, a bridge
// `cni0` holding the pod gateway address and "pods" (namespaces with a veth into cni0, default
// route via the gateway), as the reference `bridge` CNI plugin builds them. Between nodes:
//   - routed ('none'): each node routes every peer's pod CIDR via the peer's node address
//     (what host-gw / Calico without encapsulation / kube-router do);
//   - VXLAN: a `flannel.1` VXLAN device per node (RFC 7348; flannel's vxlan backend), VNI 1, no
//     learning: per peer a route `<peer podCidr> via 10.244.P.0 dev flannel.1 onlink`, a permanent
//     neighbour entry for 10.244.P.0 with the peer VTEP's MAC and an FDB entry sending that MAC to
//     the peer's node address — exactly what flanneld installs from the node annotations.
// Addresses: wire 192.0.2.0/24 (node N at .10+N), pods 10.244.N.0/24 (gateway .1, pods from .2).
// Independent of the agent: the cluster lane adds `kipsec agent` processes to these namespaces.
import { Netns, type Scope } from './netns.js';

export type Overlay = 'none' | { readonly kind: 'vxlan'; readonly port: number };

/** Outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14 (RFC 7348 §5), what flannel subtracts. */
export const VXLAN_OVERHEAD = 50;
/**
 * Room the pods' MTU leaves for IPsec on the wire: ESP tunnel mode (outer IPv4 20, ESP header 8,
 * IV 16, padding ≤ 15, trailer 2, ICV ≤ 32) plus UDP encapsulation 8 (RFC 3948) is at most 101;
 * with AES-GCM it is 73. Transport mode over the overlay's UDP costs less than that.
 */
export const IPSEC_HEADROOM = 100;
export const DEFAULT_WIRE_MTU = 1500;
export const WIRE_BRIDGE = 'br0';
export const VXLAN_IFNAME = 'flannel.1';
const WIRE_PREFIX_LEN = 24;

export interface ClusterOptions {
  /** Number of nodes, at least 2 (node-a, node-b, …). */
  readonly nodes: number;
  readonly podsPerNode: number;
  readonly overlay: Overlay;
  /** MTU of the wire (node eth0 and the switch ports); default 1500. */
  readonly mtu?: number;
  /** MTU of the pods (and cni0, and the VXLAN device); default wire − VXLAN_OVERHEAD (overlay) − IPSEC_HEADROOM. */
  readonly podMtu?: number;
}

export interface ClusterPod {
  /** `<node>-pod-<k>`, e.g. node-a-pod-0. */
  readonly name: string;
  readonly node: string;
  readonly ns: Netns;
  readonly ip: string;
}

export interface Vtep {
  readonly ifname: typeof VXLAN_IFNAME;
  /** The VTEP's address in the pod space: the pod CIDR's network address, as flannel assigns it. */
  readonly ip: string;
  readonly mac: string;
}

export interface ClusterNode {
  readonly name: string;
  /** 1-based: node N has 192.0.2.(10+N) and 10.244.N.0/24. */
  readonly index: number;
  readonly ns: Netns;
  /** The node's address on the wire (eth0). */
  readonly ip: string;
  readonly ifname: 'eth0';
  readonly podCidr: string;
  /** cni0's address, the pods' default gateway. */
  readonly gateway: string;
  readonly pods: ClusterPod[];
  /** The node's port on the wire bridge (in the wire namespace). */
  readonly wirePort: string;
  /** Present in VXLAN mode. */
  readonly vtep: Vtep | undefined;
}

export interface Cluster {
  /** The switch namespace holding bridge br0: the wire, where captures run. */
  readonly wire: Netns;
  readonly nodes: ClusterNode[];
  readonly overlay: Overlay;
  readonly podsPerNode: number;
  readonly mtu: { readonly wire: number; readonly pod: number };
}

/** node-a … node-z, then node-aa, node-ab, … (1-based index). */
export function nodeName(index: number): string {
  let n = index - 1;
  let s = '';
  do { s = String.fromCharCode(97 + (n % 26)) + s; n = Math.floor(n / 26) - 1; } while (n >= 0);
  return `node-${s}`;
}

export function nodeIp(index: number): string { return `192.0.2.${10 + index}`; }
export function podCidr(index: number): string { return `10.244.${index}.0/24`; }

/** The node named `name`; throws listing the nodes there are. */
export function nodeByName(cluster: Cluster, name: string): ClusterNode {
  const n = cluster.nodes.find((x) => x.name === name);
  if (!n) throw new Error(`no node ${name} in the cluster (nodes: ${cluster.nodes.map((x) => x.name).join(', ')})`);
  return n;
}

/** Pod CIDRs by node, the shape the capture classifier takes. */
export function podCidrsOf(cluster: Cluster): Array<{ node: string; cidr: string }> {
  return cluster.nodes.map((n) => ({ node: n.name, cidr: n.podCidr }));
}

/** The overlay's UDP port, or undefined on a routed cluster. */
export function overlayPortOf(cluster: Cluster): number | undefined {
  return cluster.overlay === 'none' ? undefined : cluster.overlay.port;
}

function checkOptions(o: ClusterOptions): { wire: number; pod: number } {
  if (!Number.isInteger(o.nodes) || o.nodes < 2 || o.nodes > 200) throw new Error(`buildCluster: nodes is ${o.nodes}, want 2..200`);
  if (!Number.isInteger(o.podsPerNode) || o.podsPerNode < 0 || o.podsPerNode > 250) throw new Error(`buildCluster: podsPerNode is ${o.podsPerNode}, want 0..250`);
  if (o.overlay !== 'none' && (o.overlay.kind !== 'vxlan' || !Number.isInteger(o.overlay.port) || o.overlay.port < 1 || o.overlay.port > 65535))
    throw new Error(`buildCluster: overlay ${JSON.stringify(o.overlay)} is not 'none' or {kind: 'vxlan', port: 1..65535}`);
  const wire = o.mtu ?? DEFAULT_WIRE_MTU;
  const pod = o.podMtu ?? wire - (o.overlay === 'none' ? 0 : VXLAN_OVERHEAD) - IPSEC_HEADROOM;
  if (wire < 1280 || wire > 9000) throw new Error(`buildCluster: wire MTU ${wire}, want 1280..9000`);
  if (pod < 576 || pod > wire - (o.overlay === 'none' ? 0 : VXLAN_OVERHEAD)) throw new Error(`buildCluster: pod MTU ${pod} does not fit the wire MTU ${wire}`);
  return { wire, pod };
}

/** Run `ip -batch -` (or `bridge -batch -`) in a namespace: one process for many commands. */
async function batch(ns: Netns, tool: 'ip' | 'bridge', lines: readonly string[]): Promise<void> {
  if (lines.length === 0) return;
  await ns.run(tool, ['-batch', '-'], { input: `${lines.join('\n')}\n`, timeoutMs: 30_000 });
}

/** Build the wire, the nodes with their pods, and the routes (or VXLAN entries) between nodes. */
export async function buildCluster(scope: Scope, o: ClusterOptions): Promise<Cluster> {
  const mtu = checkOptions(o);
  const wire = await Netns.create(scope, 'wire');
  // STP off (the default): ports forward at once. No address: br0 is a switch, not a host.
  await batch(wire, 'ip', [`link add ${WIRE_BRIDGE} type bridge`, `link set ${WIRE_BRIDGE} up`]);
  const cluster: Cluster = { wire, nodes: [], overlay: o.overlay, podsPerNode: o.podsPerNode, mtu };
  const built = await Promise.all(Array.from({ length: o.nodes }, (_, i) => createNode(scope, cluster, i + 1)));
  cluster.nodes.push(...built);
  await Promise.all(cluster.nodes.map((n) => connectPeers(cluster, n, cluster.nodes.filter((p) => p !== n))));
  return cluster;
}

/** Add one node (the next index) with its pods, and connect it to every node already there, both ways. */
export async function addNodeToCluster(scope: Scope, cluster: Cluster): Promise<ClusterNode> {
  const index = Math.max(0, ...cluster.nodes.map((n) => n.index)) + 1;
  const node = await createNode(scope, cluster, index);
  const peers = [...cluster.nodes];
  cluster.nodes.push(node);
  await Promise.all([connectPeers(cluster, node, peers), ...peers.map((p) => connectPeers(cluster, p, [node]))]);
  return node;
}

async function createNode(scope: Scope, cluster: Cluster, index: number): Promise<ClusterNode> {
  const name = nodeName(index);
  const ip = nodeIp(index);
  const cidr = podCidr(index);
  const gateway = `10.244.${index}.1`;
  const { wire: wireMtu, pod: podMtu } = cluster.mtu;
  const ns = await Netns.create(scope, name.replace('node-', 'node'));
  const podNs = await Promise.all(Array.from({ length: cluster.podsPerNode }, (_, k) => Netns.create(scope, `${name.replace('node-', '')}pod${k}`)));
  const wirePort = `p-${name.replace('node-', '')}`.slice(0, 15);
  // The node's eth0 is created from the switch side, straight into the node's namespace.
  await batch(cluster.wire, 'ip', [
    `link add ${wirePort} mtu ${wireMtu} type veth peer name eth0 mtu ${wireMtu} netns ${ns.name}`,
    `link set ${wirePort} master ${WIRE_BRIDGE}`,
    `link set ${wirePort} up`,
  ]);
  const lines = [
    `addr add ${ip}/${WIRE_PREFIX_LEN} dev eth0`,
    'link set eth0 up',
    'link add cni0 type bridge',
    `link set cni0 mtu ${podMtu}`,
    `addr add ${gateway}/24 dev cni0`,
    'link set cni0 up',
  ];
  const pods: ClusterPod[] = podNs.map((pns, k) => ({ name: `${name}-pod-${k}`, node: name, ns: pns, ip: `10.244.${index}.${k + 2}` }));
  for (const [k, p] of pods.entries()) {
    const host = `veth${k}`;
    lines.push(`link add ${host} mtu ${podMtu} type veth peer name eth0 mtu ${podMtu} netns ${p.ns.name}`, `link set ${host} master cni0`, `link set ${host} up`);
  }
  let vtep: Vtep | undefined;
  if (cluster.overlay !== 'none') {
    const vtepIp = `10.244.${index}.0`;
    lines.push(
      `link add ${VXLAN_IFNAME} type vxlan id 1 dstport ${cluster.overlay.port} local ${ip} dev eth0 nolearning`,
      `link set ${VXLAN_IFNAME} mtu ${podMtu}`,
      `addr add ${vtepIp}/32 dev ${VXLAN_IFNAME}`,
      `link set ${VXLAN_IFNAME} up`,
    );
    await batch(ns, 'ip', lines);
    vtep = { ifname: VXLAN_IFNAME, ip: vtepIp, mac: await linkMac(ns, VXLAN_IFNAME) };
  } else {
    await batch(ns, 'ip', lines);
  }
  await ns.run('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  await Promise.all(pods.map((p) => batch(p.ns, 'ip', [`addr add ${p.ip}/24 dev eth0`, 'link set eth0 up', `route add default via ${gateway}`])));
  return { name, index, ns, ip, ifname: 'eth0', podCidr: cidr, gateway, pods, wirePort, vtep };
}

async function linkMac(ns: Netns, ifname: string): Promise<string> {
  const out = (await ns.run('ip', ['-j', 'link', 'show', 'dev', ifname])).stdout;
  const parsed: unknown = JSON.parse(out);
  const first: unknown = Array.isArray(parsed) ? parsed[0] : undefined;
  const mac = typeof first === 'object' && first !== null && 'address' in first ? first.address : undefined;
  if (typeof mac !== 'string' || !/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(mac)) throw new Error(`no MAC for ${ifname} in ${ns.name}: ${out}`);
  return mac;
}

/** Make `node` reach each peer's pod CIDR: a route via the peer (routed), or the VXLAN entries. */
async function connectPeers(cluster: Cluster, node: ClusterNode, peers: readonly ClusterNode[]): Promise<void> {
  if (peers.length === 0) return;
  if (cluster.overlay === 'none') {
    await batch(node.ns, 'ip', peers.map((p) => `route replace ${p.podCidr} via ${p.ip} dev eth0`));
    return;
  }
  const ip: string[] = [];
  const fdb: string[] = [];
  for (const p of peers) {
    if (!p.vtep) throw new Error(`${p.name} has no VXLAN device`);
    ip.push(`neigh replace ${p.vtep.ip} lladdr ${p.vtep.mac} dev ${VXLAN_IFNAME} nud permanent`,
      `route replace ${p.podCidr} via ${p.vtep.ip} dev ${VXLAN_IFNAME} onlink`);
    fdb.push(`fdb replace ${p.vtep.mac} dev ${VXLAN_IFNAME} dst ${p.ip} self permanent`);
  }
  await batch(node.ns, 'ip', ip);
  await batch(node.ns, 'bridge', fdb);
}
