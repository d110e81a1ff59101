/*
 * ESP confidentiality and integrity with OpenSSL EVP (Node's own OpenSSL: the addon links against
 * the symbols the node binary exports). One context per SA per thread, keyed once at install; a
 * packet only sets the nonce or IV, so key schedules are never redone on the hot path.
 *
 *   AES-GCM-16 (RFC 4106): key material = key (16 or 32 bytes) || 4-byte salt;
 *     nonce = salt || 8-byte IV; AAD = SPI || sequence number, or SPI || 64-bit ESN (§5); ICV 16.
 *   ChaCha20-Poly1305 (RFC 7634): key material = 32-byte key || 4-byte salt; nonce, AAD and
 *     ICV as above (§2, §2.1).
 *   AES-CBC (RFC 3602) + HMAC-SHA2-256-128 / 384-192 / 512-256 (RFC 4868): AES key 16 or 32
 *     bytes, HMAC key as long as the hash output (RFC 4868 §2.1.1); random 16-byte IV per packet
 *     (RFC 3602 §3); encrypt then MAC over SPI || seq || IV || ciphertext, with the ESN high bits
 *     appended to what is MACed but not sent (RFC 4303 §3.3.2.2); the ICV is checked in constant
 *     time before anything is decrypted (§3.4.4.1).
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include "esp.h"

int esp_key_len_ok(int alg, size_t n) {
  if (alg == ESP_ALG_AES_GCM_16) return n == 16 + ESP_SALT_LEN || n == 32 + ESP_SALT_LEN;
  if (alg == ESP_ALG_CHACHA20_POLY1305) return n == 32 + ESP_SALT_LEN;
  if (alg >= ESP_ALG_AES_CBC_HMAC_SHA256 && alg <= ESP_ALG_AES_CBC_HMAC_SHA512) return n == 16 || n == 32;
  return 0;
}

/* RFC 4868 §2.1.1: the HMAC key is as long as the hash output. */
size_t esp_integ_key_len(int alg) {
  return alg == ESP_ALG_AES_CBC_HMAC_SHA256 ? 32 : alg == ESP_ALG_AES_CBC_HMAC_SHA384 ? 48 : alg == ESP_ALG_AES_CBC_HMAC_SHA512 ? 64 : 0;
}

void esp_suite_layout(esp_sa *sa) {
  if (ESP_ALG_IS_AEAD(sa->alg)) { sa->iv_len = ESP_AEAD_IV_LEN; sa->icv_len = ESP_AEAD_ICV_LEN; sa->block = 4; return; }
  sa->iv_len = ESP_CBC_IV_LEN;
  sa->block = 16;
  sa->icv_len = (uint8_t)(esp_integ_key_len(sa->alg) / 2); /* RFC 4868 §2.3: half the output */
}

static EVP_CIPHER_CTX *cipher_new(int alg, int encrypt, const uint8_t *key, size_t k) {
  const EVP_CIPHER *cipher = NULL;
  if (alg == ESP_ALG_AES_GCM_16) cipher = k == 16 ? EVP_aes_128_gcm() : EVP_aes_256_gcm();
  else if (alg == ESP_ALG_CHACHA20_POLY1305) cipher = EVP_chacha20_poly1305();
  else cipher = k == 16 ? EVP_aes_128_cbc() : EVP_aes_256_cbc();
  EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
  if (c == NULL) return NULL;
  int ok = EVP_CipherInit_ex(c, cipher, NULL, NULL, NULL, encrypt) == 1;
  if (ESP_ALG_IS_AEAD(alg)) ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_IVLEN, ESP_SALT_LEN + ESP_AEAD_IV_LEN, NULL) == 1;
  else ok = ok && EVP_CIPHER_CTX_set_padding(c, 0) == 1; /* ESP pads itself (RFC 4303 §2.4) */
  ok = ok && EVP_CipherInit_ex(c, NULL, NULL, key, NULL, encrypt) == 1;
  if (!ok) { EVP_CIPHER_CTX_free(c); return NULL; }
  return c;
}

static EVP_MAC_CTX *hmac_new(int alg, const uint8_t *ikey, size_t n) {
  char digest[16];
  strcpy(digest, alg == ESP_ALG_AES_CBC_HMAC_SHA256 ? "SHA256" : alg == ESP_ALG_AES_CBC_HMAC_SHA384 ? "SHA384" : "SHA512");
  EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
  if (mac == NULL) return NULL;
  EVP_MAC_CTX *m = EVP_MAC_CTX_new(mac);
  EVP_MAC_free(mac); /* the context holds its own reference */
  if (m == NULL) return NULL;
  OSSL_PARAM params[] = { OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end() };
  if (EVP_MAC_init(m, ikey, n, params) != 1) { EVP_MAC_CTX_free(m); return NULL; }
  return m;
}

