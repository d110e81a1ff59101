// Resuming IKE SAs from checkpoints after a restart (checkpoint.ts says why). The order matters:
// decode and check every checkpoint against the current peer configs, rebuild the SAs and take
// their Child SAs over from the kernel (KernelIpsec.restoreChildSa), register them, then restart
// timers and the work that was in flight: the request we had sent is sent again with its message
// ID (the peer answers from its response cache, or processes it if it never got it), queued tasks
// run, and an SA with nothing to do checks liveness at once (an empty INFORMATIONAL, RFC 7296
// §1.4) so a peer that dropped the SA while we were down is noticed within dpd.timeout.
import { errorMessage } from '../../common/errors.js';
import type { SecretBytes } from '../../common/secret.js';
import { keyShareFromPrivate } from '../crypto/dh.js';
import type { IkeSaStatus } from '../types.js';
import type { KernelChildSaRef } from '../ports.js';
import type { EngineHost } from './host.js';
import { awaitPeerSwitch } from './child-tasks.js';
import { CheckpointError, decodeCheckpoint, type ChildCheckpoint, type IkeSaCheckpoint, type ShareCheckpoint, type TaskCheckpoint } from './checkpoint.js';
import { upIkeKeysOf } from './ike-keys.js';
import { ikeSpisText, NO_SCRATCH, OUTBOUND_ACTIVE, rekeyedState, spiHex, type ChildRuntime, type RequestScratch, type ChildSa, type IkeSa, type LingeringChild, type Outstanding, type PeerRuntime, type Task } from './ike-sa.js';
import { armLingering, armReauthOutboundHold, awaitPeerReauth, scheduleChildTimers, scheduleDpd } from './lifecycle.js';
import { finishReauth, linkReauth } from './reauth.js';
import { awaitOldIkeDelete } from './ike-rekey-tasks.js';
import { next, queueTask } from './task-queue.js';
import { arm } from './task-retransmit.js';

/** What became of one checkpoint. */
export type RestoreResult =
  | {
      readonly id: string; readonly outcome: 'resumed'; readonly peer: string; readonly ikeSpis: string; readonly state: IkeSaStatus['state'];
      /** The Child SAs it took over from the kernel (the daemon adopts only the others). */
      readonly children: readonly KernelChildSaRef[];
      /** Inbound SPIs allocated for a request in flight: larval kernel states to keep, not to clean up. */
      readonly reserved: readonly { readonly spi: number; readonly local: string; readonly remote: string }[];
      /** Child SAs the checkpoint had but the kernel no longer holds (deleted at the peer too, then negotiated again). */
      readonly lost: readonly KernelChildSaRef[];
      /** Rekeyed Child SAs whose states linger until their delete time: removed on schedule, not adopted. */
      readonly lingering: readonly KernelChildSaRef[];
    }
  | { readonly id: string; readonly outcome: 'refused'; readonly peer: string | null; readonly reason: string };

function share(s: ShareCheckpoint, peer: PeerRuntime): ReturnType<typeof keyShareFromPrivate> {
  return keyShareFromPrivate(s.group, s.privateValue.expose(), { allowWeak: peer.config.ike.allowWeak ?? false });
}

/** Why `cp` cannot run under the current config, or null. */
function incompatible(cp: IkeSaCheckpoint, peer: PeerRuntime | undefined): string | null {
  if (!peer) return `no tunnel named "${cp.peer}" is configured any more`;
  if (peer.config.local.address !== cp.local.address) return `local address changed (${cp.local.address} → ${peer.config.local.address})`;
  if (peer.config.remote.address !== '%any' && peer.config.remote.address !== cp.remote.address) return `remote address changed (${cp.remote.address} → ${peer.config.remote.address})`;
  const names = new Set(peer.children.map((c) => c.config.name));
  const gone = [...cp.children.map((c) => c.name), ...cp.pending.flatMap((t) => (t.kind === 'child-create' ? [t.child] : []))].find((n) => !names.has(n));
  if (gone !== undefined) return `child "${gone}" is not configured any more`;
  return null;
}

