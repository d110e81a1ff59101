// Literal states for the IKE_AUTH and IKE_SA_INIT step tests: alice (192.0.2.1, alice.example) and
// bob (192.0.2.2, bob.example), each with one child config "net" (10.1.0.0/16 === 10.2.0.0/16 from
// alice's side), holding what IKE_SA_INIT left both ends of one IKE SA with: the same two messages
// and nonces, and one §2.14 key set, each in its own role. No engine: signatures run on this thread.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { SecretBytes } from '../../../../src/common/secret.js';
import { SeededRandom } from '../../../../src/common/time.js';
import { DhId, EncrId, ExchangeType, PrfId } from '../../../../src/ike/constants.js';
import { decodeMessage, encodeMessage, type IkeMessage } from '../../../../src/ike/codec/message.js';
import type { IkePayload } from '../../../../src/ike/codec/payload.js';
import { pskFrom } from '../../../../src/ike/crypto/auth.js';
import { runCryptoJob, type CryptoJob, type CryptoJobResults } from '../../../../src/ike/crypto/jobs.js';
import { expandIkeSaKeys } from '../../../../src/ike/crypto/keys.js';
import type { ChildIkeView } from '../../../../src/ike/exchanges/child-sa.js';
import { spiBytes } from '../../../../src/ike/sa/ike-sa.js';
import type { ChildConfig, PeerConfig } from '../../../../src/ike/sa/config.js';
import { identityFromString } from '../../../../src/ike/sa/identity.js';
import { ikeKeysOf } from '../../../../src/ike/sa/ike-keys.js';
import type { IkeKeys, PeerRuntime } from '../../../../src/ike/sa/ike-sa.js';
import { buildPeerRuntime } from '../../../../src/ike/sa/peer-runtime.js';
import type { AuthBasis, AuthEffect, AuthEnv, AuthStep } from '../../../../src/ike/steps/ike-auth.js';
import type { IntAuthChain } from '../../../../src/ike/steps/intermediate.js';
import { buildCert, dn } from '../crypto/cert-builder.js';
import { NOW_MS, other, type Who } from './fixtures.js';

export const ADDRESS: Record<Who, string> = { alice: '192.0.2.1', bob: '192.0.2.2' };
const SUBNET: Record<Who, string> = { alice: '10.1.0.0/16', bob: '10.2.0.0/16' };
export const SPI_I = 0x0102030405060708n;
export const SPI_R = 0x1112131415161718n;

let pkiCache: { ca: Uint8Array; alice: { cert: Uint8Array; key: KeyObject }; bob: { cert: Uint8Array; key: KeyObject } } | undefined;
/** A CA and two ECDSA P-256 end entities with FQDN SANs alice.example / bob.example. */
function pki(): NonNullable<typeof pkiCache> {
  if (pkiCache) return pkiCache;
  const ec = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const ca = ec(); const a = ec(); const b = ec();
  const base = { notBeforeMs: NOW_MS - 86_400_000, notAfterMs: NOW_MS + 86_400_000 };
  const CA = dn('kipsec steps CA');
  const caDer = buildCert({ ...base, subject: CA, issuer: CA, publicKey: ca.publicKey, signingKey: ca.privateKey, ca: true, keyUsage: [5, 6] });
  const ee = (name: string, k: typeof a, serial: number) => buildCert({ ...base, serial, subject: dn(name), issuer: CA, publicKey: k.publicKey, signingKey: ca.privateKey, keyUsage: [0], dns: [name] });
  pkiCache = { ca: caDer, alice: { cert: ee('alice.example', a, 2), key: a.privateKey }, bob: { cert: ee('bob.example', b, 3), key: b.privateKey } };
  return pkiCache;
}

export interface AuthSideOptions {
  readonly auth?: 'psk' | 'cert';
  readonly psk?: string;
  /** The identity this side expects of the other (default: the other's). */
  readonly remoteId?: string;
  readonly child?: Partial<ChildConfig> | null;
  readonly name?: string;
  readonly proposals?: readonly string[];
  /** An IntAuth chain from IKE_INTERMEDIATE (RFC 9242). */
  readonly intAuth?: IntAuthChain;
}

