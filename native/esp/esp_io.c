/*
 * The two worker threads of the engine and their batched I/O. Each has its own EVP context per
 * SA (esp_crypto.c), so no crypto state is shared; each holds the published table between
 * esp_enter and esp_leave (esp_engine.c's epoch-based reclamation).
 *
 * RX: recvmmsg batches from the UDP socket. With UDP GRO (esp_offload.c) one receive may hold
 * several datagrams of one flow, gso_size bytes each but the last; they are cut apart here and
 * each handled as if received alone: NAT-keepalive, IKE (non-ESP marker, up to JS unchanged), or
 * ESP, decapsulated and written to the TUN device (behind a zeroed struct virtio_net_hdr when the
 * TUN has IFF_VNET_HDR).
 *
 * TX: TUN reads (TUN has no batch read). With IFF_VNET_HDR and TSO a read may be a 64 KiB TCP
 * super-packet, cut into MSS segments (esp_vnet_split) straight into the batch's slots; each
 * packet is encapsulated in its slot. The batch goes out in one sendmmsg; with UDP GSO each run
 * of equal-size ESP datagrams to one peer (the last may be shorter) is one message with a
 * UDP_SEGMENT cmsg, so a super-packet read from the TUN leaves as one super-datagram.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <linux/virtio_net.h>
#include "esp.h"

/* One GSO send: at most UDP_MAX_SEGMENTS (64 before Linux 6.x raised it) datagrams, and a UDP
 * payload below IPv4's 65,507 bytes. */
#define ESP_GSO_MAX_SEGS 64
#define ESP_GSO_MAX_BYTES 65000

static void gcount(esp_engine *e, int which, uint64_t n) { atomic_fetch_add_explicit(&e->g[which], n, memory_order_relaxed); }

int esp_wait_readable(esp_engine *e, int fd) {
  struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = e->wake_fd, .events = POLLIN } };
  while (!atomic_load(&e->stop)) {
    int r = poll(p, 2, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return 0;
    return !atomic_load(&e->stop);
  }
  return 0;
}

/* ---- RX ---- */

/* One UDP payload: NAT-keepalive, IKE (non-ESP marker), or ESP. */
static void rx_one(esp_engine *e, const esp_table *t, uint8_t *buf, size_t len, const struct sockaddr_storage *from) {
  if (len == 1 && buf[0] == ESP_NATT_KEEPALIVE) { gcount(e, ESP_G_KEEPALIVE, 1); return; }
  if (len >= ESP_NON_ESP_MARKER_LEN && buf[0] == 0 && buf[1] == 0 && buf[2] == 0 && buf[3] == 0) {
    if (e->hooks.up) e->hooks.up(e, ESP_UP_IKE, buf, len, from);
    return;
  }
  size_t inner_off = 0, inner_len = 0;
  if (esp_decap(e, t, buf, len, from, &inner_off, &inner_len) != 0) return;
  if (e->tun_fd < 0) { if (e->hooks.up) e->hooks.up(e, ESP_UP_INNER, buf + inner_off, inner_len, from); return; }
  uint8_t *out = buf + inner_off;
  if (e->tun_vnet) {
    /* The ESP header and IV before the inner packet (≥ 16 bytes) are spent: the header goes there. */
    out -= sizeof(struct virtio_net_hdr);
    memset(out, 0, sizeof(struct virtio_net_hdr)); /* VIRTIO_NET_HDR_GSO_NONE, no flags */
    inner_len += sizeof(struct virtio_net_hdr);
  }
  ssize_t w;
  do w = write(e->tun_fd, out, inner_len); while (w < 0 && errno == EINTR);
  if (w < 0) gcount(e, ESP_G_TUN_WRITE_ERRORS, 1);
}

/* The UDP_GRO cmsg of a receive: the size of each coalesced datagram, 0 if not coalesced. */
static size_t gro_size(struct msghdr *h) {
  for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
    if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) { int v; memcpy(&v, CMSG_DATA(c), sizeof v); return v > 0 ? (size_t)v : 0; }
  }
  return 0;
}

typedef union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } rx_ctl;

