/*
 * RFC 4303 processing of one packet, shared by the worker threads and the JS thread's inject:
 * outbound policy lookup + encapsulation (§3.1, §3.3), inbound SA lookup, length and alignment,
 * anti-replay (§3.4.3, esp_replay.c, with ESN), ICV check before anything of the payload is
 * used (§3.4.4), pad and next-header checks (§2.4, §2.6), and the inner packet checked against the
 * SA's traffic selectors (RFC 4301 §5.2). No system calls here except the clock.
 *
 * Return codes of esp_encap / esp_decap: 0 (or an offset) on success, ESP_DROP_x + 1 for a drop
 * charged to an SA, -(ESP_G_x + 1) for an engine-wide drop. The counter is bumped here.
 */
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include "esp.h"

#define DROP_SA(sa, r) do { atomic_fetch_add_explicit(&(sa)->drops[r], 1, memory_order_relaxed); return (r) + 1; } while (0)
#define DROP_G(e, r) do { atomic_fetch_add_explicit(&(e)->g[r], 1, memory_order_relaxed); return -((r) + 1); } while (0)

int64_t esp_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static void put32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v; }

/* ---- selectors and inner packets ---- */

int esp_ts_match(const esp_ts *ts, int family, const uint8_t *addr, int proto, int port, int ports_known) {
  if (ts->family != family) return 0;
  size_t n = family == 4 ? 4 : 16;
  if (memcmp(addr, ts->lo, n) < 0 || memcmp(addr, ts->hi, n) > 0) return 0;
  if (ts->proto != 0 && ts->proto != proto) return 0;
  if (ts->port_lo == 0 && ts->port_hi == 65535) return 1;
  /* A narrowed port range cannot match a packet whose ports we do not know (a later fragment). */
  return ports_known && port >= ts->port_lo && port <= ts->port_hi;
}

static int has_ports(int proto) { return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP || proto == 136 /* UDP-Lite */; }

int esp_parse_inner(const uint8_t *p, size_t len, esp_inner *o) {
  memset(o, 0, sizeof *o);
  if (len < 1) return 0;
  size_t l4;
  if (p[0] >> 4 == 4) {
    size_t ihl = (size_t)(p[0] & 15) * 4;
    if (len < 20 || ihl < 20) return 0;
    size_t total = (size_t)p[2] << 8 | p[3];
    if (total < ihl || total > len) return 0;
    o->family = 4; o->src = p + 12; o->dst = p + 16; o->proto = p[9]; o->len = total;
    l4 = ((p[6] & 0x1f) << 8 | p[7]) == 0 ? ihl : 0; /* later fragments carry no ports */
  } else if (p[0] >> 4 == 6) {
    if (len < 40) return 0;
    size_t total = 40 + ((size_t)p[4] << 8 | p[5]);
    if (total > len) return 0;
    o->family = 6; o->src = p + 8; o->dst = p + 24; o->proto = p[6]; o->len = total;
    l4 = 40; /* extension headers are not walked: their packets match only port-any selectors */
  } else return 0;
  if (l4 && has_ports(o->proto) && o->len >= l4 + 4) {
    o->sport = p[l4] << 8 | p[l4 + 1];
    o->dport = p[l4 + 2] << 8 | p[l4 + 3];
    o->ports_known = 1;
  }
  return 1;
}

esp_sa *esp_lookup_in(const esp_table *t, uint32_t spi) {
  size_t lo = 0, hi = t->nin;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    uint32_t s = t->in[mid]->spi;
    if (s == spi) return t->in[mid];
    if (s < spi) lo = mid + 1; else hi = mid;
  }
  return NULL;
}

/* First policy (by priority) whose selectors match; *found tells a policy without SA apart. */
static const esp_policy *match_policy(const esp_table *t, const esp_inner *in, size_t *idx) {
  for (size_t i = 0; i < t->npol; i++) {
    const esp_policy *p = &t->pol[i];
    if (esp_ts_match(&p->src, in->family, in->src, in->proto, in->sport, in->ports_known)
        && esp_ts_match(&p->dst, in->family, in->dst, in->proto, in->dport, in->ports_known)) { *idx = i; return p; }
  }
  return NULL;
}

esp_sa *esp_lookup_out(const esp_table *t, const esp_inner *in) {
  size_t i;
  return match_policy(t, in, &i) ? t->pol_sa[i] : NULL;
}

void esp_fire_expire(esp_engine *e, esp_sa *sa, int hard, const char *reason) {
  atomic_int *flag = hard ? &sa->hard_fired : &sa->soft_fired;
  if (atomic_exchange(flag, 1) == 0 && e->hooks.expire) e->hooks.expire(e, sa, hard, reason);
}

/* Soft/hard byte and packet limits after a packet was counted (XFRM's semantics: the packet that
 * reaches a hard limit still goes; the next is dropped). */
