/*
 * The engine: SA and policy table, its publication to the workers (esp_io.c), engine lifetime.
 *
 * Table. JS changes go into the control copy (e->sas, e->pols) under ctl_lock; every change
 * builds a new immutable esp_table and swaps the pointer (RCU-like). Workers never lock for it:
 * they load the pointer at the start of a batch. What a swap replaced (old tables, removed SAs,
 * old peer addresses) is retired and freed by the JS thread once both workers have been idle or
 * started a later batch (epoch-based reclamation; see enter/leave). Per-SA mutable state —
 * sequence numbers, counters, limits fired — is atomics inside the SA, shared by all tables.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include "esp.h"

esp_sa *esp_sa_new(void) {
  esp_sa *sa = calloc(1, sizeof *sa);
  if (sa == NULL) return NULL;
  pthread_mutex_init(&sa->replay_lock, NULL);
  return sa;
}

void esp_sa_free(void *p) {
  esp_sa *sa = p;
  if (sa == NULL) return;
  esp_crypto_free(sa);
  free(sa->src); /* dst is the same block */
  free(sa->bitmap);
  free(atomic_load(&sa->peer));
  pthread_mutex_destroy(&sa->replay_lock);
  free(sa);
}

static void table_free(void *p) {
  esp_table *t = p;
  if (t == NULL) return;
  free(t->in); free(t->pol); free(t->pol_sa); free(t);
}

/* ---- epoch-based reclamation ---- */

void esp_enter(esp_engine *e, int slot) { atomic_store(&e->worker_epoch[slot], atomic_load(&e->epoch)); }
void esp_leave(esp_engine *e, int slot) { atomic_store(&e->worker_epoch[slot], ESP_EPOCH_IDLE); }

/* Called after ptr was unpublished: a worker that saw it entered before the bump below. */
static void retire(esp_engine *e, void *ptr, void (*fn)(void *)) {
  if (ptr == NULL) return;
  esp_retired *r = malloc(sizeof *r);
  uint64_t tag = atomic_fetch_add(&e->epoch, 1) + 1;
  if (r == NULL) return; /* leak rather than free under a reader */
  r->ptr = ptr; r->free_fn = fn; r->epoch = tag; r->next = e->retired;
  e->retired = r;
}

static void reclaim(esp_engine *e) {
  uint64_t m = ESP_EPOCH_IDLE;
  for (int i = 0; i < ESP_SLOTS; i++) { uint64_t w = atomic_load(&e->worker_epoch[i]); if (w < m) m = w; }
  for (esp_retired **pp = &e->retired; *pp;) {
    esp_retired *r = *pp;
    if (r->epoch <= m) { *pp = r->next; r->free_fn(r->ptr); free(r); } else pp = &r->next;
  }
}

/* ---- table publication ---- */

static int by_spi(const void *a, const void *b) {
  uint32_t x = (*(esp_sa *const *)a)->spi, y = (*(esp_sa *const *)b)->spi;
  return x < y ? -1 : x > y;
}

static int by_priority(const void *a, const void *b) {
  const esp_policy *x = a, *y = b;
  if (x->priority != y->priority) return x->priority < y->priority ? -1 : 1;
  return x->id < y->id ? -1 : x->id > y->id;
}

/* Outbound SAs by reqid, the newest install first: the first of a reqid is the one its policies use. */
static int by_reqid_newest(const void *a, const void *b) {
  const esp_sa *x = *(esp_sa *const *)a, *y = *(esp_sa *const *)b;
  if (x->reqid != y->reqid) return x->reqid < y->reqid ? -1 : 1;
  return x->order > y->order ? -1 : x->order < y->order;
}

/* The newest active outbound SA of `reqid` in `out` (sorted by by_reqid_newest), or NULL. */
static esp_sa *newest_of(esp_sa *const *out, size_t n, uint32_t reqid) {
  size_t lo = 0, hi = n;
  while (lo < hi) { size_t mid = lo + (hi - lo) / 2; if (out[mid]->reqid < reqid) lo = mid + 1; else hi = mid; }
  return lo < n && out[lo]->reqid == reqid ? out[lo] : NULL;
}

/* Each publication sorts (n log n): matching every policy against every SA made it n², which at
 * thousands of SAs cost tens of milliseconds per SA or policy change. */
