// Public surface of the IKEv2 engine library (DESIGN.md §2): the facade, its ports, its config,
// and the helpers a caller needs to build that config. Module map:
//   engine.ts            IkeEngine facade (what src/agent calls)
//   ports.ts             Transport, KernelIpsec, Clock/Random, EventSink (what src/agent implements)
//   sa/                  engine core: SA records and state unions (ike-sa.ts), intake and window
//                        (core.ts), initiated exchanges + retransmission (tasks.ts), answered
//                        exchanges + response cache (responder.ts), lifecycle, SK/SKF (wire.ts)
//   exchanges/           one module per exchange concern: ike-init, ike-auth, child-sa (shared
//                        negotiation), create-child, ike-rekey, informational, collision, cookie
//   codec/ crypto/ policy/  wire format, cryptography, proposals
export * from './engine.js';
export * from './ports.js';
export { identityFromString, identityText } from './sa/identity.js';
export { parseTs, formatTs, type TsRange } from './sa/ts.js';
export { pskFrom } from './crypto/auth.js';
