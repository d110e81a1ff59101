// IKE and Child SA lifecycle around the exchanges: establishing (timers, events), kernel installs
// and removals (make-before-break on rekey, policies kept while a sibling with the same reqid
// lives), duplicates of a simultaneous start, teardown with a reason, and moving Child SAs to a
// rekeyed IKE SA.
import { errorMessage } from '../../common/errors.js';
import type { DownReason, KernelChildSa, KernelChildSaRef } from '../ports.js';
import { ikeFailure } from './context.js';
import type { EngineHost } from './host.js';
import { formatTs } from './ts.js';
import { localIsLower } from './addr.js';
import { deadState, ikeSpisText, OUTBOUND_ACTIVE, upOf, type ChildSa, type IkeSa } from './ike-sa.js';
import { upKeyedFrom } from './ike-keys.js';
import { REAUTH_OUTBOUND_HOLD_MS, REKEYED_SA_TIMEOUT_MS } from './defaults.js';
import { deleteOwnDuplicate, dropRedundant, linkPeerReauth, markPeerDuplicate, settleReauthCollision, supersedeOldChild, unlinkReauth } from './reauth.js';

export function isLive(sa: IkeSa): boolean {
  return sa.state.tag !== 'dead' && sa.state.tag !== 'rekeyed' && sa.state.tag !== 'deleting';
}

/** Another Child SA (any IKE SA of the engine) uses the same reqid and is not going away. */
export function reqidStillUsed(e: EngineHost, child: Pick<ChildSa, 'ref'>): boolean {
  for (const sa of e.sas.values()) for (const c of sa.children.values())
    if (c.ref.inboundSpi !== child.ref.inboundSpi && c.ref.reqid === child.ref.reqid && c.state.tag !== 'deleted' && c.state.tag !== 'deleting') return true;
  return false;
}

function childInfo(c: ChildSa): { localTs: string[]; remoteTs: string[] } {
  return { localTs: c.localTs.map(formatTs), remoteTs: c.remoteTs.map(formatTs) };
}

export function scheduleIkeTimers(e: EngineHost, sa: IkeSa): void {
  const now = e.clock.now();
  const rekeyMs = sa.peer.config.ike.rekeyTimeMs;
  if (rekeyMs > 0) {
    const jitterMax = e.options.rekeyJitterMs ?? Math.floor(rekeyMs / 10);
    const jitter = jitterMax > 0 ? Math.floor(((e.random.bytes(2)[0] ?? 0) / 256) * jitterMax) : 0;
    const up = upOf(sa);
    if (up !== null) up.rekeyAtMs = now + rekeyMs - jitter;
    sa.timers.rekey?.cancel();
    sa.timers.rekey = e.clock.setTimer(rekeyMs - jitter, () => { void e.enqueue(sa, () => e.queueTask(sa, { kind: 'ike-rekey' })); });
  }
  scheduleDpd(e, sa);
}

export function scheduleDpd(e: EngineHost, sa: IkeSa, delayMs?: number): void {
  const interval = sa.peer.config.dpd.intervalMs;
  sa.timers.dpd?.cancel();
  sa.timers.dpd = null;
  if (interval <= 0) return;
  sa.timers.dpd = e.clock.setTimer(delayMs ?? interval, () => {
    void e.enqueue(sa, async () => {
      if (sa.state.tag !== 'established') return;
      const idle = e.clock.now() - sa.lastInboundMs;
      if (idle < interval) { scheduleDpd(e, sa, interval - idle); return; }
      // ESP arriving from the peer proves liveness as well as IKE does (strongSwan checks the
      // kernel's use time the same way), so busy tunnels send no DPD at all.
      if (await espSeenWithin(e, sa, interval)) { scheduleDpd(e, sa, interval); return; }
      // Idle for a whole interval: check liveness, unless a request is already doing that.
      if (sa.outstanding === null && sa.pending.length === 0) e.queueTask(sa, { kind: 'dpd' });
      scheduleDpd(e, sa, interval);
    });
  });
}

async function espSeenWithin(e: EngineHost, sa: IkeSa, ms: number): Promise<boolean> {
  const since = e.clock.now() - ms;
  for (const c of sa.children.values()) {
    if (c.state.tag === 'deleted') continue;
    try {
      const n = await e.kernel.queryCounters(c.ref);
      if (n.lastInboundMs !== null && n.lastInboundMs >= since) return true;
    } catch { /* no counters: fall back to an IKE liveness check */ }
  }
  return false;
}

