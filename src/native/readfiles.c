// The chunk workers' reads of one batch in one call: per file an open, preads into the batch
// buffer and a close, without a JavaScript call (and its path Buffer, flags parsing and error
// object) per syscall. (Opening relative to a directory fd kept across a directory's files saved
// under 5% of the opens' cost on /usr/share: not worth its cases.) Any failure (an open or read
// error, a file that ends early, a path it cannot take) only stops here: the caller redoes that
// read with Node's fs, which gives the error its usual form.
#include <node_api.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

static int typed(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *count) {
  napi_typedarray_type type;
  size_t length;
  if (napi_get_typedarray_info(env, v, &type, &length, data, NULL, NULL) != napi_ok || type != want) {
    napi_throw_type_error(env, NULL, "readFilesInto: bad argument");
    return 0;
  }
  *count = length;
  return 1;
}

// Reads [at, at + len) of data from file offset pos of fd; 0 when all of it came.
static int read_all(int fd, uint8_t *dst, size_t len, off_t pos) {
  while (len > 0) {
    ssize_t k = pread(fd, dst, len, pos);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return -1;
    dst += k;
    len -= (size_t)k;
    pos += k;
  }
  return 0;
}

// readFilesInto(data, spans, paths, pathEnds, fds, from): does reads from..n-1 (chunks.ts's
// FileReads); returns n when all are done, else the index of the first read to redo.
napi_value read_files_into(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6], result;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 6) {
    napi_throw_type_error(env, NULL, "readFilesInto(data, spans, paths, pathEnds, fds, from)");
    return NULL;
  }
  uint8_t *data, *paths;
  double *spans;
  uint32_t *ends;
  int32_t *fds;
  size_t data_len, spans_len, paths_len, n, fds_len;
  uint32_t from;
  if (!typed(env, argv[0], napi_uint8_array, (void **)&data, &data_len) ||
      !typed(env, argv[1], napi_float64_array, (void **)&spans, &spans_len) ||
      !typed(env, argv[2], napi_uint8_array, (void **)&paths, &paths_len) ||
      !typed(env, argv[3], napi_uint32_array, (void **)&ends, &n) ||
      !typed(env, argv[4], napi_int32_array, (void **)&fds, &fds_len)) return NULL;
  if (napi_get_value_uint32(env, argv[5], &from) != napi_ok) {
    napi_throw_type_error(env, NULL, "readFilesInto: bad start");
    return NULL;
  }
  if (fds_len < n || spans_len < 3 * n) {
    napi_throw_range_error(env, NULL, "readFilesInto: arrays of different lengths");
    return NULL;
  }

  char path[PATH_MAX];
  size_t i = from;
  for (; i < n; i++) {
    double at = spans[3 * i], len = spans[3 * i + 1], pos = spans[3 * i + 2];
    if (!(at >= 0 && len >= 0 && pos >= 0 && at + len <= (double)data_len)) break;
    int fd = fds[i];
    if (fd < 0) {
      size_t start = i > 0 ? ends[i - 1] : 0, end = ends[i];
      if (start >= end || end > paths_len || end - start >= PATH_MAX) break;
      size_t plen = end - start;
      memcpy(path, paths + start, plen);
      path[plen] = 0;
      if (memchr(path, 0, plen) != NULL) break;
      fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) break;
      int bad = read_all(fd, data + (size_t)at, (size_t)len, (off_t)pos);
      close(fd);
      if (bad) break;
    } else if (read_all(fd, data + (size_t)at, (size_t)len, (off_t)pos)) {
      break;
    }
  }
  napi_create_uint32(env, (uint32_t)i, &result);
  return result;
}
