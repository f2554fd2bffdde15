/*
 * One function for Node: trim() runs glibc's malloc_trim(0), which gives back to the system every
 * whole free page inside the allocator's heaps, not only the free memory at a heap's top, which is
 * all that free() itself ever returns. Memory that OpenSSL and Node allocated for a burst of
 * connections and then freed otherwise stays resident (src/lib/malloc-trim.ts decides when).
 *
 * The trim runs on libuv's thread pool: its time grows with the memory it releases (about 4 ms for
 * 22 MiB, 50-100 ms for 100-166 MiB), and while it holds an arena a malloc on the event loop waits
 * for it, so the caller trims only when calm. trim() returns a promise of true when
 * memory was released and false when there was none to release; where the C library is not glibc
 * (the function does not exist there) it returns undefined at once.
 */
#include <stdlib.h> /* first: glibc's headers define __GLIBC__ (through <features.h>), musl's do not */
#include <node_api.h>
#if defined(__GLIBC__)
#include <malloc.h>

/* Rejects `deferred` with an Error carrying `text` (best effort: on a failing env, nothing more can be done). */
static void reject_with(napi_env env, napi_deferred deferred, const char *text) {
  napi_value message = NULL;
  napi_value error = NULL;
  if (napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message) != napi_ok) return;
  if (napi_create_error(env, NULL, message, &error) != napi_ok) return;
  napi_reject_deferred(env, deferred, error);
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int released;
} trim_job;

static void trim_execute(napi_env env, void *data) {
  (void)env;
  trim_job *job = data;
  job->released = malloc_trim(0);
}

static void trim_complete(napi_env env, napi_status status, void *data) {
  trim_job *job = data;
  napi_value value;
  if (status == napi_ok && napi_get_boolean(env, job->released != 0, &value) == napi_ok) {
    napi_resolve_deferred(env, job->deferred, value);
  } else {
    reject_with(env, job->deferred, "malloc_trim did not run");
  }
  napi_delete_async_work(env, job->work);
  free(job);
}

static napi_value trim(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value promise;
  napi_value name;
  trim_job *job = calloc(1, sizeof *job);
  if (job == NULL) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  if (napi_create_promise(env, &job->deferred, &promise) != napi_ok) {
    free(job);
    return NULL;
  }
  if (napi_create_string_utf8(env, "malloc_trim", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, trim_execute, trim_complete, job, &job->work) != napi_ok) {
    reject_with(env, job->deferred, "malloc_trim could not be queued");
    free(job);
    return promise;
  }
  if (napi_queue_async_work(env, job->work) != napi_ok) {
    napi_delete_async_work(env, job->work);
    reject_with(env, job->deferred, "malloc_trim could not be queued");
    free(job);
  }
  return promise;
}
#else
static napi_value trim(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  if (napi_get_undefined(env, &result) != napi_ok) return NULL;
  return result;
}
#endif

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "trim", NAPI_AUTO_LENGTH, trim, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "trim", fn) != napi_ok) return NULL;
  return exports;
}
