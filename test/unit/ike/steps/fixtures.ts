// Literal states for the Child SA step tests: two sides of one IKE SA (alice 192.0.2.1, bob
// 192.0.2.2) that share SK_d, each with one child config ("net", 10.1.0.0/16 === 10.2.0.0/16 from
// alice's side), and messages that go through the codec as they would inside SK. No engine, no
// kernel: what a step asks for is in its effects.
import { SecretBytes } from '../../../../src/common/secret.js';
import { SeededRandom } from '../../../../src/common/time.js';
import { DhId, ExchangeType, NotifyError, NotifyStatus, PrfId, EncrId, TransformType, notifyName } from '../../../../src/ike/constants.js';
import { decodeMessage, encodeMessage, type IkeMessage } from '../../../../src/ike/codec/message.js';
import type { IkePayload } from '../../../../src/ike/codec/payload.js';
import type { ChildEnv } from '../../../../src/ike/exchanges/child-sa.js';
import { parseProposals } from '../../../../src/ike/policy/proposal.js';
import type { ChildRuntime, ChildSa, ChildState } from '../../../../src/ike/sa/ike-sa.js';
import { parseTs } from '../../../../src/ike/sa/ts.js';
import type { ResponderIkeView } from '../../../../src/ike/steps/child-responder.js';
import type { ChildEffect, Step } from '../../../../src/ike/steps/child.js';

export type Who = 'alice' | 'bob';
export const other = (w: Who): Who => (w === 'alice' ? 'bob' : 'alice');

const ADDRESS: Record<Who, string> = { alice: '192.0.2.1', bob: '192.0.2.2' };
const SUBNET: Record<Who, string> = { alice: '10.1.0.0/16', bob: '10.2.0.0/16' };
const SK_D = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
export const NOW_MS = 1_000_000;

export interface Side {
  readonly who: Who;
  readonly ike: ResponderIkeView & { children: Map<number, ChildSa> };
  readonly runtime: ChildRuntime;
  readonly env: ChildEnv;
}

/** One side; `pfs`: the ESP proposal carries x25519, so CREATE_CHILD_SA sends KE payloads (§1.3.1). */
export function side(who: Who, o: { readonly pfs?: boolean; readonly esp?: readonly string[]; readonly seed?: number } = {}): Side {
  const esp = o.esp ?? [o.pfs ? 'aes256gcm16-x25519' : 'aes256gcm16'];
  const peer = other(who);
  // As core.addPeer resolves a child config: PFS with the first KE method of the proposals.
  const espProposals = parseProposals(esp, 'esp', { additionalKeyExchanges: true });
  const runtime: ChildRuntime = {
    config: { name: 'net', localTs: [SUBNET[who]], remoteTs: [SUBNET[peer]], espProposals: esp, mode: 'tunnel', rekeyTimeMs: 3_600_000, lifeTimeMs: 3_960_000 },
    reqid: who === 'alice' ? 7 : 9, espProposals,
    localTs: [parseTs(SUBNET[who])], remoteTs: [parseTs(SUBNET[peer])], pfsGroup: espProposals.flatMap((p) => p.transforms).find((t) => t.type === TransformType.DH && t.id !== DhId.NONE)?.id ?? null,
  };
  return {
    who, runtime,
    ike: {
      peer: { config: { name: peer }, children: [runtime] },
      keys: { suite: { encrId: EncrId.ENCR_AES_GCM_16, encrKeyBits: 256, prfId: PrfId.PRF_HMAC_SHA2_256 }, skD: new SecretBytes(SK_D.slice()) },
      local: { address: ADDRESS[who], port: 500 }, remote: { address: ADDRESS[peer], port: 500 }, natLocal: false, natRemote: false,
      init: null, state: { tag: 'established' }, children: new Map(),
    },
    env: { clock: { now: () => NOW_MS }, random: new SeededRandom(o.seed ?? (who === 'alice' ? 11 : 23)), options: { rekeyJitterMs: 0 } },
  };
}

/** The payloads of a send/respond effect as the peer decodes them (inner payloads of SK, here in the clear). */
export function wire(payloads: readonly IkePayload[], response: boolean): IkeMessage {
  const header = { initiatorSpi: 0x0102030405060708n, responderSpi: 0x1112131415161718n, exchangeType: ExchangeType.CREATE_CHILD_SA, initiator: !response, response, higherVersion: false, minorVersion: 0, messageId: 3 };
  return decodeMessage(encodeMessage(header, payloads));
}

/** "notify(REKEY_SA)", "sa", "nonce", ... for a readable comparison. */
export function shape(payloads: readonly IkePayload[]): string[] {
  return payloads.map((p) => (p.kind === 'notify' ? `notify(${notifyName(p.type)})` : p.kind));
}

export function effect<K extends ChildEffect['kind']>(step: Step, kind: K): Extract<ChildEffect, { kind: K }> {
  const f = step.effects.find((x): x is Extract<ChildEffect, { kind: K }> => x.kind === kind);
  if (f === undefined) throw new Error(`no ${kind} effect in [${step.effects.map((x) => x.kind).join(', ')}]`);
  return f;
}

export const kinds = (step: Step): string[] => step.effects.map((f) => (f.kind === 'emit' ? `emit:${f.event.type}` : f.kind));

/** A Child SA record as an installed one looks (keys are in the kernel, not here). */
export function installedChild(s: Side, inboundSpi: number, outboundSpi: number, state: ChildState = { tag: 'installed' }, nonce = 0x40): ChildSa {
  return {
    runtime: s.runtime, state, mode: 'tunnel', suiteText: 'aes256gcm16', localTs: s.runtime.localTs, remoteTs: s.runtime.remoteTs, encap: null,
    ref: { peer: s.ike.peer.config.name, child: 'net', reqid: s.runtime.reqid, inboundSpi, outboundSpi, local: s.ike.local.address, remote: s.ike.remote.address },
    ni: new Uint8Array(32).fill(nonce), nr: new Uint8Array(32).fill(nonce + 1), installedAtMs: 0, rekeyAtMs: 1, expiresAtMs: 2,
    outbound: { tag: 'active' }, timers: [],
  };
}

export { notify } from '../../../../src/ike/codec/payloads/notify.js';
export { NotifyError, NotifyStatus };
