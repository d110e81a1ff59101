/*
 * kipsec native addon (N-API, plain C): the few system calls Node.js lacks for an IPsec
 * daemon (DESIGN.md §5). Each function takes/returns plain numbers and throws a JS Error whose
 * `code` is the errno name (EPERM, EBADF, ...) and whose message names the call.
 *
 *   setUdpEncap(fd[, type])  setsockopt(SOL_UDP, UDP_ENCAP, UDP_ENCAP_ESPINUDP): the kernel
 *                            then decapsulates ESP-in-UDP (RFC 3948) arriving on the IKE 4500
 *                            socket and hands only non-ESP (IKE, marker 0) datagrams to us.
 *   getUdpEncap(fd)          getsockopt of the same, for tests and diagnostics.
 *   setIpsecBypass(fd, fam)  per-socket IP_XFRM_POLICY / IPV6_XFRM_POLICY "allow" policies for
 *                            both directions, so IKE packets never match the tunnel policies
 *                            they negotiate (as strongSwan's kernel-netlink bypass_socket()).
 *   openTun(name)            open /dev/net/tun, TUNSETIFF IFF_TUN|IFF_NO_PI; returns
 *                            { fd, name } for the userspace data plane (RFC 4303 in the agent).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <net/if.h>
#include <linux/if_tun.h>
#include <linux/udp.h>
#include <linux/xfrm.h>
#include <node_api.h>

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef IP_XFRM_POLICY
#define IP_XFRM_POLICY 17
#endif
#ifndef IPV6_XFRM_POLICY
#define IPV6_XFRM_POLICY 35
#endif

static const char *errno_name(int e) {
  switch (e) {
    case EPERM: return "EPERM"; case ENOENT: return "ENOENT"; case EBADF: return "EBADF";
    case EACCES: return "EACCES"; case EFAULT: return "EFAULT"; case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST"; case ENODEV: return "ENODEV"; case EINVAL: return "EINVAL";
    case ENOTSOCK: return "ENOTSOCK"; case ENOPROTOOPT: return "ENOPROTOOPT";
    case EOPNOTSUPP: return "EOPNOTSUPP"; case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case ENOMEM: return "ENOMEM"; case ENOBUFS: return "ENOBUFS"; case ENXIO: return "ENXIO";
    default: return "EUNKNOWN";
  }
}

/* Throw Error(message) with .code = errno name and .errno = number; returns NULL for convenience. */
static napi_value throw_errno(napi_env env, const char *what, int e) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s failed: %s (%s)", what, errno_name(e), strerror(e));
  napi_value m, c, err, num;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_string_utf8(env, errno_name(e), NAPI_AUTO_LENGTH, &c);
  napi_create_error(env, c, m, &err);
  napi_create_int32(env, e, &num);
  napi_set_named_property(env, err, "errno", num);
  napi_throw(env, err);
  return NULL;
}

static int get_int_arg(napi_env env, napi_callback_info info, size_t idx, int dflt, int *out) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (idx >= argc) { *out = dflt; return dflt == -1 ? -1 : 0; }
  napi_valuetype t;
  napi_typeof(env, argv[idx], &t);
  if (t == napi_undefined && dflt != -1) { *out = dflt; return 0; }
  if (t != napi_number) return -1;
  return napi_get_value_int32(env, argv[idx], out) == napi_ok ? 0 : -1;
}

static napi_value set_udp_encap(napi_env env, napi_callback_info info) {
  int fd, type;
  if (get_int_arg(env, info, 0, -1, &fd) || fd < 0) { napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "setUdpEncap(fd): fd must be a non-negative integer"); return NULL; }
  if (get_int_arg(env, info, 1, UDP_ENCAP_ESPINUDP, &type)) { napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "setUdpEncap(fd, type): type must be an integer"); return NULL; }
  if (setsockopt(fd, SOL_UDP, UDP_ENCAP, &type, sizeof type) != 0) return throw_errno(env, "setsockopt(UDP_ENCAP)", errno);
  return NULL;
}

