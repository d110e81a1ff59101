/* Shared by esp_napi.c (engine lifetime, events) and esp_napi_sa.c (SAs, policies, stats, I/O). */
#ifndef KIPSEC_ESP_NAPI_H
#define KIPSEC_ESP_NAPI_H

#include <node_api.h>
#include "esp.h"

typedef struct {
  esp_engine e;
  napi_env env;
  napi_threadsafe_function up, ctl;
  int open;
} esp_napi;

extern const char *const DROP_NAMES[ESP_DROP_N];
extern const char *const G_NAMES[ESP_G_N];

/* Throw a TypeError with code; fmt has one %s for what. Returns NULL. */
napi_value throw_code(napi_env env, const char *code, const char *fmt, const char *what);
/* Throw an Error whose code is the errno's name. Returns NULL. */
napi_value throw_errno(napi_env env, const char *what, int e);
/* Property present and not undefined. */
int has(napi_env env, napi_value obj, const char *name, napi_value *out);
/* Each returns 1 when the property is absent (and optional) or valid, 0 when invalid. */
int get_u32(napi_env env, napi_value obj, const char *name, uint32_t *out, int required);
int get_u64(napi_env env, napi_value obj, const char *name, uint64_t *out);
int get_bool(napi_env env, napi_value obj, const char *name, int *out);
int get_addr(napi_env env, napi_value obj, const char *name, int *family, uint8_t out[16]);
int get_ts(napi_env env, napi_value obj, esp_ts *ts);
int get_ts_list(napi_env env, napi_value obj, const char *name, esp_ts *out, int *n);
int get_dir(napi_env env, napi_value v, int *dir);
/* { address, port } → a heap esp_peer, or NULL if invalid. */
esp_peer *get_peer(napi_env env, napi_value obj);
/* argv[0] as an open engine; NULL with an exception pending otherwise. */
esp_napi *engine_arg(napi_env env, napi_callback_info info, size_t want, napi_value *argv, const char *usage);

napi_value esp_napi_add_sa(napi_env env, napi_callback_info info);
napi_value esp_napi_update_sa(napi_env env, napi_callback_info info);
napi_value esp_napi_remove_sa(napi_env env, napi_callback_info info);
napi_value esp_napi_add_policy(napi_env env, napi_callback_info info);
napi_value esp_napi_remove_policy(napi_env env, napi_callback_info info);
napi_value esp_napi_stats(napi_env env, napi_callback_info info);
napi_value esp_napi_sa_stats(napi_env env, napi_callback_info info);
napi_value esp_napi_send_ike(napi_env env, napi_callback_info info);
napi_value esp_napi_inject(napi_env env, napi_callback_info info);
napi_value esp_napi_open_tun(napi_env env, napi_callback_info info);

#endif
