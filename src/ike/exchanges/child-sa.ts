// Child SA negotiation shared by IKE_AUTH (first Child SA, RFC 7296 §1.2) and CREATE_CHILD_SA
// (new child and rekey, §1.3.1/§1.3.3): the offer (SA with our inbound SPI, TSi/TSr,
// USE_TRANSPORT_MODE §1.3.1), the responder's choice (proposal selection, TS narrowing §2.9, KE
// check for PFS), KEYMAT (§2.17) and the kernel install description (ports.ts KernelChildSa).
// Nothing here calls the kernel except the two IKE_AUTH wrappers (prepareChildOffer,
// negotiateChildResponder), which allocate the SPI between the pure halves; CREATE_CHILD_SA's
// steps (steps/child.ts) leave that to their driver.
import type { SecretBytes } from '../../common/secret.js';
import type { Clock, Random } from '../../common/time.js';
import { isAdditionalKeyExchangeType, NotifyError, NotifyStatus, ProtocolId, TransformType, notifyName } from '../constants.js';
import { isNonEmpty, type NonEmpty } from '../non-empty.js';
import { followupMethods, linkOf } from '../steps/followup-ke.js';
import type { IkeMessage } from '../codec/message.js';
import type { IkePayload } from '../codec/payload.js';
import { notify } from '../codec/payloads/notify.js';
import { invalidKeNotify } from '../codec/payloads/notify-data.js';
import { createKeyShare, type KeyShare } from '../crypto/dh.js';
import { deriveChildSaKeys, type ChildSaKeys } from '../crypto/keys.js';
import { childSuiteOf, dhGroupOf, esnOf, fromSaProposal, selectedToSaProposal, toSaProposals } from '../policy/convert.js';
import { formatProposal, type PolicyProposal } from '../policy/proposal.js';
import { checkProposalReply, selectProposal, type SelectedProposal } from '../policy/select.js';
import type { IkeFailure, IpsecMode, KernelChildSa, KernelPolicy, KernelSa, SaLifetimes, UdpEncap } from '../ports.js';
import { ikeFailure, type Ctx, type ResolvedOptions } from '../sa/context.js';
import { NON_ESN_LIFE_PACKETS, NONCE_BYTES } from '../sa/defaults.js';
import { espAlgorithms } from '../sa/esp.js';
import { suiteText as memoSuite } from '../sa/memo.js';
import { OUTBOUND_ACTIVE, type ChildChoice, type ChildReply, type ChildRequestScratch, type ChildRuntime, type ChildSa, type IkeKeys, type IkeSa } from '../sa/ike-sa.js';

export type { ChildChoice, ChildReply } from '../sa/ike-sa.js';
import { formatTs, fromWireTs, narrowTs, sameTs, sharedTs, toPortTs, toWireTs, tsWithin, type TsRange } from '../sa/ts.js';

const POLICY_PRIORITY = 2_000;

/** What negotiating a Child SA reads of the engine: the time, randomness (nonces, key shares, rekey jitter). */
export interface ChildEnv {
  readonly clock: Pick<Clock, 'now'>;
  readonly random: Random;
  readonly options: Pick<ResolvedOptions, 'rekeyJitterMs'>;
}

/** What negotiating a Child SA reads of its IKE SA (sa/views.ts builds it from the state that holds the keys). */
export interface ChildIkeView {
  readonly peer: { readonly config: { readonly name: string }; readonly children: readonly ChildRuntime[] };
  readonly keys: Pick<IkeKeys, 'suite' | 'skD'>;
  readonly local: IkeSa['local'];
  readonly remote: IkeSa['remote'];
  readonly natLocal: boolean;
  readonly natRemote: boolean;
  /** IKE_SA_INIT's nonces while IKE_AUTH runs: its Child SA's KEYMAT uses them (§2.17); null after. */
  readonly init: { readonly ni: Uint8Array; readonly nr: Uint8Array } | null;
  /** Whether we are the IKE SA's original initiator (retry timing of refused requests, steps/child.ts). */
  readonly role?: 'initiator' | 'responder';
}

export function spi32(spi: number): Uint8Array { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, spi >>> 0); return b; }
export function spiNumber(b: Uint8Array): number { return b.length === 4 ? new DataView(b.buffer, b.byteOffset, 4).getUint32(0) : 0; }

