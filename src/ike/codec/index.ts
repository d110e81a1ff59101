// IKEv2 message codec (RFC 7296 §3, RFC 7383, RFC 3948 marker). Public surface for the exchanges
// layer; see README-style notes in message.ts (decode/encode) and envelope.ts (SK/SKF).
export * from './errors.js';
export * from './limits.js';
export * from './header.js';
export * from './payload.js';
export * from './chain.js';
export * from './message.js';
export * from './envelope.js';
export * from './rules.js';
export * from './natt.js';
export * from './payloads/sa.js';
export * from './payloads/ke.js';
export * from './payloads/id.js';
export * from './payloads/cert.js';
export * from './payloads/certreq.js';
export * from './payloads/auth.js';
export * from './payloads/nonce.js';
export * from './payloads/notify.js';
export * from './payloads/notify-data.js';
export * from './payloads/delete.js';
export * from './payloads/vendor.js';
export * from './payloads/ts.js';
export * from './payloads/sk.js';
export * from './payloads/skf.js';
export * from './payloads/cp.js';
export * from './payloads/eap.js';
