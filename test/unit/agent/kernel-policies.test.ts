// src/agent/kernel-policies.ts: what the kernel port keeps per Child SA policy is shared where equal
// (a CIDR's text, a selector between Child SAs with the same subnets, in and fwd's selector and
// templates), never where the kernel tells policies apart (ports, protocol, direction, mark, if_id:
// policyKey), and the owner map still hands a policy back only to the reqid that holds it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PolicyOwners, policyKey, toPolicySpecs, tsCidr } from '../../../src/agent/kernel-policies.js';
import type { KernelPolicy, TrafficSelector } from '../../../src/ike/ports.js';

const ts = (cidr: string, port = 0): TrafficSelector => {
  const [a, p] = cidr.split('/');
  return { family: 'ipv4', startAddress: a!, endAddress: a!, prefixLength: Number(p), protocol: port ? 6 : 0, startPort: port, endPort: port || 65535 };
};
const policies = (local: string, remote: string, gw: string): KernelPolicy[] => [
  { direction: 'out', source: ts(local), destination: ts(remote), tunnelSource: '192.0.2.1', tunnelDestination: gw, priority: 100 },
  { direction: 'in', source: ts(remote), destination: ts(local), tunnelSource: gw, tunnelDestination: '192.0.2.1', priority: 100 },
  { direction: 'fwd', source: ts(remote), destination: ts(local), tunnelSource: gw, tunnelDestination: '192.0.2.1', priority: 100 },
];
const c = { mode: 'tunnel', ifId: null, mark: null } as const;

test('kernel policies: Child SAs of two gateways for the same subnets share selectors and CIDR texts, not templates', () => {
  const [aOut, aIn, aFwd] = toPolicySpecs(policies('10.1.0.0/16', '10.2.0.0/16', '192.0.2.2'), c, 1);
  const [bOut, bIn] = toPolicySpecs(policies('10.1.0.0/16', '10.2.0.0/16', '192.0.2.3'), c, 2);
  assert.equal(aIn!.selector, aFwd!.selector);
  assert.equal(aIn!.templates, aFwd!.templates, 'in and fwd: one template list');
  assert.equal(aOut!.selector, bOut!.selector);
  assert.equal(aIn!.selector, bIn!.selector);
  assert.notEqual(aIn!.templates, bIn!.templates, 'templates name the tunnel: never shared between tunnels');
  assert.deepEqual(bIn!.templates, [{ src: '192.0.2.3', dst: '192.0.2.1', proto: 'esp', reqid: 2, mode: 'tunnel' }]);
  const [other] = toPolicySpecs(policies('10.1.0.0/16', '10.3.0.0/16', '192.0.2.2'), c, 1);
  assert.deepEqual(other!.selector, { src: '10.1.0.0/16', dst: '10.3.0.0/16' });
  assert.equal(tsCidr(ts('10.1.0.0/16')), aOut!.selector.src, 'one text per CIDR');
});

test('kernel policies: policyKey tells apart what the kernel tells apart (direction, ports, protocol, mark, if_id)', () => {
  const sel = { src: '10.1.0.0/16', dst: '10.2.0.0/16' };
  const keys = [
    { selector: sel, dir: 'out' as const }, { selector: sel, dir: 'in' as const },
    { selector: { ...sel, proto: 6, dport: 443 }, dir: 'out' as const }, { selector: { ...sel, proto: 6, sport: 443 }, dir: 'out' as const },
    { selector: sel, dir: 'out' as const, mark: { value: 1, mask: 0xff } }, { selector: sel, dir: 'out' as const, mark: { value: 1, mask: 0xf } },
    { selector: sel, dir: 'out' as const, ifId: 9 },
  ].map(policyKey);
  assert.equal(new Set(keys).size, keys.length);
  assert.equal(policyKey({ selector: { ...sel }, dir: 'out' }), keys[0], 'by value, not by object');
  const owners = new PolicyOwners();
  const [out] = toPolicySpecs(policies('10.1.0.0/16', '10.2.0.0/16', '192.0.2.2'), c, 1);
  owners.own([out!], 1);
  owners.own([out!], 2);
  assert.deepEqual(owners.disown([out!], 1), [], 'reqid 2 took the policy over');
  assert.equal(owners.disown([out!], 2).length, 1);
});