/** IKE_AUTH carries no KE: strip KE methods (and RFC 9370 ADDKE, §2.2.3) from ESP proposals there (RFC 7296 §1.2). */
export function withoutKe(ps: readonly PolicyProposal[]): PolicyProposal[] {
  return ps.map((p) => ({ ...p, transforms: p.transforms.filter((t) => t.type !== TransformType.DH && !isAdditionalKeyExchangeType(t.type)) }));
}

export interface OfferOptions { readonly inIkeAuth: boolean; readonly localTs?: readonly TsRange[]; readonly remoteTs?: readonly TsRange[]; readonly mode?: IpsecMode; readonly group?: number }

/** Initiator (IKE_AUTH): allocate our inbound SPI and fix what we offer. */
export async function prepareChildOffer(ctx: Ctx, sa: IkeSa, child: ChildRuntime, o: OfferOptions): Promise<ChildRequestScratch> {
  const spi = await ctx.kernel.allocSpi({ local: sa.local.address, remote: sa.remote.address, reqid: child.reqid });
  return childOffer(ctx, child, spi, o);
}

/** Initiator: what we offer, on our inbound SPI `spi` (allocated by the caller). */
export function childOffer(env: Pick<ChildEnv, 'random'>, child: ChildRuntime, spi: number, o: OfferOptions): ChildRequestScratch {
  const group = o.group ?? child.pfsGroup;
  const pfs = !o.inIkeAuth && group !== null;
  const share: KeyShare | null = pfs && group !== null ? createKeyShare(group, { random: env.random }) : null;
  return {
    spi, ni: env.random.bytes(NONCE_BYTES), share,
    proposals: o.inIkeAuth || !pfs ? withoutKe(child.espProposals) : child.espProposals,
    mode: o.mode ?? child.config.mode, localTs: o.localTs ?? child.localTs, remoteTs: o.remoteTs ?? child.remoteTs,
  };
}

/** SA, [Ni, KEi,] TSi, TSr, [N(USE_TRANSPORT_MODE)] of an offer. Nonce/KE only in CREATE_CHILD_SA. */
export function childOfferPayloads(s: ChildRequestScratch, inIkeAuth: boolean): IkePayload[] {
  return [
    ...(s.mode === 'transport' ? [notify(NotifyStatus.USE_TRANSPORT_MODE)] : []),
    { kind: 'sa', proposals: toSaProposals(s.proposals, spi32(s.spi)) },
    ...(inIkeAuth ? [] : [{ kind: 'nonce' as const, data: s.ni }]),
    ...(s.share ? [{ kind: 'ke' as const, group: s.share.group, data: s.share.publicValue }] : []),
    { kind: 'tsi', selectors: s.localTs.map(toWireTs) },
    { kind: 'tsr', selectors: s.remoteTs.map(toWireTs) },
  ];
}

export type ChildNegotiation =
  | { readonly ok: true; readonly child: ChildSa; readonly install: KernelChildSa; readonly reply: IkePayload[] }
  | { readonly ok: false; readonly reply: IkePayload[]; readonly failure: IkeFailure | null };

interface KeyInputs { readonly ni: Uint8Array; readonly nr: Uint8Array; readonly pfs: SecretBytes | null; readonly additional?: readonly SecretBytes[] }

function deriveKeys(sa: ChildIkeView, sel: SelectedProposal, k: KeyInputs): ChildSaKeys {
  const keys = sa.keys;
  return deriveChildSaKeys({ prfId: keys.suite.prfId, skD: keys.skD, suite: childSuiteOf(sel), ni: k.ni, nr: k.nr, ...(k.pfs ? { pfsSharedSecret: k.pfs } : {}), ...(k.additional ? { additionalSecrets: k.additional } : {}) });
}

/** IKE_SA_INIT's nonces, which only IKE_AUTH's Child SA uses (§2.17). */
function initNonces(sa: ChildIkeView): { readonly ni: Uint8Array; readonly nr: Uint8Array } {
  if (sa.init === null) throw new Error('a Child SA of IKE_AUTH without IKE_SA_INIT nonces');
  return sa.init;
}

