// Responses to the Child SA exchanges we initiate (tasks.ts routes them here): a new Child SA
// (RFC 7296 §1.3.1) and a rekey (§1.3.3) with its collisions (§2.8.1), INVALID_KE_PAYLOAD
// retries (§1.3, invalid-ke.ts), and what follows a Child SA our kernel refused.
import type { IkeMessage } from '../codec/message.js';
import { completeChildInitiator, type ChildCompletion } from '../exchanges/child-sa.js';
import { ourRekeyLoses } from '../exchanges/collision.js';
import { keRetry } from '../exchanges/invalid-ke.js';
import type { IkeFailure } from '../ports.js';
import type { EngineHost } from './host.js';
import { REKEY_RETRY_MS, REKEYED_SA_TIMEOUT_MS } from './defaults.js';
import type { ChildRequestScratch, ChildRuntime, ChildSa, IkeSa, Outstanding, Task } from './ike-sa.js';
import { activateOutbound, emitChildUp, installChild, removeChild } from './lifecycle.js';
import { noteReauthChildFailed } from './reauth.js';

export function releaseSpi(e: EngineHost, sa: IkeSa, spi: number | undefined): void {
  if (spi === undefined) return;
  void e.track(e.kernel.releaseSpi({ local: sa.local.address, remote: sa.remote.address, spi }));
}

/**
 * A refused offer: the group to repeat it with (INVALID_KE_PAYLOAD we can follow), or the failure
 * to report — for INVALID_KE_PAYLOAD we cannot follow, invalid-ke.ts's, which names the groups.
 */
function refusal(child: ChildRuntime, s: ChildRequestScratch, retried: boolean, r: Extract<ChildCompletion, { ok: false }>): { readonly group: number } | { readonly failure: IkeFailure } {
  if (r.retryGroup === undefined) return { failure: r.failure };
  const k = keRetry({ proposals: child.espProposals, sent: s.share?.group ?? null, retried, wanted: r.retryGroup, what: `Child SA ${child.config.name}` });
  return k.kind === 'retry' ? { group: k.group } : { failure: k.failure };
}

/**
 * We refused an answer that carried no error notify, so the peer has installed its side of the SA
 * (RFC 7296 §1.3): after a rekey it would move its traffic there and lose it. Delete it at the peer,
 * as strongSwan does, with the SPI we offered (§3.11: the SPI we would have received on). The
 * record exists only to name that SPI; nothing of it is in our kernel.
 */
function deleteRefusedAtPeer(e: EngineHost, sa: IkeSa, child: ChildRuntime, s: ChildRequestScratch, m: IkeMessage): void {
  if (m.errorNotifies().length > 0) return;
  const now = e.clock.now();
  const ref = { peer: sa.peer.config.name, child: child.config.name, reqid: child.reqid, inboundSpi: s.spi, outboundSpi: 0, local: sa.local.address, remote: sa.remote.address };
  const refused: ChildSa = {
    runtime: child, state: { tag: 'deleted' }, ref, mode: s.mode, suiteText: '', localTs: s.localTs, remoteTs: s.remoteTs, encap: null, ni: s.ni, nr: new Uint8Array(0),
    installedAtMs: now, rekeyAtMs: now, expiresAtMs: now, outboundPending: false, pendingOutbound: null, collision: null, timers: [],
  };
  sa.pending.push({ kind: 'child-delete', child: refused, reason: 'redundant' });
}

export async function onChildCreate(e: EngineHost, sa: IkeSa, m: IkeMessage, o: Outstanding, task: Extract<Task, { kind: 'child-create' }>): Promise<void> {
  const child = task.child;
  const r = completeChildInitiator(e, sa, child, o.child!, m, { inIkeAuth: false, exchange: 'CREATE_CHILD_SA' });
  if (!r.ok) {
    releaseSpi(e, sa, o.child?.spi);
    deleteRefusedAtPeer(e, sa, child, o.child!, m);
    const next = refusal(child, o.child!, task.group !== undefined, r);
    if ('group' in next) { sa.pending.unshift({ kind: 'child-create', child, group: next.group }); return; }
    if (r.temporary) { e.clock.setTimer(REKEY_RETRY_MS, () => { void e.enqueue(sa, () => e.queueTask(sa, { kind: 'child-create', child })); }); return; }
    e.failure(sa.peer, next.failure);
    noteReauthChildFailed(sa, child.config.name);
    return;
  }
  if (await installChild(e, sa, r.child, r.install)) emitChildUp(e, r.child);
  else abandonChild(e, sa, r.child, { kind: 'child-create', child });
}

/**
 * Our kernel refused a Child SA the peer has installed (installChild reported why): delete it at
 * the peer, where it would swallow traffic, and negotiate again later (strongSwan deletes it too).
 */
