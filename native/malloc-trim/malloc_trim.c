/*
 * One function for Node: trim() runs glibc's malloc_trim(0), which gives back to the kernel every
 * whole free page inside the allocator's heaps, not only the free memory at a heap's top, which is
 * all that free() itself ever returns. Memory that OpenSSL and Node allocated for a burst of
 * connections and then freed otherwise stays resident (src/lib/malloc-trim.ts decides when).
 *
 * Returns true when memory was released, false when there was none to release, and undefined
 * where the C library is not glibc (the function does not exist there).
 */
#include <node_api.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

static napi_value trim(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
#if defined(__GLIBC__)
  if (napi_get_boolean(env, malloc_trim(0) != 0, &result) != napi_ok) return NULL;
#else
  if (napi_get_undefined(env, &result) != napi_ok) return NULL;
#endif
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "trim", NAPI_AUTO_LENGTH, trim, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "trim", fn) != napi_ok) return NULL;
  return exports;
}