static int publish(esp_engine *e) {
  esp_table *t = calloc(1, sizeof *t);
  if (t == NULL) return ENOMEM;
  t->in = calloc(e->nsas + 1, sizeof *t->in);
  t->pol = calloc(e->npols + 1, sizeof *t->pol);
  t->pol_sa = calloc(e->npols + 1, sizeof *t->pol_sa);
  esp_sa **out = calloc(e->nsas + 1, sizeof *out);
  if (!t->in || !t->pol || !t->pol_sa || !out) { free(out); table_free(t); return ENOMEM; }
  size_t nout = 0;
  for (size_t i = 0; i < e->nsas; i++) {
    esp_sa *sa = e->sas[i];
    if (sa->dir == ESP_DIR_IN) t->in[t->nin++] = sa;
    else if (sa->dir == ESP_DIR_OUT && atomic_load(&sa->active)) out[nout++] = sa;
  }
  qsort(t->in, t->nin, sizeof *t->in, by_spi);
  qsort(out, nout, sizeof *out, by_reqid_newest);
  if (e->npols) memcpy(t->pol, e->pols, e->npols * sizeof *t->pol);
  t->npol = e->npols;
  qsort(t->pol, t->npol, sizeof *t->pol, by_priority);
  for (size_t p = 0; p < t->npol; p++) t->pol_sa[p] = newest_of(out, nout, t->pol[p].reqid);
  free(out);
  esp_table *old = atomic_exchange(&e->table, t);
  retire(e, old, table_free);
  reclaim(e);
  return 0;
}

static long find_sa(esp_engine *e, int dir, uint32_t spi, uint32_t reqid) {
  for (size_t i = 0; i < e->nsas; i++)
    if (e->sas[i]->dir == dir && e->sas[i]->spi == spi && e->sas[i]->reqid == reqid) return (long)i;
  return -1;
}

int esp_add_sa(esp_engine *e, esp_sa *sa) {
  pthread_mutex_lock(&e->ctl_lock);
  int err = 0;
  for (size_t i = 0; i < e->nsas && !err; i++)
    if (e->sas[i]->dir == sa->dir && e->sas[i]->spi == sa->spi && (sa->dir == ESP_DIR_IN || e->sas[i]->reqid == sa->reqid)) err = EEXIST;
  if (!err && e->nsas == e->cap_sas) {
    size_t cap = e->cap_sas ? e->cap_sas * 2 : 16;
    esp_sa **n = realloc(e->sas, cap * sizeof *n);
    if (n == NULL) err = ENOMEM; else { e->sas = n; e->cap_sas = cap; }
  }
  if (!err) {
    sa->order = e->next_order++;
    e->sas[e->nsas++] = sa;
    err = publish(e);
    if (err) e->nsas--;
  }
  pthread_mutex_unlock(&e->ctl_lock);
  return err;
}

int esp_remove_sa(esp_engine *e, int dir, uint32_t spi, uint32_t reqid) {
  pthread_mutex_lock(&e->ctl_lock);
  long i = find_sa(e, dir, spi, reqid);
  int err = ENOENT;
  if (i >= 0) {
    esp_sa *sa = e->sas[i];
    e->sas[i] = e->sas[--e->nsas];
    err = publish(e);
    if (err) e->sas[e->nsas++] = sa; /* still published: keep it */
    else retire(e, sa, esp_sa_free);
  }
  pthread_mutex_unlock(&e->ctl_lock);
  return err;
}

int esp_update_sa(esp_engine *e, int dir, uint32_t spi, uint32_t reqid, int active, esp_peer *peer) {
  pthread_mutex_lock(&e->ctl_lock);
  long i = find_sa(e, dir, spi, reqid);
  int err = ENOENT;
  if (i >= 0) {
    esp_sa *sa = e->sas[i];
    if (peer) retire(e, atomic_exchange(&sa->peer, peer), free);
    if (active >= 0) atomic_store(&sa->active, active);
    err = publish(e);
  } else free(peer);
  pthread_mutex_unlock(&e->ctl_lock);
  return err;
}

int esp_add_policy(esp_engine *e, const esp_policy *p) {
  pthread_mutex_lock(&e->ctl_lock);
  int err = 0;
  size_t i = 0;
  while (i < e->npols && e->pols[i].id != p->id) i++;
  if (i == e->npols && e->npols == e->cap_pols) {
    size_t cap = e->cap_pols ? e->cap_pols * 2 : 16;
    esp_policy *n = realloc(e->pols, cap * sizeof *n);
    if (n == NULL) err = ENOMEM; else { e->pols = n; e->cap_pols = cap; }
  }
  if (!err) {
    esp_policy saved = i < e->npols ? e->pols[i] : *p;
    int added = i == e->npols;
    e->pols[i] = *p;
    if (added) e->npols++;
    err = publish(e);
    if (err) { if (added) e->npols--; else e->pols[i] = saved; }
  }
  pthread_mutex_unlock(&e->ctl_lock);
  return err;
}

