/*
 * The control-plane calls of the ESP engine: SAs, policies, counters, and the two ways JS sends
 * through the shared socket (IKE datagrams, injected inner packets). Argument errors throw a
 * TypeError naming the field; engine errors an Error whose code is the errno name.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <linux/if_tun.h>
#include "esp.h"
#include "esp_napi.h"

static int get_bytes(napi_env env, napi_value v, uint8_t **data, size_t *len) {
  bool is_ta = false;
  napi_typedarray_type tt;
  napi_value ab;
  size_t off;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta) return 0;
  return napi_get_typedarray_info(env, v, &tt, len, (void **)data, &ab, &off) == napi_ok && tt == napi_uint8_array;
}

#define BAD(what) return throw_code(env, "ERR_INVALID_ARG_VALUE", "espAddSa: %s", what)

napi_value esp_napi_add_sa(napi_env env, napi_callback_info info) {
  napi_value argv[2], v;
  esp_napi *s = engine_arg(env, info, 2, argv, "espAddSa(h, sa)");
  if (s == NULL) return NULL;
  napi_value o = argv[1];
  int dir = 0, active = 1, esn = 0;
  uint32_t spi = 0, reqid = 0, alg = 0, window = 1024;
  uint64_t seq = 0, sp = 0, hp = 0, sb = 0, hb = 0;
  uint8_t *key = NULL, *ikey = NULL;
  size_t key_len = 0, ikey_len = 0;
  if (!has(env, o, "direction", &v) || !get_dir(env, v, &dir)) BAD("direction must be 'in' or 'out'");
  /* RFC 4303 §2.1: SPIs 1..255 are reserved by IANA, 0 is for local use only. */
  if (!get_u32(env, o, "spi", &spi, 1) || spi < 256) BAD("spi must be an integer 256..2^32-1");
  if (!get_u32(env, o, "reqid", &reqid, 0)) BAD("reqid must be a 32-bit unsigned integer");
  if (!get_u32(env, o, "algorithm", &alg, 1) || alg < ESP_ALG_AES_GCM_16 || alg > ESP_ALG_AES_CBC_HMAC_SHA512)
    BAD("algorithm must be 1 (AES-GCM-16), 2 (ChaCha20-Poly1305), 3, 4 or 5 (AES-CBC with HMAC-SHA2-256-128, -384-192, -512-256)");
  int aead = ESP_ALG_IS_AEAD((int)alg);
  if (!has(env, o, "key", &v) || !get_bytes(env, v, &key, &key_len) || !esp_key_len_ok((int)alg, key_len))
    BAD(aead ? "key must be a Uint8Array of key || 4-byte salt: 20 or 36 bytes for AES-GCM, 36 for ChaCha20-Poly1305" : "key must be a Uint8Array of 16 or 32 bytes for AES-CBC");
  if (aead ? has(env, o, "integrityKey", &v) : !has(env, o, "integrityKey", &v) || !get_bytes(env, v, &ikey, &ikey_len) || ikey_len != esp_integ_key_len((int)alg))
    BAD(aead ? "integrityKey is for AES-CBC suites only (AEAD has no separate integrity key)" : "integrityKey must be a Uint8Array as long as the HMAC output: 32, 48 or 64 bytes for SHA2-256, -384, -512 (RFC 4868 §2.1.1)");
  if (!get_bool(env, o, "esn", &esn)) BAD("esn must be a boolean");
  if (!get_u32(env, o, "replayWindow", &window, 0) || window > ESP_MAX_REPLAY_WINDOW) BAD("replayWindow must be 0..65536 packets");
  if (!get_bool(env, o, "active", &active)) BAD("active must be a boolean");
  if (!get_u64(env, o, "seq", &seq) || (!esn && seq > UINT32_MAX)) BAD("seq must be a bigint 0..2^32-1 (0..2^64-1 with esn)");
  /* Appendix A2.2 infers the high bits from the window: ESN without one cannot work. */
  if (esn && dir == ESP_DIR_IN && window == 0) BAD("esn needs a replayWindow of at least 1");
  if (!get_u64(env, o, "softPackets", &sp) || !get_u64(env, o, "hardPackets", &hp) || !get_u64(env, o, "softBytes", &sb) || !get_u64(env, o, "hardBytes", &hb))
    BAD("softPackets, hardPackets, softBytes and hardBytes must be bigints (0: none)");
  esp_sa *sa = esp_sa_new();
  if (sa == NULL) return throw_errno(env, "espAddSa", ENOMEM);
  sa->dir = dir; sa->spi = spi; sa->reqid = reqid; sa->alg = (int)alg; sa->esn = esn;
  esp_suite_layout(sa);
  sa->soft_packets = sp; sa->hard_packets = hp; sa->soft_bytes = sb; sa->hard_bytes = hb;
  atomic_store(&sa->active, active);
  atomic_store(&sa->seq, seq);
  sa->seq_start = seq;
  const char *bad = NULL;
  if (dir == ESP_DIR_IN) {
    sa->window = (window + 63) / 64 * 64;
    sa->bitmap = calloc(sa->window ? sa->window / 64 : 1, sizeof *sa->bitmap);
    esp_ts src[ESP_MAX_TS], dst[ESP_MAX_TS];
    if (!get_ts_list(env, o, "sources", src, &sa->nsrc) || !get_ts_list(env, o, "destinations", dst, &sa->ndst))
      bad = "sources and destinations must be 1..8 selectors { start, end, protocol?, startPort?, endPort? }";
    else if ((sa->src = malloc((size_t)(sa->nsrc + sa->ndst) * sizeof *sa->src)) == NULL) bad = "out of memory";
    else {
      sa->dst = sa->src + sa->nsrc;
      memcpy(sa->src, src, (size_t)sa->nsrc * sizeof *src);
      memcpy(sa->dst, dst, (size_t)sa->ndst * sizeof *dst);
    }
    int keyed = esp_crypto_key(sa, ESP_SLOT_RX, 0, key, key_len, ikey, ikey_len);
    if (!sa->bitmap || !keyed) bad = bad ? bad : "could not set up the cipher";
    /* Optional: the source the peer sends from (NAT mapping reports). */
    if (has(env, o, "peer", &v)) {
      esp_peer *from = get_peer(env, v);
      if (from == NULL) bad = bad ? bad : "peer must be { address, port }";
      atomic_store(&sa->peer, from);
    }
  } else {
    esp_peer *peer = has(env, o, "peer", &v) ? get_peer(env, v) : NULL;
    if (peer == NULL) bad = "peer { address, port } is required on an outbound SA";
    atomic_store(&sa->peer, peer);
    int keyed = esp_crypto_key(sa, ESP_SLOT_TX, 1, key, key_len, ikey, ikey_len) && esp_crypto_key_later(sa, key, key_len, ikey, ikey_len);
    if (!keyed) bad = bad ? bad : "could not set up the cipher";
  }
  if (bad) { esp_sa_free(sa); BAD(bad); }
  int err = esp_add_sa(&s->e, sa);
  if (err) { esp_sa_free(sa); return throw_errno(env, "espAddSa", err); }
  return NULL;
}

