/*
 * N-API surface of the userspace ESP engine (the addon kipsec_esp; src/esp/native.ts types it).
 *
 *   espCreate({ tunFd, address, port, onEvent, ikeQueue?, eventQueue?, bypass?, offloads? }) → handle
 *       Opens and binds the UDP socket itself (the engine owns it: one reader, so IKE and ESP on
 *       the NAT-T port 4500 are told apart by the RFC 3948 marker in one place) and takes over
 *       tunFd (closed by espClose; -1: no TUN, decapsulated packets go up as 'inner' events).
 *       offloads { udpGso?, udpGro?, tunTso? } (each default true): what esp_offload.c may probe
 *       for and use; espStats(h).offloads says what is in use.
 *   espMallocInfo(trim?) → glibc malloc figures of the process (benches: how much of RSS is malloc's)
 *   espOpenTun(name?, { vnetHdr? }) → { fd, name, vnetHdr }  a TUN device for tunFd, with
 *       IFF_VNET_HDR when asked and the kernel takes it (needed for TUN TSO)
 *   espLocalPort(h)  espClose(h)  espStats(h)  espSaStats(h, direction, spi, reqid)
 *   espAddSa(h, sa)  espUpdateSa(h, dir, spi, reqid, { active?, peer? })  espRemoveSa(h, dir, spi, reqid)
 *   espAddPolicy(h, policy)  espRemovePolicy(h, id)
 *   espSendIke(h, datagram, address, port)  send from the shared socket (marker included by the caller)
 *   espInject(h, packet)  encapsulate one inner packet on the calling thread (tests, probes)
 *
 * Events reach onEvent({ kind, … }) through two bounded napi threadsafe-function queues: 'ike'
 * and 'inner' share one (a flood of IKE cannot delay expires), 'expire' and 'mapping' (an
 * authenticated packet of an inbound SA from another source than its peer) the other. When a
 * queue is full the event is dropped and counted (ikeDropped / eventsDropped), never waited for.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <linux/xfrm.h>
#include <node_api.h>
#include "esp.h"
#include "esp_napi.h"

#ifndef IP_XFRM_POLICY
#define IP_XFRM_POLICY 17
#endif
#ifndef IPV6_XFRM_POLICY
#define IPV6_XFRM_POLICY 35
#endif

const char *const DROP_NAMES[ESP_DROP_N] = {
  "replay", "auth", "pad", "nextHeader", "selector", "malformed", "truncated", "expired",
  "seqExhausted", "tooBig", "io", "dummy",
};
const char *const G_NAMES[ESP_G_N] = {
  "rxDatagrams", "txDatagrams", "ike", "ikeDropped", "keepalives", "runts", "unknownSpi",
  "noPolicy", "noSa", "malformedOutbound", "tunReadErrors", "tunWriteErrors", "sendErrors", "eventsDropped",
  "gsoSends", "gsoDatagrams", "groReceives", "groDatagrams", "tunSuperPackets", "tunSegments", "gsoFallbacks",
};


typedef struct {
  int kind; /* ESP_UP_IKE, ESP_UP_INNER, EV_EXPIRE or EV_MAPPING */
  char address[INET6_ADDRSTRLEN];
  int port;
  uint32_t spi, reqid;
  int dir, hard;
  const char *reason;
  size_t len;
  uint8_t data[];
} esp_event;

#define EV_EXPIRE 2
#define EV_MAPPING 3

/* ---- errors and argument helpers ---- */

napi_value throw_code(napi_env env, const char *code, const char *fmt, const char *what) {
  char msg[256];
  snprintf(msg, sizeof msg, fmt, what);
  napi_throw_type_error(env, code, msg);
  return NULL;
}

napi_value throw_errno(napi_env env, const char *what, int e) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s failed: %s", what, strerror(e));
  napi_value m, c, err;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_string_utf8(env, e == EEXIST ? "EEXIST" : e == ENOENT ? "ENOENT" : e == ENOMEM ? "ENOMEM" : e == EINVAL ? "EINVAL" : e == EADDRINUSE ? "EADDRINUSE" : e == EPERM ? "EPERM" : e == EAGAIN ? "EAGAIN" : "EIO", NAPI_AUTO_LENGTH, &c);
  napi_create_error(env, c, m, &err);
  napi_throw(env, err);
  return NULL;
}