export function abandonChild(e: EngineHost, sa: IkeSa, child: ChildSa, retry: Task): void {
  noteReauthChildFailed(sa, child.ref.child);
  sa.pending.push({ kind: 'child-delete', child, reason: 'redundant' });
  e.clock.setTimer(REKEY_RETRY_MS, () => { void e.enqueue(sa, () => e.queueTask(sa, retry)); });
}

/**
 * The peer rekeyed `old` (a plain rekey we answered, or a collision whose winner is the peer's,
 * §2.8.1): `successor` is installed here inbound-only. Keep sending on `old` until the peer
 * deletes it: the peer installs its SA when our answer arrives, which can be after our own
 * exchange has ended, so switching now can send into an SA the peer does not have yet. The Delete
 * switches over (responder.ts); without one, we switch after REKEYED_SA_TIMEOUT_MS.
 */
export function awaitPeerSwitch(e: EngineHost, sa: IkeSa, old: ChildSa, successor: ChildSa): void {
  old.timers.push(e.clock.setTimer(REKEYED_SA_TIMEOUT_MS, () => {
    void e.enqueue(sa, async () => {
      const owner = e.ownerOf(old);
      if (!owner || old.state.tag !== 'rekeyed' || old.state.successor !== successor) return;
      if (successor.state.tag === 'deleted') { old.state = { tag: 'installed' }; return; }
      await activateOutbound(e, successor);
      await removeChild(e, owner, old, 'rekeyed');
    });
  }));
}

export function emitRekeyed(e: EngineHost, old: ChildSa, successor: ChildSa): void {
  e.emit({ type: 'child-rekeyed', peer: old.ref.peer, child: old.ref.child, old: old.ref, ref: successor.ref, suite: successor.suiteText });
}

export async function onChildRekey(e: EngineHost, sa: IkeSa, m: IkeMessage, o: Outstanding, task: Extract<Task, { kind: 'child-rekey' }>): Promise<void> {
  const old = task.old;
  const scratch = o.child!;
  const r = completeChildInitiator(e, sa, old.runtime, scratch, m, { inIkeAuth: false, exchange: 'CREATE_CHILD_SA' });
  const collision = old.collision;
  old.collision = null;
  if (!r.ok) {
    releaseSpi(e, sa, scratch.spi);
    deleteRefusedAtPeer(e, sa, old.runtime, scratch, m);
    if (collision && old.state.tag !== 'deleted') {
      // Our rekey failed but the peer's went through: its SA is the successor (§2.8.1).
      old.state = { tag: 'rekeyed', successor: collision.peerSa };
      awaitPeerSwitch(e, sa, old, collision.peerSa);
      emitRekeyed(e, old, collision.peerSa);
      return;
    }
    if (old.state.tag !== 'rekeying') return; // deleted meanwhile (§2.25.1)
    old.state = { tag: 'installed' };
    const next = refusal(old.runtime, scratch, task.group !== undefined, r);
    if ('group' in next) { sa.pending.unshift({ kind: 'child-rekey', old, group: next.group }); return; }
    // The old SA still carries traffic: try again later, from our own group (its hard lifetime bounds this).
    if (!r.temporary) e.failure(sa.peer, next.failure);
    e.clock.setTimer(REKEY_RETRY_MS, () => { void e.enqueue(sa, () => e.queueTask(sa, { kind: 'child-rekey', old })); });
    return;
  }
  const fresh = r.child;
  if (old.state.tag === 'deleted' && collision) {
    // The peer won the collision and deleted the old SA before this answer came (responder.ts):
    // its new SA took over; ours is redundant, so it is not installed and the peer drops its side.
    releaseSpi(e, sa, scratch.spi);
    sa.pending.push({ kind: 'child-delete', child: fresh, reason: 'redundant' });
    return;
  }
  if (old.state.tag === 'deleted') {
    // The peer deleted the old SA while we rekeyed it: keep the new one as a plain child.
    if (await installChild(e, sa, fresh, r.install)) emitChildUp(e, fresh);
    else abandonChild(e, sa, fresh, { kind: 'child-create', child: old.runtime });
    return;
  }
  if (collision && ourRekeyLoses([scratch.ni, fresh.nr], collision.nonces)) {
    // §2.8.1: our new SA holds the lowest nonce; it is redundant and we delete it.
    releaseSpi(e, sa, scratch.spi);
    old.state = { tag: 'rekeyed', successor: collision.peerSa };
    awaitPeerSwitch(e, sa, old, collision.peerSa);
    emitRekeyed(e, old, collision.peerSa);
    sa.pending.push({ kind: 'child-delete', child: fresh, reason: 'redundant' });
    return;
  }
  if (!(await installChild(e, sa, fresh, r.install))) { old.state = { tag: 'installed' }; abandonChild(e, sa, fresh, { kind: 'child-rekey', old }); return; }
  old.state = { tag: 'rekeyed', successor: fresh };
  emitRekeyed(e, old, fresh);
  sa.pending.push({ kind: 'child-delete', child: old, reason: 'rekeyed' });
}
