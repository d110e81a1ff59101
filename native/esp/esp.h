/*
 * Userspace ESP data path (DESIGN.md §5 "userspace"): ESP in UDP, RFC 4303 + RFC 3948,
 * for kernels without ESP. Per-packet work stays on the engine's own threads; JavaScript only
 * installs SAs and policies, reads counters and receives events (IKE datagrams, expires).
 *
 * Files:
 *   esp.h          types shared by the C files (this file)
 *   esp_crypto.c   seal/open with OpenSSL EVP: AEAD (AES-GCM-16 RFC 4106, ChaCha20-Poly1305 RFC 7634)
 *                  and AES-CBC (RFC 3602) + HMAC-SHA2 (RFC 4868), with or without ESN
 *   esp_replay.c   anti-replay window and ESN high-bit inference (RFC 4303 §3.4.3, Appendix A)
 *   esp_packet.c   RFC 4303 encapsulation/decapsulation, traffic selectors
 *   esp_engine.c   SA/policy table published by pointer swap, epoch-based reclamation, engine lifetime
 *   esp_io.c       the two worker threads: batched UDP and TUN I/O, UDP GSO/GRO, TUN super-packets
 *   esp_offload.c  run-time probes of the offloads (UDP_SEGMENT, UDP_GRO, IFF_VNET_HDR, TUNSETOFFLOAD),
 *                  TCP segmentation of TUN super-packets, checksums
 *   esp_napi.c     the N-API surface: engine lifetime, the socket, events up to JS (src/esp/native.ts types it)
 *   esp_napi_sa.c  the N-API control-plane calls: SAs, policies, stats, sendIke, inject
 *   esp_napi.h     what the two N-API files share
 *
 * Not done yet: coalescing decapsulated TCP segments into one TUN write (GRO towards the TUN),
 * more than one RX and one TX worker, a policy trie (policies are scanned in priority order).
 */
#ifndef KIPSEC_ESP_H
#define KIPSEC_ESP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <openssl/evp.h>

/* UDP GSO/GRO socket options (include/uapi/linux/udp.h) for libc headers older than them. */
#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

/* RFC 4303 §2 field sizes. IV and ICV per suite (esp_suite_layout): AEAD 8-byte IV and 16-byte
 * ICV (RFC 4106 §3.1, RFC 7634 §2); AES-CBC a 16-byte IV (RFC 3602 §3) and the HMAC truncated
 * to 16, 24 or 32 bytes (RFC 4868 §2.3). */
#define ESP_SPI_LEN 4
#define ESP_SEQ_LEN 4
#define ESP_HDR_LEN (ESP_SPI_LEN + ESP_SEQ_LEN)
#define ESP_AEAD_IV_LEN 8
#define ESP_AEAD_ICV_LEN 16
#define ESP_CBC_IV_LEN 16
#define ESP_MAX_IV_LEN 16
#define ESP_MAX_ICV_LEN 32
#define ESP_SALT_LEN 4
#define ESP_TRAILER_LEN 2 /* pad length + next header */
/* Bytes before the inner packet (the largest header + IV) and the most after it when sending
 * (pad ≤ 15 for a 16-byte block). The ESP packet starts ESP_HEADROOM - header - IV into a buffer. */
#define ESP_HEADROOM (ESP_HDR_LEN + ESP_MAX_IV_LEN)
#define ESP_TAILROOM (15 + ESP_TRAILER_LEN + ESP_MAX_ICV_LEN)
/* RFC 3948 §2.2: a UDP payload starting with four zero bytes is IKE (the non-ESP marker). */
#define ESP_NON_ESP_MARKER_LEN 4
/* RFC 3948 §2.3: NAT-keepalive is one byte 0xFF. */
#define ESP_NATT_KEEPALIVE 0xff

/* Next header values (IANA protocol numbers) an ESP tunnel may carry, RFC 4303 §2.6. */
#define ESP_NH_IPV4 4
#define ESP_NH_IPV6 41
#define ESP_NH_NONE 59 /* dummy packet, RFC 4303 §2.6: discarded after verification */

/* Algorithms, the numbers src/esp/native.ts passes. */
#define ESP_ALG_AES_GCM_16 1
#define ESP_ALG_CHACHA20_POLY1305 2
#define ESP_ALG_AES_CBC_HMAC_SHA256 3 /* HMAC-SHA2-256-128 */
#define ESP_ALG_AES_CBC_HMAC_SHA384 4 /* HMAC-SHA2-384-192 */
#define ESP_ALG_AES_CBC_HMAC_SHA512 5 /* HMAC-SHA2-512-256 */
#define ESP_ALG_IS_AEAD(a) ((a) == ESP_ALG_AES_GCM_16 || (a) == ESP_ALG_CHACHA20_POLY1305)

