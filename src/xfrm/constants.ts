// XFRM netlink constants with the kernel's names (include/uapi/linux/xfrm.h, linux/in.h).
export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_UNSPEC = 0;

export const IPPROTO_ESP = 50;
export const IPPROTO_AH = 51;
export const IPPROTO_COMP = 108;
export const IPPROTO_IPIP = 4;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_ICMP = 1;
export const IPPROTO_ICMPV6 = 58;

// Message types: XFRM_MSG_BASE = 0x10.
export const XFRM_MSG_NEWSA = 0x10;
export const XFRM_MSG_DELSA = 0x11;
export const XFRM_MSG_GETSA = 0x12;
export const XFRM_MSG_NEWPOLICY = 0x13;
export const XFRM_MSG_DELPOLICY = 0x14;
export const XFRM_MSG_GETPOLICY = 0x15;
export const XFRM_MSG_ALLOCSPI = 0x16;
export const XFRM_MSG_ACQUIRE = 0x17;
export const XFRM_MSG_EXPIRE = 0x18;
export const XFRM_MSG_UPDPOLICY = 0x19;
export const XFRM_MSG_UPDSA = 0x1a;
export const XFRM_MSG_POLEXPIRE = 0x1b;
export const XFRM_MSG_FLUSHSA = 0x1c;
export const XFRM_MSG_FLUSHPOLICY = 0x1d;
export const XFRM_MSG_NEWAE = 0x1e;
export const XFRM_MSG_GETAE = 0x1f;
export const XFRM_MSG_REPORT = 0x20;
export const XFRM_MSG_MIGRATE = 0x21;
export const XFRM_MSG_NEWSADINFO = 0x22;
export const XFRM_MSG_GETSADINFO = 0x23;
export const XFRM_MSG_NEWSPDINFO = 0x24;
export const XFRM_MSG_GETSPDINFO = 0x25;
export const XFRM_MSG_MAPPING = 0x26;

export const XFRM_MSG_NAMES: Readonly<Record<number, string>> = {
  0x10: 'XFRM_MSG_NEWSA', 0x11: 'XFRM_MSG_DELSA', 0x12: 'XFRM_MSG_GETSA', 0x13: 'XFRM_MSG_NEWPOLICY',
  0x14: 'XFRM_MSG_DELPOLICY', 0x15: 'XFRM_MSG_GETPOLICY', 0x16: 'XFRM_MSG_ALLOCSPI', 0x17: 'XFRM_MSG_ACQUIRE',
  0x18: 'XFRM_MSG_EXPIRE', 0x19: 'XFRM_MSG_UPDPOLICY', 0x1a: 'XFRM_MSG_UPDSA', 0x1b: 'XFRM_MSG_POLEXPIRE',
  0x1c: 'XFRM_MSG_FLUSHSA', 0x1d: 'XFRM_MSG_FLUSHPOLICY', 0x1e: 'XFRM_MSG_NEWAE', 0x1f: 'XFRM_MSG_GETAE',
  0x20: 'XFRM_MSG_REPORT', 0x21: 'XFRM_MSG_MIGRATE', 0x26: 'XFRM_MSG_MAPPING',
};

// Attributes (enum xfrm_attr_type_t).
export const XFRMA_UNSPEC = 0;
export const XFRMA_ALG_AUTH = 1;
export const XFRMA_ALG_CRYPT = 2;
export const XFRMA_ALG_COMP = 3;
export const XFRMA_ENCAP = 4;
export const XFRMA_TMPL = 5;
export const XFRMA_SA = 6;
export const XFRMA_POLICY = 7;
export const XFRMA_SEC_CTX = 8;
export const XFRMA_LTIME_VAL = 9;
export const XFRMA_REPLAY_VAL = 10;
export const XFRMA_REPLAY_THRESH = 11;
export const XFRMA_ETIMER_THRESH = 12;
export const XFRMA_SRCADDR = 13;
export const XFRMA_COADDR = 14;
export const XFRMA_LASTUSED = 15;
export const XFRMA_POLICY_TYPE = 16;
export const XFRMA_MIGRATE = 17;
export const XFRMA_ALG_AEAD = 18;
export const XFRMA_KMADDRESS = 19;
export const XFRMA_ALG_AUTH_TRUNC = 20;
export const XFRMA_MARK = 21;
export const XFRMA_TFCPAD = 22;
export const XFRMA_REPLAY_ESN_VAL = 23;
export const XFRMA_SA_EXTRA_FLAGS = 24;
export const XFRMA_PROTO = 25;
export const XFRMA_ADDRESS_FILTER = 26;
export const XFRMA_PAD = 27;
export const XFRMA_OFFLOAD_DEV = 28;
export const XFRMA_SET_MARK = 29;
export const XFRMA_SET_MARK_MASK = 30;
export const XFRMA_IF_ID = 31;
export const XFRMA_MTIMER_THRESH = 32;
export const XFRMA_SA_DIR = 33;

