// An IKE SA's keys and SK ciphers from the §2.14 key set, in one place: IKE_SA_INIT, the IKE
// rekey (§2.18) and a resumed checkpoint (checkpoint.ts) all build them the same way.
import type { Random } from '../../common/time.js';
import { createPrf } from '../crypto/prf.js';
import { createSkPair } from '../crypto/sk.js';
import type { IkeSaKeys, IkeSuite } from '../crypto/keys.js';
import type { IkeKeys } from './ike-sa.js';

export function ikeKeysOf(a: {
  readonly suite: IkeSuite; readonly suiteText: string; readonly dhGroup: number; readonly raw: IkeSaKeys;
  readonly role: 'initiator' | 'responder'; readonly random: Random;
}): IkeKeys {
  const pair = createSkPair(a.suite, a.raw, a.role, a.random);
  const { skAi, skAr, skEi, skEr } = a.raw;
  return {
    suite: a.suite, suiteText: a.suiteText, dhGroup: a.dhGroup, prf: createPrf(a.suite.prfId),
    skD: a.raw.skD, skPi: a.raw.skPi, skPr: a.raw.skPr, out: pair.outbound, in: pair.inbound, sk: { skAi, skAr, skEi, skEr },
  };
}
