/*
 * AEAD for ESP with OpenSSL EVP (Node's own OpenSSL: the addon links against the symbols the
 * node binary exports). One EVP_CIPHER_CTX per SA per thread, keyed once at install; a packet
 * only sets the nonce, so the AES key schedule is never redone on the hot path.
 *
 *   AES-GCM-16 (RFC 4106): key material = key (16 or 32 bytes) || 4-byte salt;
 *     nonce = salt || 8-byte IV; AAD = SPI || sequence number (§5, no ESN); ICV 16 bytes.
 *   ChaCha20-Poly1305 (RFC 7634): key material = 32-byte key || 4-byte salt; nonce, AAD and
 *     ICV as above (§2, §2.2).
 */
#include <string.h>
#include "esp.h"

int esp_key_len_ok(int alg, size_t n) {
  if (alg == ESP_ALG_AES_GCM_16) return n == 16 + ESP_SALT_LEN || n == 32 + ESP_SALT_LEN;
  if (alg == ESP_ALG_CHACHA20_POLY1305) return n == 32 + ESP_SALT_LEN;
  return 0;
}

/* key points at key || salt; only the key part is used here (the salt stays in the SA). */
EVP_CIPHER_CTX *esp_ctx_new(int alg, int encrypt, const uint8_t *key, size_t key_len) {
  const EVP_CIPHER *cipher = NULL;
  size_t k = key_len - ESP_SALT_LEN;
  if (alg == ESP_ALG_AES_GCM_16) cipher = k == 16 ? EVP_aes_128_gcm() : EVP_aes_256_gcm();
  else if (alg == ESP_ALG_CHACHA20_POLY1305) cipher = EVP_chacha20_poly1305();
  if (cipher == NULL) return NULL;
  EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
  if (c == NULL) return NULL;
  int ok = encrypt ? EVP_EncryptInit_ex(c, cipher, NULL, NULL, NULL) : EVP_DecryptInit_ex(c, cipher, NULL, NULL, NULL);
  ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_IVLEN, ESP_SALT_LEN + ESP_IV_LEN, NULL) == 1;
  ok = ok && (encrypt ? EVP_EncryptInit_ex(c, NULL, NULL, key, NULL) : EVP_DecryptInit_ex(c, NULL, NULL, key, NULL));
  if (!ok) { EVP_CIPHER_CTX_free(c); return NULL; }
  return c;
}

static void nonce_of(uint8_t nonce[12], const uint8_t salt[4], const uint8_t iv[8]) {
  memcpy(nonce, salt, ESP_SALT_LEN);
  memcpy(nonce + ESP_SALT_LEN, iv, ESP_IV_LEN);
}

/* Encrypt buf[0..len) in place; writes the 16-byte ICV to tag. 1 on success. */
int esp_seal(EVP_CIPHER_CTX *c, const uint8_t salt[4], const uint8_t aad[8], const uint8_t iv[8], uint8_t *buf, int len, uint8_t *tag) {
  uint8_t nonce[12];
  int n = 0, f = 0;
  nonce_of(nonce, salt, iv);
  if (EVP_EncryptInit_ex(c, NULL, NULL, NULL, nonce) != 1) return 0;
  if (EVP_EncryptUpdate(c, NULL, &n, aad, ESP_HDR_LEN) != 1) return 0;
  if (EVP_EncryptUpdate(c, buf, &n, buf, len) != 1) return 0;
  if (EVP_EncryptFinal_ex(c, buf + n, &f) != 1) return 0;
  return EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, ESP_ICV_LEN, tag) == 1;
}

/* Decrypt buf[0..len) in place and verify tag. 1 only if the ICV verified: before that the
 * plaintext in buf must not be used (RFC 4303 §3.4.4). */
int esp_open(EVP_CIPHER_CTX *c, const uint8_t salt[4], const uint8_t aad[8], const uint8_t iv[8], uint8_t *buf, int len, const uint8_t *tag) {
  uint8_t nonce[12];
  int n = 0, f = 0;
  nonce_of(nonce, salt, iv);
  if (EVP_DecryptInit_ex(c, NULL, NULL, NULL, nonce) != 1) return 0;
  if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, ESP_ICV_LEN, (void *)tag) != 1) return 0;
  if (EVP_DecryptUpdate(c, NULL, &n, aad, ESP_HDR_LEN) != 1) return 0;
  if (EVP_DecryptUpdate(c, buf, &n, buf, len) != 1) return 0;
  return EVP_DecryptFinal_ex(c, buf + n, &f) == 1;
}
