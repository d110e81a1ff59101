// IKE SA checkpoints: what a restarted daemon needs to resume an IKE SA instead of negotiating a
// new one (DESIGN.md §9: a restart drops no traffic).
//
// Why resume rather than re-establish: as IKE_AUTH responder the peer (strongSwan) sends on the
// new Child SA the moment it has installed it, before our IKE_AUTH response processing can install
// the inbound state, so packets in that window are lost; installing the inbound state before the
// response would accept ESP under keys from a peer not yet authenticated. A resumed IKE SA keeps
// the Child SAs in the kernel as they are, answers the peer's retransmissions from the response
// cache, and its next rekey replaces them make-before-break as usual (strongSwan's HA plugin syncs
// the same state to a standby for the same reason).
//
// Content: SPIs, endpoints and NAT state, the negotiated suite with SK_d/SK_a/SK_e (SK_p is only
// needed for AUTH), message IDs, the response cache, the request in flight with what its response
// needs (SPI, nonce, DH private value), queued tasks, and each Child SA's bookkeeping (SPIs,
// selectors, times; its keys stay in the kernel, except the outbound state a rekey responder has
// not activated yet), and a rekey collision we are in the middle of (RFC 7296 §2.8.1: the peer's
// new SA and its nonces, which decide whose SA goes once our own rekey's answer comes). Not kept:
// partial fragment reassembly, the peer's SIGNATURE_HASH list beyond the hashes; both are transient.
//
// Format: JSON, `v: 1`, byte strings in base64, 64-bit SPIs in hex. It holds key material, so it
// crosses the CheckpointStore port inside SecretBytes. decodeCheckpoint checks every field and
// names the one that is wrong (CheckpointError); a checkpoint that does not decode is never used.
import { SecretBytes } from '../../common/secret.js';
import { KipsecError } from '../../common/errors.js';
import type { IkeSuite } from '../crypto/keys.js';
import type { PolicyProposal, PolicyTransform } from '../policy/proposal.js';
import type { SelectedProposal } from '../policy/select.js';
import type { EspAlgorithms, Endpoint, IpsecMode, KernelSa, UdpEncap } from '../ports.js';
import type { ChildSa, IkeSa, Task } from './ike-sa.js';
import type { TsRange } from './ts.js';

export const CHECKPOINT_VERSION = 1;

/** A checkpoint that cannot be used; `field` names what was wrong ("children[0].ni"). */
export class CheckpointError extends KipsecError {
  readonly field: string;
  constructor(field: string, message: string) {
    super('ERR_IKE_CHECKPOINT', `checkpoint ${field}: ${message}`);
    this.field = field;
  }
}

export type ChildCheckpointState = 'installed' | 'rekeying' | 'rekeyed' | 'deleting' | 'deleted';

export interface ChildCheckpoint {
  /** The child config's name (PeerConfig.children[].name). */
  readonly name: string;
  readonly state: ChildCheckpointState;
  /** Inbound SPI of the successor of a `rekeyed` child, when known. */
  readonly successorSpi: number | null;
  readonly inboundSpi: number;
  readonly outboundSpi: number;
  readonly local: string;
  readonly remote: string;
  readonly mode: IpsecMode;
  readonly suite: string;
  readonly localTs: readonly TsRange[];
  readonly remoteTs: readonly TsRange[];
  readonly encap: UdpEncap | null;
  readonly ni: Uint8Array;
  readonly nr: Uint8Array;
  readonly installedAtMs: number;
  readonly rekeyAtMs: number;
  readonly expiresAtMs: number;
  readonly outboundPending: boolean;
  readonly pendingOutbound: KernelSa | null;
  /** ike-sa.ts ChildSa.collision, the peer's new SA by its inbound SPI; absent in older checkpoints. */
  readonly collision: CollisionCheckpoint<number> | null;
}

/** A rekeyed Child SA's states, deleted at untilMs (the child config by name: its reqid may differ after a restart). */
export interface LingeringCheckpoint {
  readonly name: string; readonly inboundSpi: number; readonly outboundSpi: number; readonly local: string; readonly remote: string; readonly untilMs: number;
}

/** RFC 7296 §2.8.1: we answered the peer's rekey while ours was in flight (`peer`: its new SA). */
export interface CollisionCheckpoint<Id> { readonly peer: Id; readonly nonces: readonly Uint8Array[] }

export interface ShareCheckpoint { readonly group: number; readonly privateValue: SecretBytes }

