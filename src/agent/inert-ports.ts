// Ports that do nothing: an engine built on them only validates peer configs (a dry run before
// a config or a snapshot is applied).
import { cryptoRandom } from '../common/time.js';
import type { EnginePorts, KernelIpsec } from '../ike/ports.js';

const INERT_KERNEL: KernelIpsec = {
  allocSpi: () => Promise.reject(new Error('dry run')), releaseSpi: () => Promise.resolve(), installChildSa: () => Promise.reject(new Error('dry run')),
  updateChildSa: () => Promise.resolve(), deleteChildSa: () => Promise.resolve(),
  queryCounters: () => Promise.resolve({ inboundBytes: 0n, inboundPackets: 0n, outboundBytes: 0n, outboundPackets: 0n, lastInboundMs: null }),
  installTrap: () => Promise.resolve(), removeTrap: () => Promise.resolve(), restoreChildSa: () => Promise.resolve(false),
};

export function inertPorts(): EnginePorts {
  return {
    transport: { send: () => { /* dry run */ } }, kernel: INERT_KERNEL, clock: { now: () => 0, setTimer: () => ({ cancel: () => { /* none */ } }) },
    random: cryptoRandom, events: { emit: () => { /* dry run */ } },
  };
}
