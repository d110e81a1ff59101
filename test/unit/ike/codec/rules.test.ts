// The per-exchange payload table (RFC 7296 §1.2-§1.5 message diagrams), checked before handlers run.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ExchangeType, NotifyError, NotifyStatus } from '../../../../src/ike/constants.js';
import {
  checkInnerPayloads, checkOuterPayloads, cookieNotify, notify, notifyForError, PayloadNotAllowedError, type IkePayload,
} from '../../../../src/ike/codec/index.js';

const sa: IkePayload = { kind: 'sa', proposals: [] };
const ke: IkePayload = { kind: 'ke', group: 31, data: new Uint8Array(32) };
const nonce: IkePayload = { kind: 'nonce', data: new Uint8Array(32) };
const sk: IkePayload = { kind: 'sk', innerNext: 0, body: new Uint8Array(0) };
const idi: IkePayload = { kind: 'idi', idType: 1, data: new Uint8Array(4) };
const auth: IkePayload = { kind: 'auth', method: 2, data: new Uint8Array(32) };

function rejects(f: () => void, payload: string, exchange: string, code = 'ERR_IKE_PAYLOAD_NOT_ALLOWED'): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof PayloadNotAllowedError, String(e));
    assert.equal(e.code, code);
    assert.equal(e.payload, payload);
    assert.equal(e.exchange, exchange);
    assert.equal(notifyForError(e), NotifyError.INVALID_SYNTAX);
    return true;
  });
}

describe('per-exchange payload table, RFC 7296 §1.2-§1.5', () => {
  it('accepts IKE_SA_INIT { SA, KE, Ni, N... }, RFC 7296 §1.2', () => {
    checkOuterPayloads(ExchangeType.IKE_SA_INIT, false, [sa, ke, nonce, notify(NotifyStatus.NAT_DETECTION_SOURCE_IP, new Uint8Array(20))]);
  });
  it('rejects IKE_SA_INIT without KE, naming the payload and exchange', () => {
    rejects(() => checkOuterPayloads(ExchangeType.IKE_SA_INIT, false, [sa, nonce]), 'KE', 'IKE_SA_INIT', 'ERR_IKE_PAYLOAD_MISSING');
    assert.throws(() => checkOuterPayloads(ExchangeType.IKE_SA_INIT, false, [sa, nonce]), /KE is missing in IKE_SA_INIT request/);
    assert.throws(() => checkInnerPayloads(ExchangeType.INFORMATIONAL, true, [sa]), /SA is not allowed in INFORMATIONAL response \(inside SK\)/);
  });
  it('rejects a second Nonce in IKE_SA_INIT', () => {
    rejects(() => checkOuterPayloads(ExchangeType.IKE_SA_INIT, true, [sa, ke, nonce, nonce]), 'Nonce', 'IKE_SA_INIT', 'ERR_IKE_PAYLOAD_TOO_MANY');
  });
  it('rejects AUTH in the clear in IKE_SA_INIT and CERTREQ in its request', () => {
    rejects(() => checkOuterPayloads(ExchangeType.IKE_SA_INIT, false, [sa, ke, nonce, auth]), 'AUTH', 'IKE_SA_INIT');
    rejects(() => checkOuterPayloads(ExchangeType.IKE_SA_INIT, false, [sa, ke, nonce, { kind: 'certreq', encoding: 4, authorities: new Uint8Array(0) }]), 'CERTREQ', 'IKE_SA_INIT');
  });
  it('accepts an IKE_SA_INIT response that is only N(COOKIE) or only an error notify, RFC 7296 §2.6', () => {
    checkOuterPayloads(ExchangeType.IKE_SA_INIT, true, [cookieNotify(new Uint8Array(16))]);
    checkOuterPayloads(ExchangeType.IKE_SA_INIT, true, [notify(NotifyError.NO_PROPOSAL_CHOSEN)]);
  });
  it('rejects clear payloads in IKE_AUTH: everything must be inside SK, RFC 7296 §1.2', () => {
    rejects(() => checkOuterPayloads(ExchangeType.IKE_AUTH, false, [idi, sk]), 'IDi', 'IKE_AUTH');
    rejects(() => checkOuterPayloads(ExchangeType.IKE_AUTH, false, []), 'SK', 'IKE_AUTH', 'ERR_IKE_PAYLOAD_MISSING');
    checkOuterPayloads(ExchangeType.IKE_AUTH, false, [sk]);
  });
  it('rejects SK in IKE_SA_INIT', () => {
    rejects(() => checkOuterPayloads(ExchangeType.IKE_SA_INIT, false, [sa, ke, nonce, sk]), 'SK', 'IKE_SA_INIT');
  });
  it('accepts IKE_AUTH SK { IDi, AUTH, SA, TSi, TSr } and rejects KE inside it', () => {
    const ts: IkePayload = { kind: 'tsi', selectors: [] };
    checkInnerPayloads(ExchangeType.IKE_AUTH, false, [idi, auth, sa, ts, { kind: 'tsr', selectors: [] }]);
    rejects(() => checkInnerPayloads(ExchangeType.IKE_AUTH, false, [idi, auth, ke]), 'KE', 'IKE_AUTH');
    rejects(() => checkInnerPayloads(ExchangeType.IKE_AUTH, true, [idi]), 'IDi', 'IKE_AUTH');
  });
  it('requires SA and Nonce in CREATE_CHILD_SA unless an error notify answers, RFC 7296 §1.3', () => {
    checkInnerPayloads(ExchangeType.CREATE_CHILD_SA, false, [sa, nonce, ke]);
    rejects(() => checkInnerPayloads(ExchangeType.CREATE_CHILD_SA, false, [sa]), 'Nonce', 'CREATE_CHILD_SA', 'ERR_IKE_PAYLOAD_MISSING');
    checkInnerPayloads(ExchangeType.CREATE_CHILD_SA, true, [notify(NotifyError.NO_ADDITIONAL_SAS)]);
  });
  it('accepts an empty INFORMATIONAL (liveness check) and Delete payloads, rejects SA there, RFC 7296 §1.4', () => {
    checkInnerPayloads(ExchangeType.INFORMATIONAL, false, []);
    checkInnerPayloads(ExchangeType.INFORMATIONAL, true, [{ kind: 'delete', protocolId: 1, spis: [] }]);
    rejects(() => checkInnerPayloads(ExchangeType.INFORMATIONAL, false, [sa]), 'SA', 'INFORMATIONAL');
  });
  it('always allows unknown non-critical payloads, RFC 7296 §2.5', () => {
    checkInnerPayloads(ExchangeType.INFORMATIONAL, false, [{ kind: 'unknown', type: 200, data: new Uint8Array(0) }]);
  });
  it('rejects unknown exchange types', () => {
    assert.throws(() => checkOuterPayloads(99, false, []), (e: unknown) => e instanceof PayloadNotAllowedError && e.code === 'ERR_IKE_EXCHANGE_TYPE');
  });
});
