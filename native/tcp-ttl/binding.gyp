{
  "targets": [
    {
      "target_name": "tcp_ttl",
      "sources": ["tcp_ttl.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
