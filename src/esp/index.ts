// Public surface of the userspace ESP data path (DESIGN.md §5 "userspace"), for the
// agent: one import for the engine, its SA/policy shapes and selectors. The raw addon types stay
// in native.ts.
export { EspEngine, EspError, offloadsFromEnv, openEspTun, type EspEngineOptions, type EspOffloadWish, type EspEvent, type EspListener, type InjectResult } from './engine.js';
export {
  DEFAULT_REPLAY_WINDOW, ESP_ALGORITHMS, NO_OFFLOADS, ESP_COUNTERS, ESP_DROP_REASONS, ESP_KEY_BYTES, EspSaSpecError, EspStatsError,
  checkSa, decodeStats, encodeSa, isAead,
  type EspAlgorithm, type EspCounter, type EspDirection, type EspDropReason, type EspLimits, type EspOffloads, type EspPeer, type EspPolicySpec,
  type EspSaRef, type EspSaSpec, type EspSaStats, type EspStats,
} from './codec.js';
export { cidrSelector, rangeSelector, type EspSelector, type RangeLike } from './selector.js';
export { EspNativeError, loadEspNative } from './native.js';