function buildChild(c: ChildCheckpoint, runtime: ChildRuntime, peer: string): ChildSa {
  return {
    runtime, state: stateOf(c),
    ref: { peer, child: runtime.config.name, reqid: runtime.reqid, inboundSpi: c.inboundSpi, outboundSpi: c.outboundSpi, local: c.local, remote: c.remote },
    mode: c.mode, suiteText: c.suite, localTs: c.localTs, remoteTs: c.remoteTs, encap: c.encap, ni: c.ni, nr: c.nr,
    installedAtMs: c.installedAtMs, rekeyAtMs: c.rekeyAtMs, expiresAtMs: c.expiresAtMs,
    outbound: c.outboundPending ? { tag: 'pending', state: c.pendingOutbound } : OUTBOUND_ACTIVE, timers: [],
  };
}

/** Successors of rekeyed children are linked once every child is built. */
function stateOf(c: ChildCheckpoint): ChildSa['state'] {
  switch (c.state) {
    case 'rekeyed': return { tag: 'rekeyed', successor: null };
    case 'installed': case 'rekeying': case 'deleting': case 'deleted': return { tag: c.state };
  }
}

interface Rebuilt { readonly id: string; readonly cp: IkeSaCheckpoint; readonly sa: IkeSa; readonly lost: ChildSa[]; readonly reserved: number[] }

