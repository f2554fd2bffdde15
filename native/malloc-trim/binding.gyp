# glibc's malloc_trim(0) for Nexus and the Keepers (src/lib/malloc-trim.ts). Built at install by
# native/build.mjs; a process without it runs the same, only without returning freed memory.
{
  "targets": [
    {
      "target_name": "malloc_trim",
      "sources": ["malloc_trim.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
