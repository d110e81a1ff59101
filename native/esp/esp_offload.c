/*
 * Kernel offloads of the userspace data path, each probed at run time with a fallback:
 *
 *   UDP GSO   setsockopt(SOL_UDP, UDP_SEGMENT) accepted (Linux 4.18): the TX worker sends a run of
 *             equal-size ESP datagrams to one peer as one sendmsg with a UDP_SEGMENT cmsg (the
 *             segment size, a uint16_t); the kernel cuts it (or the NIC does). Else sendmmsg.
 *   UDP GRO   setsockopt(SOL_UDP, UDP_GRO, 1) accepted (Linux 5.0): one receive may hold several
 *             datagrams of one flow, all gso_size long but the last; the UDP_GRO cmsg (an int)
 *             says where to cut. Without it a coalesced skb is cut by the kernel before delivery.
 *   TUN TSO   the TUN fd opened with IFF_VNET_HDR: each read and write starts with a struct
 *             virtio_net_hdr (<linux/virtio_net.h>, 10 bytes, native byte order on a little-endian
 *             host). TUNSETOFFLOAD with TUN_F_CSUM|TUN_F_TSO4|TUN_F_TSO6, else TUN_F_CSUM, else 0:
 *             with TSO the local TCP stack hands over 64 KiB super-packets (gso_type TCPV4/TCPV6,
 *             gso_size the MSS), cut here into MSS segments, each with its IP and TCP headers and
 *             checksums, as the kernel's tcp_gso_segment would; with CSUM a packet may come with
 *             its checksum left partial (VIRTIO_NET_HDR_F_NEEDS_CSUM), completed here. Writes
 *             towards the TUN carry a zeroed header (a plain packet, checksum to be verified).
 *
 * Which offloads the caller allows comes in as ESP_OFF_* flags (espCreate's offloads option), so
 * each can be switched off to compare, or to step around a kernel that mishandles it.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include "esp.h"


#define TCP_FIN 0x01
#define TCP_PSH 0x08
#define TCP_CWR 0x80

int esp_open_tun(const char *name, int vnet, int *fd_out, char out_name[16], int *got_vnet) {
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return errno;
  struct ifreq ifr;
  for (int attempt = vnet ? 0 : 1; attempt < 2; attempt++) {
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (attempt == 0 ? IFF_VNET_HDR : 0);
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &ifr) == 0) {
      *got_vnet = attempt == 0;
      *fd_out = fd;
      memcpy(out_name, ifr.ifr_name, IFNAMSIZ);
      out_name[IFNAMSIZ - 1] = 0;
      return 0;
    }
    if (errno != EINVAL || attempt == 1) break; /* EINVAL: no IFF_VNET_HDR here, try without */
  }
  int e = errno;
  close(fd);
  return e;
}

void esp_offload_probe(esp_engine *e, unsigned want) {
  int zero = 0, one = 1;
  /* A segment size of 0 on the socket is "none": accepted exactly where UDP_SEGMENT exists. */
  if ((want & ESP_OFF_UDP_GSO) && setsockopt(e->udp_fd, SOL_UDP, UDP_SEGMENT, &zero, sizeof zero) == 0) atomic_store(&e->udp_gso, 1);
  if ((want & ESP_OFF_UDP_GRO) && setsockopt(e->udp_fd, SOL_UDP, UDP_GRO, &one, sizeof one) == 0) e->udp_gro = 1;
  if (e->tun_fd < 0) return;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  if (ioctl(e->tun_fd, TUNGETIFF, &ifr) != 0 || !(ifr.ifr_flags & IFF_VNET_HDR)) return;
  e->tun_vnet = 1;
  /* The default size; set in case whoever opened the fd changed it. Failing leaves the default. */
  int hdr = sizeof(struct virtio_net_hdr);
  (void)ioctl(e->tun_fd, TUNSETVNETHDRSZ, &hdr);
  static const unsigned ladder[] = { TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6, TUN_F_CSUM | TUN_F_TSO4, TUN_F_CSUM, 0 };
  for (size_t i = 0; i < sizeof ladder / sizeof ladder[0]; i++) {
    if (!(want & ESP_OFF_TUN_TSO) && (ladder[i] & (TUN_F_TSO4 | TUN_F_TSO6))) continue;
    if (ioctl(e->tun_fd, TUNSETOFFLOAD, (unsigned long)ladder[i]) == 0) { e->tun_offload = ladder[i]; return; }
  }
}

/* ---- checksums (RFC 1071): summed in memory order, so no byte swapping anywhere ---- */

static uint64_t sum_bytes(uint64_t s, const uint8_t *p, size_t n) {
  for (; n >= 4; p += 4, n -= 4) { uint32_t w; memcpy(&w, p, 4); s += w; }
  if (n >= 2) { uint16_t w; memcpy(&w, p, 2); s += w; p += 2; n -= 2; }
  if (n) { uint16_t w = 0; memcpy(&w, p, 1); s += w; } /* odd last byte, padded with zero */
  return s;
}

