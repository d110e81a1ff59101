// RFC 7296 §3.10 Notify payload and the typed data of the notifies the engine uses.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HashAlgorithm, NotifyError, NotifyStatus, PayloadType, ProtocolId } from '../../../../src/ike/constants.js';
import {
  cookieData, cookieNotify, decodeMessage, decodePayloadChain, replyNotifyFor, encodePayloadChain, invalidKeGroup, invalidKeNotify, isErrorNotify,
  natDetectionHash, natDetectionInput, natDetectionNotify, notify, rekeySa, rekeySaNotify, setWindowSize,
  signatureHashAlgorithms, signatureHashAlgorithmsNotify, type NotifyPayload,
} from '../../../../src/ike/codec/index.js';
import { ParseError } from '../../../../src/common/errors.js';
import { asKind, hex, loadGolden, throwsCode, toHex, wrap } from './helpers.js';

const decodeN = (body: Uint8Array): NotifyPayload => asKind('notify', decodePayloadChain(wrap(body), PayloadType.NOTIFY)[0]);
const body = (p: NotifyPayload): string => toHex(encodePayloadChain([p]).bytes.subarray(4));

describe('Notify payload, RFC 7296 §3.10', () => {
  it('lays out protocol, SPI size, type, SPI, data', () => {
    assert.equal(body(rekeySaNotify(ProtocolId.ESP, hex('c0ffee01'))), '03044009c0ffee01');
    assert.deepEqual(decodeN(hex('03044009c0ffee01')), rekeySaNotify(ProtocolId.ESP, hex('c0ffee01')));
  });
  it('rejects SPI sizes other than 0, 4 or 8', () => {
    throwsCode(() => decodeN(hex('0302400901 02')), 'ERR_IKE_NOTIFY_SPI_SIZE');
  });
  it('rejects protocol ids above 3 (ESP)', () => {
    throwsCode(() => decodeN(hex('09004000')), 'ERR_IKE_NOTIFY_PROTOCOL');
  });
  it('classifies types below 16384 as errors, RFC 7296 §3.10.1', () => {
    assert.equal(isErrorNotify(notify(NotifyError.NO_PROPOSAL_CHOSEN)), true);
    assert.equal(isErrorNotify(notify(NotifyStatus.INITIAL_CONTACT)), false);
  });
});

