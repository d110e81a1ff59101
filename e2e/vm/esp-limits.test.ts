// Kernel lane (real ESP): Child SA volume limits (RFC 4303 §3.3.3, issue 14 "ESP sequence
// exhaustion"). The agent against charon (kernel ESP, no limits of its own, so every rekey here is
// the agent's). Three tunnels:
//  - `dflt`: no limits configured, no ESN: the kernel holds the engine's default packet limit
//    (hard 2^31, soft 90%), so the 32-bit sequence number can never wrap;
//  - `pkts`: esp.lifePackets 1000 and one-way UDP from the agent's side only: the agent's OUTBOUND
//    state is the one that reaches its soft limit (charon's inbound has none, ours sees nothing),
//    and that expire alone must rekey the Child SA, before the hard limit drops anything;
//  - `bytes`: esp.lifeBytes 1 MiB under a ping of 1000-byte payloads: rekeys on bytes.
// Every datagram and every ping must arrive: make-before-break, never the hard limit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pair, type Netns } from '../lib/netns.js';
import { StrongSwan } from '../lib/strongswan.js';
import { AgentProcess, pingCounts, pollUntil, tunnelYaml } from './agent-harness.js';
import { swanctlConf } from './agent-swan.js';
import { prepareVm } from './agent-vm.js';

prepareVm();
const PSK = 'kipsec e2e: ESP volume limits';

/** `ip -s xfrm state` blocks of one namespace, by SPI (8 hex digits). */
async function stateBlocks(ns: Netns): Promise<Map<string, string>> {
  const text = (await ns.run('ip', ['-s', 'xfrm', 'state'])).stdout;
  const out = new Map<string, string>();
  for (const b of text.split(/\n(?=src )/)) {
    const spi = /spi 0x([0-9a-f]{8})/.exec(b)?.[1];
    if (spi) out.set(spi, b);
  }
  return out;
}

/** The configured packet limits and the current packet count of one state block. */
function packetLimits(block: string): { soft: string; hard: string; packets: number } {
  const lim = /limit: soft (\S+)\(packets\), hard (\S+)\(packets\)/.exec(block);
  const cur = /current:\s*\n\s*\d+\(bytes\), (\d+)\(packets\)/.exec(block);
  return { soft: lim?.[1] ?? '?', hard: lim?.[2] ?? '?', packets: Number(cur?.[1] ?? -1) };
}

// A UDP sender and receiver for one-way traffic (node is inside the VM: the host's root is shared).
const SENDER = `const s=require('node:dgram').createSocket('udp4');const [src,dst,n,gap]=process.argv.slice(1);let i=0;
s.bind(0,src,()=>{const t=setInterval(()=>{s.send(Buffer.alloc(64,i&255),5001,dst);if(++i>=Number(n)){clearInterval(t);setTimeout(()=>s.close(),200);}},Number(gap));});`;
const RECEIVER = `const s=require('node:dgram').createSocket('udp4');const [addr,ms]=process.argv.slice(1);let n=0;
s.on('message',()=>n++);s.bind(5001,addr,()=>console.log('ready'));setTimeout(()=>{console.log('received '+n);s.close();},Number(ms));`;