/* (h, direction, spi, reqid) → the three values; 0 with a TypeError thrown otherwise. */
static int sa_ref(napi_env env, napi_value *argv, const char *usage, int *dir, uint32_t *spi, uint32_t *reqid) {
  double d1, d2;
  if (!get_dir(env, argv[1], dir) || napi_get_value_double(env, argv[2], &d1) != napi_ok || napi_get_value_double(env, argv[3], &d2) != napi_ok
      || d1 < 0 || d1 > 4294967295.0 || d2 < 0 || d2 > 4294967295.0) {
    throw_code(env, "ERR_INVALID_ARG_VALUE", "%s: direction must be 'in' or 'out', spi and reqid 32-bit unsigned integers", usage);
    return 0;
  }
  *spi = (uint32_t)d1; *reqid = (uint32_t)d2;
  return 1;
}

napi_value esp_napi_update_sa(napi_env env, napi_callback_info info) {
  napi_value argv[5], v;
  esp_napi *s = engine_arg(env, info, 5, argv, "espUpdateSa(h, direction, spi, reqid, update)");
  int dir, active = -1;
  uint32_t spi, reqid;
  if (s == NULL || !sa_ref(env, argv, "espUpdateSa", &dir, &spi, &reqid)) return NULL;
  if (!get_bool(env, argv[4], "active", &active)) return throw_code(env, "ERR_INVALID_ARG_VALUE", "%s: active must be a boolean", "espUpdateSa");
  esp_peer *peer = NULL;
  if (has(env, argv[4], "peer", &v) && (peer = get_peer(env, v)) == NULL) return throw_code(env, "ERR_INVALID_ARG_VALUE", "%s: peer must be { address, port }", "espUpdateSa");
  int err = esp_update_sa(&s->e, dir, spi, reqid, active, peer);
  if (err) return throw_errno(env, "espUpdateSa", err);
  return NULL;
}

