{
  "targets": [
    {
      "target_name": "kipsec_native",
      "sources": ["kipsec_native.c"],
      "cflags": ["-std=c11", "-Wall", "-Wextra", "-O2"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"]
    }
  ],
  "conditions": [
    # The userspace ESP engine (native/esp): its own addon so the hot loop and its
    # threads stay apart from the netlink code. Built only where native/esp exists, because the
    # image build (scripts/build-image.sh, deploy/Dockerfile) copies kipsec_native.c alone.
    ["'<!(node -p \"require('fs').existsSync('esp/esp.h')\")'=='true'", {
      "targets": [
        {
          "target_name": "kipsec_esp",
          "sources": ["esp/esp_crypto.c", "esp/esp_replay.c", "esp/esp_packet.c", "esp/esp_engine.c", "esp/esp_io.c", "esp/esp_offload.c", "esp/esp_napi.c", "esp/esp_napi_sa.c"],
          "cflags": ["-std=c11", "-Wall", "-Wextra", "-O2", "-pthread"],
          "ldflags": ["-pthread"],
          "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"]
        }
      ]
    }]
  ]
}
