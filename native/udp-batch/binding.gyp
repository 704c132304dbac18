{
  "targets": [
    {
      "target_name": "udp_batch",
      "sources": ["udp_batch.c", "udp_recv.c"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