export interface ChildScratchCheckpoint {
  readonly spi: number;
  readonly ni: Uint8Array;
  readonly share: ShareCheckpoint | null;
  readonly proposals: readonly PolicyProposal[];
  readonly mode: IpsecMode;
  readonly localTs: readonly TsRange[];
  readonly remoteTs: readonly TsRange[];
}

/** Tasks refer to Child SAs by inbound SPI, with the child inline for one no longer attached. */
export type TaskCheckpoint =
  | { readonly kind: 'child-create'; readonly child: string; readonly group: number | null }
  | { readonly kind: 'child-rekey'; readonly old: ChildCheckpoint; readonly group: number | null }
  | { readonly kind: 'child-delete'; readonly child: ChildCheckpoint; readonly reason: 'rekeyed' | 'terminated' | 'redundant' | 'hard-lifetime' }
  | { readonly kind: 'ike-rekey'; readonly group: number | null }
  | { readonly kind: 'ike-delete'; readonly reason: 'terminated' | 'rekeyed' | 'redundant' | 'duplicate' | 'reauthenticated' }
  | { readonly kind: 'dpd' };

/**
 * The SA's side of a reauthentication (ike-sa.ts ReauthLink): `spi` is our SPI of the other IKE SA,
 * which has its own checkpoint (both are saved during the overlap).
 */
export interface ReauthCheckpoint {
  readonly tag: 'replacing' | 'superseded';
  readonly spi: bigint;
  readonly ours: boolean;
  readonly failed: readonly string[];
}

export interface OutstandingCheckpoint {
  readonly task: TaskCheckpoint;
  readonly messageId: number;
  readonly exchangeType: number;
  readonly datagrams: readonly Uint8Array[];
  readonly firstSentMs: number | null;
  readonly child: ChildScratchCheckpoint | null;
  readonly ikeRekey: { readonly spi: bigint; readonly ni: Uint8Array; readonly share: ShareCheckpoint } | null;
}

export interface IkeSaCheckpoint {
  readonly peer: string;
  readonly role: 'initiator' | 'responder';
  readonly spiI: bigint;
  readonly spiR: bigint;
  readonly state: 'established' | 'rekeyed';
  /** Our SPI of the successor of a `rekeyed` IKE SA, when known. */
  readonly successorSpi: bigint | null;
  readonly local: Endpoint;
  readonly remote: Endpoint;
  readonly natLocal: boolean;
  readonly natRemote: boolean;
  readonly fragmentation: boolean;
  readonly peerHashes: readonly number[] | null;
  readonly suite: IkeSuite;
  readonly suiteText: string;
  readonly dhGroup: number;
  readonly selected: SelectedProposal;
  readonly skD: SecretBytes;
  readonly skAi: SecretBytes;
  readonly skAr: SecretBytes;
  readonly skEi: SecretBytes;
  readonly skEr: SecretBytes;
  readonly remoteId: string | null;
  readonly nextRequestId: number;
  readonly expectedRequestId: number;
  readonly lastResponse: { readonly messageId: number; readonly datagrams: readonly Uint8Array[] } | null;
  readonly outstanding: OutstandingCheckpoint | null;
  readonly pending: readonly TaskCheckpoint[];
  readonly createdAtMs: number;
  readonly establishedAtMs: number | null;
  readonly rekeyAtMs: number | null;
  readonly children: readonly ChildCheckpoint[];
  /** ike-sa.ts IkeSa.lingering; absent in older checkpoints (read as none). */
  readonly lingering: readonly LingeringCheckpoint[];
  /** Absent in checkpoints written before reauthentication existed: read as null. */
  readonly reauth: ReauthCheckpoint | null;
  /** ike-sa.ts IkeSa.ikeCollision, the peer's new IKE SA by our SPI; absent in older checkpoints. */
  readonly ikeCollision: CollisionCheckpoint<bigint> | null;
}

// ───────────────────────────── snapshot ─────────────────────────────

function ourSpiOf(sa: Pick<IkeSa, 'role' | 'spiI' | 'spiR'>): bigint { return sa.role === 'initiator' ? sa.spiI : sa.spiR; }

function childCheckpoint(c: ChildSa): ChildCheckpoint {
  const st = c.state;
  return {
    name: c.runtime.config.name, state: st.tag, successorSpi: st.tag === 'rekeyed' && st.successor ? st.successor.ref.inboundSpi : null,
    inboundSpi: c.ref.inboundSpi, outboundSpi: c.ref.outboundSpi, local: c.ref.local, remote: c.ref.remote,
    mode: c.mode, suite: c.suiteText, localTs: c.localTs, remoteTs: c.remoteTs, encap: c.encap, ni: c.ni, nr: c.nr,
    installedAtMs: c.installedAtMs, rekeyAtMs: c.rekeyAtMs, expiresAtMs: c.expiresAtMs,
    outboundPending: c.outboundPending, pendingOutbound: c.pendingOutbound,
    collision: c.collision ? { peer: c.collision.peerSa.ref.inboundSpi, nonces: c.collision.nonces } : null,
  };
}