int has(napi_env env, napi_value obj, const char *name, napi_value *out) {
  bool h = false;
  napi_valuetype t;
  if (napi_has_named_property(env, obj, name, &h) != napi_ok || !h) return 0;
  if (napi_get_named_property(env, obj, name, out) != napi_ok) return 0;
  return napi_typeof(env, *out, &t) == napi_ok && t != napi_undefined;
}

int get_u32(napi_env env, napi_value obj, const char *name, uint32_t *out, int required) {
  napi_value v;
  if (!has(env, obj, name, &v)) return !required;
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok || d < 0 || d > 4294967295.0 || d != (double)(uint32_t)d) return 0;
  *out = (uint32_t)d;
  return 1;
}

int get_u64(napi_env env, napi_value obj, const char *name, uint64_t *out) {
  napi_value v;
  if (!has(env, obj, name, &v)) return 1;
  bool lossless;
  return napi_get_value_bigint_uint64(env, v, out, &lossless) == napi_ok && lossless;
}

int get_bool(napi_env env, napi_value obj, const char *name, int *out) {
  napi_value v;
  bool b;
  if (!has(env, obj, name, &v)) return 1;
  if (napi_get_value_bool(env, v, &b) != napi_ok) return 0;
  *out = b;
  return 1;
}

/* An IPv4 or IPv6 address string; family 4 or 6, bytes in out[16]. */
int get_addr(napi_env env, napi_value obj, const char *name, int *family, uint8_t out[16]) {
  napi_value v;
  char s[INET6_ADDRSTRLEN + 1];
  size_t n = 0;
  if (!has(env, obj, name, &v) || napi_get_value_string_utf8(env, v, s, sizeof s, &n) != napi_ok || n >= sizeof s - 1) return 0;
  memset(out, 0, 16);
  if (inet_pton(AF_INET, s, out) == 1) { *family = 4; return 1; }
  if (inet_pton(AF_INET6, s, out) == 1) { *family = 6; return 1; }
  return 0;
}

int get_ts(napi_env env, napi_value obj, esp_ts *ts) {
  int f1 = 0, f2 = 0;
  uint32_t proto = 0, lo = 0, hi = 65535;
  memset(ts, 0, sizeof *ts);
  if (!get_addr(env, obj, "start", &f1, ts->lo) || !get_addr(env, obj, "end", &f2, ts->hi) || f1 != f2) return 0;
  if (!get_u32(env, obj, "protocol", &proto, 0) || !get_u32(env, obj, "startPort", &lo, 0) || !get_u32(env, obj, "endPort", &hi, 0)) return 0;
  if (proto > 255 || lo > hi || hi > 65535 || memcmp(ts->lo, ts->hi, 16) > 0) return 0;
  ts->family = (uint8_t)f1; ts->proto = (uint8_t)proto; ts->port_lo = (uint16_t)lo; ts->port_hi = (uint16_t)hi;
  return 1;
}

int get_ts_list(napi_env env, napi_value obj, const char *name, esp_ts *out, int *n) {
  napi_value arr;
  bool is_arr = false;
  uint32_t len = 0;
  if (!has(env, obj, name, &arr) || napi_is_array(env, arr, &is_arr) != napi_ok || !is_arr) return 0;
  napi_get_array_length(env, arr, &len);
  if (len == 0 || len > ESP_MAX_TS) return 0;
  for (uint32_t i = 0; i < len; i++) {
    napi_value item;
    if (napi_get_element(env, arr, i, &item) != napi_ok || !get_ts(env, item, &out[i])) return 0;
  }
  *n = (int)len;
  return 1;
}

esp_peer *get_peer(napi_env env, napi_value obj) {
  int family = 0;
  uint8_t a[16];
  uint32_t port = 0;
  if (!get_addr(env, obj, "address", &family, a) || !get_u32(env, obj, "port", &port, 1) || port == 0 || port > 65535) return NULL;
  esp_peer *p = calloc(1, sizeof *p);
  if (p == NULL) return NULL;
  if (family == 4) {
    struct sockaddr_in *s = (struct sockaddr_in *)&p->addr;
    s->sin_family = AF_INET; s->sin_port = htons((uint16_t)port); memcpy(&s->sin_addr, a, 4);
    p->len = sizeof *s;
  } else {
    struct sockaddr_in6 *s = (struct sockaddr_in6 *)&p->addr;
    s->sin6_family = AF_INET6; s->sin6_port = htons((uint16_t)port); memcpy(&s->sin6_addr, a, 16);
    p->len = sizeof *s;
  }
  return p;
}