static void check_limits(esp_engine *e, esp_sa *sa, uint64_t packets, uint64_t bytes) {
  if ((sa->hard_packets && packets >= sa->hard_packets) || (sa->hard_bytes && bytes >= sa->hard_bytes))
    esp_fire_expire(e, sa, 1, sa->hard_packets && packets >= sa->hard_packets ? "packets" : "bytes");
  else if ((sa->soft_packets && packets >= sa->soft_packets) || (sa->soft_bytes && bytes >= sa->soft_bytes))
    esp_fire_expire(e, sa, 0, sa->soft_packets && packets >= sa->soft_packets ? "packets" : "bytes");
}

static void count(esp_engine *e, esp_sa *sa, size_t len) {
  uint64_t p = atomic_fetch_add_explicit(&sa->packets, 1, memory_order_relaxed) + 1;
  uint64_t b = atomic_fetch_add_explicit(&sa->bytes, len, memory_order_relaxed) + len;
  atomic_store_explicit(&sa->last_use_ms, esp_now_ms(), memory_order_relaxed);
  check_limits(e, sa, p, b);
}

/* ---- outbound, RFC 4303 §3.1.2 / §3.3 ---- */

int esp_encap(esp_engine *e, const esp_table *t, int slot, uint8_t *buf, size_t len, size_t *out_off, size_t *out_len, esp_sa **sa_out) {
  uint8_t *inner = buf + ESP_HEADROOM;
  esp_inner in;
  *sa_out = NULL;
  if (!esp_parse_inner(inner, len, &in)) DROP_G(e, ESP_G_MALFORMED_OUT);
  size_t pi;
  if (match_policy(t, &in, &pi) == NULL) DROP_G(e, ESP_G_NO_POLICY);
  esp_sa *sa = t->pol_sa[pi];
  if (sa == NULL) DROP_G(e, ESP_G_NO_SA);
  *sa_out = sa;
  if (len > ESP_MAX_INNER) DROP_SA(sa, ESP_DROP_TOO_BIG);
  if (atomic_load_explicit(&sa->hard_fired, memory_order_relaxed)) DROP_SA(sa, ESP_DROP_EXPIRED);
  /* §3.3.3: the counter never cycles — 2^32 - 1 (2^64 - 1 with ESN) is the last number sent.
   * A compare-and-swap, so two sending threads can never both pass the end. */
  uint64_t last = sa->esn ? UINT64_MAX : UINT32_MAX;
  uint64_t cur = atomic_load_explicit(&sa->seq, memory_order_relaxed);
  do {
    if (cur >= last) { esp_fire_expire(e, sa, 1, "sequence"); DROP_SA(sa, ESP_DROP_SEQ_EXHAUSTED); }
  } while (!atomic_compare_exchange_weak_explicit(&sa->seq, &cur, cur + 1, memory_order_relaxed, memory_order_relaxed));
  uint64_t seq = cur + 1;
  /* RFC 4303 §2.4: payload + pad + 2 aligned to the block (4 for AEAD, 16 for CBC); pad bytes 1, 2, 3, … */
  size_t pad = (sa->block - (len + ESP_TRAILER_LEN) % sa->block) % sa->block;
  uint8_t *tr = inner + len;
  for (size_t i = 0; i < pad; i++) tr[i] = (uint8_t)(i + 1);
  tr[pad] = (uint8_t)pad;
  tr[pad + 1] = in.family == 4 ? ESP_NH_IPV4 : ESP_NH_IPV6;
  size_t clen = len + pad + ESP_TRAILER_LEN;
  uint8_t *pkt = inner - sa->iv_len - ESP_HDR_LEN;
  put32(pkt, sa->spi);
  put32(pkt + ESP_SPI_LEN, (uint32_t)seq); /* the low 32 bits only, with ESN too (§2.2.1) */
  if (!esp_seal(sa, slot, pkt, clen, seq)) DROP_SA(sa, ESP_DROP_IO);
  *out_off = (size_t)(pkt - buf);
  *out_len = ESP_HDR_LEN + sa->iv_len + clen + sa->icv_len;
  count(e, sa, len);
  return 0;
}

/* ---- inbound, RFC 4303 §3.4 ---- */

/* Same address and port? Families other than IPv4/IPv6 never match. */
static int same_endpoint(const esp_peer *p, const struct sockaddr_storage *from) {
  if (p->addr.ss_family != from->ss_family) return 0;
  if (from->ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)&p->addr, *b = (const struct sockaddr_in *)from;
    return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
  }
  if (from->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&p->addr, *b = (const struct sockaddr_in6 *)from;
    return a->sin6_port == b->sin6_port && memcmp(&a->sin6_addr, &b->sin6_addr, sizeof a->sin6_addr) == 0;
  }
  return 0;
}

/* An authenticated packet from another address or port than the SA's peer: the NAT in front of
 * the peer changed its mapping (RFC 7296 §2.23, RFC 3948). The control plane decides and moves
 * the SAs, as it does for the kernel's XFRM_MSG_MAPPING; here only a report, at most one a second
 * per SA so a flood of packets is not a flood of events. Only after the ICV verified: an
 * unauthenticated datagram must not redirect our traffic. */