int esp_remove_policy(esp_engine *e, uint32_t id) {
  pthread_mutex_lock(&e->ctl_lock);
  int err = ENOENT;
  for (size_t i = 0; i < e->npols; i++) {
    if (e->pols[i].id != id) continue;
    esp_policy saved = e->pols[i];
    e->pols[i] = e->pols[--e->npols];
    err = publish(e);
    if (err) e->pols[e->npols++] = saved;
    break;
  }
  pthread_mutex_unlock(&e->ctl_lock);
  return err;
}

void esp_each_sa(esp_engine *e, void (*fn)(const esp_sa *, void *), void *arg) {
  pthread_mutex_lock(&e->ctl_lock);
  for (size_t i = 0; i < e->nsas; i++) fn(e->sas[i], arg);
  reclaim(e);
  pthread_mutex_unlock(&e->ctl_lock);
}

static void gcount(esp_engine *e, int which, uint64_t n) { atomic_fetch_add_explicit(&e->g[which], n, memory_order_relaxed); }

int esp_inject(esp_engine *e, const uint8_t *pkt, size_t len) {
  static _Thread_local uint8_t buf[ESP_BUF_LEN];
  if (len > ESP_MAX_INNER) { gcount(e, ESP_G_MALFORMED_OUT, 1); return -(ESP_G_MALFORMED_OUT + 1); }
  pthread_mutex_lock(&e->ctl_lock); /* the table cannot be retired while we hold it */
  memcpy(buf + ESP_HEADROOM, pkt, len);
  size_t out_off = 0, out_len = 0;
  esp_sa *sa = NULL;
  int rc = esp_encap(e, atomic_load(&e->table), ESP_SLOT_JS, buf, len, &out_off, &out_len, &sa);
  if (rc == 0) {
    esp_peer *peer = atomic_load(&sa->peer);
    if (sendto(e->udp_fd, buf + out_off, out_len, MSG_DONTWAIT, (struct sockaddr *)&peer->addr, peer->len) < 0) {
      gcount(e, ESP_G_SEND_ERRORS, 1);
      atomic_fetch_add_explicit(&sa->drops[ESP_DROP_IO], 1, memory_order_relaxed);
      rc = ESP_DROP_IO + 1;
    } else gcount(e, ESP_G_TX_DATAGRAMS, 1);
  }
  pthread_mutex_unlock(&e->ctl_lock);
  return rc;
}

int esp_engine_init(esp_engine *e, int udp_fd, int tun_fd) {
  memset(e, 0, sizeof *e);
  e->udp_fd = udp_fd;
  e->tun_fd = tun_fd;
  e->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (e->wake_fd < 0) return errno;
  pthread_mutex_init(&e->ctl_lock, NULL);
  for (int i = 0; i < ESP_SLOTS; i++) atomic_store(&e->worker_epoch[i], ESP_EPOCH_IDLE);
  atomic_store(&e->epoch, 1);
  pthread_mutex_lock(&e->ctl_lock);
  int err = publish(e); /* an empty table, so workers never see NULL */
  pthread_mutex_unlock(&e->ctl_lock);
  return err;
}

int esp_engine_start(esp_engine *e) {
  int err = pthread_create(&e->rx_thread, NULL, esp_rx_main, e);
  if (err) return err;
  e->rx_started = 1;
  if (e->tun_fd >= 0) {
    err = pthread_create(&e->tx_thread, NULL, esp_tx_main, e);
    if (err) return err;
    e->tx_started = 1;
  }
  return 0;
}

void esp_engine_shutdown(esp_engine *e) {
  atomic_store(&e->stop, 1);
  uint64_t one = 1;
  if (e->wake_fd >= 0 && write(e->wake_fd, &one, sizeof one) < 0) { /* the eventfd cannot be full here */ }
  if (e->rx_started) pthread_join(e->rx_thread, NULL);
  if (e->tx_started) pthread_join(e->tx_thread, NULL);
  e->rx_started = e->tx_started = 0;
  if (e->udp_fd >= 0) close(e->udp_fd);
  if (e->tun_fd >= 0) close(e->tun_fd);
  if (e->wake_fd >= 0) close(e->wake_fd);
  e->udp_fd = e->tun_fd = e->wake_fd = -1;
  for (size_t i = 0; i < e->nsas; i++) esp_sa_free(e->sas[i]);
  free(e->sas); free(e->pols);
  e->sas = NULL; e->pols = NULL; e->nsas = e->npols = 0;
  table_free(atomic_exchange(&e->table, NULL));
  while (e->retired) { esp_retired *r = e->retired; e->retired = r->next; r->free_fn(r->ptr); free(r); }
  pthread_mutex_destroy(&e->ctl_lock);
}