/** Rebuild one SA (not yet registered); children the kernel lost are returned separately. */
async function rebuild(e: EngineHost, id: string, cp: IkeSaCheckpoint, peer: PeerRuntime): Promise<Rebuilt> {
  const now = e.clock.now();
  // incompatible() refused checkpoints naming a child the config lacks; this is its backstop.
  const runtimeOf = (name: string): ChildRuntime => {
    const r = peer.children.find((c) => c.config.name === name);
    if (r === undefined) throw new CheckpointError('children', `child "${name}" is not configured any more`);
    return r;
  };
  const children = new Map<number, ChildSa>();
  const lost: ChildSa[] = [];
  for (const c of cp.children) {
    const child = buildChild(c, runtimeOf(c.name), peer.config.name);
    const present = await e.kernel.restoreChildSa({ ref: child.ref, mode: child.mode, ifId: child.runtime.config.ifId ?? null, mark: child.runtime.config.mark ?? null, pendingOutbound: child.outbound.tag === 'pending' ? child.outbound.state : null })
      .catch((err: unknown) => { e.log?.warn({ peer: peer.config.name, spi: child.ref.inboundSpi, err: errorMessage(err) }, 'kernel lookup of a resumed Child SA failed'); return false; });
    if (present) children.set(c.inboundSpi, child); else lost.push(child);
  }
  // Successors of rekeyed children, now that all are built.
  for (const c of cp.children) {
    const child = children.get(c.inboundSpi);
    if (child && c.state === 'rekeyed') child.state = { tag: 'rekeyed', successor: c.successorSpi === null ? null : children.get(c.successorSpi) ?? null };
  }
  const childOf = (c: ChildCheckpoint): ChildSa => children.get(c.inboundSpi) ?? lost.find((x) => x.ref.inboundSpi === c.inboundSpi) ?? buildChild(c, runtimeOf(c.name), peer.config.name);
  const taskOf = (t: TaskCheckpoint): Task => {
    switch (t.kind) {
      case 'child-create': return { kind: t.kind, child: runtimeOf(t.child), ...(t.group !== null ? { group: t.group } : {}) };
      case 'child-rekey': return { kind: t.kind, old: childOf(t.old), ...(t.group !== null ? { group: t.group } : {}) };
      case 'child-delete': return { kind: t.kind, child: childOf(t.child), reason: t.reason };
      case 'ike-delete': return { kind: t.kind, reason: t.reason };
      case 'ike-rekey': return { kind: t.kind, ...(t.group !== null ? { group: t.group } : {}) };
      case 'dpd': return { kind: t.kind };
    }
  };
  const role = cp.role;
  const keys = upIkeKeysOf({
    suite: cp.suite, suiteText: cp.suiteText, dhGroup: cp.dhGroup, role, random: e.random,
    raw: { skD: cp.skD, skAi: cp.skAi, skAr: cp.skAr, skEi: cp.skEi, skEr: cp.skEr },
  });
  const reserved: number[] = [];
  let outstanding: Outstanding | null = null;
  const o = cp.outstanding;
  if (o) {
    let scratch: RequestScratch = NO_SCRATCH;
    if (o.child) {
      scratch = { kind: 'child', offer: {
        spi: o.child.spi, ni: o.child.ni, share: o.child.share ? share(o.child.share, peer) : null,
        proposals: o.child.proposals, mode: o.child.mode, localTs: o.child.localTs, remoteTs: o.child.remoteTs,
      }, collision: null };
      reserved.push(o.child.spi);
    } else if (o.ikeRekey) scratch = { kind: 'ike-rekey', offer: { spi: o.ikeRekey.spi, ni: o.ikeRekey.ni, share: share(o.ikeRekey.share, peer) }, collision: null };
    outstanding = {
      task: taskOf(o.task), messageId: o.messageId, exchangeType: o.exchangeType, datagrams: o.datagrams, scratch, tries: 0, timer: null,
      ...(o.firstSentMs !== null ? { firstSentMs: o.firstSentMs } : {}),
    };
    // The peer's rekey that crossed our Child SA rekey in flight (§2.8.1) goes back onto that request.
    const task = outstanding.task;
    const col = task.kind === 'child-rekey' ? cp.children.find((c) => c.inboundSpi === task.old.ref.inboundSpi)?.collision : undefined;
    const peerSa = col ? children.get(col.peer) : undefined;
    if (col && peerSa && scratch.kind === 'child') scratch.collision = { peerSa, nonces: col.nonces };
  }
  const sa: IkeSa = {
    serial: e.newSerial(), peer, role, spiI: cp.spiI, spiR: cp.spiR,
    // Every checkpoint written has establishedAtMs (only up SAs are written); the format allows null.
    state: { tag: 'established', up: { remoteId: cp.remoteId, establishedAtMs: cp.establishedAtMs ?? cp.createdAtMs, upSerial: e.newSerial(), rekeyAtMs: cp.rekeyAtMs, resumedAtMs: now }, keyed: { selected: cp.selected, keys } },
    local: cp.local, remote: cp.remote, natLocal: cp.natLocal, natRemote: cp.natRemote, fragmentation: cp.fragmentation,
    peerHashes: cp.peerHashes ? [...cp.peerHashes] : null, nextRequestId: cp.nextRequestId, outstanding, pending: cp.pending.map(taskOf),
    expectedRequestId: cp.expectedRequestId, lastResponse: cp.lastResponse, fragments: null, children, lingering: lingeringOf(cp, peer), reauth: null, followup: null,
    createdAtMs: cp.createdAtMs,
    lastInboundMs: now, timers: { rekey: null, dpd: null, halfOpen: null, rekeyed: null }, queue: Promise.resolve(),
  };
  return { id, cp, sa, lost, reserved };
}

/** Lingering Child SAs of a child config that still exists (otherwise the daemon's orphan cleanup takes them). */
function lingeringOf(cp: IkeSaCheckpoint, peer: PeerRuntime): IkeSa['lingering'] {
  if (cp.lingering.length === 0) return null;
  const out = new Map<number, LingeringChild>();
  for (const l of cp.lingering) {
    const runtime = peer.children.find((c) => c.config.name === l.name);
    if (!runtime) continue;
    const ref = { peer: peer.config.name, child: l.name, reqid: runtime.reqid, inboundSpi: l.inboundSpi, outboundSpi: l.outboundSpi, local: l.local, remote: l.remote };
    out.set(l.inboundSpi, { ref, untilMs: l.untilMs });
  }
  return out;
}

