// Which kernel offloads the ESP engine may use (native/esp/esp_offload.c): KIPSEC_ESP_OFFLOADS
// parsed into the wish espCreate takes, and the engine reporting what its probes switched on —
// never an offload it was told to leave off. (That the offloads carry traffic, and that the
// fallback carries the same bytes, is e2e/netns/esp-offload-userspace.test.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EspEngine, EspError, offloadsFromEnv } from '../../../src/esp/engine.js';
import { decodeStats, ESP_COUNTERS, NO_OFFLOADS } from '../../../src/esp/codec.js';
import { SKIP } from './harness.js';

test('KIPSEC_ESP_OFFLOADS: unset or "all" allows every offload, "none" none, a list just those, an unknown name is refused by name', () => {
  assert.deepEqual(offloadsFromEnv(undefined), {});
  assert.deepEqual(offloadsFromEnv('all'), {});
  assert.deepEqual(offloadsFromEnv('none'), { udpGso: false, udpGro: false, tunTso: false });
  assert.deepEqual(offloadsFromEnv('udpGro, tunTso'), { udpGso: false, udpGro: true, tunTso: true });
  assert.throws(() => offloadsFromEnv('udpGso,gso'), (e: unknown) => e instanceof EspError && e.code === 'ERR_ESP_OFFLOADS' && /"gso"/.test(e.message));
});

test('decodeStats: an addon stand-in without offloads reports none in use', () => {
  assert.deepEqual(decodeStats({ counters: Object.fromEntries(ESP_COUNTERS.map((c) => [c, 0n])), sas: [] }).offloads, NO_OFFLOADS);
});

test('the engine reports the UDP offloads its probes switched on, and none it was told to leave off (no TUN: no TUN offload)', { skip: SKIP }, (t) => {
  const all = EspEngine.open({ tunFd: null, address: '127.0.0.1', port: 0, offloads: {} });
  t.after(() => all.close());
  const on = all.stats().offloads;
  assert.equal(on.tunVnetHdr || on.tunCsum || on.tunTso, false);
  t.diagnostic(`this kernel: udpGso ${on.udpGso}, udpGro ${on.udpGro}`);
  const none = EspEngine.open({ tunFd: null, address: '127.0.0.1', port: 0, offloads: { udpGso: false, udpGro: false, tunTso: false } });
  t.after(() => none.close());
  assert.deepEqual(none.stats().offloads, NO_OFFLOADS);
});
