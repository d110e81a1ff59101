// An IKE_SA_INIT flooder for the netns lane, run as a script inside a namespace that holds the
// source addresses (`node --import tsx e2e/lib/ike-flood.ts '<FloodPlan JSON>'`). Every request
// is well formed, built with the project's own codec: a fresh SPIi and nonce, the target's IKE
// proposal and a real X25519 share, so it passes every check up to the responder's limits. The
// sources in `answerCookies` resend a request with the COOKIE it drew, as a flooder that reads
// its answers would, to take half-open slots. Sending is bounded by count and time; the process
// prints one JSON FloodReport line and exits, or is cut off by a hard timer.
import { createSocket, type Socket } from 'node:dgram';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { decodeMessage, encodeMessage } from '../../src/ike/codec/message.js';
import type { IkePayload } from '../../src/ike/codec/payload.js';
import { notify } from '../../src/ike/codec/payloads/notify.js';
import { DhId, ExchangeType, NotifyStatus, notifyName } from '../../src/ike/constants.js';
import { parseProposals, toSaProposals } from '../../src/ike/policy/index.js';

export interface FloodPlan {
  readonly target: string;
  readonly port: number;
  /** Source addresses (local to the namespace); requests go out round-robin over them. */
  readonly sources: readonly string[];
  /** The sources that answer a COOKIE by resending the request with it (once per request). */
  readonly answerCookies: readonly string[];
  /** New IKE_SA_INIT requests per second, all sources together (cookie resends come on top). */
  readonly rate: number;
  readonly durationMs: number;
  readonly maxRequests: number;
  /** The target's IKE proposal (strongSwan syntax); its DH group must be x25519. */
  readonly proposal: string;
  /** How long to keep listening for answers after the last request. */
  readonly drainMs: number;
}

export interface FloodReport {
  /** New requests sent, and resends carrying a COOKIE. */
  readonly sent: number;
  readonly sentWithCookie: number;
  readonly sendErrors: number;
  /** From the first to the last new request. */
  readonly sendingMs: number;
  /** Answers by kind: N(COOKIE), a full IKE_SA_INIT response (state on the responder), anything else. */
  readonly cookies: number;
  readonly created: number;
  readonly other: number;
  readonly otherNotifies: Readonly<Record<string, number>>;
  /** Full responses (distinct SPIi) per source address: the half-open SAs each address obtained. */
  readonly createdByAddress: Readonly<Record<string, number>>;
  /** Any answer at all, per source address (only addresses that got one). */
  readonly answersByAddress: Readonly<Record<string, number>>;
  /** The hard timer ended the run (the report is still complete up to then). */
  readonly cutOff: boolean;
}

/** A real X25519 public value (32 bytes), so the responder's DH succeeds. */
function x25519Public(): Uint8Array {
  const jwk = generateKeyPairSync('x25519').publicKey.export({ format: 'jwk' });
  return new Uint8Array(Buffer.from(jwk.x ?? '', 'base64url'));
}

function nonZeroSpi(): bigint {
  for (;;) { const s = randomBytes(8).readBigUInt64BE(0); if (s !== 0n) return s; }
}

const initHeader = (spi: bigint) => ({ initiatorSpi: spi, responderSpi: 0n, exchangeType: ExchangeType.IKE_SA_INIT, initiator: true, response: false, higherVersion: false, minorVersion: 0, messageId: 0 });

