// In-memory stand-ins for the agent's outside world: XFRM (SAs and policies in arrays), IKE
// sockets, the IKE engine (records calls, answers status), a log sink collecting every line.
import { Writable } from 'node:stream';
import type { EngineLike, AgentXfrm } from '../../../src/agent/daemon.js';
import type { DatagramSockets, Endpoint, UdpCounters } from '../../../src/agent/udp.js';
import type { EnginePorts } from '../../../src/ike/ports.js';
import type { EngineStatus, PeerConfig, AdoptedChildSa, RekeyRequest, RekeyStarted, RestoreResult } from '../../../src/ike/engine.js';
import type { AllocSpiRequest, InstalledChild, PolicyId, PolicySpec, PolicyState, SaAe, SaId, SaSpec, SaState, XfrmEvent } from '../../../src/xfrm/index.js';
import { NetlinkErrnoError, XfrmNotFoundError } from '../../../src/xfrm/index.js';

const ESRCH = 3;
const notFound = (what: string) => new XfrmNotFoundError('delete', { kind: 'other', text: what }, new NetlinkErrnoError(ESRCH, 0));
import type { ChildInstall } from '../../../src/xfrm/install.js';
import { createLogger, type Logger } from '../../../src/agent/log.js';

export function logSink(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const dest = new Writable({ write(chunk: Buffer, _enc, cb) { lines.push(...chunk.toString().split('\n').filter(Boolean)); cb(); } });
  return { log: createLogger({ level: 'trace', destination: dest }), lines };
}

const cur = { bytes: 0n, packets: 0n, add_time: 0n, use_time: 0n };
const stats = { replay_window: 0, replay: 0, integrity_failed: 0 };
const samePol = (a: PolicyId, b: PolicyId) => a.dir === b.dir && a.selector.src === b.selector.src && a.selector.dst === b.selector.dst;

export class FakeXfrm implements AgentXfrm {
  sas: SaState[] = [];
  policies: PolicyState[] = [];
  calls: string[] = [];
  nextSpi = 0xc0000001;
  handler: ((e: XfrmEvent) => void) | undefined;
  closed = false;
  async allocSpi(q: AllocSpiRequest): Promise<number> { const spi = this.nextSpi++; this.calls.push(`allocspi ${q.dst}`); this.sas.push({ src: q.src, dst: q.dst, spi, reqid: q.reqid ?? 0, current: cur, stats } as SaState); return spi; }
  async addSa(sa: SaSpec): Promise<void> { this.calls.push(`addsa ${sa.spi.toString(16)}`); this.sas.push({ ...sa, current: { ...cur, add_time: BigInt(this.sas.length + 1) }, stats }); }
  async updateSa(sa: SaSpec): Promise<void> { this.calls.push(`updsa ${sa.spi.toString(16)}`); this.sas = this.sas.filter((s) => !(s.spi === sa.spi && s.dst === sa.dst)); this.sas.push({ ...sa, current: { ...cur, add_time: BigInt(this.sas.length + 1) }, stats }); }
  async deleteSa(id: SaId): Promise<void> {
    this.calls.push(`delsa ${id.spi.toString(16)}`);
    const n = this.sas.length; this.sas = this.sas.filter((s) => !(s.spi === id.spi && s.dst === id.dst));
    if (this.sas.length === n) throw notFound(`sa ${id.spi}`);
  }
  async getAe(id: SaId & { src: string }): Promise<SaAe> {
    const s = this.sas.find((x) => x.spi === id.spi && x.dst === id.dst);
    if (!s) throw notFound(`sa ${id.spi}`);
    return { current: s.current, replay: undefined, replayEsn: undefined, replayThresh: undefined, etimerThresh: undefined };
  }
  async listSas(): Promise<SaState[]> { return [...this.sas]; }
  async updatePolicy(p: PolicySpec): Promise<void> { this.calls.push(`updpolicy ${p.dir}`); this.policies = this.policies.filter((x) => !samePol(x, p)); this.policies.push({ ...p, index: 0, current: cur } as PolicyState); }
  async deletePolicy(id: PolicyId): Promise<void> {
    this.calls.push(`delpolicy ${id.dir}`);
    const n = this.policies.length; this.policies = this.policies.filter((x) => !samePol(x, id));
    if (this.policies.length === n) throw notFound(`policy ${id.dir}`);
  }
  async listPolicies(): Promise<PolicyState[]> { return [...this.policies]; }
  async installChild(c: ChildInstall): Promise<InstalledChild> {
    for (const sa of c.sas) { if (sa.allocated) await this.updateSa(sa); else await this.addSa(sa); }
    for (const p of c.policies) await this.updatePolicy(p);
    return { sas: c.sas.map((s) => ({ dst: s.dst, spi: s.spi })), policies: c.policies.map((p) => ({ selector: p.selector, dir: p.dir })) };
  }
  /** As XfrmClient.removeChild: policies, then SAs, every one tried, missing ones fine. */
  async removeChild(c: InstalledChild): Promise<void> {
    const errors: unknown[] = [];
    const gone = (e: unknown): void => { if (!(e instanceof XfrmNotFoundError)) errors.push(e); };
    for (const p of c.policies) await this.deletePolicy(p).catch(gone);
    for (const s of c.sas) await this.deleteSa(s).catch(gone);
    if (errors.length) throw errors[0];
  }
  /** The event groups the agent subscribed to. */
  groups: readonly string[] = [];
  /** The event socket's error receiver the agent registered. */
  errorHandler: ((e: Error) => void) | undefined;
  events(g: readonly string[], handler: (e: XfrmEvent) => void) { this.groups = [...g]; this.handler = handler; return { onError: (fn: (e: Error) => void) => { this.errorHandler = fn; }, close: () => { /* none */ } }; }
  close(): void { this.closed = true; }
}

