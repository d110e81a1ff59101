// The envelope API and src/ike/crypto's SkCipher meet without glue: golden strongSwan SK messages
// open through openEncryptedMessage(…, inbound SkCipher), and a message sealed by
// encodeEncryptedMessage(…, outbound SkCipher) opens again (RFC 7296 §3.14, RFC 5282 §5.1).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SecretBytes } from '../../../../src/common/secret.js';
import { EncrId, ExchangeType, IntegId, PrfId } from '../../../../src/ike/constants.js';
import { createSkCipher, type SkCipher } from '../../../../src/ike/crypto/sk.js';
import type { IkeSuite } from '../../../../src/ike/crypto/keys.js';
import {
  checkInnerPayloads, decodeMessage, encodeEncryptedMessage, openEncryptedMessage, type Opener, type Sealer,
} from '../../../../src/ike/codec/index.js';
import { hex, loadGolden } from './helpers.js';

const SUITES: Record<string, IkeSuite> = {
  'psk-gcm': { encrId: EncrId.ENCR_AES_GCM_16, encrKeyBits: 256, prfId: PrfId.PRF_HMAC_SHA2_384 },
  'psk-cbc': { encrId: EncrId.ENCR_AES_CBC, encrKeyBits: 128, prfId: PrfId.PRF_HMAC_SHA2_256, integId: IntegId.AUTH_HMAC_SHA2_256_128 },
};

// Compile-time: the crypto module's cipher is a Sealer and an Opener as it stands.
const _fits: (c: SkCipher) => [Sealer, Opener] = (c) => [c, c];
void _fits;

describe('codec envelope + src/ike/crypto SkCipher on strongSwan golden packets', () => {
  for (const c of loadGolden().filter((g) => g.scenario in SUITES)) {
    it(`${c.scenario}: every SK message opens and its inner payloads pass the exchange table`, () => {
      let n = 0;
      for (const d of c.datagrams) {
        const wire = hex(d.hex);
        const m = decodeMessage(wire);
        if (m.encrypted()?.kind !== 'sk') continue;
        const sa = c.ikeSas.find((s) => BigInt(`0x${s.initiatorSpi}`) === m.header.initiatorSpi)!;
        const k = (name: string): SecretBytes => new SecretBytes(hex(sa.keys[name] ?? ''));
        const cipher = m.header.initiator
          ? createSkCipher({ suite: SUITES[c.scenario]!, encKey: k('Sk_ei'), integKey: k('Sk_ai') })
          : createSkCipher({ suite: SUITES[c.scenario]!, encKey: k('Sk_er'), integKey: k('Sk_ar') });
        const opened = openEncryptedMessage(m, wire, cipher);
        checkInnerPayloads(m.header.exchangeType, m.header.response, opened.payloads);
        // And back: seal the same inner payloads with the same keys, open again.
        const again = encodeEncryptedMessage(m.header, opened.payloads, cipher);
        assert.deepEqual(openEncryptedMessage(decodeMessage(again), again, cipher).payloads, opened.payloads);
        if (m.header.exchangeType === ExchangeType.IKE_AUTH) assert.ok(opened.first(m.isResponse ? 'idr' : 'idi'));
        n++;
      }
      assert.ok(n >= 6, `opened ${n} messages`);
    });
  }
});
