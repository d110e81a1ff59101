// A hostile peer with real keys for the pair tests: the SK keys of an established IKE SA come from
// the sender's checkpoint (src/ike/sa/checkpoint.ts holds SK_e/SK_a), so a test can open a genuine
// request or response on the wire, change its inner payloads and seal it again under the same
// header. The message ID stays the one the sender counted, so both engines stay in step and the
// exchange after the hostile one shows whether the SA survived.
import assert from 'node:assert/strict';
import { SecretBytes } from '../../../../src/common/secret.js';
import { encodeEncryptedFragments, encodeEncryptedMessage, openEncryptedMessage } from '../../../../src/ike/codec/envelope.js';
import type { IkeHeader } from '../../../../src/ike/codec/header.js';
import { decodeMessage, type IkeMessage } from '../../../../src/ike/codec/message.js';
import type { IkePayload } from '../../../../src/ike/codec/payload.js';
import { createSkPair, type SkCipher } from '../../../../src/ike/crypto/sk.js';
import { decodeCheckpoint } from '../../../../src/ike/sa/checkpoint.js';
import { spiHex } from '../../../../src/ike/sa/ike-sa.js';
import type { Packet, Pair, Side } from './harness.js';

/** The cipher `sender` protects its messages with on the IKE SA named by `header`. */
export function senderCipher(sender: Side, header: IkeHeader): SkCipher {
  // The I flag marks the original initiator's messages, whose SPI is SPIi.
  const spi = header.initiator ? header.initiatorSpi : header.responderSpi;
  const data = sender.checkpoints.data.get(spiHex(spi));
  assert.ok(data, `${sender.name} has a checkpoint for IKE SA ${spiHex(spi)}`);
  const cp = decodeCheckpoint(data);
  // SK_p is not in a checkpoint and not needed for SK protection.
  const keys = { skD: cp.skD, skAi: cp.skAi, skAr: cp.skAr, skEi: cp.skEi, skEr: cp.skEr, skPi: new SecretBytes(new Uint8Array(0)), skPr: new SecretBytes(new Uint8Array(0)) };
  return createSkPair(cp.suite, keys, cp.role).outbound;
}

/** The decrypted message `sender` sent (an SK datagram). */
export function openFrom(sender: Side, datagram: Uint8Array): IkeMessage {
  const m = decodeMessage(datagram);
  return openEncryptedMessage(m, datagram, senderCipher(sender, m.header));
}

/**
 * A change to the encoded body of the first inner payload of `type`, made after encoding: the
 * codec refuses to encode a malformed payload (selfCheck), but a hostile peer sends one anyway.
 */
export interface BodyPatch { readonly type: number; readonly patch: (body: Uint8Array) => void }

function patchChain(plain: Uint8Array, firstType: number, p: BodyPatch): void {
  let type = firstType; let at = 0;
  while (type !== 0 && at + 4 <= plain.length) {
    const length = (plain[at + 2]! << 8) | plain[at + 3]!;
    if (type === p.type) { p.patch(plain.subarray(at + 4, at + length)); return; }
    type = plain[at]!;
    at += length;
  }
  assert.fail(`no payload of type ${p.type} to patch`);
}

/**
 * `datagram` from `sender` with its inner payloads replaced by `edit(payloads)` (and then, encoded,
 * changed by `patch`), sealed again under the same header.
 */
export function reseal(sender: Side, datagram: Uint8Array, edit: (inner: IkePayload[]) => IkePayload[], patch?: BodyPatch): Uint8Array {
  const m = openFrom(sender, datagram);
  const c = senderCipher(sender, m.header);
  // The SK payload header ends the AEAD associated data; its Next Payload names the first inner payload.
  const sealer = patch === undefined ? c : {
    encryptedLength: (n: number) => c.encryptedLength(n),
    encrypt: (inner: Uint8Array, aad: Uint8Array) => { const copy = new Uint8Array(inner); patchChain(copy, aad[aad.length - 4]!, patch); return c.encrypt(copy, aad); },
  };
  return encodeEncryptedMessage(m.header, edit([...m.payloads]), sealer);
}

/** The same message as SKF fragments of at most `maxPlaintextBytes` each (RFC 7383 §2.5). */
export function refragment(sender: Side, datagram: Uint8Array, maxPlaintextBytes: number, header?: Partial<IkeHeader>): Uint8Array[] {
  const m = openFrom(sender, datagram);
  const h = { ...m.header, ...header };
  return encodeEncryptedFragments(h, m.payloads, senderCipher(sender, m.header), maxPlaintextBytes);
}

/** A copy with the last octet (inside the ICV / AEAD tag) flipped: no longer authentic. */
export function tampered(datagram: Uint8Array): Uint8Array {
  const out = new Uint8Array(datagram);
  out[out.length - 1] = out[out.length - 1]! ^ 0x01;
  return out;
}

/**
 * Run `trigger` and let the traffic flow, holding back the first datagram `match` selects; returns
 * it undelivered (the test decides what arrives in its place).
 */
export async function intercept(p: Pair, match: (x: Packet) => boolean, trigger: () => unknown): Promise<Packet> {
  let caught: Packet | null = null;
  p.net.fate = (x) => {
    if (caught === null && match(x)) { caught = x; return 'drop'; }
    return 'deliver';
  };
  await trigger();
  await p.net.pump();
  p.net.fate = () => 'deliver';
  assert.ok(caught !== null, 'the datagram to intercept was sent');
  return caught;
}

/** Deliver `datagram` in place of `original` (same addresses), and everything it causes. */
export async function inject(p: Pair, original: Packet, datagram: Uint8Array): Promise<void> {
  p.net.queue.push({ ...original, datagram });
  await p.net.pump();
}

/** What `side` has sent since `mark` (an index into the network log). */
export function sentSince(p: Pair, side: Side, mark: number): Packet[] {
  const address = side === p.alice ? '192.0.2.1' : '192.0.2.2';
  return p.net.log.slice(mark).filter((x) => x.from.address === address);
}