function taskCheckpoint(t: Task): TaskCheckpoint | null {
  switch (t.kind) {
    case 'ike-init': case 'ike-intermediate': case 'ike-auth': return null; // only before the SA is established
    // The run (keys of a new SA still open) is not kept, and neither is its request: resent after
    // a restart, it would let the peer finish an SA we no longer can (snapshotSa rewinds its Message ID).
    case 'ike-followup': return null;
    case 'child-create': return { kind: t.kind, child: t.child.config.name, group: t.group ?? null };
    case 'child-rekey': return { kind: t.kind, old: childCheckpoint(t.old), group: t.group ?? null };
    case 'child-delete': return { kind: t.kind, child: childCheckpoint(t.child), reason: t.reason };
    case 'ike-delete': return { kind: t.kind, reason: t.reason };
    case 'ike-rekey': return { kind: t.kind, group: t.group ?? null };
    case 'dpd': return { kind: t.kind };
  }
}

/** The checkpoint of `sa`, or null when it is not in a state worth resuming (half-open, deleting, dead). */
export function snapshotSa(sa: IkeSa): IkeSaCheckpoint | null {
  const st = sa.state;
  if ((st.tag !== 'established' && st.tag !== 'rekeyed') || sa.keys === null || sa.selected === null) return null;
  const o = sa.outstanding;
  const outstandingTask = o ? taskCheckpoint(o.task) : null;
  const k = sa.keys;
  return {
    peer: sa.peer.config.name, role: sa.role, spiI: sa.spiI, spiR: sa.spiR,
    state: st.tag, successorSpi: st.tag === 'rekeyed' && st.successor ? ourSpiOf(st.successor) : null,
    local: sa.local, remote: sa.remote, natLocal: sa.natLocal, natRemote: sa.natRemote, fragmentation: sa.fragmentation, peerHashes: sa.peerHashes,
    suite: k.suite, suiteText: k.suiteText, dhGroup: k.dhGroup, selected: sa.selected,
    skD: k.skD, skAi: k.sk.skAi, skAr: k.sk.skAr, skEi: k.sk.skEi, skEr: k.sk.skEr,
    remoteId: sa.remoteId, nextRequestId: o?.task.kind === 'ike-followup' ? o.messageId : sa.nextRequestId, expectedRequestId: sa.expectedRequestId, lastResponse: sa.lastResponse,
    outstanding: o && outstandingTask ? {
      task: outstandingTask, messageId: o.messageId, exchangeType: o.exchangeType, datagrams: o.datagrams, firstSentMs: o.firstSentMs ?? null,
      child: o.child ? {
        spi: o.child.spi, ni: o.child.ni, share: o.child.share ? { group: o.child.share.group, privateValue: o.child.share.exportPrivate() } : null,
        proposals: o.child.proposals, mode: o.child.mode, localTs: o.child.localTs, remoteTs: o.child.remoteTs,
      } : null,
      ikeRekey: o.ikeRekey ? { spi: o.ikeRekey.spi, ni: o.ikeRekey.ni, share: { group: o.ikeRekey.share.group, privateValue: o.ikeRekey.share.exportPrivate() } } : null,
    } : null,
    pending: sa.pending.map(taskCheckpoint).filter((t): t is TaskCheckpoint => t !== null),
    createdAtMs: sa.createdAtMs, establishedAtMs: sa.establishedAtMs, rekeyAtMs: sa.rekeyAtMs,
    children: [...sa.children.values()].filter((c) => c.state.tag !== 'deleted').map(childCheckpoint),
    lingering: [...sa.lingering.values()].map(({ ref, untilMs }) => ({ name: ref.child, inboundSpi: ref.inboundSpi, outboundSpi: ref.outboundSpi, local: ref.local, remote: ref.remote, untilMs })),
    reauth: reauthCheckpoint(sa),
    ikeCollision: sa.ikeCollision ? { peer: ourSpiOf(sa.ikeCollision.peerSa), nonces: sa.ikeCollision.nonces } : null,
  };
}