#define ESP_MAPPING_REPORT_MS 1000
static void check_mapping(esp_engine *e, esp_sa *sa, const struct sockaddr_storage *from) {
  const esp_peer *p = atomic_load_explicit(&sa->peer, memory_order_acquire);
  if (p == NULL || from == NULL || e->hooks.mapping == NULL || same_endpoint(p, from)) return;
  int64_t now = esp_now_ms();
  int_fast64_t last = atomic_load_explicit(&sa->last_mapping_ms, memory_order_relaxed);
  if (now - last < ESP_MAPPING_REPORT_MS && now >= last) return;
  if (!atomic_compare_exchange_strong(&sa->last_mapping_ms, &last, now)) return;
  e->hooks.mapping(e, sa, from);
}

int esp_decap(esp_engine *e, const esp_table *t, uint8_t *buf, size_t len, const struct sockaddr_storage *from, size_t *inner_off, size_t *inner_len) {
  if (len < ESP_HDR_LEN) DROP_G(e, ESP_G_RUNT);
  uint32_t spi = get32(buf), seql = get32(buf + ESP_SPI_LEN);
  esp_sa *sa = esp_lookup_in(t, spi);
  if (sa == NULL) DROP_G(e, ESP_G_UNKNOWN_SPI);
  size_t head = ESP_HDR_LEN + sa->iv_len;
  /* Smallest packet: header, IV, the 2 trailer bytes padded to a block, ICV; whole blocks only. */
  if (len < head + sa->block + sa->icv_len || (len - head - sa->icv_len) % sa->block != 0) DROP_SA(sa, ESP_DROP_TRUNCATED);
  size_t clen = len - head - sa->icv_len;
  if (clen > ESP_MAX_CIPHERTEXT) DROP_SA(sa, ESP_DROP_TOO_BIG); /* before any crypto: no work for junk */
  if (atomic_load_explicit(&sa->hard_fired, memory_order_relaxed)) DROP_SA(sa, ESP_DROP_EXPIRED);
  uint64_t seq = 0;
  pthread_mutex_lock(&sa->replay_lock);
  int fresh = esp_replay_infer(sa, seql, &seq) && esp_replay_check(sa, seq); /* before decrypting: replays cost no crypto */
  pthread_mutex_unlock(&sa->replay_lock);
  if (!fresh) DROP_SA(sa, ESP_DROP_REPLAY);
  /* With ESN a wrong guess of the high bits fails here too (they are in the ICV, Appendix A2.2). */
  if (!esp_open(sa, ESP_SLOT_RX, buf, clen, (uint32_t)(seq >> 32))) DROP_SA(sa, ESP_DROP_AUTH);
  /* Verified: record the sequence number (checked again, another packet may have taken it). */
  pthread_mutex_lock(&sa->replay_lock);
  fresh = esp_replay_check(sa, seq);
  if (fresh) esp_replay_update(sa, seq);
  pthread_mutex_unlock(&sa->replay_lock);
  if (!fresh) DROP_SA(sa, ESP_DROP_REPLAY);
  check_mapping(e, sa, from);
  uint8_t *c = buf + head;
  uint8_t padlen = c[clen - 2], nh = c[clen - 1];
  if ((size_t)padlen + ESP_TRAILER_LEN > clen) DROP_SA(sa, ESP_DROP_PAD);
  size_t plen = clen - ESP_TRAILER_LEN - padlen;
  for (size_t i = 0; i < padlen; i++) if (c[plen + i] != (uint8_t)(i + 1)) DROP_SA(sa, ESP_DROP_PAD);
  if (nh == ESP_NH_NONE) DROP_SA(sa, ESP_COUNT_DUMMY);
  if (nh != ESP_NH_IPV4 && nh != ESP_NH_IPV6) DROP_SA(sa, ESP_DROP_NEXT_HEADER);
  esp_inner in;
  if (!esp_parse_inner(c, plen, &in) || in.family != (nh == ESP_NH_IPV4 ? 4 : 6)) DROP_SA(sa, ESP_DROP_MALFORMED);
  int src_ok = 0, dst_ok = 0;
  for (int i = 0; i < sa->nsrc && !src_ok; i++) src_ok = esp_ts_match(&sa->src[i], in.family, in.src, in.proto, in.sport, in.ports_known);
  for (int i = 0; i < sa->ndst && !dst_ok; i++) dst_ok = esp_ts_match(&sa->dst[i], in.family, in.dst, in.proto, in.dport, in.ports_known);
  if (!src_ok || !dst_ok) DROP_SA(sa, ESP_DROP_SELECTOR);
  *inner_off = head;
  *inner_len = in.len; /* TFC padding after the inner packet (§2.7) is dropped here */
  count(e, sa, in.len);
  return 0;
}