function lifetimes(c: ChildRuntime, esn: boolean): SaLifetimes {
  const hardSec = Math.max(2, Math.ceil(c.config.lifeTimeMs / 1000));
  // The engine's own timer rekeys at rekeyTime; the kernel's soft expire is a backstop just after it.
  const softSec = Math.min(hardSec - 1, Math.ceil(c.config.rekeyTimeMs / 1000) + 10);
  const hardBytes = c.config.lifeBytes ?? 0n; const hardPackets = c.config.lifePackets ?? (esn ? 0n : NON_ESN_LIFE_PACKETS);
  return { softSec, hardSec, hardBytes, softBytes: (hardBytes * 9n) / 10n, hardPackets, softPackets: (hardPackets * 9n) / 10n };
}

function encapOf(sa: ChildIkeView): { inbound: UdpEncap | null; outbound: UdpEncap | null } {
  if (!sa.natLocal && !sa.natRemote) return { inbound: null, outbound: null };
  return { inbound: { sourcePort: sa.remote.port, destinationPort: sa.local.port }, outbound: { sourcePort: sa.local.port, destinationPort: sa.remote.port } };
}

function policiesOf(sa: ChildIkeView, mode: IpsecMode, localTs: readonly TsRange[], remoteTs: readonly TsRange[]): KernelPolicy[] {
  const out: KernelPolicy[] = [];
  for (const l of localTs) for (const r of remoteTs) {
    if (l.family !== r.family) continue;
    const L = toPortTs(l); const R = toPortTs(r);
    const outer = { local: sa.local.address, remote: sa.remote.address };
    out.push({ direction: 'out', source: L, destination: R, tunnelSource: outer.local, tunnelDestination: outer.remote, priority: POLICY_PRIORITY });
    out.push({ direction: 'in', source: R, destination: L, tunnelSource: outer.remote, tunnelDestination: outer.local, priority: POLICY_PRIORITY });
    if (mode === 'tunnel') out.push({ direction: 'fwd', source: R, destination: L, tunnelSource: outer.remote, tunnelDestination: outer.local, priority: POLICY_PRIORITY });
  }
  return out;
}

/** Build the ChildSa record and its kernel description. `weInitiated`: we sent the request of this exchange. */
export function buildChild(ctx: ChildEnv, sa: ChildIkeView, a: {
  readonly runtime: ChildRuntime; readonly sel: SelectedProposal; readonly keys: ChildSaKeys; readonly weInitiated: boolean;
  readonly inboundSpi: number; readonly outboundSpi: number; readonly mode: IpsecMode;
  readonly localTs: readonly TsRange[]; readonly remoteTs: readonly TsRange[]; readonly ni: Uint8Array; readonly nr: Uint8Array;
  readonly outboundActive: boolean; readonly pfsGroup: number | null;
}): { child: ChildSa; install: KernelChildSa } {
  const now = ctx.clock.now();
  const c = a.runtime;
  const toPeer = a.weInitiated ? a.keys.initiatorToResponder : a.keys.responderToInitiator;
  const fromPeer = a.weInitiated ? a.keys.responderToInitiator : a.keys.initiatorToResponder;
  const encap = encapOf(sa);
  const esn = esnOf(a.sel);
  const life = lifetimes(c, esn);
  const inbound: KernelSa = { spi: a.inboundSpi, source: sa.remote.address, destination: sa.local.address, algorithms: espAlgorithms(a.sel, fromPeer), esn, replayWindow: c.config.replayWindow ?? 32, encap: encap.inbound, lifetimes: life };
  const outbound: KernelSa = { spi: a.outboundSpi, source: sa.local.address, destination: sa.remote.address, algorithms: espAlgorithms(a.sel, toPeer), esn, replayWindow: 0, encap: encap.outbound, lifetimes: life };
  const ref = { peer: sa.peer.config.name, child: c.config.name, reqid: c.reqid, inboundSpi: a.inboundSpi, outboundSpi: a.outboundSpi, local: sa.local.address, remote: sa.remote.address };
  const install: KernelChildSa = {
    peer: ref.peer, child: ref.child, reqid: c.reqid, mode: a.mode, inbound, outbound,
    policies: policiesOf(sa, a.mode, a.localTs, a.remoteTs), outboundActive: a.outboundActive,
    ifId: c.config.ifId ?? null, mark: c.config.mark ?? null,
  };
  const jitterMax = ctx.options.rekeyJitterMs ?? Math.floor(Math.min(c.config.rekeyTimeMs, c.config.lifeTimeMs - c.config.rekeyTimeMs) / 10);
  const jitter = jitterMax > 0 ? Math.floor(((ctx.random.bytes(2)[0] ?? 0) / 256) * jitterMax) : 0;
  const suiteText = memoSuite('esp', a.sel.transforms);
  const child: ChildSa = {
    runtime: c, state: { tag: 'installed' }, ref, mode: a.mode, suiteText,
    localTs: a.localTs, remoteTs: a.remoteTs, encap: encap.outbound, ni: a.ni, nr: a.nr,
    installedAtMs: now, rekeyAtMs: now + c.config.rekeyTimeMs - jitter, expiresAtMs: now + c.config.lifeTimeMs,
    outbound: a.outboundActive ? OUTBOUND_ACTIVE : { tag: 'pending', state: outbound }, timers: [],
  };
  return { child, install };
}