/**
 * IKE SA authenticated in both directions. `peer`: what the responder learnt from IKE_AUTH (an IKE
 * SA without INITIAL_CONTACT next to an older one is the peer's reauthentication, reauth.ts).
 */
export function establish(e: EngineHost, sa: IkeSa, remoteId: string, peer: { readonly initialContact: boolean } | null = null): void {
  const before = sa.state;
  if (before.tag !== 'auth-sent' && before.tag !== 'init-done') throw new Error(`IKE SA established from ${before.tag}`);
  if (sa.timers.halfOpen) { sa.timers.halfOpen.cancel(); sa.timers.halfOpen = null; }
  if (before.tag === 'init-done') e.halfOpen = Math.max(0, e.halfOpen - 1);
  const establishedAtMs = e.clock.now();
  const keyed = upKeyedFrom(before.keyed);
  sa.state = { tag: 'established', up: { remoteId, establishedAtMs, upSerial: e.newSerial(), rekeyAtMs: null, resumedAtMs: null }, keyed };
  sa.lastInboundMs = e.clock.now();
  sa.peer.everEstablished = true;
  // The IKE_SA_INIT messages and nonces, SK_pi and SK_pr (in the state replaced above) were only needed for AUTH (§2.15).
  e.lastErrors.delete(sa.peer.config.name);
  // createdAtMs: the initiator's first IKE_SA_INIT, or the responder's receipt of it (ports.ts IkeEvent).
  const handshakeMs = Math.max(0, establishedAtMs - sa.createdAtMs);
  e.emit({ type: 'ike-up', peer: sa.peer.config.name, ikeSpis: ikeSpisText(sa), suite: keyed.keys.suiteText, remote: sa.remote, natDetected: sa.natLocal || sa.natRemote, handshakeMs });
  scheduleIkeTimers(e, sa);
  if (peer !== null && !peer.initialContact) {
    const crossed = settleReauthCollision(e, sa);
    if (crossed === 'replacing' || (crossed === null && linkPeerReauth(e, sa) !== null)) awaitPeerReauth(e, sa);
    else if (crossed === null) markPeerDuplicate(e, sa);
  }
  // Our reauthentication lost to the peer's while this SA was still in its handshake.
  dropRedundant(e, sa);
  resolveDuplicates(e, sa);
}

/**
 * The peer reauthenticates (reauth.ts): it deletes the old IKE SA once its new one has every Child
 * SA. If that does not happen in REKEYED_SA_TIMEOUT_MS, the two SAs are not a reauthentication
 * (a simultaneous start whose IKE_SA_INIT came late looks the same here): unlink them and let
 * resolveDuplicates decide, as it does for every other pair.
 */
export function awaitPeerReauth(e: EngineHost, sa: IkeSa): void {
  const link = sa.reauth;
  if (link?.tag !== 'replacing') return;
  link.timer = e.clock.setTimer(REKEYED_SA_TIMEOUT_MS, () => {
    void e.enqueue(sa, () => {
      if (sa.reauth !== link || sa.state.tag !== 'established') return;
      e.log?.info({ peer: sa.peer.config.name, serial: sa.serial }, 'the peer did not delete the IKE SA its new one replaces: resolving them as duplicates');
      unlinkReauth(e, sa);
      resolveDuplicates(e, sa);
    });
  });
}

/**
 * Both peers initiated at once (a mesh where every node starts its links): two IKE SAs with the
 * same peer come up. Both sides apply one deterministic rule so exactly one SA survives: keep
 * the SA initiated by the side with the lower address; the other side deletes the one it
 * initiated (its children go with it; the survivor's children share their reqids and policies).
 * Children the survivor has not negotiated yet (the second and later child configs follow
 * IKE_AUTH by CREATE_CHILD_SA) are handed over instead of removed: see teardown.
 */
