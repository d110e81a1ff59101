// Known proposal tokens in strongSwan's proposal syntax (`aes256gcm16-prfsha384-x25519`), the
// table both the CRD's CEL rules and the TypeScript validator are built from. The IKE engine keeps
// its own algorithm registry (src/ike/crypto/algorithms.ts, src/ike/policy); src/api may not import
// it (DESIGN.md §7), so this table lists the tokens the engine implements and a unit test in the
// agent lane should compare the two. Weak = RFC 8247 MUST NOT / SHOULD NOT, plus DH groups < 2048.

export const TRANSFORM_KINDS = ['aead', 'encr', 'integ', 'prf', 'dh', 'addke', 'esn'] as const;
export type TransformKind = (typeof TRANSFORM_KINDS)[number];

export interface TransformToken { readonly token: string; readonly kind: TransformKind; readonly weak: boolean }

const t = (token: string, kind: TransformKind, weak = false): TransformToken => ({ token, kind, weak });

export const TRANSFORMS: readonly TransformToken[] = [
  t('aes128gcm16', 'aead'), t('aes192gcm16', 'aead'), t('aes256gcm16', 'aead'), t('chacha20poly1305', 'aead'),
  t('aes128', 'encr'), t('aes192', 'encr'), t('aes256', 'encr'), t('3des', 'encr', true), t('des', 'encr', true),
  t('sha1', 'integ'), t('sha256', 'integ'), t('sha384', 'integ'), t('sha512', 'integ'), t('md5', 'integ', true),
  t('prfsha1', 'prf'), t('prfsha256', 'prf'), t('prfsha384', 'prf'), t('prfsha512', 'prf'), t('prfmd5', 'prf', true),
  t('modp2048', 'dh'), t('modp3072', 'dh'), t('modp4096', 'dh'), t('ecp256', 'dh'), t('ecp384', 'dh'), t('ecp521', 'dh'), t('x25519', 'dh'),
  t('modp768', 'dh', true), t('modp1024', 'dh', true), t('modp1536', 'dh', true),
  t('modp1024s160', 'dh', true), t('modp2048s224', 'dh', true), t('modp2048s256', 'dh', true),
  t('esn', 'esn'), t('noesn', 'esn'),
  // RFC 9370 additional key exchanges 1..7 with ML-KEM (FIPS 203), or none to make one optional:
  // x25519-ke1_mlkem768: IKE_INTERMEDIATE at IKE SA setup, IKE_FOLLOWUP_KE in CREATE_CHILD_SA.
  ...[1, 2, 3, 4, 5, 6, 7].flatMap((n) => ['mlkem512', 'mlkem768', 'mlkem1024', 'none'].map((m) => t(`ke${n}_${m}`, 'addke'))),
];

export const PROFILES = ['aws', 'gcp', 'azure', 'strongswan', 'legacy'] as const;
export type Profile = (typeof PROFILES)[number];

/** Weak tokens each profile lets through because the peer it targets may need them. */
export const PROFILE_WEAK_ALLOWED: Readonly<Record<Profile, readonly string[]>> = {
  aws: ['modp1024', 'modp1536'],           // AWS VPN still offers DH 2 and 5
  gcp: [],
  azure: ['3des', 'modp1024'],             // Azure's default (non-custom) policy
  strongswan: [],
  legacy: TRANSFORMS.filter((x) => x.weak).map((x) => x.token),
};

export function tokensOf(kind: TransformKind): string[] { return TRANSFORMS.filter((x) => x.kind === kind).map((x) => x.token); }
export const ALL_TOKENS: readonly string[] = TRANSFORMS.map((x) => x.token);
export const WEAK_TOKENS: readonly string[] = TRANSFORMS.filter((x) => x.weak).map((x) => x.token);

/** A CEL list literal of strings. */
export function celList(xs: readonly string[]): string { return `[${xs.map((x) => `'${x}'`).join(', ')}]`; }