/**
 * The child config for the request's selectors, narrowed (§2.9). A config that covers the
 * proposal exactly wins over one that covers it, which wins over one that only overlaps it
 * (strongSwan's best-match), so a wide "net" child does not swallow a narrower "dns" one.
 */
function pickChild(sa: ChildIkeView, tsi: readonly TsRange[], tsr: readonly TsRange[], only: ChildRuntime | null): { runtime: ChildRuntime; localTs: readonly TsRange[]; remoteTs: readonly TsRange[] } | null {
  let best: { runtime: ChildRuntime; localTs: readonly TsRange[]; remoteTs: readonly TsRange[]; score: number } | null = null;
  for (const c of only ? [only] : sa.peer.children) {
    // The initiator's TSi is its side = our remote; TSr is our side.
    const remoteTs = narrowTs(tsi, c.remoteTs);
    const localTs = narrowTs(tsr, c.localTs);
    if (remoteTs.length === 0 || localTs.length === 0) continue;
    const same = (a: readonly TsRange[], b: readonly TsRange[]): boolean => a.length === b.length && a.every((x) => b.some((y) => sameTs(x, y)));
    const covers = tsi.every((t) => tsWithin(t, c.remoteTs)) && tsr.every((t) => tsWithin(t, c.localTs));
    const score = same(tsi, c.remoteTs) && same(tsr, c.localTs) ? 2 : covers ? 1 : 0;
    if (best === null || score > best.score) best = { runtime: c, localTs, remoteTs, score };
  }
  return best;
}

export type ChildChoiceOutcome =
  | { readonly ok: true; readonly choice: ChildChoice }
  | { readonly ok: false; readonly reply: IkePayload[]; readonly failure: IkeFailure | null };

