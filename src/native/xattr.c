// Extended attributes and lstat by byte-string path, without following symlinks.
// Node has no xattr API, file names in an image may be any bytes (so paths come in as Buffers),
// and lstat fills a caller's Float64Array: no BigInt garbage per file on the walk's hot path.
#define _GNU_SOURCE // F_SETPIPE_SZ
#include <node_api.h>
#include <sys/xattr.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <dirent.h>
#include <limits.h>
#include <fcntl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#define CALL(env, call)                                                \
  do {                                                                 \
    if ((call) != napi_ok) {                                           \
      napi_throw_error((env), NULL, "napi call failed: " #call);      \
      return NULL;                                                     \
    }                                                                  \
  } while (0)

static napi_value throw_errno(napi_env env, const char *syscall, int err) {
  napi_value msg, code, error, num;
  char text[128];
  snprintf(text, sizeof text, "%s: %s", syscall, strerror(err));
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  napi_create_string_utf8(env, err == ENOENT ? "ENOENT" : err == EACCES ? "EACCES" : err == ENOTSUP ? "ENOTSUP" : err == ENODATA ? "ENODATA" : err == E2BIG ? "E2BIG" : err == ERANGE ? "ERANGE" : err == EPERM ? "EPERM" : err == ENOTDIR ? "ENOTDIR" : err == ELOOP ? "ELOOP" : err == ENAMETOOLONG ? "ENAMETOOLONG" : "EIO", NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, msg, &error);
  napi_create_int32(env, err, &num);
  napi_set_named_property(env, error, "errno", num);
  napi_throw(env, error);
  return NULL;
}

// Copies a Buffer argument into a NUL-terminated C string; the caller frees it.
static char *path_arg(napi_env env, napi_value value) {
  void *data;
  size_t len;
  if (napi_get_buffer_info(env, value, &data, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "path must be a Buffer");
    return NULL;
  }
  char *out = malloc(len + 1);
  memcpy(out, data, len);
  out[len] = 0;
  return out;
}

// llist(path: Buffer): Buffer of NUL-separated names (empty when the file has none or the fs has no xattrs).
static napi_value llist(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char *path = path_arg(env, argv[0]);
  if (!path) return NULL;
  for (;;) {
    ssize_t size = llistxattr(path, NULL, 0);
    if (size < 0) {
      int err = errno;
      if (err == ENOTSUP) size = 0;
      else { free(path); return throw_errno(env, "llistxattr", err); }
    }
    void *data;
    CALL(env, napi_create_buffer(env, (size_t)size, &data, &result));
    if (size == 0) break;
    ssize_t got = llistxattr(path, data, (size_t)size);
    if (got >= 0) {
      if (got < size) CALL(env, napi_create_buffer_copy(env, (size_t)got, data, NULL, &result));
      break;
    }
    if (errno != ERANGE) { int err = errno; free(path); return throw_errno(env, "llistxattr", err); }
  }
  free(path);
  return result;
}

// lget(path: Buffer, name: Buffer): Buffer value.
static napi_value lget(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char *path = path_arg(env, argv[0]);
  if (!path) return NULL;
  char *name = path_arg(env, argv[1]);
  if (!name) { free(path); return NULL; }
  for (;;) {
    ssize_t size = lgetxattr(path, name, NULL, 0);
    if (size < 0) { int err = errno; free(path); free(name); return throw_errno(env, "lgetxattr", err); }
    void *data;
    CALL(env, napi_create_buffer(env, (size_t)size, &data, &result));
    if (size == 0) break;
    ssize_t got = lgetxattr(path, name, data, (size_t)size);
    if (got >= 0) {
      if (got < size) CALL(env, napi_create_buffer_copy(env, (size_t)got, data, NULL, &result));
      break;
    }
    if (errno != ERANGE) { int err = errno; free(path); free(name); return throw_errno(env, "lgetxattr", err); }
  }
  free(path);
  free(name);
  return result;
}

// lset(path: Buffer, name: Buffer, value: Buffer): undefined. Used by tests to build hostile trees.
static napi_value lset(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char *path = path_arg(env, argv[0]);
  if (!path) return NULL;
  char *name = path_arg(env, argv[1]);
  if (!name) { free(path); return NULL; }
  void *value;
  size_t len;
  CALL(env, napi_get_buffer_info(env, argv[2], &value, &len));
  int rc = lsetxattr(path, name, value, len, 0);
  int err = errno;
  free(path);
  free(name);
  if (rc < 0) return throw_errno(env, "lsetxattr", err);
  return NULL;
}

// Fields per entry of scanDir's stats: lstatInto's 13, then the xattr name list's size.
#define SCAN_FIELDS 14

static void fill_stat(double *out, const struct stat *st) {
  out[0] = st->st_mode;
  out[1] = st->st_uid;
  out[2] = st->st_gid;
  out[3] = (double)st->st_size;
  out[4] = (double)st->st_mtim.tv_sec;
  out[5] = (double)st->st_mtim.tv_nsec;
  out[6] = (double)st->st_nlink;
  out[7] = major(st->st_rdev);
  out[8] = minor(st->st_rdev);
  out[9] = (double)((unsigned long long)st->st_dev >> 32);
  out[10] = (double)((unsigned long long)st->st_dev & 0xffffffffu);
  out[11] = (double)((unsigned long long)st->st_ino >> 32);
  out[12] = (double)((unsigned long long)st->st_ino & 0xffffffffu);
}

// lstatInto(path: Buffer, out: Float64Array(13)): mode, uid, gid, size, mtime sec, mtime nsec,
// nlink, rdev major, rdev minor, dev high/low 32 bits, ino high/low 32 bits.
static napi_value lstat_into(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char *path = path_arg(env, argv[0]);
  if (!path) return NULL;
  napi_typedarray_type type;
  size_t length;
  void *data;
  CALL(env, napi_get_typedarray_info(env, argv[1], &type, &length, &data, NULL, NULL));
  if (type != napi_float64_array || length < 13) {
    free(path);
    napi_throw_type_error(env, NULL, "out must be a Float64Array of 13");
    return NULL;
  }
  struct stat st;
  int rc = lstat(path, &st);
  int err = errno;
  free(path);
  if (rc < 0) return throw_errno(env, "lstat", err);
  fill_stat(data, &st);
  return NULL;
}

// Orders two entries of a scan by name, byte by byte (Buffer.compare's order: as names hold no
// NUL, strcmp's unsigned comparison up to the terminator is the same).
struct scan_entry { size_t off; };
static int by_name(const void *a, const void *b, void *names) {
  return strcmp((const char *)names + ((const struct scan_entry *)a)->off, (const char *)names + ((const struct scan_entry *)b)->off);
}

// listxattrat(2) (Linux 6.13, x86-64 and the generic table alike: 465): an entry's xattr list
// looked up from its directory's fd. llistxattr resolves the whole path again for every entry,
// and took ~60 ms of a walk of /usr/share (53k entries) where this takes ~35.
#if defined(__linux__) && (defined(__x86_64__) || defined(__aarch64__) || defined(__riscv))
#include <sys/syscall.h>
#define NR_LISTXATTRAT 465
static int have_listxattrat = 1;
#endif

// The size of the xattr name list of entry nm of directory fd (full: that directory's path, dlen
// bytes, then a '/' and room for the name), or -1 with errno, as llistxattr gives it.
static ssize_t list_size_at(int fd, char *full, size_t dlen, const char *nm) {
#ifdef NR_LISTXATTRAT
  if (have_listxattrat) {
    long r = syscall(NR_LISTXATTRAT, fd, nm, AT_SYMLINK_NOFOLLOW, NULL, (size_t)0);
    if (r >= 0) return (ssize_t)r;
    // An older kernel (ENOSYS), or a seccomp filter that refuses calls it does not know (EPERM,
    // as container runtimes do): the path from here on. Any other error is the entry's own.
    if (errno != ENOSYS && errno != EPERM) return -1;
    have_listxattrat = 0;
  }
#else
  (void)fd;
#endif
  memcpy(full + dlen + 1, nm, strlen(nm) + 1);
  return llistxattr(full, NULL, 0);
}

// The SCAN_FIELDS numbers of one entry of directory fd (at path full, whose last part is being
// filled in: dlen bytes of directory and a '/'): its lstat fields, then the size of its xattr
// name list (0: none, or no xattrs on this fs); out[0] = -errno where either failed.
static void stat_entry(int fd, char *full, size_t dlen, const char *nm, double *out) {
  struct stat st;
  if (fstatat(fd, nm, &st, AT_SYMLINK_NOFOLLOW) < 0) {
    out[0] = -errno;
    return;
  }
  fill_stat(out, &st);
  ssize_t xs = list_size_at(fd, full, dlen, nm);
  if (xs < 0) {
    if (errno == ENOTSUP) xs = 0;
    else { out[0] = -errno; return; }
  }
  out[13] = (double)xs;
}

// A directory path with room after it for a '/' and a name; NULL when out of memory.
static char *full_path(const char *dir, size_t dlen) {
  char *full = malloc(dlen + 2 + NAME_MAX + 1);
  if (!full) return NULL;
  memcpy(full, dir, dlen);
  full[dlen] = '/';
  return full;
}

// scanDir(dir: Buffer, statMax: number): [names: Buffer, stats: Float64Array]. Every entry but
// . and .. in name order (bytewise): names NUL-terminated back to back; then, for the first
// statMax entries (all when fewer), SCAN_FIELDS numbers each (stat_entry; a negative first
// number: the caller asks again by path for the error). A large directory is stated in slices
// (statNames), so the caller can do other work between them. One call per directory otherwise:
// no object per entry on the JS side. `dir` must be short enough for the kernel (the caller's
// withShortPath).
static napi_value scan_dir(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint32_t stat_max = UINT32_MAX;
  if (argc >= 2) CALL(env, napi_get_value_uint32(env, argv[1], &stat_max));
  char *dir = path_arg(env, argv[0]);
  if (!dir) return NULL;
  DIR *d = opendir(dir);
  if (!d) { int err = errno; free(dir); return throw_errno(env, "opendir", err); }
  size_t dlen = strlen(dir);
  char *names = NULL, *full = NULL;
  double *stats = NULL;
  struct scan_entry *ents = NULL;
  size_t nlen = 0, ncap = 0, count = 0, scap = 0;
  int fail = 0;
  full = full_path(dir, dlen);
  if (!full) { fail = ENOMEM; goto done; }
  for (;;) {
    errno = 0;
    struct dirent *e = readdir(d);
    if (!e) { if (errno) fail = errno; break; }
    const char *nm = e->d_name;
    if (nm[0] == '.' && (nm[1] == 0 || (nm[1] == '.' && nm[2] == 0))) continue;
    size_t len = strlen(nm);
    if (nlen + len + 1 > ncap) {
      size_t cap = ncap ? ncap * 2 : 4096;
      while (cap < nlen + len + 1) cap *= 2;
      char *p = realloc(names, cap);
      if (!p) { fail = ENOMEM; break; }
      names = p;
      ncap = cap;
    }
    if (count == scap) {
      size_t cap = scap ? scap * 2 : 64;
      struct scan_entry *q = realloc(ents, cap * sizeof *ents);
      if (!q) { fail = ENOMEM; break; }
      ents = q;
      scap = cap;
    }
    ents[count].off = nlen;
    memcpy(names + nlen, nm, len + 1);
    nlen += len + 1;
    count++;
  }
  if (!fail && count > 1) qsort_r(ents, count, sizeof *ents, by_name, names);
  size_t stated = count < stat_max ? count : stat_max;
  if (!fail && stated > 0) {
    stats = malloc(stated * SCAN_FIELDS * sizeof(double));
    if (!stats) fail = ENOMEM;
    else for (size_t i = 0; i < stated; i++) stat_entry(dirfd(d), full, dlen, names + ents[i].off, stats + i * SCAN_FIELDS);
  }
done:
  closedir(d);
  free(dir);
  free(full);
  if (fail) { free(names); free(stats); free(ents); return throw_errno(env, "readdir", fail); }
  napi_value result, nbuf, sab, sarr;
  void *ndata, *sdata;
  napi_status st1 = napi_create_buffer(env, nlen, &ndata, &nbuf);
  napi_status st2 = napi_create_arraybuffer(env, stated * SCAN_FIELDS * sizeof(double), &sdata, &sab);
  if (st1 == napi_ok && st2 == napi_ok) {
    char *np = ndata;
    for (size_t i = 0; i < count; i++) {
      size_t len = strlen(names + ents[i].off) + 1;
      memcpy(np, names + ents[i].off, len);
      np += len;
    }
    if (stated > 0) memcpy(sdata, stats, stated * SCAN_FIELDS * sizeof(double));
  }
  free(names);
  free(stats);
  free(ents);
  if (st1 != napi_ok || st2 != napi_ok) { napi_throw_error(env, NULL, "scanDir: out of memory"); return NULL; }
  CALL(env, napi_create_typedarray(env, napi_float64_array, stated * SCAN_FIELDS, sab, 0, &sarr));
  CALL(env, napi_create_array_with_length(env, 2, &result));
  CALL(env, napi_set_element(env, result, 0, nbuf));
  CALL(env, napi_set_element(env, result, 1, sarr));
  return result;
}

// statNames(dir: Buffer, names: Buffer): Float64Array. The SCAN_FIELDS numbers (as scanDir
// gives them) of each entry of dir named in names (NUL-terminated back to back, as scanDir
// returns them). `dir` must be short enough for the kernel.
static napi_value stat_names(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) { napi_throw_type_error(env, NULL, "statNames(dir, names)"); return NULL; }
  char *nm;
  size_t nlen;
  CALL(env, napi_get_buffer_info(env, argv[1], (void **)&nm, &nlen));
  if (nlen > 0 && nm[nlen - 1] != 0) { napi_throw_type_error(env, NULL, "statNames: names must end in NUL"); return NULL; }
  size_t count = 0;
  for (size_t i = 0; i < nlen; i++) if (nm[i] == 0) count++;
  char *dir = path_arg(env, argv[0]);
  if (!dir) return NULL;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) { int err = errno; free(dir); return throw_errno(env, "open", err); }
  size_t dlen = strlen(dir);
  char *full = full_path(dir, dlen);
  free(dir);
  if (!full) { close(fd); napi_throw_error(env, NULL, "statNames: out of memory"); return NULL; }
  napi_value sab, sarr;
  void *sdata;
  if (napi_create_arraybuffer(env, count * SCAN_FIELDS * sizeof(double), &sdata, &sab) != napi_ok) {
    close(fd);
    free(full);
    napi_throw_error(env, NULL, "statNames: out of memory");
    return NULL;
  }
  const char *p = nm;
  for (size_t i = 0; i < count; i++) {
    size_t len = strlen(p);
    // A name the kernel cannot have: the caller's entry then fails as a missing one would.
    if (len == 0 || len > NAME_MAX) ((double *)sdata)[i * SCAN_FIELDS] = -ENOENT;
    else stat_entry(fd, full, dlen, p, (double *)sdata + i * SCAN_FIELDS);
    p += len + 1;
  }
  close(fd);
  free(full);
  CALL(env, napi_create_typedarray(env, napi_float64_array, count * SCAN_FIELDS, sab, 0, &sarr));
  return sarr;
}