export class FakeSockets implements DatagramSockets {
  readonly ikePort = 500;
  readonly nattPort = 4500;
  readonly counters: UdpCounters = { received: 0, sent: 0, keepalivesIn: 0, keepalivesOut: 0, espInUdpDropped: 0, invalid: 0, sendErrors: 0 };
  bound: string[] = [];
  sent: { data: Uint8Array; local: Endpoint; remote: Endpoint }[] = [];
  handler: ((d: { data: Uint8Array; local: Endpoint; remote: Endpoint }) => void) | undefined;
  onDatagram(h: (d: { data: Uint8Array; local: Endpoint; remote: Endpoint }) => void): void { this.handler = h; }
  async bind(a: readonly string[]): Promise<void> { this.bound = [...a]; }
  send(data: Uint8Array, local: Endpoint, remote: Endpoint): void { this.sent.push({ data, local, remote }); }
  keepalive(): void { this.counters.keepalivesOut++; }
  close(): void { this.bound = []; }
}

export class FakeEngine implements EngineLike {
  readonly ports: EnginePorts;
  peers = new Map<string, PeerConfig>();
  calls: string[] = [];
  adopted = new Map<string, readonly AdoptedChildSa[]>();
  statusValue: EngineStatus = { peers: [], halfOpen: 0, cookiesActive: false, drops: {} };
  constructor(ports: EnginePorts, peers: readonly PeerConfig[]) { this.ports = ports; for (const p of peers) this.peers.set(p.name, p); }
  start(): void { this.calls.push('start'); }
  addPeer(p: PeerConfig): void { this.calls.push(`add ${p.name}`); this.peers.set(p.name, p); }
  async removePeer(n: string): Promise<void> { this.calls.push(`remove ${n}`); this.peers.delete(n); }
  initiate(n: string): void { this.calls.push(`initiate ${n}`); }
  async terminate(n: string): Promise<void> { this.calls.push(`terminate ${n}`); }
  /** What rekey() answers (or throws), per peer name. */
  rekeyAnswer: (name: string, what: RekeyRequest) => RekeyStarted = () => ({ ikeSpis: '', ike: false, children: [] });
  rekey(n: string, what: RekeyRequest = {}): RekeyStarted { this.calls.push(`rekey ${n}${what.ike ? ' ike' : ''}${what.child ? ' child' : ''}${what.reauth ? ' reauth' : ''}`); return this.rekeyAnswer(n, what); }
  async receive(): Promise<void> { this.calls.push('receive'); }
  acquire(r: number): void { this.calls.push(`acquire ${r}`); }
  expired(spi: number, hard: boolean): void { this.calls.push(`expired ${spi.toString(16)} ${hard}`); }
  natMapping(spi: number, from: Endpoint): void { this.calls.push(`natMapping ${spi.toString(16)} ${from.address}:${from.port}`); }
  adopt(p: string, c: readonly AdoptedChildSa[]): void { this.adopted.set(p, c); }
  /** What restore() answers; the checkpoint ids it was given land in `restored`. */
  restoreResults: readonly RestoreResult[] = [];
  restored: string[] = [];
  async restore(items: readonly { readonly id: string }[]): Promise<readonly RestoreResult[]> { this.restored.push(...items.map((i) => i.id)); return this.restoreResults; }
  status(): EngineStatus { return this.statusValue; }
  async close(): Promise<void> { this.calls.push('close'); }
}
