// IKE SA reauthentication, make-before-break (RFC 7296 §2.8.3; strongSwan's
// `make_before_break = yes`). A reauthentication is a brand-new IKE SA with the same peer —
// IKE_SA_INIT and IKE_AUTH with the credentials the peer config holds now (a renewed certificate
// is presented) — which negotiates every child config again while the old IKE SA and its Child
// SAs keep carrying traffic. Once every child config has been tried on the new SA, its initiator
// deletes the old IKE SA, and with it the old Child SAs on both sides (§1.4.1).
//
//   new IKE SA:  IKE_SA_INIT; IKE_AUTH {IDi, [CERT], AUTH, SA, TSi, TSr} (no INITIAL_CONTACT) -->
//                CREATE_CHILD_SA {SA, Ni, TSi, TSr} per further child config               -->
//   old IKE SA:  INFORMATIONAL {D(IKE)}                                                     -->
//
// Kernel: a new Child SA has its config's reqid, like the old one, so installing it updates the
// same policies and the kernel sends on the newest state; removing the old Child SAs keeps the
// policies (lifecycle.ts reqidStillUsed) and their inbound states linger rekeyDeleteDelayMs for
// packets in flight, as after a Child SA rekey.
//
// The responder knows a reauthentication only by what §2.4 says: a new IKE SA without
// INITIAL_CONTACT does not ask to drop the others. It keeps both until the initiator deletes the
// old one. An SA that started after the other was up is taken for a reauthentication; two SAs
// that started before either was up are a simultaneous start, which resolveDuplicates settles
// (lifecycle.ts). Linked SAs are left out of that rule, unless the peer has not deleted the old SA
// within REKEYED_SA_TIMEOUT_MS (lifecycle.ts establish).
//
// Both ends may reauthenticate the same IKE SA at once (a CA rotation renews every node within
// seconds): the two IKE_SA_INITs cross, and each end sees the other's new SA come up while its own
// reauthentication of the old SA runs. RFC 7296 settles crossed *rekeys* by nonces (§2.8.1,
// §2.8.2) but says nothing of reauthentications; settleReauthCollision applies the rule both ends
// already share for a simultaneous start: the new SA initiated by the end with the lower address
// stays. The other new SA is `redundant`: no one sends on its Child SAs, its initiator deletes it,
// and the peer that receives that Delete keeps its inbound states for the delete delay.
import { localIsLower } from './addr.js';
import type { EngineHost } from './host.js';
import { upOf, type ChildSa, type IkeSa } from './ike-sa.js';
import { REKEYED_SA_TIMEOUT_MS } from './defaults.js';

/** `successor` replaces `old`; `ours`: we initiated the successor. */
export function linkReauth(old: IkeSa, successor: IkeSa, ours: boolean): void {
  successor.reauth = { tag: 'replacing', old, ours, failed: new Set(), timer: null };
  old.reauth = { tag: 'superseded', successor, ours };
}

/**
 * Responder: `sa` came up without INITIAL_CONTACT. The newest IKE SA with the peer that was up
 * before `sa` started (and is not in a reauthentication already) is the one it replaces.
 */
export function linkPeerReauth(e: EngineHost, sa: IkeSa): IkeSa | null {
  const old = e.liveSas(sa.peer.config.name)
    .filter((o) => o !== sa && o.state.tag === 'established' && o.reauth === null && o.state.up.upSerial < sa.serial)
    .sort((a, b) => (upOf(b)?.upSerial ?? 0) - (upOf(a)?.upSerial ?? 0))[0];
  if (old === undefined) return null;
  linkReauth(old, sa, false);
  e.log?.info({ peer: sa.peer.config.name, serial: sa.serial, old: old.serial }, 'peer reauthenticates: keeping the old IKE SA until it deletes it');
  return old;
}

/**
 * Responder: `sa` came up without INITIAL_CONTACT while we reauthenticate the IKE SA it would
 * replace (the two reauthentications crossed). Returns what became of `sa`: `replacing` when the
 * peer's wins (ours is given up and the old SA is linked to `sa` instead), `redundant` when ours
 * wins, null when there was no collision.
 */
export function settleReauthCollision(e: EngineHost, sa: IkeSa): 'replacing' | 'redundant' | null {
  const old = e.liveSas(sa.peer.config.name).find((o) => o !== sa && o.state.tag === 'established' && o.reauth?.tag === 'superseded' && o.reauth.ours && o.state.up.upSerial < sa.serial);
  if (old?.reauth?.tag !== 'superseded') return null;
  const mine = old.reauth.successor;
  const log = { peer: sa.peer.config.name, serial: sa.serial, ours: mine.serial, old: old.serial };
  if (localIsLower(sa)) {
    markRedundant(e, sa);
    e.log?.info(log, 'reauthentications crossed: ours stays (lower address), the peer deletes its new IKE SA');
    return 'redundant';
  }
  unlinkReauth(e, mine);
  mine.reauth = { tag: 'redundant', ours: true, timer: null };
  // Once `sa`'s IKE_AUTH is answered (see dropRedundant); not established yet: lifecycle.ts
  // establish deletes it when it is.
  if (mine.state.tag === 'established') void e.enqueue(sa, () => dropRedundant(e, mine));
  linkReauth(old, sa, false);
  e.log?.info(log, 'reauthentications crossed: the peer\'s stays (lower address), deleting ours');
  return 'replacing';
}

/**
 * Responder, no INITIAL_CONTACT, and nothing older for `sa` to replace: the crossing was seen late
 * (our reauthentication already deleted the old SA) or it is a simultaneous start. When the rule
 * keeps our SA, `sa` is redundant: held receive-only until the peer deletes it.
 */