/* Packet buffers: an inner packet of at most ESP_MAX_INNER bytes (TUN MTU ≤ 2000 fits). */
#define ESP_MAX_INNER 2048
#define ESP_BUF_LEN (ESP_HEADROOM + ESP_MAX_INNER + ESP_TAILROOM + 64)
/* Receive buffers hold any UDP payload: IKE shares the socket, and IKE_AUTH with certificates
 * runs to kilobytes; a shorter buffer would cut those datagrams. */
#define ESP_RX_BUF_LEN 65536
/* Largest ciphertext accepted: the largest inner packet, RFC 4303 §2.4's most padding, trailer. */
#define ESP_MAX_CIPHERTEXT (ESP_MAX_INNER + 255 + ESP_TRAILER_LEN)
#define ESP_BATCH 32
/* Outbound ESP packets gathered before one sendmmsg: a TUN super-packet of 64 KiB cut at a small
 * MSS still fits (a full batch is sent mid-packet otherwise). */
#define ESP_TX_SLOTS 128
/* Largest TUN read: struct virtio_net_hdr + a 64 KiB TSO super-packet. */
#define ESP_TUN_READ_LEN (65536 + 64)
#define ESP_MAX_TS 8
#define ESP_MAX_REPLAY_WINDOW 65536

/* Crypto context slots: each thread that touches an SA has its own EVP context, keyed once. */
#define ESP_SLOT_JS 0 /* the JS thread (espInject) */
#define ESP_SLOT_RX 1 /* the inbound worker */
#define ESP_SLOT_TX 2 /* the outbound worker */
#define ESP_SLOTS 3

#define ESP_DIR_IN 0
#define ESP_DIR_OUT 1

/* Per-SA drop reasons (and one non-drop count, dummy). Names in esp_napi.c's table. */
enum {
  ESP_DROP_REPLAY,        /* seq 0, already seen, or left of the window */
  ESP_DROP_AUTH,          /* ICV did not verify */
  ESP_DROP_PAD,           /* padding bytes not 1,2,3… or pad length past the payload */
  ESP_DROP_NEXT_HEADER,   /* not 4, 41 or 59 */
  ESP_DROP_SELECTOR,      /* inner packet outside the SA's traffic selectors */
  ESP_DROP_MALFORMED,     /* inner packet not a whole IPv4/IPv6 packet of the next header's family */
  ESP_DROP_TRUNCATED,     /* shorter than header + IV + trailer + ICV, or not block aligned */
  ESP_DROP_EXPIRED,       /* hard packet/byte limit reached */
  ESP_DROP_SEQ_EXHAUSTED, /* outbound sequence number (32- or 64-bit with ESN) would wrap (RFC 4303 §3.3.3) */
  ESP_DROP_TOO_BIG,       /* inner packet larger than ESP_MAX_INNER, inbound ciphertext past ESP_MAX_CIPHERTEXT */
  ESP_DROP_IO,            /* the TUN write or UDP send failed */
  ESP_COUNT_DUMMY,        /* next header 59, verified and discarded: not an error */
  ESP_DROP_N
};

/* Engine-wide counters (no SA to charge). Names in esp_napi.c's table. */
enum {
  ESP_G_RX_DATAGRAMS, ESP_G_TX_DATAGRAMS, ESP_G_IKE, ESP_G_IKE_DROPPED, ESP_G_KEEPALIVE,
  ESP_G_RUNT, ESP_G_UNKNOWN_SPI, ESP_G_NO_POLICY, ESP_G_NO_SA, ESP_G_MALFORMED_OUT,
  ESP_G_TUN_READ_ERRORS, ESP_G_TUN_WRITE_ERRORS, ESP_G_SEND_ERRORS, ESP_G_EVENTS_DROPPED,
  /* Offloads at work: UDP GSO sends (one sendmsg with UDP_SEGMENT) and the datagrams they carried;
   * UDP GRO receives (a coalesced buffer with a gso_size cmsg) and the datagrams split from them;
   * TUN super-packets (a virtio_net_hdr with a GSO type) and the TCP segments cut from them;
   * GSO sends the kernel refused (EIO/EINVAL), sent again one datagram at a time. */
  ESP_G_GSO_SENDS, ESP_G_GSO_DATAGRAMS, ESP_G_GRO_RECEIVES, ESP_G_GRO_DATAGRAMS,
  ESP_G_TUN_SUPER, ESP_G_TUN_SEGMENTS, ESP_G_GSO_FALLBACKS,
  ESP_G_N
};

