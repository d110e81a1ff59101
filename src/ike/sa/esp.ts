// Negotiated ESP transforms → the kernel port's XFRM-named algorithms (ports.ts EspAlgorithms).
// Key layouts follow RFC 7296 §2.17 KEYMAT order (encryption key, then integrity key, per
// direction) and the kernel's: for rfc4106(gcm(aes)) and rfc7539esp the 4-octet salt is the tail
// of the encryption key, which is how deriveChildSaKeys already cuts it.
import { KipsecError } from '../../common/errors.js';
import { EncrId, IntegId } from '../constants.js';
import type { ChildDirectionKeys } from '../crypto/keys.js';
import type { SelectedProposal } from '../policy/select.js';
import type { EspAlgorithms } from '../ports.js';

const INTEG: Readonly<Record<number, { name: 'hmac(sha1)' | 'hmac(sha256)' | 'hmac(sha384)' | 'hmac(sha512)'; truncBits: number }>> = {
  [IntegId.AUTH_HMAC_SHA1_96]: { name: 'hmac(sha1)', truncBits: 96 },
  [IntegId.AUTH_HMAC_SHA2_256_128]: { name: 'hmac(sha256)', truncBits: 128 },
  [IntegId.AUTH_HMAC_SHA2_384_192]: { name: 'hmac(sha384)', truncBits: 192 },
  [IntegId.AUTH_HMAC_SHA2_512_256]: { name: 'hmac(sha512)', truncBits: 256 },
};

export function espAlgorithms(sel: SelectedProposal, keys: ChildDirectionKeys): EspAlgorithms {
  switch (sel.encr.id) {
    case EncrId.ENCR_AES_GCM_16: return { kind: 'aead', name: 'rfc4106(gcm(aes))', key: keys.encr, icvBits: 128 };
    case EncrId.ENCR_CHACHA20_POLY1305: return { kind: 'aead', name: 'rfc7539esp(chacha20,poly1305)', key: keys.encr, icvBits: 128 };
    case EncrId.ENCR_AES_CBC: case EncrId.ENCR_3DES: {
      const integ = sel.integ ? INTEG[sel.integ.id] : undefined;
      if (!integ) throw new KipsecError('ERR_IKE_ESP_ALGORITHM', `ESP integrity ${sel.integ?.id ?? 'none'} has no kernel mapping`);
      return {
        kind: 'cipher+auth',
        encryption: { name: sel.encr.id === EncrId.ENCR_AES_CBC ? 'cbc(aes)' : 'cbc(des3_ede)', key: keys.encr },
        integrity: { name: integ.name, key: keys.integ, truncBits: integ.truncBits },
      };
    }
    default: throw new KipsecError('ERR_IKE_ESP_ALGORITHM', `ESP encryption ${sel.encr.id} has no kernel mapping`);
  }
}