/** Responder: pick config, proposal and selectors for the request's child (no SPI yet, no keys). */
export function chooseChild(ctx: Pick<ChildEnv, 'random'>, sa: ChildIkeView, m: IkeMessage, o: {
  readonly inIkeAuth: boolean; readonly only: ChildRuntime | null; readonly exchange: 'IKE_AUTH' | 'CREATE_CHILD_SA';
}): ChildChoiceOutcome {
  const saP = m.first('sa'); const tsiP = m.first('tsi'); const tsrP = m.first('tsr');
  if (!saP || !tsiP || !tsrP) return { ok: false, reply: [notify(NotifyError.INVALID_SYNTAX)], failure: null };
  const tsi = tsiP.selectors.map(fromWireTs); const tsr = tsrP.selectors.map(fromWireTs);
  const picked = pickChild(sa, tsi, tsr, o.only);
  if (!picked) {
    const cfg = o.only ?? sa.peer.children[0];
    return {
      ok: false, reply: [notify(NotifyError.TS_UNACCEPTABLE)],
      failure: ikeFailure({
        code: 'ERR_IKE_TS_UNACCEPTABLE', notify: 'TS_UNACCEPTABLE', exchange: o.exchange,
        message: `peer's traffic selectors ${tsi.map(formatTs).join(',')} === ${tsr.map(formatTs).join(',')} match none of ours`,
        trafficSelectors: { local: cfg ? cfg.localTs.map(formatTs) : [], remote: cfg ? cfg.remoteTs.map(formatTs) : [] },
      }),
    };
  }
  const c = picked.runtime;
  const ours = o.inIkeAuth ? withoutKe(c.espProposals) : c.espProposals;
  const offered = saP.proposals.map(fromSaProposal);
  const ke = m.first('ke');
  // RFC 9370 §2.2.2: ADDKE in CREATE_CHILD_SA run in IKE_FOLLOWUP_KE after it (never in IKE_AUTH).
  const sel = selectProposal(ours, offered, { ...(ke ? { kePayloadGroup: ke.group } : {}), additionalKeyExchanges: !o.inIkeAuth });
  if (!sel.ok) {
    return {
      ok: false, reply: [notify(NotifyError.NO_PROPOSAL_CHOSEN)],
      failure: ikeFailure({ code: 'ERR_IKE_NO_PROPOSAL_CHOSEN', notify: 'NO_PROPOSAL_CHOSEN', exchange: o.exchange, message: sel.message, proposals: { local: ours.map(formatProposal), remote: [...sel.received] } }),
    };
  }
  const group = o.inIkeAuth ? null : dhGroupOf(sel.proposal);
  let share: KeyShare | null = null; let pfs: SecretBytes | null = null;
  if (group !== null) {
    if (!ke || ke.group !== group) return { ok: false, reply: [invalidKeNotify(group)], failure: null };
    try { share = createKeyShare(group, { random: ctx.random }); pfs = share.computeSharedSecret(ke.data); } catch {
      return { ok: false, reply: [notify(NotifyError.INVALID_SYNTAX)], failure: null };
    }
  }
  const wantsTransport = m.has(NotifyStatus.USE_TRANSPORT_MODE);
  const mode: IpsecMode = wantsTransport && c.config.mode === 'transport' ? 'transport' : 'tunnel';
  if (c.config.mode === 'transport' && !wantsTransport) {
    pfs?.wipe();
    return { ok: false, reply: [notify(NotifyError.NO_PROPOSAL_CHOSEN)], failure: ikeFailure({ code: 'ERR_IKE_MODE_MISMATCH', notify: 'NO_PROPOSAL_CHOSEN', exchange: o.exchange, message: `child ${c.config.name} is configured for transport mode, peer asked for tunnel mode` }) };
  }
  const ni = o.inIkeAuth ? initNonces(sa).ni : new Uint8Array(m.first('nonce')?.data ?? new Uint8Array(0));
  return { ok: true, choice: { runtime: c, sel: sel.proposal, mode, localTs: picked.localTs, remoteTs: picked.remoteTs, ni, share, pfs, inIkeAuth: o.inIkeAuth } };
}

/** The responder's CREATE_CHILD_SA answer for `ch` on `inboundSpi` with nonce `nr`. */
export function childAnswer(ch: ChildChoice, inboundSpi: number, nr: Uint8Array): IkePayload[] {
  return [
    ...(ch.mode === 'transport' ? [notify(NotifyStatus.USE_TRANSPORT_MODE)] : []),
    { kind: 'sa', proposals: [selectedToSaProposal(ch.sel, spi32(inboundSpi))] },
    ...(ch.inIkeAuth ? [] : [{ kind: 'nonce' as const, data: nr }]),
    ...(ch.share ? [{ kind: 'ke' as const, group: ch.share.group, data: ch.share.publicValue }] : []),
    { kind: 'tsi', selectors: ch.remoteTs.map(toWireTs) },
    { kind: 'tsr', selectors: ch.localTs.map(toWireTs) },
  ];
}

/**
 * Responder: the chosen child on our inbound SPI `inboundSpi` (allocated by the caller): Nr, keys, the reply.
 * After IKE_FOLLOWUP_KE (RFC 9370 §2.2.2) `after` holds the Nr already sent and SK(1)..SK(n).
 */