void *esp_rx_main(void *arg) {
  esp_engine *e = arg;
  /* 32 x 64 KiB of address space (a GRO receive fills up to 64 KiB); only what datagrams fill
   * becomes resident. */
  uint8_t *bufs = malloc((size_t)ESP_BATCH * ESP_RX_BUF_LEN);
  struct mmsghdr msgs[ESP_BATCH];
  struct iovec iov[ESP_BATCH];
  struct sockaddr_storage from[ESP_BATCH];
  rx_ctl ctl[ESP_BATCH];
  if (bufs == NULL) return NULL;
  while (esp_wait_readable(e, e->udp_fd)) {
    for (int round = 0; round < 64 && !atomic_load(&e->stop); round++) { /* then poll again: stop is seen */
      memset(msgs, 0, sizeof msgs);
      for (int i = 0; i < ESP_BATCH; i++) {
        iov[i].iov_base = bufs + (size_t)i * ESP_RX_BUF_LEN;
        iov[i].iov_len = ESP_RX_BUF_LEN;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &from[i];
        msgs[i].msg_hdr.msg_namelen = sizeof from[i];
        if (e->udp_gro) { msgs[i].msg_hdr.msg_control = ctl[i].buf; msgs[i].msg_hdr.msg_controllen = sizeof ctl[i].buf; }
      }
      int n = recvmmsg(e->udp_fd, msgs, ESP_BATCH, MSG_DONTWAIT, NULL);
      if (n <= 0) break;
      uint64_t datagrams = 0;
      esp_enter(e, ESP_SLOT_RX);
      const esp_table *t = atomic_load(&e->table);
      for (int i = 0; i < n; i++) {
        uint8_t *p = iov[i].iov_base;
        size_t len = msgs[i].msg_len, seg = e->udp_gro ? gro_size(&msgs[i].msg_hdr) : 0;
        if (seg == 0 || seg >= len) { rx_one(e, t, p, len, &from[i]); datagrams++; continue; }
        uint64_t k = 0;
        for (size_t off = 0; off < len; off += seg, k++) rx_one(e, t, p + off, len - off < seg ? len - off : seg, &from[i]);
        gcount(e, ESP_G_GRO_RECEIVES, 1);
        gcount(e, ESP_G_GRO_DATAGRAMS, k);
        datagrams += k;
      }
      esp_leave(e, ESP_SLOT_RX);
      gcount(e, ESP_G_RX_DATAGRAMS, datagrams);
      if (n < ESP_BATCH) break;
    }
  }
  free(bufs);
  return NULL;
}

/* ---- TX ---- */

typedef union { char buf[CMSG_SPACE(sizeof(uint16_t))]; struct cmsghdr align; } tx_ctl;

/* ESP packets waiting for the next sendmmsg: packet i is iov[i] (in slot i of bufs), sent with
 * sa[i] to peer[i]; a message m carries packets first[m] .. first[m] + cnt[m] - 1. */
typedef struct {
  esp_engine *e;
  const esp_table *t;
  uint8_t *bufs;
  int n;
  struct iovec iov[ESP_TX_SLOTS];
  esp_sa *sa[ESP_TX_SLOTS];
  const esp_peer *peer[ESP_TX_SLOTS];
  struct mmsghdr msgs[ESP_TX_SLOTS];
  tx_ctl ctl[ESP_TX_SLOTS];
  int first[ESP_TX_SLOTS], cnt[ESP_TX_SLOTS];
} tx_batch;

static void send_failed(tx_batch *b, int i) {
  gcount(b->e, ESP_G_SEND_ERRORS, 1);
  atomic_fetch_add_explicit(&b->sa[i]->drops[ESP_DROP_IO], 1, memory_order_relaxed);
}

/* A GSO message the kernel refused, one datagram at a time. */
static void send_each(tx_batch *b, int first, int cnt) {
  for (int i = first; i < first + cnt; i++) {
    ssize_t r;
    do r = sendto(b->e->udp_fd, b->iov[i].iov_base, b->iov[i].iov_len, 0, (const struct sockaddr *)&b->peer[i]->addr, b->peer[i]->len); while (r < 0 && errno == EINTR);
    if (r < 0) send_failed(b, i); else gcount(b->e, ESP_G_TX_DATAGRAMS, 1);
  }
}

