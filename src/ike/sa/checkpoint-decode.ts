// Bytes to an IKE SA checkpoint, checking every field (checkpoint-encode.ts writes them): a
// checkpoint that does not decode is never used, and CheckpointError names the first field that is
// wrong ("children[0].ni") without quoting its content, which may be key material.
import { SecretBytes } from '../../common/secret.js';
import type { PolicyTransform } from '../policy/proposal.js';
import type { SelectedProposal } from '../policy/select.js';
import type { EspAlgorithms, Endpoint, KernelSa, UdpEncap } from '../ports.js';
import {
  CHECKPOINT_VERSION, CheckpointError, type ChildCheckpoint, type IkeSaCheckpoint, type LingeringCheckpoint, type OutstandingCheckpoint, type ShareCheckpoint, type TaskCheckpoint,
} from './checkpoint-types.js';
import type { TsRange } from './ts.js';

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
