// Literal IKE SAs for the IKE SA rekey step tests: alice (192.0.2.1, the original initiator) and
// bob (192.0.2.2) hold the two ends of one established IKE SA with the same §2.14 key set, each
// record as the engine keeps it after IKE_AUTH. No engine: the steps read these records and say
// in their effects what should change.
import { SecretBytes } from '../../../../src/common/secret.js';
import { SeededRandom } from '../../../../src/common/time.js';
import { DhId, EncrId, ExchangeType, PrfId } from '../../../../src/ike/constants.js';
import { expandIkeSaKeys } from '../../../../src/ike/crypto/keys.js';
import { spiBytes } from '../../../../src/ike/sa/ike-sa.js';
import { fromSaProposal, toSaProposals } from '../../../../src/ike/policy/convert.js';
import { parseProposals } from '../../../../src/ike/policy/proposal.js';
import { checkProposalReply } from '../../../../src/ike/policy/select.js';
import type { PeerConfig } from '../../../../src/ike/sa/config.js';
import { ikeKeysOf, upKeysOf } from '../../../../src/ike/sa/ike-keys.js';
import type { IkeKeys, IkeSa, IkeSaUp, Outstanding, PreAuthKeyed, Task, UpKeyed } from '../../../../src/ike/sa/ike-sa.js';
import { buildPeerRuntime } from '../../../../src/ike/sa/peer-runtime.js';
import type { IkeRekeyEffect, IkeRekeyEnv, IkeRekeyStep, KeyedIkeSa } from '../../../../src/ike/steps/ike-rekey.js';
import { NOW_MS, other, type Who } from './fixtures.js';

const ADDRESS: Record<Who, string> = { alice: '192.0.2.1', bob: '192.0.2.2' };
/** The IKE SA being rekeyed: alice chose SPIi, bob SPIr. */
export const OLD_SPI_I = 0x0102030405060708n;
export const OLD_SPI_R = 0x1112131415161718n;
export const PLAIN = 'aes256gcm16-prfsha256-x25519';
export const HYBRID = 'aes256gcm16-prfsha384-x25519-ke1_mlkem768';

/** What `who`'s fixture IKE SA knows as an SA that is up (its established state carries it). */
export function fixtureUp(who: Who): IkeSaUp {
  return { remoteId: ADDRESS[other(who)], establishedAtMs: 0, upSerial: 1, rekeyAtMs: null, resumedAtMs: null };
}

/** What the fixture IKE SA keeps of its negotiation once up: the PLAIN proposal, its keys without SK_pi/SK_pr. */
export function fixtureKeyed(keys: IkeKeys, proposal = PLAIN): UpKeyed {
  const ours = parseProposals([proposal], 'ike', { additionalKeyExchanges: true });
  const chosen = checkProposalReply(ours, toSaProposals(ours).map(fromSaProposal), { additionalKeyExchanges: true });
  if (!chosen.ok) throw new Error(chosen.message);
  return { selected: chosen.proposal, keys: upKeysOf(keys) };
}

/** `side`'s IKE SA as it was between IKE_SA_INIT and IKE_AUTH: the same suite and SK_d, SK_pi/SK_pr and the nonces back. */
export function preAuthKeyedOf(side: IkeSide): PreAuthKeyed {
  const { selected, keys } = side.sa.state.keyed;
  const skP = (): SecretBytes => new SecretBytes(new Uint8Array(32).fill(0x50));
  return { selected, keys: { ...keys, skPi: skP(), skPr: skP() }, ni: new Uint8Array(32).fill(1), nr: new Uint8Array(32).fill(2) };
}

export interface IkeSide {
  readonly who: Who;
  readonly sa: KeyedIkeSa;
  readonly env: IkeRekeyEnv;
}

/** One end of the established IKE SA; `proposals`: its IKE proposals (the old SA itself is x25519 either way). */
export function ikeSide(who: Who, o: { readonly proposals?: readonly string[]; readonly seed?: number } = {}): IkeSide {
  const peer = other(who);
  const config: PeerConfig = {
    name: `to-${peer}`,
    local: { address: ADDRESS[who], id: { type: 'ipv4', value: ADDRESS[who] } },
    remote: { address: ADDRESS[peer], id: { type: 'ipv4', value: ADDRESS[peer] } },
    auth: { method: 'psk', secret: new SecretBytes(new Uint8Array(32).fill(7)) },
    ike: { proposals: o.proposals ?? [PLAIN], rekeyTimeMs: 3_600_000 },
    children: [], dpd: { intervalMs: 0, action: 'clear' }, startAction: 'respond',
  };
  let serial = who === 'alice' ? 100 : 200;
  const random = new SeededRandom(o.seed ?? (who === 'alice' ? 11 : 23));
  const suite = { encrId: EncrId.ENCR_AES_GCM_16, encrKeyBits: 256, prfId: PrfId.PRF_HMAC_SHA2_256 };
  const ni = new Uint8Array(32).fill(1); const nr = new Uint8Array(32).fill(2);
  const raw = expandIkeSaKeys(suite, new SecretBytes(new Uint8Array(32).fill(0x5e)), ni, nr, spiBytes(OLD_SPI_I), spiBytes(OLD_SPI_R));
  const role = who === 'alice' ? 'initiator' : 'responder';
  const keys = ikeKeysOf({ suite, suiteText: PLAIN, dhGroup: DhId.CURVE25519, raw, role, random });
  const local = { address: ADDRESS[who], port: 500 }; const remote = { address: ADDRESS[peer], port: 500 };
  const sa: KeyedIkeSa = {
    serial: serial++, peer: buildPeerRuntime(config, undefined, () => 1), role, spiI: OLD_SPI_I, spiR: OLD_SPI_R, state: { tag: 'established', up: fixtureUp(who), keyed: fixtureKeyed(keys) },
    local, remote, natLocal: false, natRemote: false, fragmentation: false, peerHashes: null,
    nextRequestId: 2, outstanding: null, pending: [], expectedRequestId: 2,
    lastResponse: null, fragments: null, children: new Map(), lingering: new Map(), reauth: null, followup: null,
    createdAtMs: 0, lastInboundMs: 0,
    timers: { rekey: null, dpd: null, halfOpen: null, rekeyed: null }, queue: Promise.resolve(),
  };
  return { who, sa, env: { clock: { now: () => NOW_MS }, random, newSerial: () => serial++ } };
}

/** Our request for `task` is in flight on `sa` (as task-queue.ts records it). */
export function outstanding(task: Task): Outstanding {
  return { task, messageId: 2, exchangeType: ExchangeType.CREATE_CHILD_SA, datagrams: [], scratch: { kind: 'none' }, tries: 0, timer: null };
}

export function effect<K extends IkeRekeyEffect['kind']>(step: IkeRekeyStep, kind: K): Extract<IkeRekeyEffect, { kind: K }> {
  const f = step.effects.find((x): x is Extract<IkeRekeyEffect, { kind: K }> => x.kind === kind);
  if (f === undefined) throw new Error(`no ${kind} effect in [${step.effects.map((x) => x.kind).join(', ')}]`);
  return f;
}

export const kinds = (step: IkeRekeyStep): string[] => step.effects.map((f) => f.kind);

/** The new IKE SA a step registers (or starts IKE_FOLLOWUP_KE for). */
export function freshOf(step: IkeRekeyStep): IkeSa {
  const f = step.effects.find((x) => x.kind === 'register' || x.kind === 'followup');
  if (f?.kind === 'register') return f.sa;
  if (f?.kind === 'followup') return f.fresh;
  throw new Error(`no new IKE SA in [${kinds(step).join(', ')}]`);
}
