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
 *   netlinkOpen(proto, rcvbuf, sndbuf, onRead) / netlinkPort / netlinkSend / netlinkAddMembership /
 *   netlinkRef / netlinkClose
 *                            a netlink socket (NETLINK_XFRM, NETLINK_ROUTE) read through a libuv
 *                            poll handle; see the section comment below for why it lives here.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <net/if.h>
#include <linux/if_tun.h>
#include <linux/udp.h>
#include <linux/xfrm.h>
#include <linux/netlink.h>
#include <node_api.h>
#include <uv.h>

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
    case EAGAIN: return "EAGAIN"; case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case ECONNREFUSED: return "ECONNREFUSED"; case EMSGSIZE: return "EMSGSIZE";
    default: return "EUNKNOWN";
  }
}

/* Error(message) with .code = errno name and .errno = number. */
static napi_value errno_error(napi_env env, const char *what, int e) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s failed: %s (%s)", what, errno_name(e), strerror(e));
  napi_value m, c, err = NULL, num;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_string_utf8(env, errno_name(e), NAPI_AUTO_LENGTH, &c);
  napi_create_error(env, c, m, &err);
  napi_create_int32(env, e, &num);
  napi_set_named_property(env, err, "errno", num);
  return err;
}

/* Throw errno_error(); returns NULL for convenience. */
static napi_value throw_errno(napi_env env, const char *what, int e) {
  napi_throw(env, errno_error(env, what, e));
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

/* setRecvBuffer(fd, bytes): SO_RCVBUFFORCE (CAP_NET_ADMIN passes net.core.rmem_max, as a node's
 * agent must for a burst of IKE_SA_INIT from thousands of peers), else SO_RCVBUF (capped there). */
static napi_value set_recv_buffer(napi_env env, napi_callback_info info) {
  int fd, bytes;
  if (get_int_arg(env, info, 0, -1, &fd) || fd < 0 || get_int_arg(env, info, 1, -1, &bytes) || bytes <= 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "setRecvBuffer(fd, bytes): fd must be a non-negative integer, bytes positive");
    return NULL;
  }
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) == 0) return NULL;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes) != 0) return throw_errno(env, "setsockopt(SO_RCVBUF)", errno);
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

/* ---- netlink sockets ------------------------------------------------------------------------
 * Why here and not the npm `netlink` package (0.3.0, which the project used first): its C++
 * binding calls JS from libuv callbacks with node-addon-api C++ exceptions and no catch. A
 * receive-buffer overrun (POLLERR) and a process ending while datagrams arrive both end in
 * std::terminate ("terminate called after throwing an instance of 'Napi::Error'", reproduced;
 * the 1,000-SA bench's abort carried the first one's message), and a socket closed by JS code
 * running inside its read callback leaves a poll handler that restarts the freed watcher when
 * that wake-up also reported writable (a NULL dereference, by reading its code). This one is
 * plain C with three rules:
 *   - JS is called at one place (nl_deliver), through napi_make_callback; a JS exception
 *     becomes Node's own uncaught exception (napi_fatal_exception), and a Node that can no
 *     longer run JS (shutting down) just gets its socket closed;
 *   - close may happen from inside that call: after it, the handler re-reads s->open and
 *     touches nothing else; memory is freed only once both libuv's close callback and the JS
 *     external's finalizer have run;
 *   - the socket is closed by an environment cleanup hook, so nothing is polled while Node
 *     tears itself down.
 * Sends to the kernel are synchronous: netlink_unicast to a kernel socket runs the request in
 * the sender's context and never returns EAGAIN, so there is no write queue to get wrong. */

#define NL_READ_BATCH 64 /* datagrams per wake-up, so a busy socket cannot starve the loop */

typedef struct nl_sock {
  uv_poll_t poll; /* first member: libuv's close callback gets the struct back from it */
  napi_env env;
  int fd;
  uint32_t port;
  int open;           /* 0 once close began: no more reads, sends or JS calls */
  int handle_closed;  /* libuv's close callback ran */
  int finalized;      /* the JS external was collected (or the env torn down) */
  napi_ref on_read;   /* strong: the socket keeps its reader alive until closed */
  napi_async_context actx;
} nl_sock;

static void nl_maybe_free(nl_sock *s) {
  if (s->handle_closed && s->finalized) free(s);
}

static void nl_on_handle_closed(uv_handle_t *h) {
  nl_sock *s = (nl_sock *)h;
  s->handle_closed = 1;
  nl_maybe_free(s);
}