describe('typed notify data', () => {
  it('NAT_DETECTION_*: 20-byte SHA-1 hash; input is SPIi | SPIr | IP | port, RFC 7296 §2.23', () => {
    const n = natDetectionNotify('source', new Uint8Array(20).fill(3));
    assert.equal(n.type, NotifyStatus.NAT_DETECTION_SOURCE_IP);
    assert.equal(natDetectionHash(decodeN(hex(body(n)))).length, 20);
    throwsCode(() => natDetectionHash({ ...n, data: new Uint8Array(19) }), 'ERR_IKE_NAT_DETECTION_LENGTH');
    assert.equal(toHex(natDetectionInput(0x0a55598b3430bce6n, 0n, hex('c0000202'), 500)), '0a55598b3430bce60000000000000000c000020201f4');
  });

  it('NAT_DETECTION input matches the chunk strongSwan logged (natd_chunk, golden log)', () => {
    // From the capture log: "natd_chunk => 22 bytes: 0A 55 59 8B 34 30 BC E6 00.. C0 00 02 02 01 F4".
    assert.equal(toHex(natDetectionInput(0x0a55598b3430bce6n, 0n, new Uint8Array([192, 0, 2, 2]), 500)).toUpperCase(),
      '0A55598B3430BCE60000000000000000C000020201F4');
  });

  it('COOKIE: 1..64 bytes, RFC 7296 §2.6', () => {
    assert.equal(cookieData(cookieNotify(new Uint8Array(64))).length, 64);
    throwsCode(() => cookieData(notify(NotifyStatus.COOKIE)), 'ERR_IKE_COOKIE_LENGTH');
    throwsCode(() => cookieData(notify(NotifyStatus.COOKIE, new Uint8Array(65))), 'ERR_IKE_COOKIE_LENGTH');
    assert.throws(() => cookieNotify(new Uint8Array(0)), RangeError);
  });

  it('INVALID_KE_PAYLOAD: the 2-byte accepted group, RFC 7296 §1.3', () => {
    assert.equal(invalidKeGroup(invalidKeNotify(19)), 19);
    throwsCode(() => invalidKeGroup(notify(NotifyError.INVALID_KE_PAYLOAD, hex('13'))), 'ERR_IKE_INVALID_KE_LENGTH');
  });

  it('SIGNATURE_HASH_ALGORITHMS: a list of 16-bit numbers, RFC 7427 §4', () => {
    const n = signatureHashAlgorithmsNotify([HashAlgorithm.SHA2_256, HashAlgorithm.SHA2_384, HashAlgorithm.SHA2_512, HashAlgorithm.IDENTITY]);
    assert.equal(toHex(n.data), '0002000300040005');
    assert.deepEqual(signatureHashAlgorithms(n), [2, 3, 4, 5]);
    throwsCode(() => signatureHashAlgorithms(notify(NotifyStatus.SIGNATURE_HASH_ALGORITHMS, hex('000200'))), 'ERR_IKE_HASH_ALGORITHMS_LENGTH');
  });

  it('reads strongSwan\'s SIGNATURE_HASH_ALGORITHMS from a golden IKE_SA_INIT', () => {
    const m = decodeMessage(hex(loadGolden()[0]!.datagrams[0]!.hex));
    const algs = signatureHashAlgorithms(m.notify(NotifyStatus.SIGNATURE_HASH_ALGORITHMS)!);
    assert.ok(algs.includes(HashAlgorithm.SHA2_256));
    for (const n of m.notifies(NotifyStatus.NAT_DETECTION_SOURCE_IP)) assert.equal(natDetectionHash(n).length, 20);
  });

  it('REKEY_SA: protocol + 4-byte SPI in the notify header, RFC 7296 §1.3.3', () => {
    assert.deepEqual(rekeySa(rekeySaNotify(ProtocolId.ESP, hex('01020304'))), { protocolId: ProtocolId.ESP, spi: hex('01020304') });
    throwsCode(() => rekeySa(notify(NotifyStatus.REKEY_SA)), 'ERR_IKE_REKEY_SA_PROTOCOL');
    throwsCode(() => rekeySa({ ...notify(NotifyStatus.REKEY_SA), protocolId: 3 }), 'ERR_IKE_REKEY_SA_SPI');
  });

  it('SET_WINDOW_SIZE: 4-byte window, RFC 7296 §2.3', () => {
    assert.equal(setWindowSize(notify(NotifyStatus.SET_WINDOW_SIZE, hex('00000020'))), 32);
    throwsCode(() => setWindowSize(notify(NotifyStatus.SET_WINDOW_SIZE, hex('0020'))), 'ERR_IKE_WINDOW_SIZE_LENGTH');
  });

  it('refuses to read a notify of another type as typed data', () => {
    throwsCode(() => cookieData(notify(NotifyStatus.INITIAL_CONTACT)), 'ERR_IKE_NOTIFY_TYPE');
  });
});

describe('reply notifies for decode failures, RFC 7296 §2.21.1', () => {
  it('UNSUPPORTED_CRITICAL_PAYLOAD carries the payload type; other codec errors map to INVALID_SYNTAX / INVALID_MAJOR_VERSION', () => {
    const catchParse = (f: () => unknown): ParseError => { try { f(); } catch (e) { if (e instanceof ParseError) return e; throw e; } throw new Error('no error'); };
    const crit = replyNotifyFor(catchParse(() => decodePayloadChain(wrap(new Uint8Array(0), 0, 0x80), 99)));
    assert.deepEqual([crit.type, toHex(crit.data)], [NotifyError.UNSUPPORTED_CRITICAL_PAYLOAD, '63']);
    assert.equal(replyNotifyFor(catchParse(() => decodePayloadChain(wrap(new Uint8Array(3)), PayloadType.NONCE))).type, NotifyError.INVALID_SYNTAX);
    const v3 = new Uint8Array(28); v3[17] = 0x30;
    assert.equal(replyNotifyFor(catchParse(() => decodeMessage(v3))).type, NotifyError.INVALID_MAJOR_VERSION);
  });
});