static void tx_flush(tx_batch *b) {
  esp_engine *e = b->e;
  int gso = atomic_load_explicit(&e->udp_gso, memory_order_relaxed), m = 0;
  for (int i = 0; i < b->n; m++) {
    size_t seg = b->iov[i].iov_len, total = seg;
    int j = i + 1;
    /* A run: one peer, every datagram seg bytes but the last, which may be shorter. */
    while (gso && j < b->n && j - i < ESP_GSO_MAX_SEGS && b->peer[j] == b->peer[i] && b->iov[j].iov_len <= seg && total + b->iov[j].iov_len <= ESP_GSO_MAX_BYTES) {
      total += b->iov[j].iov_len;
      if (b->iov[j++].iov_len < seg) break;
    }
    struct msghdr *h = &b->msgs[m].msg_hdr;
    memset(&b->msgs[m], 0, sizeof b->msgs[m]);
    h->msg_name = (void *)&b->peer[i]->addr;
    h->msg_namelen = b->peer[i]->len;
    h->msg_iov = &b->iov[i];
    h->msg_iovlen = (size_t)(j - i);
    if (j - i > 1) {
      /* cmsg SOL_UDP/UDP_SEGMENT, a uint16_t: the size the kernel cuts the payload into. */
      h->msg_control = b->ctl[m].buf;
      h->msg_controllen = sizeof b->ctl[m].buf;
      struct cmsghdr *c = CMSG_FIRSTHDR(h);
      c->cmsg_level = SOL_UDP;
      c->cmsg_type = UDP_SEGMENT;
      c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      uint16_t s16 = (uint16_t)seg;
      memcpy(CMSG_DATA(c), &s16, sizeof s16);
    }
    b->first[m] = i;
    b->cnt[m] = j - i;
    i = j;
  }
  for (int off = 0; off < m;) {
    int s = sendmmsg(e->udp_fd, b->msgs + off, (unsigned)(m - off), 0);
    if (s < 0 && errno == EINTR) continue;
    if (s < 0) {
      int err = errno;
      if (b->cnt[off] > 1 && (err == EIO || err == EINVAL || err == EMSGSIZE)) {
        /* EIO: no checksum offload on the way out (udp_send_skb), so GSO is off from now on;
         * EINVAL/EMSGSIZE: this run is larger than the path allows, sent datagram by datagram. */
        gcount(e, ESP_G_GSO_FALLBACKS, 1);
        if (err == EIO) atomic_store(&e->udp_gso, 0);
        send_each(b, b->first[off], b->cnt[off]);
      } else for (int i = 0; i < b->cnt[off]; i++) send_failed(b, b->first[off] + i); /* no route…: count, go on */
      off++;
      continue;
    }
    for (int k = off; k < off + s; k++) {
      gcount(e, ESP_G_TX_DATAGRAMS, (uint64_t)b->cnt[k]);
      if (b->cnt[k] > 1) { gcount(e, ESP_G_GSO_SENDS, 1); gcount(e, ESP_G_GSO_DATAGRAMS, (uint64_t)b->cnt[k]); }
    }
    off += s;
  }
  b->n = 0;
}

/* esp_sink: where the next inner packet goes (the free slot's inner area; a full batch is sent first). */
static uint8_t *tx_next(void *arg) {
  tx_batch *b = arg;
  if (b->n == ESP_TX_SLOTS) tx_flush(b);
  return b->bufs + (size_t)b->n * ESP_BUF_LEN + ESP_HEADROOM;
}

/* esp_sink: the packet in the free slot is complete; encapsulate it there. */
static void tx_push(void *arg, size_t len) {
  tx_batch *b = arg;
  uint8_t *buf = b->bufs + (size_t)b->n * ESP_BUF_LEN;
  size_t out_off = 0, out_len = 0;
  esp_sa *sa = NULL;
  if (esp_encap(b->e, b->t, ESP_SLOT_TX, buf, len, &out_off, &out_len, &sa) != 0) return;
  b->iov[b->n].iov_base = buf + out_off;
  b->iov[b->n].iov_len = out_len;
  b->sa[b->n] = sa;
  b->peer[b->n] = atomic_load(&sa->peer);
  b->n++;
}

void *esp_tx_main(void *arg) {
  esp_engine *e = arg;
  tx_batch *b = calloc(1, sizeof *b);
  uint8_t *bufs = malloc((size_t)ESP_TX_SLOTS * ESP_BUF_LEN);
  /* With IFF_VNET_HDR a read is a struct virtio_net_hdr and a packet of up to 64 KiB (TSO). */
  uint8_t *super = e->tun_vnet ? malloc(ESP_TUN_READ_LEN) : NULL;
  if (b == NULL || bufs == NULL || (e->tun_vnet && super == NULL)) { free(b); free(bufs); free(super); return NULL; }
  b->e = e;
  b->bufs = bufs;
  esp_sink sink = { tx_next, tx_push, b };
  while (esp_wait_readable(e, e->tun_fd)) {
    for (int round = 0, more = 1; more && round < 64 && !atomic_load(&e->stop); round++) {
      esp_enter(e, ESP_SLOT_TX);
      b->t = atomic_load(&e->table);
      for (int reads = 0; reads < ESP_BATCH; reads++) {
        ssize_t r = super ? read(e->tun_fd, super, ESP_TUN_READ_LEN) : read(e->tun_fd, tx_next(b), ESP_MAX_INNER + 1);
        if (r < 0 && errno == EINTR) { reads--; continue; }
        if (r < 0) { if (errno != EAGAIN && errno != EWOULDBLOCK) gcount(e, ESP_G_TUN_READ_ERRORS, 1); more = 0; break; }
        if (super == NULL) { tx_push(b, (size_t)r); continue; }
        int k = esp_vnet_split(super, (size_t)r, &sink);
        if (k < 0) gcount(e, ESP_G_MALFORMED_OUT, 1);
        else if (((const struct virtio_net_hdr *)super)->gso_type != VIRTIO_NET_HDR_GSO_NONE) { gcount(e, ESP_G_TUN_SUPER, 1); gcount(e, ESP_G_TUN_SEGMENTS, (uint64_t)k); }
      }
      tx_flush(b);
      esp_leave(e, ESP_SLOT_TX);
    }
  }
  free(super);
  free(bufs);
  free(b);
  return NULL;
}