int get_dir(napi_env env, napi_value v, int *dir) {
  char s[8];
  size_t n = 0;
  if (napi_get_value_string_utf8(env, v, s, sizeof s, &n) != napi_ok) return 0;
  if (strcmp(s, "in") == 0) { *dir = ESP_DIR_IN; return 1; }
  if (strcmp(s, "out") == 0) { *dir = ESP_DIR_OUT; return 1; }
  return 0;
}

/* The handle argument; NULL (TypeError thrown) if it is not an open engine. */
esp_napi *engine_arg(napi_env env, napi_callback_info info, size_t want, napi_value *argv, const char *usage) {
  size_t argc = want;
  esp_napi *s = NULL;
  napi_valuetype t;
  for (size_t i = 0; i < want; i++) argv[i] = NULL;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < want || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_external || napi_get_value_external(env, argv[0], (void **)&s) != napi_ok || s == NULL) {
    throw_code(env, "ERR_INVALID_ARG_TYPE", "%s: bad arguments (the first must be a handle from espCreate)", usage);
    return NULL;
  }
  if (!s->open) { napi_throw_error(env, "ERR_ESP_CLOSED", "the ESP engine is closed"); return NULL; }
  return s;
}

/* ---- events from the workers ---- */

static void call_js(napi_env env, napi_value fn, void *context, void *data) {
  (void)context;
  esp_event *ev = data;
  if (env == NULL || fn == NULL) { free(ev); return; } /* torn down: just free what was queued */
  napi_value obj, v, undef;
  napi_create_object(env, &obj);
  static const char *const kinds[] = { "ike", "inner", "expire", "mapping" };
  napi_create_string_utf8(env, kinds[ev->kind], NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, obj, "kind", v);
  if (ev->kind == EV_MAPPING) {
    napi_create_string_utf8(env, ev->dir == ESP_DIR_IN ? "in" : "out", NAPI_AUTO_LENGTH, &v); napi_set_named_property(env, obj, "direction", v);
    napi_create_uint32(env, ev->spi, &v); napi_set_named_property(env, obj, "spi", v);
    napi_create_uint32(env, ev->reqid, &v); napi_set_named_property(env, obj, "reqid", v);
    napi_create_string_utf8(env, ev->address, NAPI_AUTO_LENGTH, &v); napi_set_named_property(env, obj, "address", v);
    napi_create_uint32(env, (uint32_t)ev->port, &v); napi_set_named_property(env, obj, "port", v);
  } else if (ev->kind == EV_EXPIRE) {
    napi_create_string_utf8(env, ev->dir == ESP_DIR_IN ? "in" : "out", NAPI_AUTO_LENGTH, &v); napi_set_named_property(env, obj, "direction", v);
    napi_create_uint32(env, ev->spi, &v); napi_set_named_property(env, obj, "spi", v);
    napi_create_uint32(env, ev->reqid, &v); napi_set_named_property(env, obj, "reqid", v);
    napi_get_boolean(env, ev->hard, &v); napi_set_named_property(env, obj, "hard", v);
    napi_create_string_utf8(env, ev->reason, NAPI_AUTO_LENGTH, &v); napi_set_named_property(env, obj, "reason", v);
  } else {
    napi_create_buffer_copy(env, ev->len, ev->data, NULL, &v); napi_set_named_property(env, obj, "data", v);
    napi_create_string_utf8(env, ev->address, NAPI_AUTO_LENGTH, &v); napi_set_named_property(env, obj, "address", v);
    napi_create_uint32(env, (uint32_t)ev->port, &v); napi_set_named_property(env, obj, "port", v);
  }
  free(ev);
  napi_get_undefined(env, &undef);
  if (napi_call_function(env, undef, fn, 1, &obj, NULL) != napi_ok) {
    bool pending = false;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
      napi_value exc;
      napi_get_and_clear_last_exception(env, &exc);
      napi_fatal_exception(env, exc); /* the process's uncaughtException, as for any callback */
    }
  }
}

static void set_from(esp_event *ev, const struct sockaddr_storage *from) {
  if (from->ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)from;
    inet_ntop(AF_INET, &a->sin_addr, ev->address, sizeof ev->address); ev->port = ntohs(a->sin_port);
  } else if (from->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)from;
    inet_ntop(AF_INET6, &a->sin6_addr, ev->address, sizeof ev->address); ev->port = ntohs(a->sin6_port);
  }
}

