// Default proposals following RFC 8247 (IKEv2 algorithm implementation requirements) and RFC 8221
// (ESP): AEAD first (AES-GCM-16, ChaCha20-Poly1305), then AES-CBC with HMAC-SHA2; PRFs
// HMAC-SHA2; key exchange Curve25519, ECP-256/384 and MODP-3072/2048 (group 14 is RFC 8247's MUST,
// so peers that know nothing newer still interoperate). No SHA-1, no weak groups.
//
// The ESP defaults carry no KE method: the first Child SA is keyed from the IKE SA anyway, and
// PFS on rekey is an explicit choice (add e.g. "-x25519" to an ESP proposal).
import { parseProposals, type PolicyProposal } from './proposal.js';

export const DEFAULT_IKE_PROPOSALS: readonly string[] = [
  'aes256gcm16-aes128gcm16-chacha20poly1305-prfsha256-prfsha384-prfsha512-x25519-ecp256-ecp384-modp3072-modp2048',
  'aes256-aes128-sha256-sha384-sha512-x25519-ecp256-ecp384-modp3072-modp2048',
];

export const DEFAULT_ESP_PROPOSALS: readonly string[] = [
  'aes256gcm16-aes128gcm16-chacha20poly1305',
  'aes256-aes128-sha256-sha384-sha512',
];

export function defaultIkeProposals(): PolicyProposal[] { return parseProposals(DEFAULT_IKE_PROPOSALS, 'ike'); }
export function defaultEspProposals(): PolicyProposal[] { return parseProposals(DEFAULT_ESP_PROPOSALS, 'esp'); }
