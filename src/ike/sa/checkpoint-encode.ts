// IKE SA checkpoint to bytes (checkpoint-types.ts has the model, checkpoint-decode.ts the way back).
//
// Format: JSON, `v: 1`, byte strings in base64, 64-bit SPIs in hex. It holds key material, so it
// crosses the CheckpointStore port inside SecretBytes. decodeCheckpoint checks every field and
// names the one that is wrong (CheckpointError); a checkpoint that does not decode is never used.
import type { SecretBytes } from '../../common/secret.js';
import type { PolicyTransform } from '../policy/proposal.js';
import type { SelectedProposal } from '../policy/select.js';
import type { EspAlgorithms, KernelSa, UdpEncap } from '../ports.js';
import { CHECKPOINT_VERSION, type ChildCheckpoint, type IkeSaCheckpoint, type ShareCheckpoint, type TaskCheckpoint } from './checkpoint-types.js';
import type { TsRange } from './ts.js';

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
