// Per-peer configuration the engine is constructed with (one entry per IPsecTunnel / mesh peer).
// It is the resolved form of the IPsecTunnel spec (DESIGN.md §3): durations in ms, secrets as
// SecretBytes, certificates as DER, proposals still in strongSwan syntax (parsed and checked by
// src/ike/policy when the peer is added, so a typo fails at addPeer with a ConfigError).
import type { KeyObject } from 'node:crypto';
import type { SecretBytes } from '../../common/secret.js';
import type { IpsecMode } from '../ports.js';

/**
 * An IKE identity (RFC 7296 §3.5). `ipv4`/`ipv6` literal, `fqdn` (gw.example.com), `email`
 * (user@example.com), `dn` (DER of an X.501 Name), `keyid` (opaque bytes as hex).
 * Use identityFromString() for the strongSwan-style text form.
 */
export type IkeIdentity =
  | { readonly type: 'ipv4' | 'ipv6' | 'fqdn' | 'email'; readonly value: string }
  | { readonly type: 'dn' | 'keyid'; readonly der: Uint8Array; readonly text: string };

export type PeerAuth =
  | { readonly method: 'psk'; readonly secret: SecretBytes }
  | {
      readonly method: 'certificate';
      /** Our end-entity certificate (DER), then intermediates to send in CERT payloads. */
      readonly certificate: Uint8Array;
      readonly chain?: readonly Uint8Array[];
      readonly privateKey: KeyObject;
      /** Trust anchors (DER) the peer's certificate must chain to. */
      readonly cas: readonly Uint8Array[];
      /**
       * Pinning: when set, the peer's end-entity certificate must also match one of these, after
       * its chain validated and its identity matched (else AUTHENTICATION_FAILED, code
       * ERR_IKE_CERT_PIN_MISMATCH). Each entry is the lower-case hex SHA-256 (64 digits) of the
       * DER SubjectPublicKeyInfo (survives renewal with the same key) or of the whole DER
       * certificate (this one certificate only). At least one pin in all (ConfigError otherwise).
       */
      readonly peerPins?: PeerPins;
    };

/** Accepted peer keys / certificates for certificate pinning (see PeerAuth). */
export interface PeerPins {
  readonly spkiSha256?: readonly string[];
  readonly certSha256?: readonly string[];
}

export interface ChildConfig {
  readonly name: string;
  /**
   * Traffic selectors in strongSwan's swanctl syntax (sa/ts.ts parseTs): CIDRs ("10.1.0.0/16"),
   * single addresses, or ranges "10.0.0.1-10.0.0.9", each optionally followed by "[proto/port]":
   * a protocol by number or name (tcp, udp, icmp, ipv6-icmp, sctp) and an optional port or port
   * range, e.g. "192.0.2.12/32[udp/4789]", "10.0.0.0/8[tcp/80-90]". "[udp/4789]" alone stands for
   * "0.0.0.0/0[udp/4789]" (IPv4; write "::/0[udp/4789]" for IPv6).
   */
  readonly localTs: readonly string[];
  readonly remoteTs: readonly string[];
  /** strongSwan syntax; a DH group makes CREATE_CHILD_SA rekeys use PFS. */
  readonly espProposals: readonly string[];
  readonly mode: IpsecMode;
  /** Initiate a rekey this long after install (jittered down by up to rekeyJitterMs). */
  readonly rekeyTimeMs: number;
  /** Hard lifetime: the kernel deletes the SA after this long. Must exceed rekeyTimeMs. */
  readonly lifeTimeMs: number;
  readonly lifeBytes?: bigint;
  readonly lifePackets?: bigint;
  readonly replayWindow?: number;
  /** Route-based tunnels. */
  readonly ifId?: number;
  readonly mark?: { readonly value: number; readonly mask: number };
}

export interface DpdConfig {
  /** Send an empty INFORMATIONAL after this long without inbound IKE traffic; 0 disables. */
  readonly intervalMs: number;
  /** 'restart': re-initiate, the policies kept meanwhile; 'clear': tear down; 'hold': keep the policies and trap traffic for on-demand. */
  readonly action: 'restart' | 'clear' | 'hold';
  /**
   * Give up on an unanswered liveness check after this long (the CRD's dpd.timeout, strongSwan's
   * IKEv1-style dpdtimeout). Unset: the retransmission schedule decides (≈165 s by default).
   */
  readonly timeoutMs?: number;
}