// Multicast groups (enum xfrm_nlgroups); join with NETLINK_ADD_MEMBERSHIP.
export const XFRMNLGRP_NONE = 0;
export const XFRMNLGRP_ACQUIRE = 1;
export const XFRMNLGRP_EXPIRE = 2;
export const XFRMNLGRP_SA = 3;
export const XFRMNLGRP_POLICY = 4;
export const XFRMNLGRP_AEVENTS = 5;
export const XFRMNLGRP_REPORT = 6;
export const XFRMNLGRP_MIGRATE = 7;
export const XFRMNLGRP_MAPPING = 8;

// Modes.
export const XFRM_MODE_TRANSPORT = 0;
export const XFRM_MODE_TUNNEL = 1;
export const XFRM_MODE_ROUTEOPTIMIZATION = 2;
export const XFRM_MODE_IN_TRIGGER = 3;
export const XFRM_MODE_BEET = 4;

// xfrm_usersa_info.flags
export const XFRM_STATE_NOECN = 1;
export const XFRM_STATE_DECAP_DSCP = 2;
export const XFRM_STATE_NOPMTUDISC = 4;
export const XFRM_STATE_WILDRECV = 8;
export const XFRM_STATE_ICMP = 16;
export const XFRM_STATE_AF_UNSPEC = 32;
export const XFRM_STATE_ALIGN4 = 64;
export const XFRM_STATE_ESN = 128;

// XFRMA_SA_EXTRA_FLAGS
export const XFRM_SA_XFLAG_DONT_ENCAP_DSCP = 1;
export const XFRM_SA_XFLAG_OSEQ_MAY_WRAP = 2;

// Policy directions, actions, flags, share.
export const XFRM_POLICY_IN = 0;
export const XFRM_POLICY_OUT = 1;
export const XFRM_POLICY_FWD = 2;
export const XFRM_POLICY_ALLOW = 0;
export const XFRM_POLICY_BLOCK = 1;
export const XFRM_POLICY_LOCALOK = 1;
export const XFRM_POLICY_ICMP = 2;
export const XFRM_POLICY_TYPE_MAIN = 0;
export const XFRM_POLICY_TYPE_SUB = 1;
export const XFRM_SHARE_ANY = 0;
export const XFRM_SHARE_SESSION = 1;
export const XFRM_SHARE_USER = 2;
export const XFRM_SHARE_UNIQUE = 3;

// xfrm_aevent_id.flags (enum xfrm_ae_ftype_t)
export const XFRM_AE_UNSPEC = 0;
export const XFRM_AE_RTHR = 1;
export const XFRM_AE_RVAL = 2;
export const XFRM_AE_LVAL = 4;
export const XFRM_AE_ETHR = 8;
export const XFRM_AE_CR = 16;
export const XFRM_AE_CE = 32;
export const XFRM_AE_CU = 64;

// xfrm_encap_tmpl.encap_type (linux/udp.h)
export const UDP_ENCAP_ESPINUDP_NON_IKE = 1;
export const UDP_ENCAP_ESPINUDP = 2;

/** XFRM_INF: "no limit" in xfrm_lifetime_cfg. */
export const XFRM_INF = 0xffff_ffff_ffff_ffffn;

/**
 * Largest window the legacy replay state (struct xfrm_replay_state, one u32 bitmap) holds; the
 * kernel silently clamps xfrm_usersa_info.replay_window to it, so larger windows (and every ESN
 * SA) go in XFRMA_REPLAY_ESN_VAL, as strongSwan does.
 */
export const XFRM_REPLAY_WINDOW_LEGACY_MAX = 32;
