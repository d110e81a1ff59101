// A kipsec IKE engine as its own process, for interop tests that need it inside a network
// namespace (a test process cannot enter one itself): `ns.spawn(node, [--import, tsx, this file])`.
// IKE only: UDP 500/4500 on the namespace's address (RFC 3948 non-ESP marker on 4500) and an
// in-memory kernel that records Child SAs instead of installing them (the host kernel has no ESP).
// Config: the JSON IkePeerSpec in KIPSEC_IKE_PEER. Commands on stdin, one JSON object a line:
// {"cmd":"initiate"} | {"cmd":"status"} | {"cmd":"rekey","ike":true} | {"cmd":"terminate"}.
// Output on stdout, one JSON object a line: {"event": IkeEvent} | {"status": EngineStatus} |
// {"installed": [{inbound, outbound}]} (SPIs of recorded Child SAs) | {"ready": true}.
import { createSocket, type Socket } from 'node:dgram';
import { createInterface } from 'node:readline';
import { cryptoRandom, systemClock } from '../../src/common/time.js';
import { IkeEngine, identityFromString, pskFrom, type KernelIpsec, type KernelChildSa } from '../../src/ike/index.js';
import type { PeerConfig } from '../../src/ike/sa/config.js';

export interface IkePeerSpec {
  readonly name: string;
  readonly local: string;
  readonly remote: string;
  readonly psk: string;
  readonly proposals: readonly string[];
  readonly espProposals: readonly string[];
  readonly localTs: readonly string[];
  readonly remoteTs: readonly string[];
  readonly startAction: 'initiate' | 'respond';
  readonly dpdMs?: number;
}

function peerConfig(s: IkePeerSpec): PeerConfig {
  return {
    name: s.name,
    local: { address: s.local, id: identityFromString(s.local) },
    remote: { address: s.remote, id: identityFromString(s.remote) },
    auth: { method: 'psk', secret: pskFrom(s.psk) },
    ike: { proposals: [...s.proposals], rekeyTimeMs: 4 * 3_600_000 },
    children: [{ name: s.name, localTs: [...s.localTs], remoteTs: [...s.remoteTs], espProposals: [...s.espProposals], mode: 'tunnel', rekeyTimeMs: 3_600_000, lifeTimeMs: 4_000_000 }],
    dpd: { intervalMs: s.dpdMs ?? 0, action: 'clear' },
    startAction: s.startAction,
  };
}

/** Records Child SAs; SPIs from a counter. */
class RecordingKernel implements KernelIpsec {
  readonly installed = new Map<number, KernelChildSa>();
  #next = 0xc1000001;
  allocSpi(): Promise<number> { return Promise.resolve(this.#next++); }
  releaseSpi(): Promise<void> { return Promise.resolve(); }
  installChildSa(sa: KernelChildSa): Promise<void> { this.installed.set(sa.inbound.spi, sa); return Promise.resolve(); }
  updateChildSa(): Promise<void> { return Promise.resolve(); }
  deleteChildSa(ref: { readonly inboundSpi: number }): Promise<void> { this.installed.delete(ref.inboundSpi); return Promise.resolve(); }
  queryCounters(): Promise<{ inboundBytes: bigint; inboundPackets: bigint; outboundBytes: bigint; outboundPackets: bigint; lastInboundMs: null }> {
    return Promise.resolve({ inboundBytes: 0n, inboundPackets: 0n, outboundBytes: 0n, outboundPackets: 0n, lastInboundMs: null });
  }
  installTrap(): Promise<void> { return Promise.resolve(); }
  removeTrap(): Promise<void> { return Promise.resolve(); }
  restoreChildSa(): Promise<boolean> { return Promise.resolve(false); }
}

const json = (o: unknown): string => JSON.stringify(o, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? `[${v.length} bytes]` : v));
const out = (o: unknown): void => { process.stdout.write(`${json(o)}\n`); };

async function main(): Promise<void> {
  const spec = JSON.parse(process.env['KIPSEC_IKE_PEER'] ?? '') as IkePeerSpec;
  const kernel = new RecordingKernel();
  const sockets = new Map<number, Socket>();
  const engine: IkeEngine = new IkeEngine({
    transport: {
      send(datagram, to, from) {
        const s = sockets.get(from.port);
        const bytes = from.port === 4500 ? Buffer.concat([Buffer.alloc(4), datagram]) : Buffer.from(datagram);
        s?.send(bytes, to.port, to.address);
      },
    },
    kernel, clock: systemClock, random: cryptoRandom, events: { emit: (event) => out({ event }) },
  }, [peerConfig(spec)], {});
  for (const port of [500, 4500]) {
    const s = createSocket('udp4');
    s.on('message', (msg, rinfo) => {
      let d = new Uint8Array(msg);
      if (port === 4500) {
        if (d.length < 4 || d[0] !== 0 || d[1] !== 0 || d[2] !== 0 || d[3] !== 0) return; // ESP or keepalive: no ESP here
        d = d.subarray(4);
      }
      void engine.receive(d, { address: rinfo.address, port: rinfo.port }, { address: spec.local, port });
    });
    await new Promise<void>((resolve, reject) => { s.once('error', reject); s.bind(port, spec.local, () => resolve()); });
    sockets.set(port, s);
  }
  engine.start();
  out({ ready: true });
  for await (const line of createInterface({ input: process.stdin })) {
    const c = JSON.parse(line) as { cmd: string; ike?: boolean };
    if (c.cmd === 'initiate') engine.initiate(spec.name);
    else if (c.cmd === 'status') out({ status: engine.status() });
    else if (c.cmd === 'installed') out({ installed: [...kernel.installed.values()].map((x) => ({ inbound: x.inbound.spi, outbound: x.outbound.spi })) });
    else if (c.cmd === 'rekey') out({ rekey: engine.rekey(spec.name, { ike: c.ike ?? false, child: !(c.ike ?? false) }) });
    else if (c.cmd === 'terminate') { await engine.terminate(spec.name); out({ terminated: true }); }
  }
  await engine.close();
  for (const s of sockets.values()) s.close();
}

if (process.env['KIPSEC_IKE_PEER']) void main().catch((e: unknown) => { process.stderr.write(`${String(e)}\n`); process.exit(1); });