int esp_crypto_key(esp_sa *sa, int slot, int encrypt, const uint8_t *key, size_t key_len, const uint8_t *ikey, size_t ikey_len) {
  int aead = ESP_ALG_IS_AEAD(sa->alg);
  if (!esp_key_len_ok(sa->alg, key_len) || ikey_len != esp_integ_key_len(sa->alg)) return 0;
  sa->ctx[slot] = cipher_new(sa->alg, encrypt, key, aead ? key_len - ESP_SALT_LEN : key_len);
  if (sa->ctx[slot] == NULL) return 0;
  if (aead) { memcpy(sa->salt, key + key_len - ESP_SALT_LEN, ESP_SALT_LEN); return 1; }
  sa->mac[slot] = hmac_new(sa->alg, ikey, ikey_len);
  return sa->mac[slot] != NULL;
}

int esp_crypto_key_later(esp_sa *sa, const uint8_t *key, size_t key_len, const uint8_t *ikey, size_t ikey_len) {
  if (!esp_key_len_ok(sa->alg, key_len) || ikey_len != esp_integ_key_len(sa->alg)) return 0;
  sa->late_key = malloc(key_len + ikey_len);
  if (sa->late_key == NULL) return 0;
  memcpy(sa->late_key, key, key_len);
  if (ikey_len) memcpy(sa->late_key + key_len, ikey, ikey_len);
  sa->late_key_len = (uint8_t)key_len; sa->late_ikey_len = (uint8_t)ikey_len;
  return 1;
}

/* An encrypting slot keyed from the kept keys the first time it is used; only the thread that
 * owns the slot calls this (the JS slot: under ctl_lock in esp_inject). */
static int late_key(esp_sa *sa, int slot) {
  if (sa->ctx[slot] != NULL) return 1;
  if (sa->late_key == NULL) return 0;
  if (esp_crypto_key(sa, slot, 1, sa->late_key, sa->late_key_len, sa->late_key + sa->late_key_len, sa->late_ikey_len)) return 1;
  if (sa->ctx[slot]) { EVP_CIPHER_CTX_free(sa->ctx[slot]); sa->ctx[slot] = NULL; }
  return 0;
}

void esp_crypto_free(esp_sa *sa) {
  for (int i = 0; i < ESP_SLOTS; i++) {
    if (sa->ctx[i]) EVP_CIPHER_CTX_free(sa->ctx[i]);
    if (sa->mac[i]) EVP_MAC_CTX_free(sa->mac[i]);
    sa->ctx[i] = NULL; sa->mac[i] = NULL;
  }
  if (sa->late_key) { OPENSSL_cleanse(sa->late_key, (size_t)sa->late_key_len + sa->late_ikey_len); free(sa->late_key); sa->late_key = NULL; }
}

static void put32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v; }

/* ---- AEAD ---- */

/* RFC 4106 §5 / RFC 7634 §2.1: SPI || seq (8 bytes), or SPI || seq high || seq low (12) with ESN. */
static size_t aead_aad(const esp_sa *sa, const uint8_t *pkt, uint32_t seq_hi, uint8_t aad[12]) {
  memcpy(aad, pkt, ESP_SPI_LEN);
  if (!sa->esn) { memcpy(aad + 4, pkt + 4, 4); return 8; }
  put32(aad + 4, seq_hi);
  memcpy(aad + 8, pkt + 4, 4);
  return 12;
}

static int aead_seal(esp_sa *sa, int slot, uint8_t *pkt, size_t clen, uint32_t seq_hi) {
  EVP_CIPHER_CTX *c = sa->ctx[slot];
  uint8_t nonce[12], aad[12];
  uint8_t *iv = pkt + ESP_HDR_LEN, *buf = iv + ESP_AEAD_IV_LEN;
  int n = 0, f = 0;
  memcpy(nonce, sa->salt, ESP_SALT_LEN);
  memcpy(nonce + ESP_SALT_LEN, iv, ESP_AEAD_IV_LEN);
  size_t alen = aead_aad(sa, pkt, seq_hi, aad);
  if (EVP_EncryptInit_ex(c, NULL, NULL, NULL, nonce) != 1) return 0;
  if (EVP_EncryptUpdate(c, NULL, &n, aad, (int)alen) != 1) return 0;
  if (EVP_EncryptUpdate(c, buf, &n, buf, (int)clen) != 1) return 0;
  if (EVP_EncryptFinal_ex(c, buf + n, &f) != 1) return 0;
  return EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, ESP_AEAD_ICV_LEN, buf + clen) == 1;
}

