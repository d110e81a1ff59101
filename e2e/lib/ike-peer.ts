// A kipsec IKE engine as its own process, for interop tests that need it inside a network
// namespace (a test process cannot enter one itself): `ns.spawn(node, [--import, tsx, this file])`.
// UDP 500/4500 on the namespace's address (RFC 3948 non-ESP marker on 4500). Child SAs go to an
// in-memory kernel that records them (default: the host kernel has no ESP), or, with
// `datapath: 'userspace'`, to kipsec's userspace ESP engine (ike-peer-esp.ts) on a TUN device
// `tun` (address `tunAddress`, routes to remoteTs), which then owns UDP 4500 and carries traffic.
// Config: the JSON IkePeerSpec in KIPSEC_IKE_PEER. Commands on stdin, one JSON object a line:
// {"cmd":"initiate"} | {"cmd":"status"} | {"cmd":"rekey","ike":true} | {"cmd":"terminate"} | {"cmd":"installed"} | {"cmd":"keys"} | {"cmd":"ike-keys"}.
// Output on stdout, one JSON object a line: {"event": IkeEvent} | {"status": EngineStatus} |
// {"installed": [{inbound, outbound}]} (SPIs of the Child SAs installed now) |
// {"keys": InstalledKeys[]} (every Child SA installed so far with its ESP keys, userspace only) |
// {"ikeKeys": [{spiI, spiR, skD, skAi, …}]} (cmd "ike-keys": final keys of each RFC 9370 IKE SA, hex) | {"ready": true}.
import { execFileSync } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { createInterface } from 'node:readline';
import { cryptoRandom, systemClock } from '../../src/common/time.js';
import { EspEngine, openEspTun } from '../../src/esp/index.js';
import { IkeEngine, identityFromString, pskFrom, type KernelIpsec, type KernelChildSa } from '../../src/ike/index.js';
import type { PeerConfig } from '../../src/ike/sa/config.js';
import { EspKernel } from './ike-peer-esp.js';

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
  /** 'record' (default): Child SAs are only recorded; 'userspace': ESP through kipsec's engine. */
  readonly datapath?: 'record' | 'userspace';
  /** userspace: the TUN device's name and the inner address its routes to remoteTs use as source. */
  readonly tun?: string;
  readonly tunAddress?: string;
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
    // The userspace engine sends ESP in UDP only: fake NAT so both sides encapsulate (RFC 3948).
    ...(s.datapath === 'userspace' ? { natTraversal: 'always' as const } : {}),
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

/** The TUN device and the engine on UDP 4500; routes to the remote subnets through the TUN. */
function openUserspace(spec: IkePeerSpec): EspEngine {
  const name = spec.tun ?? 'kipsec0';
  const tun = openEspTun(name);
  const engine = EspEngine.open({ tunFd: tun.fd, address: spec.local, port: 4500, bypass: true });
  // 1400: below the veth's 1500 less ESP-in-UDP overhead for every suite (datapath.ts tunMtu).
  execFileSync('ip', ['link', 'set', tun.name, 'mtu', '1400', 'up']);
  for (const ts of spec.remoteTs) execFileSync('ip', ['route', 'replace', ts, 'dev', tun.name, ...(spec.tunAddress ? ['src', spec.tunAddress] : [])]);
  return engine;
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.env['KIPSEC_IKE_PEER'] ?? '') as IkePeerSpec;
  const esp = spec.datapath === 'userspace' ? openUserspace(spec) : undefined;
  const kernel = esp ? new EspKernel(esp) : new RecordingKernel();
  const sockets = new Map<number, Socket>();
  /** Final keys of every hybrid (RFC 9370) IKE SA, as the engine's key log reports them. */
  const ikeKeys: Array<Record<string, string>> = [];
  const spiHex = (x: bigint): string => x.toString(16).padStart(16, '0');
  const engine: IkeEngine = new IkeEngine({
    transport: {
      send(datagram, to, from) {
        if (from.port === 4500 && esp) { esp.sendIke(Buffer.concat([Buffer.alloc(4), datagram]), to.address, to.port); return; }
        const s = sockets.get(from.port);
        const bytes = from.port === 4500 ? Buffer.concat([Buffer.alloc(4), datagram]) : Buffer.from(datagram);
        s?.send(bytes, to.port, to.address);
      },
    },
    kernel, clock: systemClock, random: cryptoRandom, events: { emit: (event) => out({ event }) },
    keyLog: {
      ikeKeys: ({ spiI, spiR, keys }) => {
        ikeKeys.push({ spiI: spiHex(spiI), spiR: spiHex(spiR), ...Object.fromEntries(Object.entries(keys).map(([k, v]) => [k, Buffer.from(v.expose()).toString('hex')])) });
      },
    },
  }, [peerConfig(spec)], {});
  /** A datagram on 4500: IKE after the non-ESP marker; ESP (the engine's) or keepalives are not ours. */
  const from4500 = (msg: Uint8Array, address: string, port: number): void => {
    if (msg.length < 4 || msg[0] !== 0 || msg[1] !== 0 || msg[2] !== 0 || msg[3] !== 0) return;
    void engine.receive(msg.subarray(4), { address, port }, { address: spec.local, port: 4500 });
  };
  esp?.on((e) => { if (e.kind === 'ike') from4500(new Uint8Array(e.data.buffer, e.data.byteOffset, e.data.byteLength), e.address, e.port); });
  for (const port of esp ? [500] : [500, 4500]) {
    const s = createSocket('udp4');
    s.on('message', (msg, rinfo) => {
      const d = new Uint8Array(msg);
      if (port === 4500) from4500(d, rinfo.address, rinfo.port);
      else void engine.receive(d, { address: rinfo.address, port: rinfo.port }, { address: spec.local, port });
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
    else if (c.cmd === 'keys') out({ keys: kernel instanceof EspKernel ? kernel.history : [] });
    else if (c.cmd === 'ike-keys') out({ ikeKeys });
    else if (c.cmd === 'rekey') out({ rekey: engine.rekey(spec.name, { ike: c.ike ?? false, child: !(c.ike ?? false) }) });
    else if (c.cmd === 'terminate') { await engine.terminate(spec.name); out({ terminated: true }); }
  }
  await engine.close();
  for (const s of sockets.values()) s.close();
  esp?.close();
}

if (process.env['KIPSEC_IKE_PEER']) void main().catch((e: unknown) => { process.stderr.write(`${String(e)}\n`); process.exit(1); });