function reauthCheckpoint(sa: IkeSa): ReauthCheckpoint | null {
  const link = sa.reauth;
  // A redundant SA (reauth.ts) is not kept as such: resumed, it is a plain IKE SA that its
  // initiator deletes, or the simultaneous-start rule does.
  if (link === null || link.tag === 'redundant') return null;
  const other = link.tag === 'replacing' ? link.old : link.successor;
  return { tag: link.tag, spi: ourSpiOf(other), ours: link.ours, failed: link.tag === 'replacing' ? [...link.failed] : [] };
}

// ───────────────────────────── encode ─────────────────────────────

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const b64 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
const secret = (s: SecretBytes): string => b64(s.expose());
const spi64 = (v: bigint): string => v.toString(16).padStart(16, '0');

function tsJson(t: TsRange): Json {
  return { family: t.family, start: b64(t.start), end: b64(t.end), protocol: t.protocol, startPort: t.startPort, endPort: t.endPort };
}
function transformJson(t: PolicyTransform): Json { return t.keyLength === undefined ? { type: t.type, id: t.id } : { type: t.type, id: t.id, keyLength: t.keyLength }; }
function encapJson(e: UdpEncap | null): Json { return e ? { sourcePort: e.sourcePort, destinationPort: e.destinationPort } : null; }

function algorithmsJson(a: EspAlgorithms): Json {
  if (a.kind === 'aead') return { kind: a.kind, name: a.name, key: secret(a.key), icvBits: a.icvBits };
  return {
    kind: a.kind, encryption: { name: a.encryption.name, key: secret(a.encryption.key) },
    integrity: { name: a.integrity.name, key: secret(a.integrity.key), truncBits: a.integrity.truncBits },
  };
}

function kernelSaJson(s: KernelSa): Json {
  const l = s.lifetimes;
  return {
    spi: s.spi, source: s.source, destination: s.destination, algorithms: algorithmsJson(s.algorithms), esn: s.esn, replayWindow: s.replayWindow, encap: encapJson(s.encap),
    lifetimes: { softSec: l.softSec, hardSec: l.hardSec, softBytes: String(l.softBytes), hardBytes: String(l.hardBytes), softPackets: String(l.softPackets), hardPackets: String(l.hardPackets) },
  };
}

function childJson(c: ChildCheckpoint): Json {
  return {
    name: c.name, state: c.state, successorSpi: c.successorSpi, inboundSpi: c.inboundSpi, outboundSpi: c.outboundSpi, local: c.local, remote: c.remote,
    mode: c.mode, suite: c.suite, localTs: c.localTs.map(tsJson), remoteTs: c.remoteTs.map(tsJson), encap: encapJson(c.encap), ni: b64(c.ni), nr: b64(c.nr),
    installedAtMs: c.installedAtMs, rekeyAtMs: c.rekeyAtMs, expiresAtMs: c.expiresAtMs, outboundPending: c.outboundPending,
    pendingOutbound: c.pendingOutbound ? kernelSaJson(c.pendingOutbound) : null,
    collision: c.collision ? { peer: c.collision.peer, nonces: c.collision.nonces.map(b64) } : null,
  };
}

const shareJson = (s: ShareCheckpoint): Json => ({ group: s.group, privateValue: secret(s.privateValue) });

function taskJson(t: TaskCheckpoint): Json {
  switch (t.kind) {
    case 'child-create': return { kind: t.kind, child: t.child, group: t.group };
    case 'child-rekey': return { kind: t.kind, old: childJson(t.old), group: t.group };
    case 'child-delete': return { kind: t.kind, child: childJson(t.child), reason: t.reason };
    case 'ike-delete': return { kind: t.kind, reason: t.reason };
    case 'ike-rekey': return { kind: t.kind, group: t.group };
    case 'dpd': return { kind: t.kind };
  }
}

function selectedJson(p: SelectedProposal): Json {
  const opt = (t: PolicyTransform | undefined): Json => (t ? transformJson(t) : null);
  return { num: p.num, protocol: p.protocol, spi: b64(p.spi), encr: transformJson(p.encr), prf: opt(p.prf), integ: opt(p.integ), dh: opt(p.dh), esn: opt(p.esn), transforms: p.transforms.map(transformJson) };
}