static void hook_up(esp_engine *e, int kind, const uint8_t *data, size_t len, const struct sockaddr_storage *from) {
  esp_napi *s = e->napi;
  esp_event *ev = malloc(sizeof *ev + len);
  int dropped = kind == ESP_UP_IKE ? ESP_G_IKE_DROPPED : ESP_G_EVENTS_DROPPED;
  if (ev == NULL) { atomic_fetch_add(&e->g[dropped], 1); return; }
  memset(ev, 0, sizeof *ev);
  ev->kind = kind;
  ev->len = len;
  memcpy(ev->data, data, len);
  set_from(ev, from);
  if (napi_call_threadsafe_function(s->up, ev, napi_tsfn_nonblocking) != napi_ok) { free(ev); atomic_fetch_add(&e->g[dropped], 1); return; }
  if (kind == ESP_UP_IKE) atomic_fetch_add(&e->g[ESP_G_IKE], 1);
}

static void hook_expire(esp_engine *e, const esp_sa *sa, int hard, const char *reason) {
  esp_napi *s = e->napi;
  esp_event *ev = calloc(1, sizeof *ev);
  if (ev == NULL) { atomic_fetch_add(&e->g[ESP_G_EVENTS_DROPPED], 1); return; }
  ev->kind = EV_EXPIRE; ev->spi = sa->spi; ev->reqid = sa->reqid; ev->dir = sa->dir; ev->hard = hard; ev->reason = reason;
  if (napi_call_threadsafe_function(s->ctl, ev, napi_tsfn_nonblocking) != napi_ok) { free(ev); atomic_fetch_add(&e->g[ESP_G_EVENTS_DROPPED], 1); }
}

static void hook_mapping(esp_engine *e, const esp_sa *sa, const struct sockaddr_storage *from) {
  esp_napi *s = e->napi;
  esp_event *ev = calloc(1, sizeof *ev);
  if (ev == NULL) { atomic_fetch_add(&e->g[ESP_G_EVENTS_DROPPED], 1); return; }
  ev->kind = EV_MAPPING; ev->spi = sa->spi; ev->reqid = sa->reqid; ev->dir = sa->dir;
  set_from(ev, from);
  if (napi_call_threadsafe_function(s->ctl, ev, napi_tsfn_nonblocking) != napi_ok) { free(ev); atomic_fetch_add(&e->g[ESP_G_EVENTS_DROPPED], 1); }
}

/* ---- lifetime ---- */

static void engine_close(esp_napi *s) {
  if (!s->open) return;
  s->open = 0;
  esp_engine_shutdown(&s->e); /* workers joined: no hook runs after this */
  napi_release_threadsafe_function(s->up, napi_tsfn_abort);
  napi_release_threadsafe_function(s->ctl, napi_tsfn_abort);
}

static void cleanup_hook(void *arg) { engine_close(arg); }

static void engine_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  esp_napi *s = data;
  if (s->open) napi_remove_env_cleanup_hook(env, cleanup_hook, s);
  engine_close(s);
  free(s);
}

static int open_udp(int family, const uint8_t *addr, uint32_t port, int bypass, int *out_fd, uint32_t *out_port) {
  int fd = socket(family == 4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  struct sockaddr_storage ss;
  socklen_t len;
  memset(&ss, 0, sizeof ss);
  if (family == 4) {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET; a->sin_port = htons((uint16_t)port); memcpy(&a->sin_addr, addr, 4); len = sizeof *a;
  } else {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    int on = 1;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    a->sin6_family = AF_INET6; a->sin6_port = htons((uint16_t)port); memcpy(&a->sin6_addr, addr, 16); len = sizeof *a;
  }
  /* Large buffers absorb bursts between batches; the FORCE variants pass rmem_max as root. */
  int sz = 4 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof sz) != 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof sz) != 0) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
  if (bypass) {
    /* Per-socket "allow" policies, as the IKE socket has: our ESP never meets XFRM block policies. */
    struct xfrm_userpolicy_info pol;
    memset(&pol, 0, sizeof pol);
    pol.action = XFRM_POLICY_ALLOW;
    pol.sel.family = family == 4 ? AF_INET : AF_INET6;
    pol.lft.soft_byte_limit = pol.lft.hard_byte_limit = XFRM_INF;
    pol.lft.soft_packet_limit = pol.lft.hard_packet_limit = XFRM_INF;
    for (int d = 0; d < 2; d++) {
      pol.dir = d == 0 ? XFRM_POLICY_OUT : XFRM_POLICY_IN;
      if (setsockopt(fd, family == 4 ? IPPROTO_IP : IPPROTO_IPV6, family == 4 ? IP_XFRM_POLICY : IPV6_XFRM_POLICY, &pol, sizeof pol) != 0) { int e = errno; close(fd); return e; }
    }
  }
  if (bind(fd, (struct sockaddr *)&ss, len) != 0 || getsockname(fd, (struct sockaddr *)&ss, &len) != 0) { int e = errno; close(fd); return e; }
  *out_port = ntohs(family == 4 ? ((struct sockaddr_in *)&ss)->sin_port : ((struct sockaddr_in6 *)&ss)->sin6_port);
  *out_fd = fd;
  return 0;
}

