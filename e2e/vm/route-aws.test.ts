// Kernel lane: route mode with `profile: aws` against charon set up the way AWS's Site-to-Site VPN
// tunnel options describe its side (docs/profiles/aws.md, src/api/profiles/aws.ts): responder only
// (startup action "Add"), IKE aes256gcm16-prfsha384-ecp384 / aes256-sha256-modp2048, ESP
// aes256gcm16-ecp384 with PFS, traffic selectors 0.0.0.0/0 ↔ 0.0.0.0/0, a route-based tunnel on its
// side too (an XFRM interface, inside address 169.254.10.1/30, the customer's subnet routed over
// it), DPD. The "VPC" is 172.31.0.0/16 behind it. kipsec's IPsecTunnel holds only the profile,
// the addresses, the subnets, the PSK and the interface's ifId/inside address. RFC 7296 §2.9
// (selectors), Linux XFRM interfaces (if_id on states and policies).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pair } from '../lib/netns.js';
import { StrongSwan } from '../lib/strongswan.js';
import { AgentProcess, ContinuousPing, pollUntil } from './agent-harness.js';
import { prepareVm } from './agent-vm.js';

prepareVm();
const PSK = 'kipsec e2e aws profile: correct horse battery staple';

const SWANCTL = `connections {
  aws {
    version = 2
    local_addrs = 192.0.2.2
    remote_addrs = 192.0.2.1
    proposals = aes256gcm16-prfsha384-ecp384, aes256-sha256-modp2048
    dpd_delay = 10s
    rekey_time = 8h
    local {
      auth = psk
      id = 192.0.2.2
    }
    remote {
      auth = psk
      id = 192.0.2.1
    }
    children {
      aws {
        local_ts = 0.0.0.0/0
        remote_ts = 0.0.0.0/0
        esp_proposals = aes256gcm16-ecp384, aes256-sha256-modp2048
        if_id_in = 42
        if_id_out = 42
        rekey_time = 1h
        start_action = none
        dpd_action = clear
      }
    }
  }
}
secrets {
  ike-aws {
    id-a = 192.0.2.2
    id-b = 192.0.2.1
    secret = "${PSK}"
  }
}
`;

const TUNNEL = `apiVersion: kipsec.io/v1alpha1
kind: IPsecTunnel
metadata: {name: to-aws}
spec:
  profile: aws
  local: {address: 192.0.2.1, subnets: [10.1.0.0/16]}
  remote: {address: 192.0.2.2, subnets: [172.31.0.0/16]}
  auth: {psk: {file: psk}}
  xfrmInterface: {ifId: 41, insideAddress: 169.254.10.2/30, remoteInsideAddress: 169.254.10.1}
`;

