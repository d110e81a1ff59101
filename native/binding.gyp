{
  "targets": [
    {
      "target_name": "kipsec_native",
      "sources": ["kipsec_native.c"],
      "cflags": ["-std=c11", "-Wall", "-Wextra", "-O2"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"]
    }
  ]
}