/* A traffic selector (RFC 7296 §3.13.1): inclusive address range, protocol (0 any), ports. */
typedef struct {
  uint8_t family; /* 4 or 6 */
  uint8_t proto;
  uint16_t port_lo, port_hi;
  uint8_t lo[16], hi[16];
} esp_ts;

/* Outer peer address; replaced whole (and the old one retired) when NAT moves the peer. */
typedef struct {
  struct sockaddr_storage addr;
  socklen_t len;
} esp_peer;

typedef struct esp_sa {
  uint32_t spi;
  uint32_t reqid;
  int dir;
  int alg;
  int esn;                         /* RFC 4303 §2.2.1 extended (64-bit) sequence numbers */
  uint8_t iv_len, icv_len, block;  /* block: the ciphertext alignment (4 for AEAD, 16 for AES-CBC) */
  uint8_t salt[ESP_SALT_LEN];      /* AEAD only */
  EVP_CIPHER_CTX *ctx[ESP_SLOTS];
  EVP_MAC_CTX *mac[ESP_SLOTS];     /* AES-CBC suites: HMAC keyed once */
  /* Outbound: the keys for the JS slot, keyed on the first espInject only (the agent never
   * injects: an EVP context per SA it would never use is ~1 KiB each). key || integrity key. */
  uint8_t *late_key;
  uint8_t late_key_len, late_ikey_len;
  uint64_t order; /* install order: the newest active outbound SA of a reqid wins (as XFRM) */
  /* Outbound: where datagrams go. Inbound (optional): the source they are expected from; an
   * authenticated packet from elsewhere is a NAT mapping change (RFC 7296 §2.23), reported up. */
  _Atomic(esp_peer *) peer;
  atomic_int_fast64_t last_mapping_ms; /* inbound: when the last mapping report went up */
  atomic_int active;        /* outbound: may be chosen by a policy */
  /* Anti-replay (inbound), RFC 4303 §3.4.3: only the RX worker touches it; the lock is for the
   * JS-side reader in stats and for future multi-queue RX. */
  pthread_mutex_t replay_lock;
  uint32_t window;   /* bits, multiple of 64; 0 = no replay check (XFRM's replay-window 0; not with ESN) */
  uint64_t top;      /* highest verified sequence number (64-bit with ESN) */
  uint64_t *bitmap;  /* window bits, bit (seq % window) */
  atomic_uint_fast64_t seq; /* outbound: last sequence number handed out */
  uint64_t seq_start;       /* outbound: seq at install (restored SAs continue) */
  uint64_t soft_packets, hard_packets, soft_bytes, hard_bytes; /* 0 = none */
  atomic_int soft_fired, hard_fired;
  atomic_uint_fast64_t packets, bytes, drops[ESP_DROP_N];
  atomic_int_fast64_t last_use_ms;
  int nsrc, ndst;
  /* Inbound check: inner src ∈ src, dst ∈ dst; allocated to size (a Child SA mostly has one
   * pair: eight fixed slots each were 600 bytes per SA), NULL on outbound SAs. */
  esp_ts *src, *dst;
} esp_sa;

typedef struct {
  uint32_t id;
  uint32_t reqid;
  uint32_t priority; /* lower first, as XFRM */
  esp_ts src, dst;
} esp_policy;

/* What the workers read: immutable once published; replaced whole on every change. */
typedef struct {
  size_t nin;
  esp_sa **in;       /* inbound SAs sorted by SPI */
  size_t npol;
  esp_policy *pol;   /* sorted by priority */
  esp_sa **pol_sa;   /* the outbound SA each policy uses now, or NULL */
} esp_table;

/* Something freed once no worker can still hold it (epoch-based reclamation). */
typedef struct esp_retired {
  struct esp_retired *next;
  void *ptr;
  void (*free_fn)(void *);
  uint64_t epoch;
} esp_retired;

#define ESP_EPOCH_IDLE UINT64_MAX

typedef struct esp_engine esp_engine;

/* Hooks into the N-API side, called from worker threads; they must not block. */
typedef struct {
  /* An IKE datagram (marker included) or, with no TUN, a decapsulated inner packet. */
  void (*up)(esp_engine *e, int kind, const uint8_t *data, size_t len, const struct sockaddr_storage *from);
  void (*expire)(esp_engine *e, const esp_sa *sa, int hard, const char *reason);
  /* An authenticated packet of inbound `sa` came from `from`, not from its expected peer. */
  void (*mapping)(esp_engine *e, const esp_sa *sa, const struct sockaddr_storage *from);
} esp_hooks;

