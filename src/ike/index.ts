// Public surface of the IKEv2 engine library (DESIGN.md §2): the facade, its ports, its config,
// and the helpers a caller needs to build that config. Module map:
//   engine.ts            IkeEngine facade (what src/agent calls)
//   types.ts             the facade's status, adoption and rekey types (below the engine, so sa/
//                        uses them without importing the facade)
//   ports.ts             Transport, KernelIpsec, Clock/Random, EventSink (what src/agent implements)
//   sa/                  engine core: SA records and state unions (ike-sa.ts), intake and window
//                        (core.ts), initiated exchanges + retransmission (tasks.ts), answered
//                        exchanges + response cache (responder.ts), lifecycle, SK/SKF (wire.ts);
//                        host.ts is what those modules need of the core (none of them imports core.ts)
//   exchanges/           what the steps share: child-sa (Child SA negotiation), invalid-ke, cookie
//   steps/               exchanges as pure steps (state variant in, { next, effects } out), one
//                        file per exchange and role: ike-init(-responder), intermediate,
//                        ike-auth(-responder), child(-responder), followup-ke,
//                        ike-rekey(-responder), informational, collision; each driven by its
//                        sa/*-tasks.ts
//   codec/ crypto/ policy/  wire format, cryptography, proposals
export * from './engine.js';
export * from './ports.js';
export { identityFromString, identityText } from './sa/identity.js';
export { parseTs, formatTs, type TsRange } from './sa/ts.js';
export { pskFrom } from './crypto/auth.js';