export interface PeerConfig {
  /** Unique name (the IPsecTunnel name, or "mesh/<node>"). */
  readonly name: string;
  readonly local: { readonly address: string; readonly port?: number; readonly id: IkeIdentity };
  /** `id` undefined = accept any identity the auth method proves (certificates only; PSK requires it). */
  readonly remote: { readonly address: string; readonly port?: number; readonly id?: IkeIdentity };
  readonly auth: PeerAuth;
  readonly ike: {
    readonly proposals: readonly string[];
    readonly rekeyTimeMs: number;
    /**
     * Allow weak algorithms named in proposals (DESIGN.md §6: only profiles set this), and accept
     * the peer's RSA_DIGITAL_SIGNATURE (1) AUTH, PKCS#1 v1.5 over SHA-1 (RFC 8247 §3).
     */
    readonly allowWeak?: boolean;
  };
  readonly children: readonly ChildConfig[];
  readonly dpd: DpdConfig;
  readonly startAction: 'initiate' | 'respond' | 'on-demand';
  /** 'auto': float to 4500 when NAT_DETECTION says so; 'always': fake NAT (force UDP encap). */
  readonly natTraversal?: 'auto' | 'always';
  /** RFC 7383: fragment encrypted messages larger than this (IP packet bytes); 0 disables. */
  readonly fragmentMtu?: number;
}

/** Engine-wide knobs; defaults in sa/defaults.ts (strongSwan's where it has one). */
export interface EngineOptions {
  /** Retransmission: timeout × base^n, up to `retransmitTries` retransmissions (charon: 4 s, 1.8, 5). */
  readonly retransmitTimeoutMs?: number;
  readonly retransmitBase?: number;
  readonly retransmitTries?: number;
  /** RFC 8019 §4.6 / strongSwan `cookie_threshold`: half-open SAs before we demand COOKIEs. */
  readonly cookieThreshold?: number;
  /** Hard bound on half-open SAs (strongSwan `block_threshold`-like): beyond it, drop IKE_SA_INIT. */
  readonly halfOpenLimit?: number;
  /** A half-open responder SA is dropped after this long (charon: half_open_timeout 30 s). */
  readonly halfOpenTimeoutMs?: number;
  /** Make-before-break: keep the old inbound SA this long after a Child rekey. */
  readonly rekeyDeleteDelayMs?: number;
  /** Random reduction of rekey times (strongSwan rand_time), so both peers rarely collide. */
  readonly rekeyJitterMs?: number;
  /** Bounded reassembly (RFC 7383 §2.6.1): at most this many fragments per message. */
  readonly maxFragments?: number;
  /** Datagrams larger than this are dropped on receipt, uncounted by any SA (charon.max_packet: 10000). */
  readonly maxDatagramBytes?: number;
  /** Bytes of partial RFC 7383 messages held across all IKE SAs; a fragment beyond it is dropped. */
  readonly reassemblyBytesLimit?: number;
  /** A partial RFC 7383 message is discarded this long after its first fragment arrived. */
  readonly reassemblyTimeoutMs?: number;
  /** RFC 8019 §4.6 / strongSwan `block_threshold`: half-open IKE SAs per initiator address. */
  readonly halfOpenPerAddress?: number;
  /**
   * startAction 'initiate': try again this long after a failed attempt (no answer, or refused),
   * like charon's keyingtries=%forever; 0 disables. The daemon sees each failure as an `error`.
   */
  readonly retryIntervalMs?: number;
  /**
   * Worker threads for IKE public-key work (src/ike/crypto/pool.ts): DH in IKE_SA_INIT, AUTH signing
   * and verification. 0 (the default) runs it on the engine's thread; the agent passes
   * cryptoWorkersFromEnv() (os.availableParallelism() unless KIPSEC_IKE_CRYPTO_WORKERS says otherwise).
   */
  readonly cryptoWorkers?: number;
}