/* The plaintext left in buf on failure must not be used (RFC 4303 §3.4.4). */
static int aead_open(esp_sa *sa, int slot, uint8_t *pkt, size_t clen, uint32_t seq_hi) {
  EVP_CIPHER_CTX *c = sa->ctx[slot];
  uint8_t nonce[12], aad[12];
  uint8_t *iv = pkt + ESP_HDR_LEN, *buf = iv + ESP_AEAD_IV_LEN;
  int n = 0, f = 0;
  memcpy(nonce, sa->salt, ESP_SALT_LEN);
  memcpy(nonce + ESP_SALT_LEN, iv, ESP_AEAD_IV_LEN);
  size_t alen = aead_aad(sa, pkt, seq_hi, aad);
  if (EVP_DecryptInit_ex(c, NULL, NULL, NULL, nonce) != 1) return 0;
  if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, ESP_AEAD_ICV_LEN, buf + clen) != 1) return 0;
  if (EVP_DecryptUpdate(c, NULL, &n, aad, (int)alen) != 1) return 0;
  if (EVP_DecryptUpdate(c, buf, &n, buf, (int)clen) != 1) return 0;
  return EVP_DecryptFinal_ex(c, buf + n, &f) == 1;
}

/* ---- AES-CBC + HMAC-SHA2 ---- */

/* HMAC over SPI || seq || IV || ciphertext (|| seq high with ESN), the full output into out. */
static int hmac_of(esp_sa *sa, int slot, const uint8_t *pkt, size_t clen, uint32_t seq_hi, uint8_t out[64]) {
  EVP_MAC_CTX *m = sa->mac[slot];
  size_t outl = 0;
  uint8_t hi[4];
  if (EVP_MAC_init(m, NULL, 0, NULL) != 1) return 0; /* same key: only the inner/outer states are reset */
  if (EVP_MAC_update(m, pkt, ESP_HDR_LEN + ESP_CBC_IV_LEN + clen) != 1) return 0;
  if (sa->esn) { put32(hi, seq_hi); if (EVP_MAC_update(m, hi, 4) != 1) return 0; }
  return EVP_MAC_final(m, out, &outl, 64) == 1 && outl >= sa->icv_len;
}

static int cbc_seal(esp_sa *sa, int slot, uint8_t *pkt, size_t clen, uint32_t seq_hi) {
  EVP_CIPHER_CTX *c = sa->ctx[slot];
  uint8_t *iv = pkt + ESP_HDR_LEN, *buf = iv + ESP_CBC_IV_LEN, full[64];
  int n = 0;
  /* RFC 3602 §3: the IV must be unpredictable; a counter would not do. */
  if (RAND_bytes(iv, ESP_CBC_IV_LEN) != 1) return 0;
  if (EVP_EncryptInit_ex(c, NULL, NULL, NULL, iv) != 1) return 0;
  if (EVP_EncryptUpdate(c, buf, &n, buf, (int)clen) != 1 || (size_t)n != clen) return 0;
  if (!hmac_of(sa, slot, pkt, clen, seq_hi, full)) return 0;
  memcpy(buf + clen, full, sa->icv_len);
  return 1;
}

static int cbc_open(esp_sa *sa, int slot, uint8_t *pkt, size_t clen, uint32_t seq_hi) {
  EVP_CIPHER_CTX *c = sa->ctx[slot];
  uint8_t *iv = pkt + ESP_HDR_LEN, *buf = iv + ESP_CBC_IV_LEN, full[64];
  int n = 0;
  if (!hmac_of(sa, slot, pkt, clen, seq_hi, full)) return 0;
  if (CRYPTO_memcmp(full, buf + clen, sa->icv_len) != 0) return 0; /* constant time: no timing oracle on the ICV */
  if (EVP_DecryptInit_ex(c, NULL, NULL, NULL, iv) != 1) return 0;
  return EVP_DecryptUpdate(c, buf, &n, buf, (int)clen) == 1 && (size_t)n == clen;
}

int esp_seal(esp_sa *sa, int slot, uint8_t *pkt, size_t clen, uint64_t seq) {
  if (!late_key(sa, slot)) return 0;
  if (!ESP_ALG_IS_AEAD(sa->alg)) return cbc_seal(sa, slot, pkt, clen, (uint32_t)(seq >> 32));
  /* RFC 4106 §3.1 / RFC 7634 §2: the IV must never repeat under a key; the 64-bit sequence
   * number does not (§8.1's advice). */
  put32(pkt + ESP_HDR_LEN, (uint32_t)(seq >> 32));
  put32(pkt + ESP_HDR_LEN + 4, (uint32_t)seq);
  return aead_seal(sa, slot, pkt, clen, (uint32_t)(seq >> 32));
}

int esp_open(esp_sa *sa, int slot, uint8_t *pkt, size_t clen, uint32_t seq_hi) {
  return ESP_ALG_IS_AEAD(sa->alg) ? aead_open(sa, slot, pkt, clen, seq_hi) : cbc_open(sa, slot, pkt, clen, seq_hi);
}
