/*
 * Anti-replay, RFC 4303 §3.4.3 and Appendix A: a sliding window of sa->window bits (a multiple
 * of 64) right-aligned at sa->top, the highest sequence number that verified. With ESN (§2.2.1)
 * only the low 32 bits are on the wire; the high 32 are inferred from the window (Appendix A2.2)
 * and confirmed by the ICV, which covers them. Callers hold sa->replay_lock.
 */
#include <string.h>
#include "esp.h"

int esp_replay_infer(const esp_sa *sa, uint32_t seql, uint64_t *seq) {
  if (!sa->esn) { *seq = seql; return 1; }
  uint32_t tl = (uint32_t)sa->top, th = (uint32_t)(sa->top >> 32), w = sa->window; /* w > 0 with ESN */
  if (tl >= w - 1) {
    /* Case A: the window lies inside one 2^32 block. Below its bottom means the next block. */
    if (seql >= tl - w + 1) { *seq = (uint64_t)th << 32 | seql; return 1; }
    if (th == UINT32_MAX) return 0; /* would be past 2^64 - 1 */
    *seq = (uint64_t)(th + 1) << 32 | seql;
    return 1;
  }
  /* Case B: the window spans two blocks; at or above its bottom (mod 2^32) is the older one. */
  if (seql >= (uint32_t)(tl - w + 1)) {
    if (th == 0) return 0; /* an older block than the SA's first: before its first packet */
    *seq = (uint64_t)(th - 1) << 32 | seql;
    return 1;
  }
  *seq = (uint64_t)th << 32 | seql;
  return 1;
}

/* 1 if seq may be accepted (checked again, then recorded, once the ICV verified). */
int esp_replay_check(const esp_sa *sa, uint64_t seq) {
  if (seq == 0) return 0; /* the first packet sent on an SA is 1 (§3.3.3): 0 is never valid */
  if (sa->window == 0 || seq > sa->top) return 1;
  uint64_t behind = sa->top - seq;
  if (behind >= sa->window) return 0;
  uint32_t bit = (uint32_t)(seq % sa->window);
  return !(sa->bitmap[bit / 64] >> (bit % 64) & 1);
}

void esp_replay_update(esp_sa *sa, uint64_t seq) {
  if (sa->window == 0) { if (seq > sa->top) sa->top = seq; return; }
  if (seq > sa->top) {
    uint64_t ahead = seq - sa->top;
    if (ahead >= sa->window) memset(sa->bitmap, 0, sa->window / 8);
    else for (uint64_t s = sa->top + 1; s != seq; s++) { uint32_t b = (uint32_t)(s % sa->window); sa->bitmap[b / 64] &= ~(1ull << (b % 64)); }
    sa->top = seq;
  }
  uint32_t bit = (uint32_t)(seq % sa->window);
  sa->bitmap[bit / 64] |= 1ull << (bit % 64);
}