#define ESP_UP_IKE 0
#define ESP_UP_INNER 1

/* Offloads wanted by the caller (espCreate's offloads option); each is probed at start. */
#define ESP_OFF_UDP_GSO 1
#define ESP_OFF_UDP_GRO 2
#define ESP_OFF_TUN_TSO 4
#define ESP_OFF_ALL 7

struct esp_engine {
  int udp_fd;
  int tun_fd; /* -1: inner packets go up to JS (tests) */
  /* What the probes found (esp_offload.c), fixed before the workers start except udp_gso, which
   * the TX worker clears when the kernel refuses a GSO send with EIO (no checksum offload on the
   * route: udp_send_skb). */
  atomic_int udp_gso;  /* UDP_SEGMENT: runs of equal-size datagrams to one peer go out as one send */
  int udp_gro;         /* UDP_GRO set: a receive may be several datagrams, cut by its gso_size */
  int tun_vnet;        /* the TUN fd has IFF_VNET_HDR: each read and write starts with a struct virtio_net_hdr */
  unsigned tun_offload; /* the TUN_F_* flags TUNSETOFFLOAD took (TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6) */
  int wake_fd; /* eventfd: stop */
  atomic_int stop;
  esp_hooks hooks;
  void *napi; /* esp_napi.c's state */
  /* Control plane (JS thread), under ctl_lock. */
  pthread_mutex_t ctl_lock;
  size_t nsas, cap_sas;
  esp_sa **sas;
  size_t npols, cap_pols;
  esp_policy *pols;
  uint64_t next_order;
  esp_retired *retired;
  /* Published for the workers. */
  _Atomic(esp_table *) table;
  atomic_uint_fast64_t epoch;
  atomic_uint_fast64_t worker_epoch[ESP_SLOTS];
  pthread_t rx_thread, tx_thread;
  int rx_started, tx_started;
  atomic_uint_fast64_t g[ESP_G_N];
};

/* esp_crypto.c */
/* Key material lengths: key (AEAD: key || 4-byte salt) and integrity key (0 for AEAD). */
int esp_key_len_ok(int alg, size_t key_len);
size_t esp_integ_key_len(int alg);
/* Set sa->iv_len, icv_len, block for sa->alg. */
void esp_suite_layout(esp_sa *sa);
/* Key the contexts of one slot (sa->alg set, layout done); 1 on success. */
int esp_crypto_key(esp_sa *sa, int slot, int encrypt, const uint8_t *key, size_t key_len, const uint8_t *ikey, size_t ikey_len);
/* Keep the keys to key an encrypting slot on its first seal (esp_seal does it); 1 on success. */
int esp_crypto_key_later(esp_sa *sa, const uint8_t *key, size_t key_len, const uint8_t *ikey, size_t ikey_len);
void esp_crypto_free(esp_sa *sa);
/* pkt: SPI | seq | IV | plaintext (clen bytes, padded) | room for the ICV. Seal writes the IV
 * (AEAD: the 64-bit seq; CBC: random), encrypts in place and appends the ICV; open verifies the
 * ICV first and decrypts in place only if it verified. seq_hi: ESN high bits (ignored without
 * ESN). Both return 1 on success. */
int esp_seal(esp_sa *sa, int slot, uint8_t *pkt, size_t clen, uint64_t seq);
int esp_open(esp_sa *sa, int slot, uint8_t *pkt, size_t clen, uint32_t seq_hi);

/* esp_replay.c (under sa->replay_lock) */
/* The packet's 64-bit sequence number from its low 32 bits (RFC 4303 Appendix A2.2 with ESN); 0
 * if it can only precede the SA's first packet. */
int esp_replay_infer(const esp_sa *sa, uint32_t seq_lo, uint64_t *seq);
int esp_replay_check(const esp_sa *sa, uint64_t seq);
void esp_replay_update(esp_sa *sa, uint64_t seq);