static void nl_cleanup_hook(void *arg);

/* Who closes: JS (netlinkClose, or a poll error), Node while exiting (the finalizer, a failed
 * call into JS) where the async context is left alone, or the env cleanup hook itself, which
 * must not remove itself. */
#define NL_BY_JS 0
#define NL_EXITING 1
#define NL_BY_HOOK 2

/* Stop polling, close the fd, let go of JS. */
static void nl_close(nl_sock *s, int how) {
  if (!s->open) return;
  s->open = 0;
  uv_poll_stop(&s->poll); /* before close(fd): never close a descriptor an active poll watches */
  uv_close((uv_handle_t *)&s->poll, nl_on_handle_closed);
  close(s->fd);
  s->fd = -1;
  if (s->on_read) { napi_delete_reference(s->env, s->on_read); s->on_read = NULL; }
  if (how == NL_BY_JS && s->actx) napi_async_destroy(s->env, s->actx);
  s->actx = NULL;
  /* The hook holds `s`, which may be freed before Node runs its hooks. */
  if (how != NL_BY_HOOK) napi_remove_env_cleanup_hook(s->env, nl_cleanup_hook, s);
}

static void nl_cleanup_hook(void *arg) { nl_close((nl_sock *)arg, NL_BY_HOOK); }

static void nl_finalize(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  nl_sock *s = data;
  nl_close(s, NL_EXITING); /* collected while open: its owner never closed it */
  s->finalized = 1;
  nl_maybe_free(s);
}

/* Call onRead(err, datagrams) once. */
static void nl_deliver(nl_sock *s, napi_value err, napi_value datagrams) {
  napi_env env = s->env;
  napi_value fn, recv, argv[2], result;
  if (napi_get_reference_value(env, s->on_read, &fn) != napi_ok || fn == NULL) return;
  napi_get_global(env, &recv); /* napi_make_callback needs an object receiver */
  if (err == NULL) napi_get_null(env, &err);
  argv[0] = err;
  argv[1] = datagrams;
  napi_status st = napi_make_callback(env, s->actx, recv, fn, 2, argv, &result);
  if (st == napi_ok) return;
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    napi_fatal_exception(env, exc); /* the process's 'uncaughtException', as for any callback */
    return;
  }
  /* No exception, yet the call failed: Node can no longer run JS (it is exiting). */
  nl_close(s, NL_EXITING);
}

static void nl_on_poll(uv_poll_t *h, int status, int events) {
  (void)events;
  nl_sock *s = (nl_sock *)h;
  if (!s->open) return;
  napi_env env = s->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value arr, err = NULL;
  napi_create_array(env, &arr);
  uint32_t n = 0;
  int fatal = 0;
  if (status < 0) {
    /* libuv reports POLLERR as UV_EBADF and stops the watcher. On a live netlink socket
     * POLLERR means a pending socket error, ENOBUFS after the kernel dropped messages for us
     * (receive buffer full): take it from SO_ERROR, poll again and read on. */
    int soerr = 0;
    socklen_t l = sizeof soerr;
    if (status == UV_EBADF && getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &l) == 0 && uv_poll_start(&s->poll, UV_READABLE, nl_on_poll) == 0) {
      if (soerr != 0) err = errno_error(env, "netlink recv", soerr);
    } else {
      char what[64];
      snprintf(what, sizeof what, "netlink poll (%s)", uv_err_name(status));
      err = errno_error(env, what, -status);
      fatal = 1;
    }
  }
  for (int i = 0; !fatal && i < NL_READ_BATCH; i++) {
    /* Peek the datagram's real length (MSG_TRUNC), then read it whole into a Buffer. */
    ssize_t len = recv(s->fd, NULL, 0, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
    if (len < 0 && errno == EINTR) continue;
    if (len < 0) {
      int e = errno; /* errno_error's calls may change errno */
      /* ENOBUFS here is the same overrun report as above, when it beat the poll to us. */
      if (e != EAGAIN && e != EWOULDBLOCK && err == NULL) err = errno_error(env, "netlink recv", e);
      if (e == ENOBUFS) continue; /* reported once; the queued datagrams are still there */
      break;
    }
    void *data = NULL;
    napi_value buf;
    size_t want = len > 0 ? (size_t)len : 1;
    if (napi_create_buffer(env, want, &data, &buf) != napi_ok) break;
    ssize_t got;
    do got = recv(s->fd, data, want, MSG_DONTWAIT); while (got < 0 && errno == EINTR);
    if (got < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && err == NULL) err = errno_error(env, "netlink recv", errno);
      break;
    }
    if (got > 0) napi_set_element(env, arr, n++, buf);
  }
  if (n > 0 || err != NULL) nl_deliver(s, err, arr);
  if (fatal) nl_close(s, NL_BY_JS);
  napi_close_handle_scope(env, scope);
}

