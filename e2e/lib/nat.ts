// A NAT between two namespaces for NAT-T tests: `inside` (10.0.0.2) behind `router` (10.0.0.1 |
// 203.0.113.1) doing NAPT with nftables, `outside` at 203.0.113.2. UDP leaves the router from a
// random port of a range (so neither 500 nor 4500 keeps its port, as in e2e/vm/agent-natt.test.ts);
// remapTo() moves that range and forgets the mappings, as a NAT rebooting or timing out does.
import { link, Netns, type Scope } from './netns.js';

export const NAT_INSIDE = '10.0.0.2';
export const NAT_PUBLIC = '203.0.113.1';
export const NAT_OUTSIDE = '203.0.113.2';

const rules = (lo: number, hi: number): string => `add table ip kipsec_nat
flush table ip kipsec_nat
add chain ip kipsec_nat postrouting { type nat hook postrouting priority srcnat; policy accept; }
add rule ip kipsec_nat postrouting oifname "eth1" ip saddr 10.0.0.0/24 meta l4proto udp masquerade to :${lo}-${hi} random
add rule ip kipsec_nat postrouting oifname "eth1" ip saddr 10.0.0.0/24 masquerade
`;

export interface NatTopology {
  readonly inside: Netns;
  readonly router: Netns;
  readonly outside: Netns;
  /** New UDP source ports from lo..hi, existing mappings dropped (conntrack -F). */
  remapTo(lo: number, hi: number): Promise<void>;
}

export async function natTopology(t: Scope, ports: { lo: number; hi: number } = { lo: 20000, hi: 29999 }): Promise<NatTopology> {
  const inside = await Netns.create(t, 'natIn');
  const router = await Netns.create(t, 'natR');
  const outside = await Netns.create(t, 'natOut');
  await link(inside, `${NAT_INSIDE}/24`, router, '10.0.0.1/24', 'eth0', 'eth0');
  await link(router, `${NAT_PUBLIC}/24`, outside, `${NAT_OUTSIDE}/24`, 'eth1', 'eth0');
  await router.run('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  await inside.run('ip', ['route', 'add', 'default', 'via', '10.0.0.1']);
  await router.run('nft', ['-f', '-'], { input: rules(ports.lo, ports.hi) });
  return {
    inside, router, outside,
    async remapTo(lo, hi) {
      await router.run('nft', ['-f', '-'], { input: rules(lo, hi) });
      await router.run('conntrack', ['-F'], { check: false });
    },
  };
}