export function resolveDuplicates(e: EngineHost, sa: IkeSa): void {
  // Both sides of a reauthentication stay until its initiator deletes the old SA (reauth.ts).
  const up = e.liveSas(sa.peer.config.name).filter((s) => s.state.tag === 'established' && s.reauth === null);
  const mine = up.filter((s) => s.role === 'initiator');
  const theirs = up.filter((s) => s.role === 'responder');
  if (mine.length === 0 || theirs.length === 0) return;
  if (localIsLower(sa)) return; // ours stays; the peer deletes its own
  // `sa` is the peer's: after our answer to its IKE_AUTH, as the peer installs that exchange's
  // Child SA when the answer arrives and should have it before our Delete takes ours away.
  if (sa.role === 'responder') void e.enqueue(sa, () => { for (const s of mine) deleteOwnDuplicate(e, s); });
  else for (const s of mine) deleteOwnDuplicate(e, s);
}

/**
 * The established IKE SA that takes over from `sa` when `sa` is the loser of resolveDuplicates'
 * rule (this side's role in the surviving SA: initiator at the lower address, responder at the
 * higher one); undefined when `sa` is not a duplicate. `handshaking`: the one that will, still in
 * its initial exchanges.
 */
function survivorOf(e: EngineHost, sa: IkeSa, handshaking = false): IkeSa | undefined {
  const keeperRole = localIsLower(sa) ? 'initiator' : 'responder';
  if (sa.role === keeperRole) return undefined;
  const wanted = handshaking ? HANDSHAKE_TAGS : ESTABLISHED_TAG;
  return e.liveSas(sa.peer.config.name).find((s) => s !== sa && wanted.has(s.state.tag) && s.role === keeperRole);
}
const ESTABLISHED_TAG: ReadonlySet<IkeSa['state']['tag']> = new Set(['established']);
const HANDSHAKE_TAGS: ReadonlySet<IkeSa['state']['tag']> = new Set(['idle', 'init-sent', 'init-done', 'auth-sent']);

/** Our duplicate `sa` is about to be deleted: the survivor's Child SAs held receive-only now. */
export function heldBySurvivor(e: EngineHost, sa: IkeSa): ChildSa[] {
  const survivor = survivorOf(e, sa);
  return survivor ? [...survivor.children.values()].filter((c) => c.outbound.tag === 'pending' && c.state.tag === 'installed') : [];
}

/**
 * A duplicate's Child SA whose config the survivor has not installed yet stays in the kernel as
 * an adopted Child SA (policies included) until the survivor installs its successor, which
 * retires it keeping the policies (replaceAdopted). Removing it would take its policies out for
 * the CREATE_CHILD_SA round trip, and the traffic would leave in clear meanwhile. If the successor
 * never comes, it stays until terminate(), like a Child SA adopted after a restart.
 */
function handOver(e: EngineHost, sa: IkeSa, child: ChildSa): void {
  for (const t of child.timers) t.cancel();
  child.timers = [];
  child.state = { tag: 'deleted' };
  sa.children.delete(child.ref.inboundSpi);
  const kind = /gcm|chacha20poly1305/.test(child.suiteText) ? 'aead' : 'cipher+auth';
  const adopted = { ref: child.ref, mode: child.mode, encap: child.encap, algorithms: { kind, suite: child.suiteText } as const, ...childInfo(child), installedAtMs: child.installedAtMs };
  e.adopted.set(sa.peer.config.name, [...(e.adopted.get(sa.peer.config.name) ?? []), adopted]);
}

function awaitsSuccessor(survivor: IkeSa, child: ChildSa): boolean {
  if (child.state.tag !== 'installed') return false;
  if (!survivor.peer.children.some((c) => c.reqid === child.ref.reqid)) return false;
  return ![...survivor.children.values()].some((c) => c.ref.reqid === child.ref.reqid && c.state.tag !== 'deleted');
}

export function scheduleChildTimers(e: EngineHost, child: ChildSa): void {
  const now = e.clock.now();
  child.timers.push(e.clock.setTimer(Math.max(0, child.rekeyAtMs - now), () => {
    const owner = e.ownerOf(child);
    if (owner) void e.enqueue(owner, () => { if (child.state.tag === 'installed') e.queueTask(owner, { kind: 'child-rekey', old: child }); });
  }));
  child.timers.push(e.clock.setTimer(Math.max(0, child.expiresAtMs - now), () => {
    const owner = e.ownerOf(child);
    if (owner) void e.enqueue(owner, () => hardExpire(e, owner, child));
  }));
}