/** The checkpoint as bytes for the CheckpointStore (key material included: see the module comment). */
export function encodeCheckpoint(cp: IkeSaCheckpoint): Uint8Array {
  const o = cp.outstanding;
  const json: Json = {
    v: CHECKPOINT_VERSION, peer: cp.peer, role: cp.role, spiI: spi64(cp.spiI), spiR: spi64(cp.spiR), state: cp.state,
    successorSpi: cp.successorSpi === null ? null : spi64(cp.successorSpi),
    local: { address: cp.local.address, port: cp.local.port }, remote: { address: cp.remote.address, port: cp.remote.port },
    natLocal: cp.natLocal, natRemote: cp.natRemote, fragmentation: cp.fragmentation, peerHashes: cp.peerHashes ? [...cp.peerHashes] : null,
    suite: { encrId: cp.suite.encrId, encrKeyBits: cp.suite.encrKeyBits ?? null, prfId: cp.suite.prfId, integId: cp.suite.integId ?? null },
    suiteText: cp.suiteText, dhGroup: cp.dhGroup, selected: selectedJson(cp.selected),
    keys: { skD: secret(cp.skD), skAi: secret(cp.skAi), skAr: secret(cp.skAr), skEi: secret(cp.skEi), skEr: secret(cp.skEr) },
    remoteId: cp.remoteId, nextRequestId: cp.nextRequestId, expectedRequestId: cp.expectedRequestId,
    lastResponse: cp.lastResponse ? { messageId: cp.lastResponse.messageId, datagrams: cp.lastResponse.datagrams.map(b64) } : null,
    outstanding: o ? {
      task: taskJson(o.task), messageId: o.messageId, exchangeType: o.exchangeType, datagrams: o.datagrams.map(b64), firstSentMs: o.firstSentMs,
      child: o.child ? {
        spi: o.child.spi, ni: b64(o.child.ni), share: o.child.share ? shareJson(o.child.share) : null,
        proposals: o.child.proposals.map((p) => ({ protocol: p.protocol, transforms: p.transforms.map(transformJson) })),
        mode: o.child.mode, localTs: o.child.localTs.map(tsJson), remoteTs: o.child.remoteTs.map(tsJson),
      } : null,
      ikeRekey: o.ikeRekey ? { spi: spi64(o.ikeRekey.spi), ni: b64(o.ikeRekey.ni), share: shareJson(o.ikeRekey.share) } : null,
    } : null,
    pending: cp.pending.map(taskJson),
    createdAtMs: cp.createdAtMs, establishedAtMs: cp.establishedAtMs, rekeyAtMs: cp.rekeyAtMs,
    children: cp.children.map(childJson),
    lingering: cp.lingering.map((l) => ({ ...l })),
    reauth: cp.reauth ? { tag: cp.reauth.tag, spi: spi64(cp.reauth.spi), ours: cp.reauth.ours, failed: [...cp.reauth.failed] } : null,
    ikeCollision: cp.ikeCollision ? { peer: spi64(cp.ikeCollision.peer), nonces: cp.ikeCollision.nonces.map(b64) } : null,
  };
  return new Uint8Array(Buffer.from(JSON.stringify(json), 'utf8'));
}

// ───────────────────────────── decode ─────────────────────────────