/* The arguments of netlink<Fn>(socket, ...): at least `want` of them, the first a socket from
 * netlinkOpen. NULL with a TypeError thrown (naming `usage`) otherwise. */
static nl_sock *nl_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv, const char *usage) {
  size_t argc = want;
  for (size_t i = 0; i < want; i++) argv[i] = NULL;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  nl_sock *s = NULL;
  napi_valuetype t;
  if (argc < want || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_external || napi_get_value_external(env, argv[0], (void **)&s) != napi_ok || s == NULL) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s: the first argument must be a socket from netlinkOpen", usage);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return NULL;
  }
  return s;
}

/* setsockopt of a buffer size: the FORCE variant (CAP_NET_ADMIN) passes net.core.[rw]mem_max. */
static int nl_set_buf(int fd, int force_opt, int opt, int bytes) {
  if (bytes <= 0) return 0;
  if (setsockopt(fd, SOL_SOCKET, force_opt, &bytes, sizeof bytes) == 0) return 0;
  return setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof bytes);
}

static napi_value netlink_open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int proto, rcvbuf, sndbuf;
  napi_valuetype t = napi_undefined;
  if (argc >= 4) napi_typeof(env, argv[3], &t);
  if (get_int_arg(env, info, 0, -1, &proto) || proto < 0 || get_int_arg(env, info, 1, 0, &rcvbuf) || get_int_arg(env, info, 2, 0, &sndbuf) || t != napi_function) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "netlinkOpen(protocol, rcvbuf, sndbuf, onRead): protocol and sizes must be integers, onRead a function");
    return NULL;
  }
  uv_loop_t *loop = NULL;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == NULL) { napi_throw_error(env, "ERR_NATIVE_LOOP", "netlinkOpen: no event loop"); return NULL; }
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, proto);
  if (fd < 0) return throw_errno(env, "socket(AF_NETLINK)", errno);
  if (nl_set_buf(fd, SO_RCVBUFFORCE, SO_RCVBUF, rcvbuf) != 0) { int e = errno; close(fd); return throw_errno(env, "setsockopt(SO_RCVBUF)", e); }
  if (nl_set_buf(fd, SO_SNDBUFFORCE, SO_SNDBUF, sndbuf) != 0) { int e = errno; close(fd); return throw_errno(env, "setsockopt(SO_SNDBUF)", e); }
  struct sockaddr_nl addr;
  memset(&addr, 0, sizeof addr);
  addr.nl_family = AF_NETLINK; /* nl_pid 0: the kernel assigns our port id */
  socklen_t alen = sizeof addr;
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || getsockname(fd, (struct sockaddr *)&addr, &alen) != 0) {
    int e = errno; close(fd); return throw_errno(env, "bind(AF_NETLINK)", e);
  }
  nl_sock *s = calloc(1, sizeof *s);
  if (s == NULL) { close(fd); return throw_errno(env, "netlinkOpen", ENOMEM); }
  s->env = env;
  s->fd = fd;
  s->port = addr.nl_pid;
  int uerr = uv_poll_init(loop, &s->poll, fd);
  if (uerr != 0) { close(fd); free(s); return throw_errno(env, "uv_poll_init", -uerr); }
  s->open = 1;
  napi_value ext, name;
  if (napi_create_reference(env, argv[3], 1, &s->on_read) != napi_ok
      || napi_create_string_utf8(env, "kipsec:netlink", NAPI_AUTO_LENGTH, &name) != napi_ok
      || napi_async_init(env, NULL, name, &s->actx) != napi_ok
      || napi_create_external(env, s, nl_finalize, NULL, &ext) != napi_ok) {
    s->finalized = 1; /* no external to wait for */
    nl_close(s, NL_BY_JS);
    napi_throw_error(env, "ERR_NATIVE_NAPI", "netlinkOpen: could not set up the socket's JS side");
    return NULL;
  }
  napi_add_env_cleanup_hook(env, nl_cleanup_hook, s);
  uerr = uv_poll_start(&s->poll, UV_READABLE, nl_on_poll);
  if (uerr != 0) { nl_close(s, NL_BY_JS); return throw_errno(env, "uv_poll_start", -uerr); }
  return ext;
}