static napi_value get_udp_encap(napi_env env, napi_callback_info info) {
  int fd, type = 0;
  socklen_t len = sizeof type;
  if (get_int_arg(env, info, 0, -1, &fd) || fd < 0) { napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "getUdpEncap(fd): fd must be a non-negative integer"); return NULL; }
  if (getsockopt(fd, SOL_UDP, UDP_ENCAP, &type, &len) != 0) return throw_errno(env, "getsockopt(UDP_ENCAP)", errno);
  napi_value v;
  napi_create_int32(env, type, &v);
  return v;
}

static napi_value set_ipsec_bypass(napi_env env, napi_callback_info info) {
  int fd, family;
  if (get_int_arg(env, info, 0, -1, &fd) || fd < 0) { napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "setIpsecBypass(fd, family): fd must be a non-negative integer"); return NULL; }
  if (get_int_arg(env, info, 1, -1, &family) || (family != AF_INET && family != AF_INET6)) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "setIpsecBypass(fd, family): family must be 2 (AF_INET) or 10 (AF_INET6)");
    return NULL;
  }
  struct xfrm_userpolicy_info pol;
  memset(&pol, 0, sizeof pol);
  pol.action = XFRM_POLICY_ALLOW;
  pol.sel.family = (unsigned short)family;
  pol.lft.soft_byte_limit = XFRM_INF; pol.lft.hard_byte_limit = XFRM_INF;
  pol.lft.soft_packet_limit = XFRM_INF; pol.lft.hard_packet_limit = XFRM_INF;
  int level = family == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP;
  int opt = family == AF_INET6 ? IPV6_XFRM_POLICY : IP_XFRM_POLICY;
  const unsigned char dirs[2] = { XFRM_POLICY_OUT, XFRM_POLICY_IN };
  for (int i = 0; i < 2; i++) {
    pol.dir = dirs[i];
    if (setsockopt(fd, level, opt, &pol, sizeof pol) != 0)
      return throw_errno(env, family == AF_INET6 ? "setsockopt(IPV6_XFRM_POLICY)" : "setsockopt(IP_XFRM_POLICY)", errno);
  }
  return NULL;
}

static napi_value open_tun(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  char name[IFNAMSIZ];
  size_t len = 0;
  memset(name, 0, sizeof name);
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc >= 1) {
    napi_valuetype t;
    napi_typeof(env, argv[0], &t);
    if (t == napi_string) {
      if (napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len) != napi_ok || len >= IFNAMSIZ - 1) {
        napi_throw_range_error(env, "ERR_INVALID_ARG_VALUE", "openTun(name): name must be shorter than 15 bytes");
        return NULL;
      }
    } else if (t != napi_undefined) { napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "openTun(name): name must be a string"); return NULL; }
  }
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return throw_errno(env, "open(/dev/net/tun)", errno);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  memcpy(ifr.ifr_name, name, len);
  if (ioctl(fd, TUNSETIFF, &ifr) != 0) { int e = errno; close(fd); return throw_errno(env, "ioctl(TUNSETIFF)", e); }
  napi_value obj, vfd, vname;
  napi_create_object(env, &obj);
  napi_create_int32(env, fd, &vfd);
  napi_create_string_utf8(env, ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ), &vname);
  napi_set_named_property(env, obj, "fd", vfd);
  napi_set_named_property(env, obj, "name", vname);
  return obj;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "setUdpEncap", NULL, set_udp_encap, NULL, NULL, NULL, napi_enumerable, NULL },
    { "getUdpEncap", NULL, get_udp_encap, NULL, NULL, NULL, napi_enumerable, NULL },
    { "setIpsecBypass", NULL, set_ipsec_bypass, NULL, NULL, NULL, napi_enumerable, NULL },
    { "openTun", NULL, open_tun, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