/** A JSON object being read, with the path of each field for errors. */
class Fields {
  readonly #v: Readonly<Record<string, unknown>>;
  readonly path: string;
  constructor(v: unknown, path: string) {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new CheckpointError(path || '(top)', 'expected an object');
    this.#v = v as Record<string, unknown>;
    this.path = path;
  }
  at(k: string): string { return this.path ? `${this.path}.${k}` : k; }
  raw(k: string): unknown { return this.#v[k]; }
  has(k: string): boolean { return this.#v[k] !== undefined && this.#v[k] !== null; }
  str(k: string): string {
    const v = this.#v[k];
    if (typeof v !== 'string') throw new CheckpointError(this.at(k), 'expected a string');
    return v;
  }
  oneOf<T extends string>(k: string, allowed: readonly T[]): T {
    const v = this.str(k);
    if (!(allowed as readonly string[]).includes(v)) throw new CheckpointError(this.at(k), `"${v}" is not one of ${allowed.join(', ')}`);
    return v as T;
  }
  int(k: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.#v[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new CheckpointError(this.at(k), `expected an integer in ${min}..${max}`);
    return v;
  }
  intOrNull(k: string, min = 0, max = Number.MAX_SAFE_INTEGER): number | null { return this.has(k) ? this.int(k, min, max) : null; }
  bool(k: string): boolean {
    const v = this.#v[k];
    if (typeof v !== 'boolean') throw new CheckpointError(this.at(k), 'expected true or false');
    return v;
  }
  bytes(k: string, min = 0, max = 65_535): Uint8Array {
    const s = this.str(k);
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s)) throw new CheckpointError(this.at(k), 'expected base64');
    const b = new Uint8Array(Buffer.from(s, 'base64'));
    if (b.length < min || b.length > max) throw new CheckpointError(this.at(k), `${b.length} bytes, want ${min}..${max}`);
    return b;
  }
  secret(k: string, min = 0, max = 1_024): SecretBytes { return new SecretBytes(this.bytes(k, min, max)); }
  spi64(k: string): bigint {
    const s = this.str(k);
    if (!/^[0-9a-f]{16}$/.test(s)) throw new CheckpointError(this.at(k), 'expected 16 hex digits');
    return BigInt(`0x${s}`);
  }
  bigintString(k: string): bigint {
    const s = this.str(k);
    if (!/^\d{1,20}$/.test(s)) throw new CheckpointError(this.at(k), 'expected a decimal integer');
    return BigInt(s);
  }
  obj(k: string): Fields { return new Fields(this.#v[k], this.at(k)); }
  objOrNull(k: string): Fields | null { return this.has(k) ? this.obj(k) : null; }
  list<T>(k: string, each: (v: unknown, path: string) => T, max = 4_096): T[] {
    const v = this.#v[k];
    if (!Array.isArray(v)) throw new CheckpointError(this.at(k), 'expected a list');
    if (v.length > max) throw new CheckpointError(this.at(k), `${v.length} entries, at most ${max}`);
    return v.map((x, i) => each(x, `${this.at(k)}[${i}]`));
  }
}

const MODES = ['tunnel', 'transport'] as const;
const U32 = 0xffffffff;

function decodeTs(v: unknown, path: string): TsRange {
  const f = new Fields(v, path);
  const family = f.oneOf('family', ['ipv4', 'ipv6'] as const);
  const len = family === 'ipv4' ? 4 : 16;
  return { family, start: f.bytes('start', len, len), end: f.bytes('end', len, len), protocol: f.int('protocol', 0, 255), startPort: f.int('startPort', 0, 0xffff), endPort: f.int('endPort', 0, 0xffff) };
}

function decodeTransform(v: unknown, path: string): PolicyTransform {
  const f = new Fields(v, path);
  const keyLength = f.intOrNull('keyLength', 0, 0xffff);
  return { type: f.int('type', 1, 255), id: f.int('id', 0, 0xffff), ...(keyLength !== null ? { keyLength } : {}) };
}

function decodeEndpoint(f: Fields): Endpoint { return { address: f.str('address'), port: f.int('port', 0, 0xffff) }; }

function decodeEncap(f: Fields | null): UdpEncap | null {
  return f ? { sourcePort: f.int('sourcePort', 0, 0xffff), destinationPort: f.int('destinationPort', 0, 0xffff) } : null;
}

function decodeAlgorithms(f: Fields): EspAlgorithms {
  const kind = f.oneOf('kind', ['aead', 'cipher+auth'] as const);
  if (kind === 'aead') return { kind, name: f.oneOf('name', ['rfc4106(gcm(aes))', 'rfc7539esp(chacha20,poly1305)'] as const), key: f.secret('key', 1), icvBits: f.int('icvBits', 64, 256) };
  const e = f.obj('encryption'); const i = f.obj('integrity');
  return {
    kind,
    encryption: { name: e.oneOf('name', ['cbc(aes)', 'cbc(des3_ede)'] as const), key: e.secret('key', 1) },
    integrity: { name: i.oneOf('name', ['hmac(sha1)', 'hmac(sha256)', 'hmac(sha384)', 'hmac(sha512)'] as const), key: i.secret('key', 1), truncBits: i.int('truncBits', 64, 512) },
  };
}

function decodeKernelSa(f: Fields): KernelSa {
  const l = f.obj('lifetimes');
  return {
    spi: f.int('spi', 1, U32), source: f.str('source'), destination: f.str('destination'), algorithms: decodeAlgorithms(f.obj('algorithms')),
    esn: f.bool('esn'), replayWindow: f.int('replayWindow', 0, U32), encap: decodeEncap(f.objOrNull('encap')),
    lifetimes: {
      softSec: l.int('softSec'), hardSec: l.int('hardSec'), softBytes: l.bigintString('softBytes'), hardBytes: l.bigintString('hardBytes'),
      softPackets: l.bigintString('softPackets'), hardPackets: l.bigintString('hardPackets'),
    },
  };
}

/** RFC 7296 §2.10: a nonce is 16..256 octets. */
function decodeNonce(v: unknown, path: string): Uint8Array {
  if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) throw new CheckpointError(path, 'expected base64');
  const b = new Uint8Array(Buffer.from(v, 'base64'));
  if (b.length < 16 || b.length > 256) throw new CheckpointError(path, `${b.length} bytes, want 16..256`);
  return b;
}

function decodeLingering(v: unknown, path: string): LingeringCheckpoint {
  const f = new Fields(v, path);
  return { name: f.str('name'), inboundSpi: f.int('inboundSpi', 0, U32), outboundSpi: f.int('outboundSpi', 0, U32), local: f.str('local'), remote: f.str('remote'), untilMs: f.int('untilMs') };
}

function decodeChild(v: unknown, path: string): ChildCheckpoint {
  const f = new Fields(v, path);
  const po = f.objOrNull('pendingOutbound');
  const col = f.objOrNull('collision');
  return {
    name: f.str('name'), state: f.oneOf('state', ['installed', 'rekeying', 'rekeyed', 'deleting', 'deleted'] as const),
    successorSpi: f.intOrNull('successorSpi', 0, U32), inboundSpi: f.int('inboundSpi', 0, U32), outboundSpi: f.int('outboundSpi', 0, U32),
    local: f.str('local'), remote: f.str('remote'), mode: f.oneOf('mode', MODES), suite: f.str('suite'),
    localTs: f.list('localTs', decodeTs, 256), remoteTs: f.list('remoteTs', decodeTs, 256), encap: decodeEncap(f.objOrNull('encap')),
    ni: f.bytes('ni', 0, 256), nr: f.bytes('nr', 0, 256),
    installedAtMs: f.int('installedAtMs'), rekeyAtMs: f.int('rekeyAtMs'), expiresAtMs: f.int('expiresAtMs'),
    outboundPending: f.bool('outboundPending'), pendingOutbound: po ? decodeKernelSa(po) : null,
    collision: col ? { peer: col.int('peer', 0, U32), nonces: col.list('nonces', decodeNonce, 2) } : null,
  };
}

function decodeShare(f: Fields): ShareCheckpoint { return { group: f.int('group', 1, 0xffff), privateValue: f.secret('privateValue', 1) }; }

function decodeTask(v: unknown, path: string): TaskCheckpoint {
  const f = new Fields(v, path);
  const kind = f.oneOf('kind', ['child-create', 'child-rekey', 'child-delete', 'ike-rekey', 'ike-delete', 'dpd'] as const);
  switch (kind) {
    case 'child-create': return { kind, child: f.str('child'), group: f.intOrNull('group', 1, 0xffff) };
    case 'child-rekey': return { kind, old: decodeChild(f.raw('old'), f.at('old')), group: f.intOrNull('group', 1, 0xffff) };
    case 'child-delete': return { kind, child: decodeChild(f.raw('child'), f.at('child')), reason: f.oneOf('reason', ['rekeyed', 'terminated', 'redundant', 'hard-lifetime'] as const) };
    case 'ike-delete': return { kind, reason: f.oneOf('reason', ['terminated', 'rekeyed', 'redundant', 'duplicate', 'reauthenticated'] as const) };
    case 'ike-rekey': return { kind, group: f.intOrNull('group', 1, 0xffff) };
    case 'dpd': return { kind };
  }
}

const datagram = (v: unknown, path: string): Uint8Array => {
  if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) throw new CheckpointError(path, 'expected base64');
  const b = new Uint8Array(Buffer.from(v, 'base64'));
  if (b.length < 28 || b.length > 65_535) throw new CheckpointError(path, `${b.length} bytes is not an IKE message`);
  return b;
};