static napi_value netlink_port(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  nl_sock *s = nl_args(env, info, 1, argv, "netlinkPort(socket)");
  if (s == NULL) return NULL;
  napi_value v;
  napi_create_uint32(env, s->port, &v);
  return v;
}

static napi_value netlink_send(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  nl_sock *s = nl_args(env, info, 2, argv, "netlinkSend(socket, datagram)");
  if (s == NULL) return NULL;
  bool is_ta = false;
  napi_is_typedarray(env, argv[1], &is_ta);
  napi_typedarray_type tt;
  size_t len = 0, off = 0;
  void *data = NULL;
  napi_value ab;
  if (!is_ta || napi_get_typedarray_info(env, argv[1], &tt, &len, &data, &ab, &off) != napi_ok || tt != napi_uint8_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "netlinkSend(socket, datagram): datagram must be a Uint8Array");
    return NULL;
  }
  if (!s->open) { napi_throw_error(env, "ERR_NETLINK_CLOSED", "netlinkSend: the netlink socket is closed"); return NULL; }
  struct sockaddr_nl kernel;
  memset(&kernel, 0, sizeof kernel);
  kernel.nl_family = AF_NETLINK;
  ssize_t r;
  do r = sendto(s->fd, data, len, 0, (struct sockaddr *)&kernel, sizeof kernel); while (r < 0 && errno == EINTR);
  if (r < 0) return throw_errno(env, "netlink send", errno);
  napi_value v;
  napi_create_int64(env, r, &v);
  return v;
}

static napi_value netlink_add_membership(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int group;
  nl_sock *s = nl_args(env, info, 2, argv, "netlinkAddMembership(socket, group)");
  if (s == NULL) return NULL;
  if (get_int_arg(env, info, 1, -1, &group) || group <= 0) { napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "netlinkAddMembership(socket, group): group must be a positive integer"); return NULL; }
  if (!s->open) { napi_throw_error(env, "ERR_NETLINK_CLOSED", "netlinkAddMembership: the netlink socket is closed"); return NULL; }
  if (setsockopt(s->fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof group) != 0) return throw_errno(env, "setsockopt(NETLINK_ADD_MEMBERSHIP)", errno);
  return NULL;
}

static napi_value netlink_ref(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  nl_sock *s = nl_args(env, info, 2, argv, "netlinkRef(socket, ref)");
  if (s == NULL) return NULL;
  bool ref = false;
  if (napi_get_value_bool(env, argv[1], &ref) != napi_ok) { napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "netlinkRef(socket, ref): ref must be a boolean"); return NULL; }
  if (s->open) { if (ref) uv_ref((uv_handle_t *)&s->poll); else uv_unref((uv_handle_t *)&s->poll); }
  return NULL;
}

static napi_value netlink_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  nl_sock *s = nl_args(env, info, 1, argv, "netlinkClose(socket)");
  if (s == NULL) return NULL;
  nl_close(s, NL_BY_JS);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "setUdpEncap", NULL, set_udp_encap, NULL, NULL, NULL, napi_enumerable, NULL },
    { "getUdpEncap", NULL, get_udp_encap, NULL, NULL, NULL, napi_enumerable, NULL },
    { "setIpsecBypass", NULL, set_ipsec_bypass, NULL, NULL, NULL, napi_enumerable, NULL },
    { "setRecvBuffer", NULL, set_recv_buffer, NULL, NULL, NULL, napi_enumerable, NULL },
    { "openTun", NULL, open_tun, NULL, NULL, NULL, napi_enumerable, NULL },
    { "netlinkOpen", NULL, netlink_open, NULL, NULL, NULL, napi_enumerable, NULL },
    { "netlinkPort", NULL, netlink_port, NULL, NULL, NULL, napi_enumerable, NULL },
    { "netlinkSend", NULL, netlink_send, NULL, NULL, NULL, napi_enumerable, NULL },
    { "netlinkAddMembership", NULL, netlink_add_membership, NULL, NULL, NULL, napi_enumerable, NULL },
    { "netlinkRef", NULL, netlink_ref, NULL, NULL, NULL, napi_enumerable, NULL },
    { "netlinkClose", NULL, netlink_close, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