/**
 * Install in the kernel and attach to `sa`. Returns false (after reporting) when the kernel refused.
 * A redundant IKE SA's Child SA (reauth.ts) is installed receive-only: it is about to be deleted,
 * and the peer may already have removed its side.
 */
export async function installChild(e: EngineHost, sa: IkeSa, child: ChildSa, install: KernelChildSa): Promise<boolean> {
  if (sa.reauth?.tag === 'redundant' && install.outboundActive) {
    child.outbound = { tag: 'pending', state: install.outbound };
    install = { ...install, outboundActive: false };
  }
  try {
    await e.kernel.installChildSa(install);
  } catch (err) {
    e.failure(sa.peer, ikeFailure({ code: 'ERR_IKE_KERNEL_INSTALL', message: `kernel refused Child SA ${child.runtime.config.name}: ${errorMessage(err)}` }));
    void e.kernel.releaseSpi({ local: sa.local.address, remote: sa.remote.address, spi: child.ref.inboundSpi }).catch(() => undefined);
    return false;
  }
  sa.children.set(child.ref.inboundSpi, child);
  scheduleChildTimers(e, child);
  supersedeOldChild(sa, child);
  await replaceAdopted(e, sa, child);
  return true;
}

export function emitChildUp(e: EngineHost, child: ChildSa): void {
  e.emit({ type: 'child-up', peer: child.ref.peer, child: child.ref.child, ref: child.ref, suite: child.suiteText, ...childInfo(child) });
}

/**
 * A new Child SA for a child that was adopted (after a restart, or from a duplicate, handOver)
 * retires the adopted one. Its states linger like a rekeyed Child SA's: the peer may send on its
 * side of it until it has installed the new one.
 */
async function replaceAdopted(e: EngineHost, sa: IkeSa, child: ChildSa): Promise<void> {
  const list = e.adopted.get(sa.peer.config.name);
  if (!list) return;
  const old = list.filter((a) => a.ref.child === child.ref.child);
  if (old.length === 0) return;
  e.adopted.set(sa.peer.config.name, list.filter((a) => a.ref.child !== child.ref.child));
  const delayMs = e.options.rekeyDeleteDelayMs;
  for (const a of old) {
    if (delayMs > 0) {
      (sa.lingering ??= new Map()).set(a.ref.inboundSpi, { ref: a.ref, untilMs: e.clock.now() + delayMs });
      armLingering(e, sa, a.ref, delayMs);
    } else await e.kernel.deleteChildSa(a.ref, { keepPolicies: a.ref.reqid === child.ref.reqid }).catch(() => undefined);
    e.emit({ type: 'child-down', peer: a.ref.peer, child: a.ref.child, ref: a.ref, reason: 'replaced' });
  }
}

/** Remove a Child SA from the kernel now (or after `delayMs`, make-before-break) and detach it. */
export async function removeChild(e: EngineHost, sa: IkeSa, child: ChildSa, reason: DownReason, delayMs = 0): Promise<void> {
  if (child.state.tag === 'deleted') return;
  for (const t of child.timers) t.cancel();
  child.timers = [];
  child.state = { tag: 'deleted' };
  sa.children.delete(child.ref.inboundSpi);
  if (reason !== 'rekeyed') e.emit({ type: 'child-down', peer: child.ref.peer, child: child.ref.child, ref: child.ref, reason });
  const hold = keepsPoliciesWhenDead(sa, reason);
  if (delayMs > 0) {
    (sa.lingering ??= new Map()).set(child.ref.inboundSpi, { ref: child.ref, untilMs: e.clock.now() + delayMs });
    armLingering(e, sa, child.ref, delayMs, hold);
  } else await deleteChildStates(e, child.ref, hold);
}

/**
 * A peer found dead (DPD, or retransmissions run out) with dpd.action hold or restart: its Child
 * SAs' policies stay without states, so traffic meanwhile is dropped (and its kernel acquires
 * start a negotiation) rather than sent in clear until the new Child SA installs the same
 * policies. clear removes them; so does a tunnel being removed.
 */
