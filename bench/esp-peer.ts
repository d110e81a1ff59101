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
// prints {"ready":true,"tun":…,"port":…} and then answers stdin lines: "stats" prints the engine's
// stats as one JSON line; "quit" or end of stdin closes the engine and exits. It also exits on its
// own after maxSeconds (default 600), so a forgotten peer never outlives its test for long.
import { createInterface } from 'node:readline';
import { SecretBytes } from '../src/common/secret.js';
import { EspEngine } from '../src/esp/engine.js';
import type { EspAlgorithm } from '../src/esp/codec.js';
import { cidrSelector } from '../src/esp/selector.js';
import { openTun } from '../src/xfrm/native.js';

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
  const tun = openTun(cfg.tun);
  const engine = EspEngine.open({ tunFd: tun.fd, address: cfg.bind, port: cfg.port });
  engine.addSa({ direction: 'in', spi: cfg.in.spi, reqid: REQID, algorithm: cfg.algorithm, key: new SecretBytes(Buffer.from(cfg.in.key, 'hex')),
    replayWindow: cfg.replayWindow ?? 1024, sources: [cidrSelector(cfg.remote)], destinations: [cidrSelector(cfg.local)] });
  engine.addSa({ direction: 'out', spi: cfg.out.spi, reqid: REQID, algorithm: cfg.algorithm, key: new SecretBytes(Buffer.from(cfg.out.key, 'hex')),
    peer: { address: cfg.out.peer, port: cfg.out.peerPort } });
  engine.addPolicy({ id: 1, reqid: REQID, source: cidrSelector(cfg.local), destination: cidrSelector(cfg.remote) });
  const json = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));
  const stop = (): void => { engine.close(); process.exit(0); };
  const timer = setTimeout(stop, (cfg.maxSeconds ?? 600) * 1000);
  timer.unref();
  engine.on((e) => { if (e.kind === 'expire') process.stdout.write(`${json({ event: e })}\n`); });
  process.on('SIGTERM', stop);
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    if (line.trim() === 'stats') process.stdout.write(`${json({ stats: engine.stats() })}\n`);
    else if (line.trim() === 'quit') stop();
  });
  rl.on('close', stop);
  process.stdout.write(`${json({ ready: true, tun: tun.name, port: engine.port })}\n`);
}

main();