export function markPeerDuplicate(e: EngineHost, sa: IkeSa): void {
  if (!localIsLower(sa) || sa.reauth !== null) return;
  const ours = e.liveSas(sa.peer.config.name).some((o) => o !== sa && o.role === 'initiator' && o.state.tag === 'established' && o.reauth?.tag !== 'redundant');
  if (!ours) return;
  markRedundant(e, sa);
  e.log?.info({ peer: sa.peer.config.name, serial: sa.serial }, 'the peer\'s new IKE SA duplicates ours (lower address): waiting for the peer to delete it');
}

/** The peer's new SA lost: nobody sends on it; if the peer has not deleted it in time, we do. */
function markRedundant(e: EngineHost, sa: IkeSa): void {
  const timer = e.clock.setTimer(REKEYED_SA_TIMEOUT_MS, () => {
    void e.enqueue(sa, () => { if (sa.reauth?.tag === 'redundant' && sa.state.tag === 'established') e.queueTask(sa, { kind: 'ike-delete', reason: 'duplicate' }); });
  });
  sa.reauth = { tag: 'redundant', ours: false, timer };
}

/**
 * Our own redundant new IKE SA: delete it, with the Child SAs it would still have created. Run
 * after the winning SA's IKE_AUTH is answered, so the peer has installed the winner's Child SA by
 * the time our Delete makes us send on it (lifecycle.ts teardown activates the survivor).
 */
export function dropRedundant(e: EngineHost, sa: IkeSa): void {
  if (sa.reauth?.tag === 'redundant' && sa.reauth.ours) deleteOwnDuplicate(e, sa);
}

/** Delete an IKE SA we initiated that another replaces; the Child SAs it has yet to create are moot. */
export function deleteOwnDuplicate(e: EngineHost, sa: IkeSa): void {
  for (let i = sa.pending.length - 1; i >= 0; i--) if (sa.pending[i]?.kind === 'child-create') sa.pending.splice(i, 1);
  e.queueTask(sa, { kind: 'ike-delete', reason: 'duplicate' });
}

/**
 * A Child SA was installed on `sa`: if `sa` replaces another IKE SA, that SA's Child SA of the same
 * config is superseded (no rekey of it from now on; it goes with its IKE SA).
 */
export function supersedeOldChild(sa: IkeSa, child: ChildSa): void {
  const link = sa.reauth;
  if (link?.tag !== 'replacing') return;
  for (const c of link.old.children.values())
    if (c.ref.child === child.ref.child && c.state.tag === 'installed') c.state = { tag: 'rekeyed', successor: child };
}

/** A child config could not be had on the new SA: do not wait for it. */
export function noteReauthChildFailed(sa: IkeSa, child: string): void {
  if (sa.reauth?.tag === 'replacing') sa.reauth.failed.add(child);
}

/** Every child config of the peer has a Child SA on `sa` or failed there. */
export function reauthComplete(sa: IkeSa): boolean {
  const link = sa.reauth;
  if (link?.tag !== 'replacing' || sa.state.tag !== 'established') return false;
  const have = new Set([...sa.children.values()].filter((c) => c.state.tag !== 'deleted' && c.state.tag !== 'deleting').map((c) => c.ref.child));
  return sa.peer.children.every((c) => have.has(c.config.name) || link.failed.has(c.config.name));
}

/** Initiator: once the new SA has everything it can get, delete the old IKE SA (its children go with it). */
export function finishReauth(e: EngineHost, sa: IkeSa): void {
  const link = sa.reauth;
  if (link?.tag !== 'replacing' || !link.ours || !reauthComplete(sa)) return;
  link.timer?.cancel();
  sa.reauth = null;
  const old = link.old;
  if (old.state.tag === 'established') e.queueTask(old, { kind: 'ike-delete', reason: 'reauthenticated' });
}

/**
 * Undo the link when either side goes (the old one deleted, or the new one failed). A new SA that
 * failed hands the old SA's superseded Child SAs back: they carry on (and rekey) as before.
 */
export function unlinkReauth(e: EngineHost, sa: IkeSa): void {
  const link = sa.reauth;
  if (link === null) return;
  sa.reauth = null;
  if (link.tag === 'redundant') { link.timer?.cancel(); return; }
  if (link.tag === 'superseded') {
    const s = link.successor;
    if (s.reauth?.tag === 'replacing' && s.reauth.old === sa) { s.reauth.timer?.cancel(); s.reauth = null; }
    return;
  }
  link.timer?.cancel();
  const old = link.old;
  if (old.reauth?.tag === 'superseded' && old.reauth.successor === sa) old.reauth = null;
  const mine = new Set(sa.children.values());
  const now = e.clock.now();
  for (const c of old.children.values()) {
    if (c.state.tag !== 'rekeyed' || c.state.successor === null || !mine.has(c.state.successor)) continue;
    c.state = { tag: 'installed' };
    // Its rekey timer fired while it was superseded: rekey it now.
    if (now >= c.rekeyAtMs && old.state.tag === 'established') e.queueTask(old, { kind: 'child-rekey', old: c });
  }
}

/** An IKE rekey of a linked SA (§2.18): the link moves to the rekeyed SA's successor. */
export function moveReauthLink(from: IkeSa, to: IkeSa): void {
  const link = from.reauth;
  if (link === null) return;
  from.reauth = null;
  to.reauth = link;
  if (link.tag === 'replacing' && link.old.reauth?.tag === 'superseded') link.old.reauth.successor = to;
  if (link.tag === 'superseded' && link.successor.reauth?.tag === 'replacing') link.successor.reauth.old = to;
}