napi_value esp_napi_remove_sa(napi_env env, napi_callback_info info) {
  napi_value argv[4], v;
  esp_napi *s = engine_arg(env, info, 4, argv, "espRemoveSa(h, direction, spi, reqid)");
  int dir;
  uint32_t spi, reqid;
  if (s == NULL || !sa_ref(env, argv, "espRemoveSa", &dir, &spi, &reqid)) return NULL;
  int err = esp_remove_sa(&s->e, dir, spi, reqid);
  if (err && err != ENOENT) return throw_errno(env, "espRemoveSa", err);
  napi_get_boolean(env, err == 0, &v);
  return v;
}

napi_value esp_napi_add_policy(napi_env env, napi_callback_info info) {
  napi_value argv[2], v;
  esp_napi *s = engine_arg(env, info, 2, argv, "espAddPolicy(h, policy)");
  if (s == NULL) return NULL;
  esp_policy p;
  memset(&p, 0, sizeof p);
  if (!get_u32(env, argv[1], "id", &p.id, 1) || !get_u32(env, argv[1], "reqid", &p.reqid, 1) || !get_u32(env, argv[1], "priority", &p.priority, 0)
      || !has(env, argv[1], "source", &v) || !get_ts(env, v, &p.src) || !has(env, argv[1], "destination", &v) || !get_ts(env, v, &p.dst) || p.src.family != p.dst.family)
    return throw_code(env, "ERR_INVALID_ARG_VALUE", "%s: needs id, reqid, priority? and source/destination selectors of one family", "espAddPolicy");
  int err = esp_add_policy(&s->e, &p);
  if (err) return throw_errno(env, "espAddPolicy", err);
  return NULL;
}

napi_value esp_napi_remove_policy(napi_env env, napi_callback_info info) {
  napi_value argv[2], v;
  esp_napi *s = engine_arg(env, info, 2, argv, "espRemovePolicy(h, id)");
  uint32_t id;
  if (s == NULL) return NULL;
  if (napi_get_value_uint32(env, argv[1], &id) != napi_ok) return throw_code(env, "ERR_INVALID_ARG_VALUE", "%s: id must be an integer", "espRemovePolicy");
  int err = esp_remove_policy(&s->e, id);
  if (err && err != ENOENT) return throw_errno(env, "espRemovePolicy", err);
  napi_get_boolean(env, err == 0, &v);
  return v;
}

static void set_u64(napi_env env, napi_value obj, const char *name, uint64_t n) {
  napi_value v;
  napi_create_bigint_uint64(env, n, &v);
  napi_set_named_property(env, obj, name, v);
}

typedef struct { napi_env env; napi_value arr; uint32_t n; } stats_acc;