export function acceptChild(ctx: ChildEnv, sa: ChildIkeView, ch: ChildChoice, inboundSpi: number, after?: { readonly nr: Uint8Array; readonly additional: readonly SecretBytes[] }): Extract<ChildNegotiation, { ok: true }> {
  const nr = after?.nr ?? (ch.inIkeAuth ? initNonces(sa).nr : ctx.random.bytes(NONCE_BYTES));
  const keys = deriveKeys(sa, ch.sel, { ni: ch.ni, nr, pfs: ch.pfs, ...(after ? { additional: after.additional } : {}) });
  ch.pfs?.wipe();
  const built = buildChild(ctx, sa, {
    runtime: ch.runtime, sel: ch.sel, keys, weInitiated: false, inboundSpi, outboundSpi: spiNumber(ch.sel.spi),
    mode: ch.mode, localTs: ch.localTs, remoteTs: ch.remoteTs, ni: ch.ni, nr, outboundActive: true, pfsGroup: ch.share?.group ?? null,
  });
  return { ok: true, child: built.child, install: built.install, reply: childAnswer(ch, inboundSpi, nr) };
}

/** Responder (IKE_AUTH): choose, allocate our inbound SPI for the chosen child, accept. */
export async function negotiateChildResponder(ctx: Ctx, sa: ChildIkeView, m: IkeMessage, o: {
  readonly inIkeAuth: boolean; readonly only: ChildRuntime | null; readonly exchange: 'IKE_AUTH' | 'CREATE_CHILD_SA';
}): Promise<ChildNegotiation> {
  const chosen = chooseChild(ctx, sa, m, o);
  if (!chosen.ok) return chosen;
  const inboundSpi = await ctx.kernel.allocSpi({ local: sa.local.address, remote: sa.remote.address, reqid: chosen.choice.runtime.reqid });
  return acceptChild(ctx, sa, chosen.choice, inboundSpi);
}

export type ChildCompletion =
  | { readonly ok: true; readonly child: ChildSa; readonly install: KernelChildSa }
  /** Additional key exchanges follow: SK(0), the methods and the responder's first link. */
  | { readonly ok: 'followup'; readonly reply: ChildReply; readonly sk0: SecretBytes; readonly methods: NonEmpty<number>; readonly link: Uint8Array }
  | { readonly ok: false; readonly failure: IkeFailure; readonly retryGroup?: number; readonly temporary?: boolean };