/** Restart what an established SA had going: timers, the request in flight, queued work. */
function resume(e: EngineHost, r: Rebuilt): void {
  const { sa, cp } = r;
  const now = e.clock.now();
  for (const l of sa.lingering?.values() ?? []) armLingering(e, sa, l.ref, l.untilMs - now);
  for (const c of sa.children.values()) {
    // A rekey whose IKE_FOLLOWUP_KE run was in flight is not resumed (a checkpoint holds no run,
    // RFC 9370 §2.2.2): the old SA carries on and is rekeyed afresh.
    if (c.state.tag === 'rekeying' && !(sa.outstanding?.task.kind === 'child-rekey' && sa.outstanding.task.old === c)) c.state = { tag: 'installed' };
    scheduleChildTimers(e, c);
    // Held receive-only for the peer's re-authentication: the hold's timer died with the process.
    if (c.outbound.tag === 'pending' && sa.reauth?.tag === 'replacing' && !sa.reauth.ours && c.state.tag === 'installed') armReauthOutboundHold(e, sa, c);
    // A Child SA rekey we answered waits for the peer's Delete of the old SA; so does its timer
    // (a successor on another IKE SA is a reauthentication's, held above).
    const successor = c.state.tag === 'rekeyed' ? c.state.successor : null;
    if (successor?.outbound.tag === 'pending' && sa.children.get(successor.ref.inboundSpi) === successor) awaitPeerSwitch(e, sa, c, successor);
  }
  if (cp.state === 'rekeyed') {
    // Superseded: it only answers the peer until its Delete (ours in flight, or the peer's).
    if (!sa.outstanding) awaitOldIkeDelete(e, sa);
  } else {
    if (cp.rekeyAtMs !== null) sa.timers.rekey = e.clock.setTimer(Math.max(0, cp.rekeyAtMs - now), () => { void e.enqueue(sa, () => queueTask(e, sa, { kind: 'ike-rekey' })); });
    scheduleDpd(e, sa);
    // Child SAs the kernel lost while we were down (hard lifetime): tell the peer, bring them back.
    for (const c of r.lost) {
      if (c.state.tag === 'deleted' || c.state.tag === 'rekeyed') continue;
      c.state = { tag: 'deleted' };
      sa.pending.push({ kind: 'child-delete', child: c, reason: 'hard-lifetime' });
      if (!sa.peer.terminated && !sa.pending.some((t) => t.kind === 'child-create' && t.child === c.runtime)) sa.pending.push({ kind: 'child-create', child: c.runtime });
    }
    if (!sa.outstanding && sa.pending.length === 0) sa.pending.push({ kind: 'dpd' });
  }
  const o = sa.outstanding;
  void e.enqueue(sa, () => {
    if (o) arm(e, sa, o);
    return next(e, sa);
  });
}

/**
 * Resume IKE SAs from checkpoints a previous process saved (before start()). Each checkpoint is
 * resumed or refused with a reason; refused ones are removed from the store.
 */