test('packet and byte limits reach the kernel (default 2^31 without ESN) and their soft expire rekeys the Child SA before the hard limit, from the outbound state under one-way traffic: no datagram or ping lost (RFC 4303 §3.3.3, RFC 7296 §2.8)', async (t) => {
  const [a, b] = await pair(t, { a: '192.0.2.1/24', b: '192.0.2.2/24' });
  const tunnels = [
    { name: 'dflt', swan: '192.0.2.2', n: 1, extra: '' },
    { name: 'pkts', swan: '192.0.2.3', n: 2, extra: 'lifePackets: 1000' },
    { name: 'bytes', swan: '192.0.2.4', n: 3, extra: 'lifeBytes: 1048576' },
  ] as const;
  for (const x of tunnels) {
    if (x.swan !== '192.0.2.2') await b.run('ip', ['addr', 'add', `${x.swan}/24`, 'dev', 'eth0']);
    await a.run('ip', ['addr', 'add', `10.1.${x.n}.1/24`, 'dev', 'lo']);
    await b.run('ip', ['addr', 'add', `10.2.${x.n}.1/24`, 'dev', 'lo']);
  }
  const swan = await StrongSwan.start(t, b, {
    mode: 'kernel',
    swanctl: swanctlConf(tunnels.map((x) => ({ name: x.name, local: x.swan, remote: '192.0.2.1', localTs: `10.2.${x.n}.0/24`, remoteTs: `10.1.${x.n}.0/24`, proposals: 'aes256gcm16-prfsha384-x25519', espProposals: 'aes256gcm16', auth: { psk: PSK } }))),
  });
  const config = tunnels.map((x) => tunnelYaml({ name: x.name, local: '192.0.2.1', remote: x.swan, localSubnets: [`10.1.${x.n}.0/24`], remoteSubnets: [`10.2.${x.n}.0/24`], esp: ['aes256gcm16'], ...(x.extra ? { espExtra: x.extra } : {}) })).join('---\n');
  const agent = await AgentProcess.start(t, a, { config, files: { psk: `${PSK}\n` } });
  for (const x of tunnels) await agent.waitEstablished(x.name, 120_000);

  // The limits as the kernel holds them, both directions of each tunnel.
  const blocks = await stateBlocks(a);
  for (const x of tunnels) {
    const c = (await agent.tunnel(x.name)).children[0]!;
    for (const spi of [c.spiIn, c.spiOut]) {
      const block = blocks.get(spi.replace(/^0x/, '').padStart(8, '0'));
      assert.ok(block, `${x.name}: state ${spi} in the kernel:\n${[...blocks.keys()].join(' ')}`);
      assert.match(block, /replay-window|esn/, `${x.name}: a full state block`);
      const lim = packetLimits(block);
      t.diagnostic(`${x.name} ${spi}: packet limits soft ${lim.soft} hard ${lim.hard}`);
      const want = x.name === 'pkts' ? ['900', '1000'] : x.name === 'dflt' ? [String((2n ** 31n * 9n) / 10n), String(2n ** 31n)] : null;
      if (want) assert.deepEqual([lim.soft, lim.hard], want, `${x.name}: packet limits in the kernel`);
      if (x.name === 'bytes') assert.match(block, /limit: soft 943718\(bytes\), hard 1048576\(bytes\)/, `${x.name}: byte limits in the kernel:\n${block}`);
    }
  }

  // Watch the SPIs while traffic runs; every distinct inbound SPI is one Child SA.
  const seen = new Map<string, Set<string>>(tunnels.map((x) => [x.name, new Set<string>()]));
  let watching = true;
  const watcher = (async () => {
    for (let i = 0; watching && i < 2_000; i++) {
      for (const x of tunnels) for (const c of (await agent.tunnel(x.name)).children) seen.get(x.name)!.add(c.spiIn);
      await new Promise((r) => setTimeout(r, 250));
    }
  })();

  const SENT = 2_500;
  const receiver = b.run(process.execPath, ['-e', RECEIVER, '10.2.2.1', '60000'], { check: false, timeoutMs: 90_000 });
  await new Promise((r) => setTimeout(r, 1_500));
  const sender = a.run(process.execPath, ['-e', SENDER, '10.1.2.1', '10.2.2.1', String(SENT), '10'], { check: false, timeoutMs: 90_000 });
  const ping = a.run('ping', ['-c', '1200', '-i', '0.02', '-s', '1000', '-W', '2', '-I', '10.1.3.1', '10.2.3.1'], { check: false, timeoutMs: 120_000 });
  const [sent, got, pinged] = await Promise.all([sender, receiver, ping]);
  watching = false;
  await watcher;
  assert.equal(sent.code, 0, `sender: ${sent.stderr}`);
  const received = Number(/received (\d+)/.exec(got.stdout)?.[1] ?? -1);
  t.diagnostic(`pkts: ${received}/${SENT} one-way datagrams over ${seen.get('pkts')!.size} Child SAs`);
  const pc = pingCounts(pinged.stdout);
  t.diagnostic(`bytes: ${pc.received}/${pc.sent} pings of 1000 bytes over ${seen.get('bytes')!.size} Child SAs`);
  t.diagnostic(`dflt: ${seen.get('dflt')!.size} Child SA (no traffic, no rekey)`);

  // 2,500 packets at a soft limit of 900 need at least two rekeys; 1,200 pings of ~1 KiB each
  // way at a soft limit of 943,718 bytes at least one.
  assert.ok(seen.get('pkts')!.size >= 3, `pkts: rekeyed on the outbound packet limit (Child SAs seen: ${[...seen.get('pkts')!].join(' ')})`);
  assert.ok(seen.get('bytes')!.size >= 2, `bytes: rekeyed on the byte limit (Child SAs seen: ${[...seen.get('bytes')!].join(' ')})`);
  assert.equal(seen.get('dflt')!.size, 1, 'dflt: no rekey without traffic');
  assert.equal(received, SENT, 'pkts: every one-way datagram arrived');
  assert.equal(pc.received, pc.sent, `bytes: pings lost:\n${pinged.stdout.split('\n').slice(-3).join('\n')}`);

  // No state of ours ever passed its hard limit (the kernel would have deleted it mid-traffic).
  for (const [spi, block] of await stateBlocks(a)) {
    const lim = packetLimits(block);
    if (lim.hard === '1000') assert.ok(lim.packets <= 1000, `${spi}: ${lim.packets} packets under a hard limit of 1000`);
  }
  await pollUntil('pkts: charon mirrors our Child SA after the rekeys', 60_000, async () => {
    const ours = (await agent.tunnel('pkts')).children;
    if (ours.length !== 1 || ours[0]!.state !== 'installed') return undefined;
    const sw = (await swan.childSas()).find((c) => c.spiIn === ours[0]!.spiOut);
    return sw && sw.spiOut === ours[0]!.spiIn ? true : undefined;
  }, async () => `ours: ${JSON.stringify((await agent.tunnel('pkts')).children)}\n${await swan.listSas()}`);
  assert.equal(await agent.stop(), 0);
});