// setPipeSize(fd: number, size: number): the pipe's new capacity, or -1 when it cannot change
// (not a pipe, or over /proc/sys/fs/pipe-max-size). Bigger pipes mean fewer reads of a FIFO.
static napi_value set_pipe_size(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  int32_t fd, size;
  CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CALL(env, napi_get_value_int32(env, argv[0], &fd));
  CALL(env, napi_get_value_int32(env, argv[1], &size));
#ifdef F_SETPIPE_SZ
  int rc = fcntl(fd, F_SETPIPE_SZ, size);
#else
  int rc = -1;
#endif
  CALL(env, napi_create_int32(env, rc, &result));
  return result;
}

// mallocTrim(): hands the free pages of every malloc arena back to the kernel; true when some
// were. Buffers freed by the pipeline's threads leave pages that glibc keeps otherwise.
static napi_value malloc_trim_all(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
#ifdef __GLIBC__
  int rc = malloc_trim(0);
#else
  int rc = 0;
#endif
  CALL(env, napi_get_boolean(env, rc != 0, &result));
  return result;
}

// src/native/lz4.c
napi_value lz4_compress_into(napi_env env, napi_callback_info info);
// src/native/readfiles.c
napi_value read_files_into(napi_env env, napi_callback_info info);
// src/native/heap.cc
napi_value memory_pressure(napi_env env, napi_callback_info info);
// src/native/zran.c
napi_value zran_init(napi_env env, napi_value exports);

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"llist", NULL, llist, NULL, NULL, NULL, napi_default, NULL},
    {"lget", NULL, lget, NULL, NULL, NULL, napi_default, NULL},
    {"lset", NULL, lset, NULL, NULL, NULL, napi_default, NULL},
    {"lstatInto", NULL, lstat_into, NULL, NULL, NULL, napi_default, NULL},
    {"setPipeSize", NULL, set_pipe_size, NULL, NULL, NULL, napi_default, NULL},
    {"mallocTrim", NULL, malloc_trim_all, NULL, NULL, NULL, napi_default, NULL},
    {"scanDir", NULL, scan_dir, NULL, NULL, NULL, napi_default, NULL},
    {"statNames", NULL, stat_names, NULL, NULL, NULL, napi_default, NULL},
    {"lz4CompressInto", NULL, lz4_compress_into, NULL, NULL, NULL, napi_default, NULL},
    {"readFilesInto", NULL, read_files_into, NULL, NULL, NULL, napi_default, NULL},
    {"memoryPressure", NULL, memory_pressure, NULL, NULL, NULL, napi_default, NULL},
  };
  CALL(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return zran_init(env, exports);
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