test('route mode, profile aws, against charon acting as the AWS end: 0.0.0.0/0 selectors with if_id, the XFRM interface with the inside /30, MTU 1446 and the VPC route; pings to the VPC and back and to the inside address; a Child SA rekey under ping without loss; SIGTERM removes the interface', async (t) => {
  const [a, b] = await pair(t, { a: '192.0.2.1/24', b: '192.0.2.2/24' });
  await a.run('ip', ['addr', 'add', '10.1.0.1/32', 'dev', 'lo']);
  await b.run('ip', ['addr', 'add', '172.31.0.1/32', 'dev', 'lo']);
  // The AWS end's own route-based setup: its interface, inside address and route back to us.
  await b.run('ip', ['link', 'add', 'xfrm42', 'type', 'xfrm', 'dev', 'eth0', 'if_id', '42']);
  await b.run('ip', ['addr', 'add', '169.254.10.1/30', 'dev', 'xfrm42']);
  await b.run('ip', ['link', 'set', 'xfrm42', 'up']);
  await b.run('ip', ['route', 'add', '10.1.0.0/16', 'dev', 'xfrm42', 'src', '172.31.0.1']);
  // install_routes = no: a 0.0.0.0/0 selector must not become a route in table 220 (the interface routes).
  const swan = await StrongSwan.start(t, b, { mode: 'kernel', swanctl: SWANCTL, charonExtra: 'install_routes = no' });
  const agent = await AgentProcess.start(t, a, { config: TUNNEL, files: { psk: `${PSK}\n` } });
  const why = async (): Promise<string> => `kipsec:\n${await agent.table()}\n${agent.log().slice(-4000)}\nswanctl --list-sas:\n${await swan.listSas()}\ncharon log:\n${swan.log().slice(-3000)}`;

  const up = await agent.waitEstablished('to-aws', 120_000).catch(async (e: unknown) => { throw new Error(`${String(e)}\n${await why()}`, { cause: e }); });
  assert.equal(up.role, 'initiator', 'the AWS end only responds; kipsec initiates');
  assert.equal(up.ikeSuite, 'aes256gcm16-prfsha384-ecp384', 'AWS took the first proposal of the profile');
  const child = up.children.find((c) => c.state === 'installed')!;
  assert.match(child.suite, /^aes256gcm16/);
  const link = await a.run('ip', ['-d', 'link', 'show', 'type', 'xfrm']);
  assert.match(link.stdout, /mtu 1446\b/, `the interface has the AWS MTU:\n${link.stdout}`);
  assert.match(link.stdout, /if_id 0x29\b/, 'if_id 41');
  assert.match(link.stdout, /alias kipsec:to-aws/);
  const ifname = /^\d+: ([^:@]+)[:@]/m.exec(link.stdout)?.[1] ?? '';
  assert.match((await a.run('ip', ['-4', 'addr', 'show', 'dev', ifname])).stdout, /inet 169\.254\.10\.2\/30/);
  assert.match((await a.run('ip', ['route', 'show', '172.31.0.0/16'])).stdout, new RegExp(`dev ${ifname}\\b`), 'the VPC is routed over the interface');
  const xs = (await a.run('ip', ['xfrm', 'state'])).stdout;
  assert.equal((xs.match(/if_id 0x29/g) ?? []).length, 2, `both states carry if_id 41:\n${xs}`);
  const xp = (await a.run('ip', ['xfrm', 'policy'])).stdout;
  assert.match(xp, /src 0\.0\.0\.0\/0 dst 0\.0\.0\.0\/0[\s\S]*?if_id 0x29/, `0.0.0.0/0 policies with if_id 41:\n${xp}`);
  const swanChild = (await swan.childSas()).find((c) => c.name === 'aws' && c.state === 'INSTALLED');
  assert.ok(swanChild && swanChild.spiOut === child.spiIn && swanChild.spiIn === child.spiOut, `SPIs agree with the AWS end: ${JSON.stringify(swanChild)} vs ${child.spiIn}/${child.spiOut}\n${await why()}`);

  for (const [ns, src, dst] of [[a, '10.1.0.1', '172.31.0.1'], [b, '172.31.0.1', '10.1.0.1'], [a, '169.254.10.2', '169.254.10.1']] as const) {
    const p = await ns.run('ping', ['-c', '3', '-i', '0.2', '-W', '3', '-I', src, dst], { timeoutMs: 30_000, check: false });
    assert.match(p.stdout, /3 received/, `${src} → ${dst}:\n${p.stdout}${p.stderr}\n${await why()}`);
  }
  const big = await a.run('ping', ['-c', '2', '-M', 'do', '-s', String(1446 - 28), '-I', '10.1.0.1', '172.31.0.1'], { timeoutMs: 30_000, check: false });
  assert.match(big.stdout, /2 received/, `a full 1446-byte packet crosses with DF set:\n${big.stdout}${big.stderr}`);

  const ping = new ContinuousPing(a, '10.1.0.1', '172.31.0.1');
  await new Promise((r) => setTimeout(r, 1_000));
  const r = await agent.kipsec(['rekey', 'to-aws', '--child']);
  assert.equal(r.code, 0, r.stderr);
  const rekeyed = await pollUntil('a new Child SA on both ends', 60_000, async () => {
    const s = await agent.tunnel('to-aws');
    const ours = s.children.filter((c) => c.state === 'installed');
    const theirs = (await swan.childSas()).filter((c) => c.name === 'aws' && c.state === 'INSTALLED');
    return ours.length === 1 && ours[0]!.spiIn !== child.spiIn && theirs.length === 1 && theirs[0]!.spiOut === ours[0]!.spiIn ? ours[0] : undefined;
  }, why);
  await new Promise((r) => setTimeout(r, 2_000));
  const pr = await ping.stop();
  assert.deepEqual(pr.lost, [], `pings lost across the rekey: ${pr.lost.join(', ')}\n${pr.tail}`);
  const blocks = (await a.run('ip', ['xfrm', 'state'])).stdout.split(/\n(?=src )/);
  for (const spi of [rekeyed.spiIn, rekeyed.spiOut]) {
    const block = blocks.find((x) => x.includes(`spi 0x${spi}`)) ?? '';
    assert.match(block, /if_id 0x29/, `the rekeyed state ${spi} carries if_id 41:\n${blocks.join('\n')}`);
  }
  t.diagnostic(`to-aws on ${ifname}: IKE ${up.ikeSuite}, Child ${child.suite} -> ${rekeyed.suite} (${child.spiIn} -> ${rekeyed.spiIn}); ${pr.received}/${pr.sent} pings across the rekey`);

  assert.equal(await agent.stop(), 0);
  assert.equal((await a.run('ip', ['-d', 'link', 'show', 'type', 'xfrm'])).stdout.trim(), '', 'SIGTERM removed the interface');
  assert.doesNotMatch((await a.run('ip', ['route'])).stdout, /172\.31\./, 'and its route');
});
