// One end of a userspace ESP tunnel with fixed keys (no IKE), for the netns e2e test
// (e2e/netns/esp-userspace.test.ts) and the throughput bench (bench/esp-throughput.ts). Run inside
// a network namespace:
//
//   node --import tsx bench/esp-peer.ts '{"tun":"esp0","bind":"192.0.2.1","port":4500,
//     "local":"10.1.0.0/24","remote":"10.2.0.0/24","algorithm":"aes-gcm-16",
//     "out":{"spi":4097,"key":"<hex key||salt>","peer":"192.0.2.2","peerPort":4500},
//     "in":{"spi":4098,"key":"<hex>"}}'
//
// It opens the TUN device, starts the engine, installs one SA pair and the policy local → remote,
// prints {"ready":true,"tun":…,"port":…} (and {"ike":"<hex>"} per IKE datagram) and then answers stdin lines: "stats" prints the engine's
// stats as one JSON line; "quit" or end of stdin closes the engine and exits; a JSON command
// {"id":n,"op":"addSa"|"updateSa"|"removeSa"|"churn",…} (a rekey driven by the test, or SA/policy
// churn racing the traffic) is answered by {"reply":n,"ok":true} or {"reply":n,"error":"…"}. It
// also exits on its own after maxSeconds (default 600), so a forgotten peer never outlives its test.
import { createInterface } from 'node:readline';
import { SecretBytes } from '../src/common/secret.js';
import { EspEngine, openEspTun } from '../src/esp/engine.js';
import type { EspAlgorithm } from '../src/esp/codec.js';
import { cidrSelector } from '../src/esp/selector.js';

/** One direction of an SA as a command carries it; selectors and peer come from the config. */
export interface SaCommand { readonly direction: 'in' | 'out'; readonly spi: number; readonly key: string; readonly active?: boolean }

export type PeerCommand =
  | { readonly id: number; readonly op: 'addSa'; readonly sa: SaCommand }
  | { readonly id: number; readonly op: 'updateSa'; readonly direction: 'in' | 'out'; readonly spi: number; readonly active: boolean }
  | { readonly id: number; readonly op: 'removeSa'; readonly direction: 'in' | 'out'; readonly spi: number }
  | { readonly id: number; readonly op: 'churn'; readonly n: number }
  /** An IKE datagram (hex, non-ESP marker included) from the engine's socket to the peer. */
  | { readonly id: number; readonly op: 'sendIke'; readonly data: string };

export interface PeerConfig {
  readonly tun: string;
  readonly bind: string;
  readonly port: number;
  readonly local: string;
  readonly remote: string;
  readonly algorithm: EspAlgorithm;
  readonly out: { readonly spi: number; readonly key: string; readonly peer: string; readonly peerPort: number };
  readonly in: { readonly spi: number; readonly key: string };
  readonly replayWindow?: number;
  readonly maxSeconds?: number;
}

const REQID = 1;

function main(): void {
  const cfg = JSON.parse(process.argv[2] ?? '{}') as PeerConfig;
  // Offloads: KIPSEC_ESP_OFFLOADS in the peer's environment (all the kernel offers when unset).
  const tun = openEspTun(cfg.tun);
  const engine = EspEngine.open({ tunFd: tun.fd, address: cfg.bind, port: cfg.port });
  const addSa = (c: SaCommand): void => {
    const key = new SecretBytes(Buffer.from(c.key, 'hex'));
    if (c.direction === 'in') {
      engine.addSa({ direction: 'in', spi: c.spi, reqid: REQID, algorithm: cfg.algorithm, key, replayWindow: cfg.replayWindow ?? 1024,
        sources: [cidrSelector(cfg.remote)], destinations: [cidrSelector(cfg.local)] });
    } else {
      engine.addSa({ direction: 'out', spi: c.spi, reqid: REQID, algorithm: cfg.algorithm, key, active: c.active ?? true, peer: { address: cfg.out.peer, port: cfg.out.peerPort } });
    }
  };
  const churn = (n: number): void => {
    for (let i = 0; i < n; i++) {
      engine.addSa({ direction: 'in', spi: 0x7000 + i, reqid: 99, algorithm: cfg.algorithm, key: new SecretBytes(Buffer.alloc(cfg.algorithm === 'chacha20-poly1305' ? 36 : 20, i)),
        sources: [cidrSelector('10.77.0.0/16')], destinations: [cidrSelector('10.78.0.0/16')] });
      engine.addPolicy({ id: 1000 + i, reqid: 99, priority: 5, source: cidrSelector('10.77.0.0/16'), destination: cidrSelector('10.78.0.0/16') });
      engine.removePolicy(1000 + i);
      engine.removeSa({ direction: 'in', spi: 0x7000 + i, reqid: 99 });
    }
  };
  const run = (c: PeerCommand): void => {
    if (c.op === 'addSa') addSa(c.sa);
    else if (c.op === 'updateSa') engine.updateSa({ direction: c.direction, spi: c.spi, reqid: REQID }, { active: c.active });
    else if (c.op === 'removeSa') { if (!engine.removeSa({ direction: c.direction, spi: c.spi, reqid: REQID })) throw new Error(`no ${c.direction} SA ${c.spi}`); }
    else if (c.op === 'sendIke') engine.sendIke(Buffer.from(c.data, 'hex'), cfg.out.peer, cfg.out.peerPort);
    else churn(c.n);
  };
  addSa({ direction: 'in', spi: cfg.in.spi, key: cfg.in.key });
  addSa({ direction: 'out', spi: cfg.out.spi, key: cfg.out.key });
  engine.addPolicy({ id: 1, reqid: REQID, source: cidrSelector(cfg.local), destination: cidrSelector(cfg.remote) });
  const json = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));
  const stop = (): void => { engine.close(); process.exit(0); };
  const timer = setTimeout(stop, (cfg.maxSeconds ?? 600) * 1000);
  timer.unref();
  engine.on((e) => {
    if (e.kind === 'expire') process.stdout.write(`${json({ event: e })}\n`);
    if (e.kind === 'ike') process.stdout.write(`${json({ ike: e.data.toString('hex') })}\n`);
  });
  process.on('SIGTERM', stop);
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    if (line.trim() === 'stats') process.stdout.write(`${json({ stats: engine.stats() })}\n`);
    else if (line.trim() === 'quit') stop();
    else if (line.startsWith('{')) {
      const c = JSON.parse(line) as PeerCommand;
      try { run(c); process.stdout.write(`${json({ reply: c.id, ok: true })}\n`); } catch (e) { process.stdout.write(`${json({ reply: c.id, error: e instanceof Error ? e.message : String(e) })}\n`); }
    }
  });
  rl.on('close', stop);
  process.stdout.write(`${json({ ready: true, tun: tun.name, port: engine.port })}\n`);
}

main();
