// RFC 7296 §2.8.1 simultaneous rekeying: when both peers rekey the same SA at once, two new SAs
// result; "the SA created with the lowest of the four nonces SHOULD be deleted by the endpoint
// that created it". Nonces compare as unsigned octet strings (memcmp, shorter first on a tie).
// Used by the rekey steps of Child SAs (child.ts) and of the IKE SA (ike-rekey.ts, §2.8.2).
import { compareBytes } from '../sa/addr.js';

function lowest(ns: readonly Uint8Array[]): Uint8Array | undefined {
  let best: Uint8Array | undefined;
  for (const n of ns) if (best === undefined || compareBytes(n, best) < 0) best = n;
  return best;
}

/**
 * True when the exchange we initiated (nonces `ours`) produced the redundant SA, i.e. it holds
 * the lowest of all four nonces; then we delete our new SA and keep the peer's.
 */
export function ourRekeyLoses(ours: readonly Uint8Array[], theirs: readonly Uint8Array[]): boolean {
  const a = lowest(ours); const b = lowest(theirs);
  if (a === undefined || b === undefined) return false;
  return compareBytes(a, b) < 0;
}