static void sa_stats(const esp_sa *sa, void *arg) {
  stats_acc *a = arg;
  napi_env env = a->env;
  napi_value o, drops, v;
  napi_create_object(env, &o);
  napi_create_string_utf8(env, sa->dir == ESP_DIR_IN ? "in" : "out", NAPI_AUTO_LENGTH, &v); napi_set_named_property(env, o, "direction", v);
  napi_create_uint32(env, sa->spi, &v); napi_set_named_property(env, o, "spi", v);
  napi_create_uint32(env, sa->reqid, &v); napi_set_named_property(env, o, "reqid", v);
  napi_get_boolean(env, atomic_load(&((esp_sa *)sa)->active), &v); napi_set_named_property(env, o, "active", v);
  set_u64(env, o, "packets", atomic_load(&((esp_sa *)sa)->packets));
  set_u64(env, o, "bytes", atomic_load(&((esp_sa *)sa)->bytes));
  if (sa->dir == ESP_DIR_OUT) set_u64(env, o, "seq", atomic_load(&((esp_sa *)sa)->seq));
  else {
    pthread_mutex_lock(&((esp_sa *)sa)->replay_lock);
    uint64_t top = sa->top;
    pthread_mutex_unlock(&((esp_sa *)sa)->replay_lock);
    set_u64(env, o, "seq", top);
  }
  napi_get_boolean(env, atomic_load(&((esp_sa *)sa)->soft_fired), &v); napi_set_named_property(env, o, "softExpired", v);
  napi_get_boolean(env, atomic_load(&((esp_sa *)sa)->hard_fired), &v); napi_set_named_property(env, o, "hardExpired", v);
  int64_t last = atomic_load(&((esp_sa *)sa)->last_use_ms);
  if (last) napi_create_int64(env, last, &v); else napi_get_null(env, &v);
  napi_set_named_property(env, o, "lastUseMs", v);
  napi_create_object(env, &drops);
  for (int i = 0; i < ESP_DROP_N; i++) set_u64(env, drops, DROP_NAMES[i], atomic_load(&((esp_sa *)sa)->drops[i]));
  napi_set_named_property(env, o, "drops", drops);
  napi_set_element(env, a->arr, a->n++, o);
}

napi_value esp_napi_stats(napi_env env, napi_callback_info info) {
  napi_value argv[1], out, g;
  esp_napi *s = engine_arg(env, info, 1, argv, "espStats(h)");
  if (s == NULL) return NULL;
  napi_create_object(env, &out);
  napi_create_object(env, &g);
  for (int i = 0; i < ESP_G_N; i++) set_u64(env, g, G_NAMES[i], atomic_load(&s->e.g[i]));
  napi_set_named_property(env, out, "counters", g);
  /* The offloads in use (esp_offload.c's probes; udpGso turns false if the kernel refused it). */
  napi_value off, v;
  napi_create_object(env, &off);
  napi_get_boolean(env, atomic_load(&s->e.udp_gso), &v); napi_set_named_property(env, off, "udpGso", v);
  napi_get_boolean(env, s->e.udp_gro, &v); napi_set_named_property(env, off, "udpGro", v);
  napi_get_boolean(env, s->e.tun_vnet, &v); napi_set_named_property(env, off, "tunVnetHdr", v);
  napi_get_boolean(env, (s->e.tun_offload & TUN_F_CSUM) != 0, &v); napi_set_named_property(env, off, "tunCsum", v);
  napi_get_boolean(env, (s->e.tun_offload & (TUN_F_TSO4 | TUN_F_TSO6)) != 0, &v); napi_set_named_property(env, off, "tunTso", v);
  napi_set_named_property(env, out, "offloads", off);
  stats_acc a = { env, NULL, 0 };
  napi_create_array(env, &a.arr);
  esp_each_sa(&s->e, sa_stats, &a);
  napi_set_named_property(env, out, "sas", a.arr);
  return out;
}

typedef struct { stats_acc acc; int dir; uint32_t spi, reqid; } one_acc;

static void sa_stats_one(const esp_sa *sa, void *arg) {
  one_acc *o = arg;
  if (o->acc.n == 0 && sa->dir == o->dir && sa->spi == o->spi && sa->reqid == o->reqid) sa_stats(sa, &o->acc);
}

/*
 * espSaStats(h, direction, spi, reqid): one SA's entry of espStats(h).sas, or null. The walk is in C;
 * only the one SA becomes JS objects (espStats makes every SA's, which a per-SA query did before).
 */