function keepsPoliciesWhenDead(sa: IkeSa, reason: DownReason): boolean {
  const action = sa.peer.config.dpd.action;
  return (reason === 'dpd-timeout' || reason === 'retransmit-limit') && (action === 'hold' || action === 'restart') && !sa.peer.terminated;
}

async function deleteChildStates(e: EngineHost, ref: KernelChildSaRef, hold: boolean): Promise<void> {
  // Decided when the states go, not when the removal was scheduled: a successor with the same
  // reqid may have been installed while this one lingered, and its policies are the same.
  const keepPolicies = reqidStillUsed(e, { ref }) || hold;
  try { await e.kernel.deleteChildSa(ref, { keepPolicies }); } catch (err) {
    e.log?.warn({ peer: ref.peer, child: ref.child, err: errorMessage(err) }, 'kernel delete of Child SA failed');
  }
}

/** Delete a lingering Child SA's states after `delayMs` (restore.ts re-arms this after a restart). */
export function armLingering(e: EngineHost, sa: IkeSa, ref: KernelChildSaRef, delayMs: number, hold = false): void {
  e.clock.setTimer(Math.max(0, delayMs), () => {
    e.track((async () => {
      await deleteChildStates(e, ref, hold);
      sa.lingering?.delete(ref.inboundSpi);
      if (sa.lingering?.size === 0) sa.lingering = null;
      e.persist(sa);
    })());
  });
}

/** Make-before-break, second step: start sending on a Child SA installed with outboundActive false. */
export async function activateOutbound(e: EngineHost, child: ChildSa): Promise<void> {
  if (child.outbound.tag !== 'pending') return;
  child.outbound = OUTBOUND_ACTIVE;
  try { await e.kernel.updateChildSa(child.ref, { activateOutbound: true }); } catch (err) {
    e.log?.warn({ peer: child.ref.peer, child: child.ref.child, err: errorMessage(err) }, 'kernel outbound switch failed');
  }
}

const PEER_USE_POLL_MS = 100;

/**
 * A Child SA held receive-only (a peer's re-authentication, a duplicate's survivor): send on it once
 * ESP arrives on it — the peer has installed it, which neither our answer nor the answer to our
 * Delete says, as the peer handles each IKE SA's messages in its own queue — or after
 * REAUTH_OUTBOUND_HOLD_MS, whichever is first (the old IKE SA's Delete activates it too,
 * responder.ts). Until then our traffic leaves on the Child SA it replaces. The counters are read
 * every PEER_USE_POLL_MS: 50 reads at most, and usually one or two.
 */
function sendOnceUsed(e: EngineHost, sa: IkeSa, child: ChildSa): void {
  const deadlineMs = e.clock.now() + REAUTH_OUTBOUND_HOLD_MS;
  const poll = (): void => {
    // The IKE SA it belongs to now (an IKE rekey moves Child SAs), else the one it was held on.
    void e.enqueue(e.ownerOf(child) ?? sa, async () => {
      if (child.state.tag === 'deleted' || child.outbound.tag !== 'pending') return;
      const used = await e.kernel.queryCounters(child.ref).then((n) => n.inboundPackets > 0n, () => false);
      if (used || e.clock.now() >= deadlineMs) { await activateOutbound(e, child); return; }
      child.timers.push(e.clock.setTimer(Math.min(PEER_USE_POLL_MS, deadlineMs - e.clock.now()), poll));
    });
  };
  // Not at once: the caller may be about to install it (holdForPeerReauth).
  child.timers.push(e.clock.setTimer(PEER_USE_POLL_MS, poll));
}

/**
 * A Child SA of a peer's re-authentication waits receive-only for the old IKE SA's Delete or ESP
 * on it, at most REAUTH_OUTBOUND_HOLD_MS (child-tasks.ts holdForPeerReauth, and restore.ts for a
 * hold a restart interrupted).
 */
export function armReauthOutboundHold(e: EngineHost, sa: IkeSa, child: ChildSa): void {
  sendOnceUsed(e, sa, child);
}

async function hardExpire(e: EngineHost, sa: IkeSa, child: ChildSa): Promise<void> {
  if (child.state.tag === 'deleted') return;
  await removeChild(e, sa, child, 'hard-lifetime');
  // Tell the peer, and bring the child back up if the IKE SA is fine (strongSwan does the same).
  if (sa.state.tag === 'established') {
    e.queueTask(sa, { kind: 'child-delete', child, reason: 'hard-lifetime' });
    if (!sa.peer.terminated) e.queueTask(sa, { kind: 'child-create', child: child.runtime });
  }
}