static uint16_t fold(uint64_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return (uint16_t)s;
}

static void put_csum(uint8_t *field, uint64_t s) { uint16_t c = (uint16_t)~fold(s); memcpy(field, &c, 2); }
static uint16_t be16(uint16_t v) { return (uint16_t)(v >> 8 | v << 8); } /* little-endian hosts only, as the vnet header */
static void put16(uint8_t *p, size_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static void put32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v; }

/* VIRTIO_NET_HDR_F_NEEDS_CSUM: the field at csum_start + csum_offset holds the pseudo-header sum;
 * the rest is summed from csum_start on (what skb_checksum_help does). */
static int complete_csum(uint8_t *p, size_t len, const struct virtio_net_hdr *h) {
  size_t start = h->csum_start, field = start + h->csum_offset;
  if (start >= len || field + 2 > len) return 0;
  uint16_t c = (uint16_t)~fold(sum_bytes(0, p + start, len - start));
  if (c == 0 && h->csum_offset == 6) c = 0xffff; /* UDP: 0 means no checksum (RFC 768) */
  memcpy(p + field, &c, 2);
  return 1;
}

/* One TCP super-packet (IPv4 or IPv6 without extension headers, as the TCP stack builds them)
 * cut into gso_size segments, as tcp_gso_segment does: sequence numbers advance, FIN and PSH stay
 * on the last segment only, CWR on the first only, IPv4 IDs count up, every checksum recomputed. */
static int segment_tcp(const uint8_t *p, size_t len, size_t mss, const esp_sink *k) {
  int v4 = p[0] >> 4 == 4;
  size_t l3 = v4 ? (size_t)(p[0] & 15) * 4 : 40;
  if (len < l3 + 20 || (v4 && l3 < 20) || (v4 ? p[9] : p[6]) != IPPROTO_TCP || (!v4 && p[0] >> 4 != 6)) return -1;
  size_t thl = (size_t)(p[l3 + 12] >> 4) * 4, hlen = l3 + thl;
  if (thl < 20 || hlen > len || mss == 0 || hlen + mss > ESP_MAX_INNER) return -1;
  size_t payload = len - hlen;
  uint32_t seq0 = get32(p + l3 + 4);
  unsigned id0 = (unsigned)p[4] << 8 | p[5];
  uint8_t flags = p[l3 + 13];
  uint64_t pseudo = sum_bytes(0, p + (v4 ? 12 : 8), v4 ? 8 : 32) + be16(IPPROTO_TCP);
  int n = 0;
  for (size_t off = 0; n == 0 || off < payload; off += mss, n++) {
    size_t plen = payload - off < mss ? payload - off : mss;
    uint8_t *o = k->next(k->arg);
    memcpy(o, p, hlen);
    memcpy(o + hlen, p + hlen + off, plen);
    if (v4) {
      put16(o + 2, hlen + plen);
      put16(o + 4, (id0 + (unsigned)n) & 0xffff);
      o[10] = o[11] = 0;
      put_csum(o + 10, sum_bytes(0, o, l3));
    } else put16(o + 4, thl + plen);
    uint8_t *t = o + l3;
    put32(t + 4, seq0 + (uint32_t)off);
    uint8_t f = flags;
    if (off + plen < payload) f &= (uint8_t)~(TCP_FIN | TCP_PSH);
    if (n > 0) f &= (uint8_t)~TCP_CWR;
    t[13] = f;
    t[16] = t[17] = 0;
    put_csum(t + 16, sum_bytes(pseudo + be16((uint16_t)(thl + plen)), t, thl + plen));
    k->push(k->arg, hlen + plen);
  }
  return n;
}

int esp_vnet_split(const uint8_t *buf, size_t len, const esp_sink *k) {
  struct virtio_net_hdr h;
  if (len < sizeof h) return -1;
  memcpy(&h, buf, sizeof h);
  const uint8_t *p = buf + sizeof h;
  len -= sizeof h;
  if (len == 0) return -1;
  uint8_t type = h.gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
  if (type == VIRTIO_NET_HDR_GSO_TCPV4 || type == VIRTIO_NET_HDR_GSO_TCPV6) return segment_tcp(p, len, h.gso_size, k);
  if (type != VIRTIO_NET_HDR_GSO_NONE) return -1;
  /* Cut one byte past the largest inner packet, as a plain TUN read is: esp_encap drops it. */
  size_t n = len > ESP_MAX_INNER + 1 ? ESP_MAX_INNER + 1 : len;
  uint8_t *o = k->next(k->arg);
  memcpy(o, p, n);
  if ((h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && n == len && !complete_csum(o, len, &h)) return -1;
  k->push(k->arg, n);
  return 1;
}