napi_value esp_napi_sa_stats(napi_env env, napi_callback_info info) {
  napi_value argv[4], out;
  esp_napi *s = engine_arg(env, info, 4, argv, "espSaStats(h, direction, spi, reqid)");
  one_acc o = { { env, NULL, 0 }, 0, 0, 0 };
  if (s == NULL || !sa_ref(env, argv, "espSaStats", &o.dir, &o.spi, &o.reqid)) return NULL;
  napi_create_array(env, &o.acc.arr);
  esp_each_sa(&s->e, sa_stats_one, &o);
  if (o.acc.n == 0) { napi_get_null(env, &out); return out; }
  napi_get_element(env, o.acc.arr, 0, &out);
  return out;
}

napi_value esp_napi_send_ike(napi_env env, napi_callback_info info) {
  napi_value argv[4], v, target;
  esp_napi *s = engine_arg(env, info, 4, argv, "espSendIke(h, datagram, address, port)");
  uint8_t *data;
  size_t len;
  if (s == NULL) return NULL;
  napi_create_object(env, &target);
  napi_set_named_property(env, target, "address", argv[2]);
  napi_set_named_property(env, target, "port", argv[3]);
  esp_peer *to = get_peer(env, target);
  if (!get_bytes(env, argv[1], &data, &len) || to == NULL) { free(to); return throw_code(env, "ERR_INVALID_ARG_VALUE", "%s: datagram must be a Uint8Array, address an IP address, port 1..65535", "espSendIke"); }
  ssize_t r = sendto(s->e.udp_fd, data, len, MSG_DONTWAIT, (struct sockaddr *)&to->addr, to->len);
  int e = errno;
  free(to);
  if (r < 0) return throw_errno(env, "espSendIke: sendto", e);
  napi_create_int64(env, r, &v);
  return v;
}

napi_value esp_napi_inject(napi_env env, napi_callback_info info) {
  napi_value argv[2], v;
  esp_napi *s = engine_arg(env, info, 2, argv, "espInject(h, packet)");
  uint8_t *data;
  size_t len;
  if (s == NULL) return NULL;
  if (!get_bytes(env, argv[1], &data, &len)) return throw_code(env, "ERR_INVALID_ARG_VALUE", "%s: packet must be a Uint8Array", "espInject");
  int rc = esp_inject(&s->e, data, len);
  const char *what = rc == 0 ? "sent" : rc > 0 ? DROP_NAMES[rc - 1] : G_NAMES[-rc - 1];
  napi_create_string_utf8(env, what, NAPI_AUTO_LENGTH, &v);
  return v;
}

napi_value esp_napi_open_tun(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2] = { NULL, NULL }, obj, v;
  napi_valuetype t = napi_undefined;
  char name[16] = "", got[16];
  size_t n = 0;
  int vnet = 0, fd = -1, got_vnet = 0;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc >= 1) napi_typeof(env, argv[0], &t);
  if (t == napi_string && (napi_get_value_string_utf8(env, argv[0], name, sizeof name, &n) != napi_ok || n >= sizeof name - 1))
    return throw_code(env, "ERR_INVALID_ARG_VALUE", "%s: name must be shorter than 15 bytes", "espOpenTun(name)");
  if (t != napi_string && t != napi_undefined) return throw_code(env, "ERR_INVALID_ARG_TYPE", "%s: name must be a string", "espOpenTun(name)");
  if (argc >= 2 && argv[1] != NULL && napi_typeof(env, argv[1], &t) == napi_ok && t == napi_object && !get_bool(env, argv[1], "vnetHdr", &vnet))
    return throw_code(env, "ERR_INVALID_ARG_VALUE", "%s: vnetHdr must be a boolean", "espOpenTun");
  int err = esp_open_tun(name, vnet, &fd, got, &got_vnet);
  if (err) return throw_errno(env, "espOpenTun: TUNSETIFF", err);
  napi_create_object(env, &obj);
  napi_create_int32(env, fd, &v); napi_set_named_property(env, obj, "fd", v);
  napi_create_string_utf8(env, got, NAPI_AUTO_LENGTH, &v); napi_set_named_property(env, obj, "name", v);
  napi_get_boolean(env, got_vnet, &v); napi_set_named_property(env, obj, "vnetHdr", v);
  return obj;
}