/* esp_packet.c */
int esp_ts_match(const esp_ts *ts, int family, const uint8_t *addr, int proto, int port, int ports_known);
/* The addresses, protocol and ports of an inner packet; 0 if it is not a whole IP packet. */
typedef struct {
  int family;
  const uint8_t *src, *dst;
  int proto, sport, dport, ports_known;
  size_t len; /* from the IP header */
} esp_inner;
int esp_parse_inner(const uint8_t *p, size_t len, esp_inner *out);
esp_sa *esp_lookup_in(const esp_table *t, uint32_t spi);
esp_sa *esp_lookup_out(const esp_table *t, const esp_inner *in);
/* Both return 0 on success, ESP_DROP_x + 1 for a drop charged to an SA (dummy packets too),
 * -(ESP_G_x + 1) for an engine-wide drop; the counter is already bumped.
 * Outbound: buf holds the inner packet at buf + ESP_HEADROOM (len bytes, cap ≥ ESP_BUF_LEN);
 * on success the ESP packet starts at buf + *out_off, *out_len bytes, *sa_out the SA used. */
int esp_encap(esp_engine *e, const esp_table *t, int slot, uint8_t *buf, size_t len, size_t *out_off, size_t *out_len, esp_sa **sa_out);
/* Inbound: the UDP payload in buf (len bytes, not IKE); on success the inner packet is at
 * buf + *inner_off, *inner_len bytes. */
int esp_decap(esp_engine *e, const esp_table *t, uint8_t *buf, size_t len, const struct sockaddr_storage *from, size_t *inner_off, size_t *inner_len);
void esp_fire_expire(esp_engine *e, esp_sa *sa, int hard, const char *reason);
int64_t esp_now_ms(void);

/* esp_offload.c */
/* Probe and switch on what `want` (ESP_OFF_*) asks for and the kernel offers; sets e->udp_gso,
 * udp_gro, tun_vnet, tun_offload. Never fails: what is missing stays off. */
void esp_offload_probe(esp_engine *e, unsigned want);
/* Where esp_vnet_split puts packets: next() gives room for one (ESP_MAX_INNER bytes), push()
 * says it holds len bytes now. The TX worker hands out its batch slots, so a segment is built
 * in the buffer it is encrypted in. */
typedef struct {
  uint8_t *(*next)(void *arg);
  void (*push)(void *arg, size_t len);
  void *arg;
} esp_sink;
/* A TUN read that starts with a struct virtio_net_hdr: each plain packet it holds goes to the
 * sink — the packet itself (a partial checksum completed: VIRTIO_NET_HDR_F_NEEDS_CSUM) or, for a
 * TCP super-packet (VIRTIO_NET_HDR_GSO_TCPV4/TCPV6), each gso_size segment with its own IP and
 * TCP headers and checksums. Returns the number of packets, -1 if the read is malformed. */
int esp_vnet_split(const uint8_t *buf, size_t len, const esp_sink *sink);
/* Open a TUN device (IFF_TUN | IFF_NO_PI, non-blocking), with IFF_VNET_HDR when vnet is set and
 * the kernel takes it; 0 or an errno. *got_vnet says whether it did. */
int esp_open_tun(const char *name, int vnet, int *fd, char out_name[16], int *got_vnet);

/* esp_io.c */
void *esp_rx_main(void *arg);
void *esp_tx_main(void *arg);

/* esp_engine.c */
int esp_engine_init(esp_engine *e, int udp_fd, int tun_fd);
/* Epoch markers of the workers (esp_io.c): a worker holds the table between enter and leave. */
void esp_enter(esp_engine *e, int slot);
void esp_leave(esp_engine *e, int slot);
int esp_wait_readable(esp_engine *e, int fd);
int esp_engine_start(esp_engine *e); /* 0 or errno */
void esp_engine_shutdown(esp_engine *e);  /* stop and join workers, close fds, free everything */
esp_sa *esp_sa_new(void);
void esp_sa_free(void *p);
/* Control plane; each takes ctl_lock, publishes a new table, returns 0 or an errno. */
int esp_add_sa(esp_engine *e, esp_sa *sa);
/* SAs are named by (direction, SPI, reqid): outbound SPIs are chosen by peers and may repeat. */
int esp_remove_sa(esp_engine *e, int dir, uint32_t spi, uint32_t reqid);
/* active < 0: unchanged; peer NULL: unchanged, else taken over (freed by the engine). */
int esp_update_sa(esp_engine *e, int dir, uint32_t spi, uint32_t reqid, int active, esp_peer *peer);
int esp_add_policy(esp_engine *e, const esp_policy *p);
int esp_remove_policy(esp_engine *e, uint32_t id);
/* Run fn(sa, arg) for every SA under ctl_lock (stats). */
void esp_each_sa(esp_engine *e, void (*fn)(const esp_sa *, void *), void *arg);
/* Synchronous outbound of one inner packet on the JS thread; esp_encap's return codes. */
int esp_inject(esp_engine *e, const uint8_t *pkt, size_t len);

#endif
