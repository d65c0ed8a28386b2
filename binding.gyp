{
  "targets": [
    {
      "target_name": "nydus_native",
      "sources": ["src/native/xattr.c"],
      "cflags": ["-O2", "-Wall"]
    }
  ]
}