function decodeSelected(f: Fields): SelectedProposal {
  const opt = (k: string): PolicyTransform | undefined => (f.has(k) ? decodeTransform(f.raw(k), f.at(k)) : undefined);
  const prf = opt('prf'); const integ = opt('integ'); const dh = opt('dh'); const esn = opt('esn');
  return {
    num: f.int('num', 0, 255), protocol: f.oneOf('protocol', ['ike', 'esp'] as const), spi: f.bytes('spi', 0, 8), encr: decodeTransform(f.raw('encr'), f.at('encr')),
    ...(prf ? { prf } : {}), ...(integ ? { integ } : {}), ...(dh ? { dh } : {}), ...(esn ? { esn } : {}),
    transforms: f.list('transforms', decodeTransform, 16),
  };
}

/** Parse and check a checkpoint; CheckpointError names the first field that is wrong. */
export function decodeCheckpoint(data: Uint8Array): IkeSaCheckpoint {
  let json: unknown;
  try { json = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8')); } catch {
    // Not the parser's message: V8 quotes the text around the error, which here is key material.
    throw new CheckpointError('(file)', `not JSON (${data.byteLength} bytes)`);
  }
  const f = new Fields(json, '');
  const v = f.int('v', 0, 1_000);
  if (v !== CHECKPOINT_VERSION) throw new CheckpointError('v', `version ${v}, this engine reads ${CHECKPOINT_VERSION}`);
  const s = f.obj('suite'); const keys = f.obj('keys');
  const lr = f.objOrNull('lastResponse'); const o = f.objOrNull('outstanding');
  const encrKeyBits = s.intOrNull('encrKeyBits', 1, 1_024); const integId = s.intOrNull('integId', 0, 0xffff);
  let outstanding: OutstandingCheckpoint | null = null;
  if (o) {
    const c = o.objOrNull('child'); const r = o.objOrNull('ikeRekey');
    outstanding = {
      task: decodeTask(o.raw('task'), o.at('task')), messageId: o.int('messageId', 0, U32), exchangeType: o.int('exchangeType', 0, 255),
      datagrams: o.list('datagrams', datagram, 64), firstSentMs: o.intOrNull('firstSentMs'),
      child: c ? {
        spi: c.int('spi', 0, U32), ni: c.bytes('ni', 0, 256), share: c.has('share') ? decodeShare(c.obj('share')) : null,
        proposals: c.list('proposals', (pv, pp) => { const pf = new Fields(pv, pp); return { protocol: pf.oneOf('protocol', ['ike', 'esp'] as const), transforms: pf.list('transforms', decodeTransform, 64) }; }, 64),
        mode: c.oneOf('mode', MODES), localTs: c.list('localTs', decodeTs, 256), remoteTs: c.list('remoteTs', decodeTs, 256),
      } : null,
      ikeRekey: r ? { spi: r.spi64('spi'), ni: r.bytes('ni', 16, 256), share: decodeShare(r.obj('share')) } : null,
    };
  }
  const ph = f.raw('peerHashes');
  const ra = f.objOrNull('reauth');
  const ic = f.objOrNull('ikeCollision');
  return {
    peer: f.str('peer'), role: f.oneOf('role', ['initiator', 'responder'] as const), spiI: f.spi64('spiI'), spiR: f.spi64('spiR'),
    state: f.oneOf('state', ['established', 'rekeyed'] as const), successorSpi: f.has('successorSpi') ? f.spi64('successorSpi') : null,
    local: decodeEndpoint(f.obj('local')), remote: decodeEndpoint(f.obj('remote')),
    natLocal: f.bool('natLocal'), natRemote: f.bool('natRemote'), fragmentation: f.bool('fragmentation'),
    peerHashes: ph === null || ph === undefined ? null : f.list('peerHashes', (x, p) => { if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x > 0xffff) throw new CheckpointError(p, 'expected a hash id'); return x; }, 64),
    suite: { encrId: s.int('encrId', 1, 0xffff), ...(encrKeyBits !== null ? { encrKeyBits } : {}), prfId: s.int('prfId', 1, 0xffff), ...(integId !== null ? { integId } : {}) },
    suiteText: f.str('suiteText'), dhGroup: f.int('dhGroup', 1, 0xffff), selected: decodeSelected(f.obj('selected')),
    skD: keys.secret('skD', 1), skAi: keys.secret('skAi'), skAr: keys.secret('skAr'), skEi: keys.secret('skEi', 1), skEr: keys.secret('skEr', 1),
    remoteId: f.has('remoteId') ? f.str('remoteId') : null,
    nextRequestId: f.int('nextRequestId', 0, U32), expectedRequestId: f.int('expectedRequestId', 0, U32),
    lastResponse: lr ? { messageId: lr.int('messageId', 0, U32), datagrams: lr.list('datagrams', datagram, 64) } : null,
    outstanding, pending: f.list('pending', decodeTask, 256),
    createdAtMs: f.int('createdAtMs'), establishedAtMs: f.intOrNull('establishedAtMs'), rekeyAtMs: f.intOrNull('rekeyAtMs'),
    children: f.list('children', decodeChild, 1_024),
    lingering: f.has('lingering') ? f.list('lingering', decodeLingering, 1_024) : [],
    reauth: ra ? {
      tag: ra.oneOf('tag', ['replacing', 'superseded'] as const), spi: ra.spi64('spi'), ours: ra.bool('ours'),
      failed: ra.list('failed', (x, p) => { if (typeof x !== 'string') throw new CheckpointError(p, 'expected a child name'); return x; }, 1_024),
    } : null,
    ikeCollision: ic ? { peer: ic.spi64('peer'), nonces: ic.list('nonces', decodeNonce, 2) } : null,
  };
}