/** Move every Child SA (and queued child work) from a rekeyed IKE SA to its successor (§2.18). */
export function migrateChildren(e: EngineHost, from: IkeSa, to: IkeSa): void {
  for (const [spi, c] of from.children) to.children.set(spi, c);
  from.children.clear();
  // A reauthentication that completed during the rekey queued the old SA's Delete (reauth.ts
  // finishReauth): the successor is what it replaces now, so that Delete moves along.
  for (const t of from.pending.splice(0)) {
    if (t.kind === 'ike-delete' ? t.reason === 'reauthenticated' : t.kind !== 'ike-rekey' && t.kind !== 'ike-followup' && t.kind !== 'dpd' && t.kind !== 'ike-auth') to.pending.push(t);
  }
}

/**
 * Tear an IKE SA down locally: children out of the kernel, timers off, events. No message is sent.
 * A duplicate of a simultaneous start going away (our Delete of it, or the peer's) is reported as
 * `replaced`, and hands the Child SAs the survivor has yet to negotiate over (handOver). An SA
 * replaced by a reauthentication (`reauthenticated`) leaves its inbound states for
 * rekeyDeleteDelayMs, like a rekeyed Child SA: their successors share the reqids and policies.
 */
export async function teardown(e: EngineHost, sa: IkeSa, reason: DownReason): Promise<void> {
  if (sa.state.tag === 'dead') return;
  // The peer's redundant new IKE SA (reauth.ts), deleted by either side: the peer may have sent on
  // its Child SAs until the Delete, so their inbound states linger too (we never sent on them).
  let linger = reason === 'reauthenticated' || (sa.reauth?.tag === 'redundant' && !sa.reauth.ours) ? e.options.rekeyDeleteDelayMs : 0;
  unlinkReauth(e, sa);
  const survivor = reason === 'replaced' || reason === 'peer-deleted' ? survivorOf(e, sa) : undefined;
  // A duplicate of a simultaneous start, deleted by us or by the peer: its Child SAs carry the
  // traffic until both ends send on the survivor's, so they linger like a rekeyed Child SA. The
  // side that deleted it moves only once the peer is seen using the survivor's (sendOnceUsed);
  // the other may still be handling its IKE_AUTH answer (per-SA queues) when the Delete comes.
  const ourDelete = sa.state.tag === 'deleting' && sa.state.sendOn !== undefined;
  if ((ourDelete && survivor) || (reason === 'peer-deleted' && (survivor ?? survivorOf(e, sa, true)))) linger = Math.max(linger, e.options.rekeyDeleteDelayMs);
  if (survivor) reason = 'replaced';
  const sendOn = sa.state.tag === 'deleting' ? sa.state.sendOn ?? [] : [];
  const wasHalfOpen = sa.state.tag === 'init-done';
  const announced = sa.state.tag !== 'init-done' || sa.role === 'initiator';
  sa.state = deadState(sa);
  if (wasHalfOpen) e.halfOpen = Math.max(0, e.halfOpen - 1);
  for (const t of Object.values(sa.timers)) t?.cancel();
  if (sa.outstanding?.timer) sa.outstanding.timer.cancel();
  const scratch = sa.outstanding?.scratch;
  const reserved = scratch?.kind === 'child' ? scratch.offer.spi : undefined;
  if (reserved !== undefined) void e.track(e.kernel.releaseSpi({ local: sa.local.address, remote: sa.remote.address, spi: reserved }));
  sa.outstanding = null;
  sa.pending.length = 0;
  for (const c of sendOn) { const owner = e.ownerOf(c); if (owner && c.state.tag === 'installed') sendOnceUsed(e, owner, c); }
  for (const c of [...sa.children.values()]) {
    if (survivor && !sa.peer.terminated && awaitsSuccessor(survivor, c)) handOver(e, sa, c);
    else await removeChild(e, sa, c, reason, linger);
  }
  e.unregister(sa);
  if (announced) e.emit({ type: 'ike-down', peer: sa.peer.config.name, ikeSpis: ikeSpisText(sa), reason });
}