export async function flood(plan: FloodPlan): Promise<FloodReport> {
  const sa: IkePayload = { kind: 'sa', proposals: toSaProposals(parseProposals([plan.proposal], 'ike')) };
  const cookieSources = new Set(plan.answerCookies);
  const share = new Map(plan.sources.map((a) => [a, x25519Public()] as const));
  // Requests of cookie-answering sources awaiting their answer, by SPIi: what to resend. Bounded by maxRequests.
  const pending = new Map<bigint, { payloads: IkePayload[]; resent: boolean }>();
  const createdSpis = new Map<string, Set<bigint>>();
  const answers: Record<string, number> = {};
  const otherNotifies: Record<string, number> = {};
  let sent = 0; let sentWithCookie = 0; let sendErrors = 0; let cookies = 0; let created = 0; let other = 0;

  const sockets = new Map<string, Socket>();
  const send = (s: Socket, d: Uint8Array): void => { s.send(d, plan.port, plan.target, (err) => { if (err) sendErrors++; }); };
  const onAnswer = (address: string, s: Socket, msg: Buffer): void => {
    answers[address] = (answers[address] ?? 0) + 1;
    let m;
    try { m = decodeMessage(new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength)); } catch { other++; otherNotifies['undecodable'] = (otherNotifies['undecodable'] ?? 0) + 1; return; }
    const spi = m.header.initiatorSpi;
    const cookie = m.notify(NotifyStatus.COOKIE);
    if (m.header.exchangeType === ExchangeType.IKE_SA_INIT && m.header.response && cookie !== undefined) {
      cookies++;
      const p = pending.get(spi);
      // RFC 7296 §2.6: the same request again with the COOKIE notify first.
      if (p !== undefined && !p.resent) { p.resent = true; sentWithCookie++; send(s, encodeMessage(initHeader(spi), [notify(NotifyStatus.COOKIE, cookie.data), ...p.payloads])); }
      return;
    }
    pending.delete(spi);
    if (m.header.exchangeType === ExchangeType.IKE_SA_INIT && m.header.response && m.header.responderSpi !== 0n && m.first('sa') !== undefined) {
      created++;
      let set = createdSpis.get(address);
      if (set === undefined) { set = new Set(); createdSpis.set(address, set); }
      set.add(spi);
      return;
    }
    other++;
    for (const n of m.notifies()) otherNotifies[notifyName(n.type)] = (otherNotifies[notifyName(n.type)] ?? 0) + 1;
  };

  await Promise.all(plan.sources.map((address) => new Promise<void>((resolve, reject) => {
    const s = createSocket('udp4');
    s.on('message', (msg) => onAnswer(address, s, msg));
    s.once('error', reject);
    s.bind({ address, port: 0 }, () => { s.off('error', reject); s.on('error', () => { sendErrors++; }); resolve(); });
    sockets.set(address, s);
  })));

  const sources = plan.sources.map((a) => [a, sockets.get(a)!] as const);
  const started = Date.now();
  let lastSentAt = started;
  let cutOff = false;
  await new Promise<void>((done) => {
    const hard = setTimeout(() => { cutOff = true; clearInterval(tick); done(); }, plan.durationMs + 10_000);
    // Paced by elapsed time, so a stalled event loop does not turn into an unbounded burst.
    const tick = setInterval(() => {
      const elapsed = Date.now() - started;
      const due = Math.min(plan.maxRequests, Math.floor((plan.rate * elapsed) / 1000), sent + Math.ceil(plan.rate / 20));
      while (sent < due) {
        const [address, s] = sources[sent % sources.length]!;
        const spi = nonZeroSpi();
        const payloads: IkePayload[] = [sa, { kind: 'ke', group: DhId.CURVE25519, data: share.get(address)! }, { kind: 'nonce', data: randomBytes(32) }];
        if (cookieSources.has(address)) pending.set(spi, { payloads, resent: false });
        send(s, encodeMessage(initHeader(spi), payloads));
        sent++;
      }
      lastSentAt = Date.now();
      if (elapsed >= plan.durationMs || sent >= plan.maxRequests) { clearInterval(tick); clearTimeout(hard); setTimeout(done, plan.drainMs); }
    }, 5);
  });
  for (const s of sockets.values()) s.close();
  const createdByAddress = Object.fromEntries([...createdSpis].map(([a, set]) => [a, set.size] as const));
  return { sent, sentWithCookie, sendErrors, sendingMs: lastSentAt - started, cookies, created, other, otherNotifies, createdByAddress, answersByAddress: answers, cutOff };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const plan = JSON.parse(process.argv[2] ?? '{}') as FloodPlan;
  flood(plan).then((r) => { process.stdout.write(`${JSON.stringify(r)}\n`); process.exit(0); }, (e: unknown) => { process.stderr.write(`ike-flood: ${String(e)}\n`); process.exit(1); });
}