static napi_value esp_create(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], fn, name, ext;
  napi_valuetype t;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_object) return throw_code(env, "ERR_INVALID_ARG_TYPE", "%s: options must be an object", "espCreate");
  napi_value o = argv[0];
  double tun = -1;
  uint32_t port = 0, ikeq = 256, evq = 4096;
  int family = 0, bypass = 0;
  uint8_t addr[16];
  napi_value v;
  if (has(env, o, "tunFd", &v) && (napi_get_value_double(env, v, &tun) != napi_ok || tun < -1 || tun != (double)(int)tun)) return throw_code(env, "ERR_INVALID_ARG_VALUE", "%s: tunFd must be a descriptor or -1", "espCreate");
  if (!get_addr(env, o, "address", &family, addr)) return throw_code(env, "ERR_INVALID_ARG_VALUE", "%s: address must be an IPv4 or IPv6 address", "espCreate");
  if (!get_u32(env, o, "port", &port, 1) || port > 65535) return throw_code(env, "ERR_INVALID_ARG_VALUE", "%s: port must be 0..65535", "espCreate");
  if (!get_u32(env, o, "ikeQueue", &ikeq, 0) || !get_u32(env, o, "eventQueue", &evq, 0) || ikeq == 0 || evq == 0) return throw_code(env, "ERR_INVALID_ARG_VALUE", "%s: queue sizes must be positive integers", "espCreate");
  if (!get_bool(env, o, "bypass", &bypass)) return throw_code(env, "ERR_INVALID_ARG_VALUE", "%s: bypass must be a boolean", "espCreate");
  int gso = 1, gro = 1, tso = 1;
  if (has(env, o, "offloads", &v) && (!get_bool(env, v, "udpGso", &gso) || !get_bool(env, v, "udpGro", &gro) || !get_bool(env, v, "tunTso", &tso)))
    return throw_code(env, "ERR_INVALID_ARG_VALUE", "%s: offloads.udpGso, udpGro and tunTso must be booleans", "espCreate");
  if (!has(env, o, "onEvent", &fn) || napi_typeof(env, fn, &t) != napi_ok || t != napi_function) return throw_code(env, "ERR_INVALID_ARG_TYPE", "%s: onEvent must be a function", "espCreate");
  int fd = -1;
  int err = open_udp(family, addr, port, bypass, &fd, &port);
  if (err) return throw_errno(env, "espCreate: UDP socket", err);
  esp_napi *s = calloc(1, sizeof *s);
  if (s == NULL) { close(fd); return throw_errno(env, "espCreate", ENOMEM); }
  s->env = env;
  err = esp_engine_init(&s->e, fd, (int)tun);
  if (err) { close(fd); free(s); return throw_errno(env, "espCreate: engine", err); }
  s->e.napi = s;
  s->e.hooks.up = hook_up;
  s->e.hooks.expire = hook_expire;
  s->e.hooks.mapping = hook_mapping;
  napi_create_string_utf8(env, "kipsec:esp", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, fn, NULL, name, ikeq, 1, NULL, NULL, s, call_js, &s->up) != napi_ok
      || napi_create_threadsafe_function(env, fn, NULL, name, evq, 1, NULL, NULL, s, call_js, &s->ctl) != napi_ok) {
    s->e.tun_fd = -1; /* not ours yet: the caller keeps it */
    esp_engine_shutdown(&s->e);
    free(s);
    napi_throw_error(env, "ERR_ESP_NAPI", "espCreate: could not create the event queues");
    return NULL;
  }
  /* Events alone do not keep the process alive: the owner of the engine decides that. */
  napi_unref_threadsafe_function(env, s->up);
  napi_unref_threadsafe_function(env, s->ctl);
  s->open = 1;
  esp_offload_probe(&s->e, (gso ? ESP_OFF_UDP_GSO : 0) | (gro ? ESP_OFF_UDP_GRO : 0) | (tso ? ESP_OFF_TUN_TSO : 0));
  err = esp_engine_start(&s->e);
  if (err) { s->e.tun_fd = -1; engine_close(s); free(s); return throw_errno(env, "espCreate: pthread_create", err); }
  napi_create_external(env, s, engine_finalize, NULL, &ext);
  napi_add_env_cleanup_hook(env, cleanup_hook, s);
  return ext;
}

