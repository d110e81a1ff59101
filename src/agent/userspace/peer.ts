// What a peer config must be for the userspace data path (DESIGN.md §5 "userspace"):
// the ESP engine does ESP in UDP only (RFC 3948), with AES-GCM-16 (128/256-bit keys),
// ChaCha20-Poly1305, or AES-CBC (128/256) with HMAC-SHA2-256/384/512, with or without ESN, and it
// raises no ACQUIREs. So every tunnel forces UDP encapsulation (natTraversal 'always': ESP-in-UDP
// even without a NAT), proposes only what the engine can key, and an on-demand start is refused —
// each as a ConfigError naming the field and the data path, so `kipsec agent` prints it and
// applies nothing.
import { ConfigError } from '../../common/errors.js';
import { EncrId, IntegId, TransformType } from '../../ike/constants.js';
import type { PeerConfig } from '../../ike/engine.js';
import { DEFAULT_ESP_PROPOSALS, parseProposals, type PolicyTransform } from '../../ike/policy/index.js';

/** The AEAD part of the default ESP proposals: the fastest suites the engine has. */
export const USERSPACE_ESP_PROPOSALS: readonly string[] = [DEFAULT_ESP_PROPOSALS[0] ?? 'aes256gcm16-aes128gcm16-chacha20poly1305'];

const SUPPORTED = 'aes128gcm16, aes256gcm16, chacha20poly1305, or aes128/aes256 with sha256, sha384 or sha512';
const SHA2_HMACS: ReadonlySet<number> = new Set([IntegId.AUTH_HMAC_SHA2_256_128, IntegId.AUTH_HMAC_SHA2_384_192, IntegId.AUTH_HMAC_SHA2_512_256]);

function transformProblem(t: PolicyTransform): string | undefined {
  if (t.type === TransformType.ENCR) {
    if (t.id === EncrId.ENCR_CHACHA20_POLY1305) return undefined;
    if ((t.id === EncrId.ENCR_AES_GCM_16 || t.id === EncrId.ENCR_AES_CBC) && (t.keyLength === 128 || t.keyLength === 256)) return undefined;
    if (t.id === EncrId.ENCR_AES_GCM_16) return `AES-GCM with ${t.keyLength ?? '?'}-bit keys`;
    if (t.id === EncrId.ENCR_AES_CBC) return `AES-CBC with ${t.keyLength ?? '?'}-bit keys`;
    return 'a cipher the userspace engine does not have';
  }
  if (t.type === TransformType.INTEG && t.id !== 0 && !SHA2_HMACS.has(t.id)) return 'an integrity algorithm other than HMAC-SHA2';
  return undefined;
}

/** The peer config the userspace data path runs; throws ConfigError for what it cannot do. */
export function userspacePeer(p: PeerConfig): PeerConfig {
  if (p.startAction === 'on-demand')
    throw new ConfigError('spec.startAction', 'on-demand needs kernel ACQUIREs, which --datapath userspace does not raise; use initiate or respond');
  // Route mode binds SAs to an XFRM interface (if_id); the userspace engine has one TUN device and no if_id.
  if (p.children.some((c) => c.ifId !== undefined))
    throw new ConfigError('spec.mode', 'route mode needs XFRM interfaces, which --datapath userspace does not have; use mode: policy or the kernel data path');
  const children = p.children.map((c) => {
    if (c.espProposals.length === 0) return { ...c, espProposals: USERSPACE_ESP_PROPOSALS };
    c.espProposals.forEach((text, i) => {
      const path = `spec.esp.proposals[${i}]`;
      for (const proposal of parseProposals([text], 'esp', { path, additionalKeyExchanges: true, ...(p.ike.allowWeak ? { allowWeak: true } : {}) })) {
        const bad = proposal.transforms.map(transformProblem).find((x) => x !== undefined);
        if (bad !== undefined) throw new ConfigError(path, `"${text}" has ${bad}; --datapath userspace supports only ${SUPPORTED}`);
      }
    });
    return c;
  });
  // Built by adding properties, not by a literal starting with a spread: that got a hidden class
  // (Map, DescriptorArray) of its own per peer, ~350 bytes per configured tunnel.
  return Object.assign({}, p, { children, natTraversal: 'always' as const });
}
