// rtnetlink constants with kernel names (include/uapi/linux/rtnetlink.h, if_link.h, fib_rules.h).
export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_NEWROUTE = 24;
export const RTM_DELROUTE = 25;
export const RTM_GETROUTE = 26;
export const RTM_NEWRULE = 32;
export const RTM_DELRULE = 33;
export const RTM_GETRULE = 34;

export const IFLA_IFNAME = 3;
export const IFLA_MTU = 4;
export const IFLA_LINK = 5;
export const IFLA_LINKINFO = 18;
export const IFLA_INFO_KIND = 1;
export const IFLA_INFO_DATA = 2;
// enum { IFLA_XFRM_UNSPEC, IFLA_XFRM_LINK, IFLA_XFRM_IF_ID, IFLA_XFRM_COLLECT_METADATA }
export const IFLA_XFRM_LINK = 1;
export const IFLA_XFRM_IF_ID = 2;

// enum { IFLA_VXLAN_UNSPEC, IFLA_VXLAN_ID, … IFLA_VXLAN_PORT = 15 /* destination port, __be16 */ }
export const IFLA_VXLAN_PORT = 15;
// enum { IFLA_GENEVE_UNSPEC, IFLA_GENEVE_ID, IFLA_GENEVE_REMOTE, IFLA_GENEVE_TTL, IFLA_GENEVE_TOS, IFLA_GENEVE_PORT /* __be16 */ }
export const IFLA_GENEVE_PORT = 5;

export const IFF_UP = 0x1;

export const RTA_DST = 1;
export const RTA_SRC = 2;
export const RTA_OIF = 4;
export const RTA_GATEWAY = 5;
export const RTA_PRIORITY = 6;
export const RTA_PREFSRC = 7;
export const RTA_TABLE = 15;

export const RTPROT_STATIC = 4;
export const RT_SCOPE_UNIVERSE = 0;
export const RT_SCOPE_LINK = 253;
export const RTN_UNICAST = 1;
/** `ip route add blackhole …`: the packet is dropped silently. */
export const RTN_BLACKHOLE = 6;

export const FRA_DST = 1;
export const FRA_SRC = 2;
export const FRA_IIFNAME = 3;
export const FRA_PRIORITY = 6;
export const FRA_TABLE = 15;
export const FR_ACT_TO_TBL = 1;
export const FR_ACT_BLACKHOLE = 6;
/** RT_TABLE_MAIN. */
export const RT_TABLE_MAIN = 254;

/** strongSwan's defaults: routes in table 220, looked up by a rule of priority 220 (charon.routing_table[_prio]). */
export const STRONGSWAN_ROUTING_TABLE = 220;
export const STRONGSWAN_ROUTING_TABLE_PRIO = 220;