export function peerOf(who: Who, o: AuthSideOptions = {}): PeerRuntime {
  const peer = other(who);
  const auth: PeerConfig['auth'] = o.auth === 'cert'
    ? { method: 'certificate', certificate: pki()[who].cert, privateKey: pki()[who].key, cas: [pki().ca] }
    : { method: 'psk', secret: pskFrom(o.psk ?? 'correct horse battery staple') };
  const child: ChildConfig = { name: 'net', localTs: [SUBNET[who]], remoteTs: [SUBNET[peer]], espProposals: ['aes256gcm16'], mode: 'tunnel', rekeyTimeMs: 3_600_000, lifeTimeMs: 3_960_000, ...o.child };
  const config: PeerConfig = {
    name: o.name ?? `to-${peer}`,
    local: { address: ADDRESS[who], id: identityFromString(`${who}.example`) },
    remote: { address: ADDRESS[peer], id: identityFromString(o.remoteId ?? `${peer}.example`) },
    auth, ike: { proposals: o.proposals ?? ['aes256gcm16-prfsha256-x25519'], rekeyTimeMs: 3_600_000 },
    children: o.child === null ? [] : [child], dpd: { intervalMs: 0, action: 'clear' }, startAction: who === 'alice' ? 'initiate' : 'respond',
  };
  return buildPeerRuntime(config, undefined, () => (who === 'alice' ? 7 : 9));
}

/** Signatures and verifications on this thread, as a crypto pool of size 0 runs them. */
const crypto = { run: <K extends CryptoJob['op']>(job: Extract<CryptoJob, { op: K }>): Promise<CryptoJobResults[K]> => Promise.resolve(runCryptoJob(job) as CryptoJobResults[K]) };

export interface AuthSide {
  readonly who: Who;
  readonly role: 'initiator' | 'responder';
  readonly peer: PeerRuntime;
  readonly basis: AuthBasis;
  readonly keys: IkeKeys;
  readonly ike: ChildIkeView;
  readonly env: AuthEnv;
}

/** `who`'s end of the IKE SA as `role`. */
export function authSide(who: Who, role: 'initiator' | 'responder', o: AuthSideOptions = {}): AuthSide {
  const peer = peerOf(who, o);
  const suite = { encrId: EncrId.ENCR_AES_GCM_16, encrKeyBits: 256, prfId: PrfId.PRF_HMAC_SHA2_256 };
  const ni = new Uint8Array(32).fill(1); const nr = new Uint8Array(32).fill(2);
  const random = new SeededRandom(who === 'alice' ? 11 : 23);
  const raw = expandIkeSaKeys(suite, new SecretBytes(new Uint8Array(32).fill(0x5e)), ni, nr, spiBytes(SPI_I), spiBytes(SPI_R));
  const keys = ikeKeysOf({ suite, suiteText: 'aes256gcm16-prfsha256-x25519', dhGroup: DhId.CURVE25519, raw, role, random });
  const basis: AuthBasis = { initRequest: new Uint8Array(300).fill(0x31), initResponse: new Uint8Array(280).fill(0x32), ni, nr, keys, intAuth: o.intAuth ?? null, peerHashes: null };
  const ike: ChildIkeView = {
    peer, keys, local: { address: ADDRESS[who], port: 500 }, remote: { address: ADDRESS[other(who)], port: 500 }, natLocal: false, natRemote: false, init: { ni, nr }, role,
  };
  return { who, role, peer, basis, keys, ike, env: { clock: { now: () => NOW_MS }, random, options: { rekeyJitterMs: 0 }, crypto } };
}

/** The payloads of a send/respond effect as the peer decodes them (IKE_AUTH's inner payloads, here in the clear). */
export function authWire(payloads: readonly IkePayload[], response: boolean, messageId = 1): IkeMessage {
  const header = { initiatorSpi: SPI_I, responderSpi: SPI_R, exchangeType: ExchangeType.IKE_AUTH, initiator: !response, response, higherVersion: false, minorVersion: 0, messageId };
  return decodeMessage(encodeMessage(header, payloads));
}

export function effect<K extends AuthEffect['kind']>(step: AuthStep, kind: K): Extract<AuthEffect, { kind: K }> {
  const f = step.effects.find((x): x is Extract<AuthEffect, { kind: K }> => x.kind === kind);
  if (f === undefined) throw new Error(`no ${kind} effect in [${step.effects.map((x) => x.kind).join(', ')}]`);
  return f;
}

export const kinds = (step: AuthStep): string[] => step.effects.map((f) => f.kind);
