// Kernel lane (real ESP): anti-replay on the wire (RFC 4303 §3.4.3). Two kipsec agents, one
// tunnel with ESN and one without. The inbound SAs carry the replay window the engine asks for
// (32, charon's replay_window default; RFC 4303 §3.4.3 asks for at least 32), in the form the
// kernel keeps for each (`replay-window` for 32-bit sequence numbers, the ESN replay state
// otherwise). Then an ESP packet captured on b's link is sent again from a's namespace, byte for
// byte: b's kernel drops it before decryption and counts it (XfrmInStateSeqError, the SA's replay
// counter), and the ping inside it never reaches b's ICMP stack. A genuine ping right after does
// (the control: InEchos counts what arrives).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pair, type Netns } from '../lib/netns.js';
import { xfrmStat } from '../lib/xfrm-text.js';
import { AgentProcess, pollUntil, tunnelYaml } from './agent-harness.js';
import { prepareVm } from './agent-vm.js';

prepareVm();
const PSK = 'kipsec e2e: anti-replay on the wire';

/** ICMP InEchos of the namespace (/proc/net/snmp): echo requests that reached the ICMP stack. */
async function inEchos(ns: Netns): Promise<number> {
  const lines = (await ns.run('cat', ['/proc/net/snmp'])).stdout.split('\n').filter((l) => l.startsWith('Icmp:'));
  const [names, values] = [lines[0]!.split(/\s+/), lines[1]!.split(/\s+/)];
  return Number(values[names.indexOf('InEchos')]);
}

/** The ESP state's block in `ip -s xfrm state` for this SPI (8 hex digits). */
async function stateBlock(ns: Netns, spi: string): Promise<string> {
  const text = (await ns.run('ip', ['-s', 'xfrm', 'state'])).stdout;
  return text.split(/\n(?=src )/).find((b) => b.includes(`spi 0x${spi}`)) ?? '';
}