static napi_value esp_local_port(napi_env env, napi_callback_info info) {
  napi_value argv[1], v;
  esp_napi *s = engine_arg(env, info, 1, argv, "espLocalPort(h)");
  if (s == NULL) return NULL;
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(s->e.udp_fd, (struct sockaddr *)&ss, &len) != 0) return throw_errno(env, "getsockname", errno);
  napi_create_uint32(env, ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port : ((struct sockaddr_in6 *)&ss)->sin6_port), &v);
  return v;
}

static napi_value esp_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  esp_napi *s = NULL;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_external(env, argv[0], (void **)&s) != napi_ok || s == NULL) return throw_code(env, "ERR_INVALID_ARG_TYPE", "%s: not a handle", "espClose(h)");
  if (s->open) napi_remove_env_cleanup_hook(env, cleanup_hook, s);
  engine_close(s);
  return NULL;
}

/* espMallocInfo(trim): glibc's malloc figures for the whole process (mallinfo2: bytes in use,
 * free inside the heap, mmapped), read after malloc_trim(0) when trim is true. For measuring what
 * of a process's RSS is malloc's; {} where the C library has no mallinfo2. */
static napi_value esp_malloc_info(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], o, v;
  bool trim = false;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc >= 1) napi_get_value_bool(env, argv[0], &trim);
  napi_create_object(env, &o);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  if (trim) malloc_trim(0);
  struct mallinfo2 m = mallinfo2();
  const struct { const char *name; size_t n; } f[] = {
    { "heapBytes", m.arena }, { "mmapBytes", m.hblkhd }, { "inUseBytes", m.uordblks + m.hblkhd }, { "freeBytes", m.fordblks }, { "topFreeBytes", m.keepcost },
  };
  for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) { napi_create_double(env, (double)f[i].n, &v); napi_set_named_property(env, o, f[i].name, v); }
#else
  (void)trim; (void)v;
#endif
  return o;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "espCreate", NULL, esp_create, NULL, NULL, NULL, napi_enumerable, NULL },
    { "espLocalPort", NULL, esp_local_port, NULL, NULL, NULL, napi_enumerable, NULL },
    { "espClose", NULL, esp_close, NULL, NULL, NULL, napi_enumerable, NULL },
    { "espAddSa", NULL, esp_napi_add_sa, NULL, NULL, NULL, napi_enumerable, NULL },
    { "espUpdateSa", NULL, esp_napi_update_sa, NULL, NULL, NULL, napi_enumerable, NULL },
    { "espRemoveSa", NULL, esp_napi_remove_sa, NULL, NULL, NULL, napi_enumerable, NULL },
    { "espAddPolicy", NULL, esp_napi_add_policy, NULL, NULL, NULL, napi_enumerable, NULL },
    { "espRemovePolicy", NULL, esp_napi_remove_policy, NULL, NULL, NULL, napi_enumerable, NULL },
    { "espStats", NULL, esp_napi_stats, NULL, NULL, NULL, napi_enumerable, NULL },
    { "espSaStats", NULL, esp_napi_sa_stats, NULL, NULL, NULL, napi_enumerable, NULL },
    { "espSendIke", NULL, esp_napi_send_ike, NULL, NULL, NULL, napi_enumerable, NULL },
    { "espInject", NULL, esp_napi_inject, NULL, NULL, NULL, napi_enumerable, NULL },
    { "espOpenTun", NULL, esp_napi_open_tun, NULL, NULL, NULL, napi_enumerable, NULL },
    { "espMallocInfo", NULL, esp_malloc_info, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
