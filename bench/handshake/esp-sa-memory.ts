// bench/handshake/esp-sa-memory — the userspace ESP engine's native memory per Child SA, alone:
// an engine without a TUN device takes N Child SAs as the agent installs them at the end of a
// handshake (inbound AES-GCM-16/256 with the default 1,024-packet replay window and one selector
// pair, outbound with its peer, one out policy), and the process's RSS growth per Child SA is
// the figure (V8 collected before each reading, so what grows is the engine's malloc'd memory).
// The burst bench's per-SA RSS holds this plus the agent's JavaScript; this separates the two.
//
//   node --expose-gc --import tsx bench/handshake/esp-sa-memory.ts [--sas 5000]
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SecretBytes } from '../../src/common/secret.js';
import { EspEngine } from '../../src/esp/engine.js';
import { cidrSelector } from '../../src/esp/selector.js';

const maybeGc = (globalThis as { gc?: () => void }).gc;
if (!maybeGc) throw new Error('run with node --expose-gc');
const gc: () => void = maybeGc;
const arg = process.argv.indexOf('--sas');
const n = arg > 0 ? Number(process.argv[arg + 1]) : 5000;

const rssKb = (): number => Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0);
async function settled(): Promise<{ rssKb: number; heapKb: number; externalKb: number }> {
  for (let i = 0; i < 3; i++) { gc(); await new Promise((r) => setTimeout(r, 50)); }
  const m = process.memoryUsage();
  return { rssKb: rssKb(), heapKb: m.heapUsed / 1024, externalKb: (m.external + m.arrayBuffers) / 1024 };
}

const engine = EspEngine.open({ tunFd: null, address: '127.0.0.1', port: 0 });
// One SA first: the engine's first table and OpenSSL's one-time cipher fetch are not per-SA costs.
const key = (): SecretBytes => new SecretBytes(randomBytes(36));
const add = (i: number): void => {
  const inner = `10.65.${(i >> 8) & 255}.${i & 255}/32`;
  engine.addSa({ direction: 'in', spi: 0x1000 + i * 2, reqid: i + 1, algorithm: 'aes-gcm-16', key: key(), replayWindow: 1024, peer: { address: '127.0.0.2', port: 4500 }, sources: [cidrSelector(inner)], destinations: [cidrSelector('10.200.0.0/16')] });
  engine.addSa({ direction: 'out', spi: 0x1001 + i * 2, reqid: i + 1, algorithm: 'aes-gcm-16', key: key(), peer: { address: '127.0.0.2', port: 4500 } });
  engine.addPolicy({ id: i + 1, reqid: i + 1, source: cidrSelector('10.200.0.0/16'), destination: cidrSelector(inner) });
};
add(0);
const before = await settled();
for (let i = 1; i <= n; i++) add(i);
const after = await settled();
const per = (a: number, b: number): string => (((b - a) * 1024) / n).toFixed(0);
console.log(`esp-sa-memory: ${n} Child SAs (in + out + out policy, AES-GCM-16/256, replay window 1024), node ${process.version}`);
console.log(`  RSS ${(before.rssKb / 1024).toFixed(1)} → ${(after.rssKb / 1024).toFixed(1)} MiB: ${per(before.rssKb, after.rssKb)} bytes per Child SA`);
console.log(`  (V8 heap ${per(before.heapKb, after.heapKb)} B/SA, external ${per(before.externalKb, after.externalKb)} B/SA: JS left over, not the engine's)`);
engine.close();