/** The first ESP packet of a tcpdump -x dump, as the bytes of its IP packet (header included). */
function firstEspPacket(dump: string): Uint8Array | undefined {
  const packets = dump.split(/\n(?=\S)/).filter((p) => / ESP\(spi=/.test(p));
  const first = packets[0];
  if (first === undefined) return undefined;
  const hex = [...first.matchAll(/^\s+0x[0-9a-f]{4}:\s+((?:[0-9a-f]{2,4}\s?)+)/gm)].map((m) => m[1]!.replace(/\s/g, '')).join('');
  return Buffer.from(hex, 'hex');
}

test('a replayed ESP packet is dropped by the receiving kernel and counted, with and without ESN; the inbound SAs carry the replay window of 32 the engine asks for (RFC 4303 §3.4.3)', async (t) => {
  const [a, b] = await pair(t, { a: '192.0.2.1/24', b: '192.0.2.2/24' });
  await a.run('ip', ['addr', 'add', '10.1.1.1/24', 'dev', 'lo']);
  await a.run('ip', ['addr', 'add', '10.1.2.1/24', 'dev', 'lo']);
  await b.run('ip', ['addr', 'add', '10.2.1.1/24', 'dev', 'lo']);
  await b.run('ip', ['addr', 'add', '10.2.2.1/24', 'dev', 'lo']);
  // A second address pair for the second tunnel, so each is its own IKE peer.
  await a.run('ip', ['addr', 'add', '192.0.2.11/24', 'dev', 'eth0']);
  await b.run('ip', ['addr', 'add', '192.0.2.12/24', 'dev', 'eth0']);
  const outer = (name: string, self: 'a' | 'b'): string => `192.0.2.${(name === 'esn' ? 10 : 0) + (self === 'a' ? 1 : 2)}`;
  const yaml = (self: 'a' | 'b'): string => ['plain', 'esn'].map((name, i) => tunnelYaml({
    name, local: outer(name, self), remote: outer(name, self === 'a' ? 'b' : 'a'),
    localSubnets: [self === 'a' ? `10.1.${i + 1}.0/24` : `10.2.${i + 1}.0/24`], remoteSubnets: [self === 'a' ? `10.2.${i + 1}.0/24` : `10.1.${i + 1}.0/24`],
    esp: [name === 'esn' ? 'aes256gcm16-esn' : 'aes256gcm16'], startAction: self === 'a' ? 'initiate' : 'respond',
  })).join('---\n');
  const agentA = await AgentProcess.start(t, a, { config: yaml('a'), files: { psk: `${PSK}\n` } });
  const agentB = await AgentProcess.start(t, b, { config: yaml('b'), files: { psk: `${PSK}\n` } });
  for (const n of ['plain', 'esn']) { await agentA.waitEstablished(n, 120_000); await agentB.waitEstablished(n, 120_000); }

  for (const [name, src, dst] of [['plain', '10.1.1.1', '10.2.1.1'], ['esn', '10.1.2.1', '10.2.2.1']] as const) {
    const child = (await agentB.tunnel(name)).children.find((c) => c.state === 'installed')!;
    const block = await stateBlock(b, child.spiIn);
    t.diagnostic(`${name}: b's inbound SA ${child.spiIn}: ${block.split('\n').filter((l) => /replay|flag|anti-replay/.test(l)).map((l) => l.trim()).join(' | ')}`);
    if (name === 'esn') {
      assert.match(block, /flag .*esn/, `${name}: the SA is installed with ESN:\n${block}`);
      assert.match(block, /replay_window 32\b/, `${name}: the ESN replay state has a window of 32:\n${block}`);
    } else {
      assert.doesNotMatch(block, /flag .*esn/, `${name}: no ESN:\n${block}`);
      assert.match(block, /replay-window 32\b/, `${name}: replay-window 32:\n${block}`);
    }

    // Capture a's pings as they arrive at b: three ESP packets from a, on this SA.
    const cap = b.spawn('tcpdump', ['-n', '-l', '-x', '-c', '3', '-i', 'eth0', `ip proto 50 and src ${outer(name, 'a')} and ip[20:4] = 0x${child.spiIn}`]);
    let dump = '';
    cap.stdout?.on('data', (d: Buffer) => { dump += d.toString(); });
    await new Promise((r) => setTimeout(r, 1_500)); // tcpdump attached
    await a.run('ping', ['-c', '3', '-i', '0.3', '-I', src, dst]);
    await pollUntil(`${name}: three ESP packets captured`, 15_000, async () => ((dump.match(/ ESP\(spi=/g)?.length ?? 0) >= 3 ? true : undefined), async () => dump);
    const packet = firstEspPacket(dump);
    assert.ok(packet && packet.length > 40 && packet[9] === 50, `${name}: an IP packet carrying ESP was captured:\n${dump.slice(0, 2000)}`);

    const before = { stat: await xfrmStat(b), echos: await inEchos(b), block: await stateBlock(b, child.spiIn) };
    // The captured bytes again, from a's namespace (a raw IP socket: the header is ours).
    const py = 'import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW); s.sendto(bytes.fromhex(sys.argv[1]), (sys.argv[2], 0))';
    await a.run('python3', ['-c', py, Buffer.from(packet).toString('hex'), outer(name, 'b')]);
    const seqErr = await pollUntil(`${name}: b's kernel counts the replayed packet`, 10_000, async () => {
      const s = await xfrmStat(b);
      return (s['XfrmInStateSeqError'] ?? 0) > (before.stat['XfrmInStateSeqError'] ?? 0) ? s : undefined;
    }, async () => `xfrm_stat: ${JSON.stringify(await xfrmStat(b))}\n${await stateBlock(b, child.spiIn)}`);
    const afterReplay = await inEchos(b);
    const replayCount = (blk: string): number => Number(/ replay (\d+) /.exec(blk)?.[1] ?? NaN);
    const after = await stateBlock(b, child.spiIn);
    t.diagnostic(`${name}: XfrmInStateSeqError ${before.stat['XfrmInStateSeqError'] ?? 0} → ${seqErr['XfrmInStateSeqError']}, SA replay counter ${replayCount(before.block)} → ${replayCount(after)}, InEchos ${before.echos} → ${afterReplay}`);
    assert.equal(seqErr['XfrmInStateSeqError'], (before.stat['XfrmInStateSeqError'] ?? 0) + 1, `${name}: one replay counted`);
    assert.equal(replayCount(after), replayCount(before.block) + 1, `${name}: the SA's own replay counter`);
    assert.equal(afterReplay, before.echos, `${name}: the replayed echo request never reached b's ICMP stack`);
    // The control: a genuine echo request does reach it.
    await a.run('ping', ['-c', '1', '-I', src, dst]);
    assert.equal(await inEchos(b), afterReplay + 1, `${name}: a genuine echo request counts in InEchos`);
  }
  assert.equal(await agentA.stop(), 0);
  assert.equal(await agentB.stop(), 0);
});
