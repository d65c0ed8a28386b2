{
  "targets": [
    {
      "target_name": "nydus_native",
      "sources": ["src/native/xattr.c", "src/native/lz4.c", "src/native/readfiles.c", "src/native/zran.c", "src/native/heap.cc"],
      "cflags": ["-O3", "-Wall"]
    }
  ]
}