export async function restoreSas(e: EngineHost, items: readonly { readonly id: string; readonly data: SecretBytes }[]): Promise<RestoreResult[]> {
  const results: RestoreResult[] = [];
  const built: Rebuilt[] = [];
  const refuse = (id: string, peer: string | null, reason: string): void => {
    results.push({ id, outcome: 'refused', peer, reason });
    try { e.ports.checkpoints?.remove(id); } catch { /* the store reports its own failures */ }
  };
  for (const { id, data } of items) {
    let cp: IkeSaCheckpoint;
    try { cp = decodeCheckpoint(data.expose()); } catch (err) {
      refuse(id, null, err instanceof CheckpointError ? err.message : `unreadable: ${errorMessage(err)}`);
      continue;
    }
    const ours = cp.role === 'initiator' ? cp.spiI : cp.spiR;
    if (spiHex(ours) !== id) { refuse(id, cp.peer, `checkpoint ${id} holds IKE SA ${spiHex(ours)}`); continue; }
    const peer = e.peers.get(cp.peer);
    const why = incompatible(cp, peer);
    if (why !== null || !peer) { refuse(id, cp.peer, why ?? 'no peer'); continue; }
    if (e.sas.has(ours)) { refuse(id, cp.peer, `IKE SA ${id} is already running`); continue; }
    try { built.push(await rebuild(e, id, cp, peer)); } catch (err) { refuse(id, cp.peer, errorMessage(err)); }
  }
  for (const r of built) { e.register(r.sa); r.sa.peer.everEstablished = true; }
  for (const r of built) {
    if (r.cp.state !== 'rekeyed') continue;
    const successor = r.cp.successorSpi === null ? null : e.sas.get(r.cp.successorSpi) ?? null;
    r.sa.state = rekeyedState(r.sa, successor);
  }
  relinkReauths(e, built);
  // An IKE rekey collision in progress (RFC 7296 §2.8.1): the peer's new IKE SA has its own checkpoint.
  for (const r of built) {
    const ic = r.cp.ikeCollision;
    const peerSa = ic ? e.sas.get(ic.peer) : undefined;
    // It is our rekey request's to settle; without that request it is moot.
    const s = r.sa.outstanding?.scratch;
    if (ic && peerSa && peerSa.peer === r.sa.peer && s?.kind === 'ike-rekey') s.collision = { peerSa, nonces: ic.nonces };
  }
  for (const r of built) {
    resume(e, r);
    results.push({
      id: r.id, outcome: 'resumed', peer: r.sa.peer.config.name, ikeSpis: ikeSpisText(r.sa), state: r.cp.state === 'rekeyed' ? 'rekeying' : 'established',
      children: [...r.sa.children.values()].map((c) => c.ref), lost: r.lost.map((c) => c.ref), lingering: [...r.sa.lingering?.values() ?? []].map((l) => l.ref),
      reserved: r.reserved.map((spi) => ({ spi, local: r.sa.local.address, remote: r.sa.remote.address })),
    });
  }
  for (const r of built) {
    const link = r.sa.reauth;
    if (link?.tag !== 'replacing') continue;
    if (link.ours) void e.enqueue(r.sa, () => finishReauth(e, r.sa));
    else awaitPeerReauth(e, r.sa);
  }
  return results;
}

/**
 * Reauthentications in progress (reauth.ts) when the checkpoints were written: link the new IKE SA
 * and the old one again, and the old one's superseded Child SAs to their successors on the new
 * one. Only when both were resumed; otherwise each goes on as a plain IKE SA.
 */
function relinkReauths(e: EngineHost, built: readonly Rebuilt[]): void {
  for (const r of built) {
    const ra = r.cp.reauth;
    if (ra?.tag !== 'replacing') continue;
    const old = built.find((x) => x.sa === e.sas.get(ra.spi) && x.sa.peer === r.sa.peer && x.cp.reauth?.tag === 'superseded');
    if (old === undefined || old.sa.reauth !== null) continue;
    linkReauth(old.sa, r.sa, ra.ours);
    if (r.sa.reauth?.tag === 'replacing') for (const f of ra.failed) r.sa.reauth.failed.add(f);
    for (const c of old.cp.children) {
      const child = old.sa.children.get(c.inboundSpi);
      const successor = c.successorSpi === null ? undefined : r.sa.children.get(c.successorSpi);
      if (child?.state.tag === 'rekeyed' && child.state.successor === null && successor) child.state = { tag: 'rekeyed', successor };
    }
  }
}