/** Initiator: the response to our offer (IKE_AUTH or CREATE_CHILD_SA). */
export function completeChildInitiator(ctx: ChildEnv, sa: ChildIkeView, child: ChildRuntime, s: ChildRequestScratch, m: IkeMessage, o: { readonly inIkeAuth: boolean; readonly exchange: 'IKE_AUTH' | 'CREATE_CHILD_SA' }): ChildCompletion {
  const err = m.errorNotifies()[0];
  if (err !== undefined) {
    const name = notifyName(err.type);
    const failure = ikeFailure({
      code: name === 'NO_PROPOSAL_CHOSEN' ? 'ERR_IKE_NO_PROPOSAL_CHOSEN' : name === 'TS_UNACCEPTABLE' ? 'ERR_IKE_TS_UNACCEPTABLE' : 'ERR_IKE_CHILD_REFUSED',
      notify: name, origin: 'remote', exchange: o.exchange,
      message: name === 'NO_PROPOSAL_CHOSEN' ? `peer accepted none of our ESP proposals for ${child.config.name}` : name === 'TS_UNACCEPTABLE' ? `peer refused traffic selectors ${s.localTs.map(formatTs).join(',')} === ${s.remoteTs.map(formatTs).join(',')}` : `peer refused child ${child.config.name} with ${name}`,
      proposals: name === 'NO_PROPOSAL_CHOSEN' ? { local: s.proposals.map(formatProposal), remote: null } : null,
      trafficSelectors: name === 'TS_UNACCEPTABLE' ? { local: s.localTs.map(formatTs), remote: s.remoteTs.map(formatTs) } : null,
    });
    if (err.type === NotifyError.INVALID_KE_PAYLOAD && err.data.length === 2) return { ok: false, failure, retryGroup: new DataView(err.data.buffer, err.data.byteOffset, 2).getUint16(0) };
    return { ok: false, failure, ...(err.type === NotifyError.TEMPORARY_FAILURE || err.type === NotifyError.CHILD_SA_NOT_FOUND ? { temporary: true } : {}) };
  }
  const bad = (message: string): ChildCompletion => ({ ok: false, failure: ikeFailure({ code: 'ERR_IKE_BAD_CHILD_REPLY', message, origin: 'remote', exchange: o.exchange }) });
  const saP = m.first('sa'); const tsiP = m.first('tsi'); const tsrP = m.first('tsr');
  if (!saP || !tsiP || !tsrP) return bad('response lacks SA, TSi or TSr');
  const check = checkProposalReply(s.proposals, saP.proposals.map(fromSaProposal), { additionalKeyExchanges: !o.inIkeAuth });
  if (!check.ok) return bad(check.message);
  const sel = check.proposal;
  const methods = o.inIkeAuth ? [] : followupMethods(sel.transforms);
  const link = linkOf(m);
  if (methods.length > 0 && (link === undefined || dhGroupOf(sel) === null)) return bad('response chose additional key exchanges without a KE method or an ADDITIONAL_KEY_EXCHANGE notify (RFC 9370 §2.2.2)');
  if (sel.protocol !== 'esp' || saP.proposals[0]?.protocolId !== ProtocolId.ESP) return bad('response proposal is not ESP');
  const localTs = sharedTs(tsiP.selectors.map(fromWireTs), s.localTs); const remoteTs = sharedTs(tsrP.selectors.map(fromWireTs), s.remoteTs);
  if (!localTs.every((t) => tsWithin(t, s.localTs)) || !remoteTs.every((t) => tsWithin(t, s.remoteTs)))
    return { ok: false, failure: ikeFailure({ code: 'ERR_IKE_TS_UNACCEPTABLE', notify: 'TS_UNACCEPTABLE', exchange: o.exchange, message: 'responder widened our traffic selectors (RFC 7296 §2.9)', trafficSelectors: { local: s.localTs.map(formatTs), remote: s.remoteTs.map(formatTs) } }) };
  const transport = m.has(NotifyStatus.USE_TRANSPORT_MODE);
  if (s.mode === 'transport' && !transport)
    return { ok: false, failure: ikeFailure({ code: 'ERR_IKE_MODE_MISMATCH', notify: 'NO_PROPOSAL_CHOSEN', exchange: o.exchange, message: `peer did not accept transport mode for ${child.config.name}` }) };
  let pfs: SecretBytes | null = null;
  const group = o.inIkeAuth ? null : dhGroupOf(sel);
  if (group !== null) {
    const ke = m.first('ke');
    if (!s.share || !ke || ke.group !== s.share.group || group !== s.share.group) return bad('PFS key exchange mismatch');
    try { pfs = s.share.computeSharedSecret(ke.data); } catch (e) { return bad((e as Error).message); }
  }
  const nonceP = m.first('nonce');
  if (!o.inIkeAuth && !nonceP) return bad('response lacks Nr');
  const nr = o.inIkeAuth || nonceP === undefined ? initNonces(sa).nr : new Uint8Array(nonceP.data);
  const outboundSpi = spiNumber(saP.proposals[0]?.spi ?? new Uint8Array(0));
  const reply: ChildReply = { sel, localTs, remoteTs, nr, outboundSpi, group };
  // link is present whenever methods are (checked above).
  if (isNonEmpty(methods) && pfs !== null && link !== undefined) return { ok: 'followup', reply, sk0: pfs, methods, link };
  return finishChildInitiator(ctx, sa, child, s, reply, pfs, o.inIkeAuth);
}

/** Initiator: keys and the Child SA from a checked answer; `additional`: SK(1)..SK(n) after IKE_FOLLOWUP_KE. Wipes `pfs`. */
export function finishChildInitiator(ctx: ChildEnv, sa: ChildIkeView, child: ChildRuntime, s: ChildRequestScratch, r: ChildReply, pfs: SecretBytes | null, inIkeAuth = false, additional?: readonly SecretBytes[]): Extract<ChildCompletion, { ok: true }> {
  const ni = inIkeAuth ? initNonces(sa).ni : s.ni;
  const keys = deriveKeys(sa, r.sel, { ni, nr: r.nr, pfs, ...(additional ? { additional } : {}) });
  pfs?.wipe();
  const built = buildChild(ctx, sa, { runtime: child, sel: r.sel, keys, weInitiated: true, inboundSpi: s.spi, outboundSpi: r.outboundSpi, mode: s.mode, localTs: r.localTs, remoteTs: r.remoteTs, ni, nr: r.nr, outboundActive: true, pfsGroup: r.group });
  return { ok: true, child: built.child, install: built.install };
}

