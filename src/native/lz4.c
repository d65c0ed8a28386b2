// LZ4 block compression into the caller's buffer: RAFS stores bare LZ4 blocks (no frame, no
// length prefix), and a codec that writes straight into a pooled buffer leaves no garbage per
// chunk in the workers. A greedy single-pass matcher: one 16 KiB hash table of earlier
// positions, skipping faster through data that does not match (LZ4's fast mode). Two variants
// of the same loop: inputs under 64 KiB keep 8192 16-bit positions hashed on 4 bytes (every
// candidate is within the 64 KiB window), larger ones 4096 32-bit
// positions hashed on 5 bytes. Match lengths are counted 8 bytes at a time, and literals are
// copied 8 bytes at a time where the copy's overshoot stays inside both buffers.
// The output obeys the block format's end rules: the last 5 bytes are literals and no match
// starts in the last 12 bytes, so every LZ4 decoder (including the fast ones that rely on these
// rules) reads it. It depends on the input bytes only (the table starts zeroed).
#include <node_api.h>
#include <stdint.h>
#include <string.h>

#define MINMATCH 4
#define LASTLITERALS 5
#define MFLIMIT 12
#define MAX_DISTANCE 65535
#define SKIP_TRIGGER 6
// Inputs shorter than this store every position (at most mflimit - 1) in 16 bits.
#define SMALL_LIMIT (65536 + MFLIMIT)
#define SMALL_HASH_LOG 13
#define LARGE_HASH_LOG 12
#define TABLE_BYTES 16384
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

static inline uint32_t read32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

static inline uint64_t read64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

static inline void copy8(uint8_t *d, const uint8_t *s) { memcpy(d, s, 8); }

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define BIG_ENDIAN_HOST 1
#else
#define BIG_ENDIAN_HOST 0
#endif

// Hash of the 4 bytes at p (small inputs) or of the 5 bytes at p (large ones); the same bytes
// give the same slot on every host.
static inline uint32_t hash_at(const uint8_t *p, int small) {
  if (small) return (read32(p) * 2654435761u) >> (32 - SMALL_HASH_LOG);
  uint64_t v = read64(p);
  if (BIG_ENDIAN_HOST) v = __builtin_bswap64(v);
  // The low 5 bytes moved to the top, times an odd 40-bit constant: the top bits mix all 5.
  return (uint32_t)(((v << 24) * 889523592379ull) >> (64 - LARGE_HASH_LOG));
}

// Bytes equal before the first that differs, from the XOR of two 8-byte reads.
static inline size_t first_diff(uint64_t x) {
#if BIG_ENDIAN_HOST
  return (size_t)(__builtin_clzll(x) >> 3);
#else
  return (size_t)(__builtin_ctzll(x) >> 3);
#endif
}

// Equal bytes from p and q onwards, stopping at limit (p > q, so q never passes limit either).
static inline size_t count_equal(const uint8_t *p, const uint8_t *q, const uint8_t *limit) {
  const uint8_t *const start = p;
  while (__builtin_expect(p + 8 <= limit, 1)) {
    uint64_t x = read64(p) ^ read64(q);
    if (x != 0) return (size_t)(p - start) + first_diff(x);
    p += 8;
    q += 8;
  }
  if (p + 4 <= limit && read32(p) == read32(q)) {
    p += 4;
    q += 4;
  }
  if (p + 2 <= limit && p[0] == q[0] && p[1] == q[1]) {
    p += 2;
    q += 2;
  }
  if (p < limit && *p == *q) p++;
  return (size_t)(p - start);
}

// Bytes a length field of `len` needs after its 4 bits in the token.
static inline size_t extra_len_bytes(size_t len) {
  return len >= 15 ? (len - 15) / 255 + 1 : 0;
}

// The bytes after a length's 4 bits in the token: 255s, then the rest. Runs of 255s are rare
// (a length of 270 or more), and kept out of line, away from the hot loop's registers.
static __attribute__((noinline)) uint8_t *put_long_len(uint8_t *op, size_t len) {
  while (len >= 255) {
    *op++ = 255;
    len -= 255;
  }
  *op++ = (uint8_t)len;
  return op;
}

static inline uint8_t *put_len(uint8_t *op, size_t len) {
  len -= 15;
  if (__builtin_expect(len < 255, 1)) {
    *op++ = (uint8_t)len;
    return op;
  }
  return put_long_len(op, len);
}

// Whether a sequence of lit literals and a match of MINMATCH + ml bytes fits in room bytes.
static __attribute__((noinline)) int sequence_fits(size_t lit, size_t ml, size_t room) {
  return 1 + extra_len_bytes(lit) + lit + 2 + extra_len_bytes(ml) <= room;
}

// Earlier positions by hash: 16-bit for small inputs, 32-bit for large ones.
union table {
  uint16_t u16[TABLE_BYTES / 2];
  uint32_t u32[TABLE_BYTES / 4];
};

static inline uint32_t table_get(const union table *t, uint32_t h, int small) {
  return small ? t->u16[h] : t->u32[h];
}

static inline void table_put(union table *t, uint32_t h, uint32_t pos, int small) {
  if (small) t->u16[h] = (uint16_t)pos;
  else t->u32[h] = pos;
}

// The candidate at position idx for position cur: earlier, within the window. Every position
// in the table lies before cur (lookups move forward, past every position stored), and for small
// inputs within 64 KiB of it; the check stays, as the one guard against a 0 offset.
static inline int in_window(uint32_t idx, uint32_t cur, int small) {
  return small ? idx < cur : cur - idx - 1 < MAX_DISTANCE;
}

static inline __attribute__((always_inline)) long compress_block(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_cap, int small) {
  union table tab;
  union table *const table = &tab;
  const uint8_t *ip = src;
  const uint8_t *anchor = src;
  const uint8_t *const iend = src + src_len;
  uint8_t *op = dst;
  uint8_t *const oend = dst + dst_cap;

  if (src_len < MFLIMIT + 1) goto last_literals;
  const uint8_t *const mflimit = iend - MFLIMIT;
  const uint8_t *const matchlimit = iend - LASTLITERALS;
  // Zeroed, every slot names position 0, taken only when its bytes really match.
  memset(&tab, 0, sizeof tab);
  ip++;

  for (;;) {
    const uint8_t *ref;
    // Find a match: every position for the first 64 misses, then every 2nd, 3rd, ... The next
    // position's hash is computed before this one's candidate is compared, so the two overlap.
    unsigned misses = 1u << SKIP_TRIGGER;
    const uint8_t *next = ip;
    uint32_t h_next = hash_at(ip, small);
    for (;;) {
      ip = next;
      uint32_t h = h_next;
      next = ip + (misses++ >> SKIP_TRIGGER);
      if (UNLIKELY(next > mflimit)) goto last_literals;
      uint32_t cur = (uint32_t)(ip - src);
      uint32_t idx = table_get(table, h, small);
      h_next = hash_at(next, small);
      table_put(table, h, cur, small);
      ref = src + idx;
      if (in_window(idx, cur, small) && read32(ref) == read32(ip)) break;
    }
    // Grow the match backwards over pending literals.
    while ((ip > anchor) & (ref > src) && UNLIKELY(ip[-1] == ref[-1])) {
      ip--;
      ref--;
    }

    for (;;) {
      // One sequence: the literals [anchor, ip), then the match at ip.
      size_t lit = (size_t)(ip - anchor);
      size_t ml = count_equal(ip + MINMATCH, ref + MINMATCH, matchlimit);
      // Room for the sequence: a quick bound first (token, literals, offset, both lengths' extra
      // bytes and the copies' overshoot), the exact size only near the end of dst.
      if (UNLIKELY((size_t)(oend - op) < lit + (lit >> 7) + (ml >> 7) + 32) && !sequence_fits(lit, ml, (size_t)(oend - op))) return -1;
      uint8_t *token = op++;
      uint8_t tk = (uint8_t)((lit >= 15 ? 15 : lit) << 4);
      if (lit >= 15) op = put_len(op, lit);
      // The copy may run past the literals by up to 7 bytes on both sides: the source still has
      // at least MFLIMIT bytes after ip, and the destination is checked here.
      if ((size_t)(oend - op) >= lit + 8) {
        uint8_t *d = op;
        const uint8_t *s = anchor;
        uint8_t *const e = op + lit;
        do {
          copy8(d, s);
          d += 8;
          s += 8;
        } while (d < e);
      } else {
        memcpy(op, anchor, lit);
      }
      op += lit;
      size_t offset = (size_t)(ip - ref);
      *op++ = (uint8_t)(offset & 0xff);
      *op++ = (uint8_t)(offset >> 8);
      tk |= (uint8_t)(ml >= 15 ? 15 : ml);
      if (ml >= 15) op = put_len(op, ml);
      *token = tk;

      ip += ml + MINMATCH;
      anchor = ip;
      if (UNLIKELY(ip >= mflimit)) goto last_literals;
      // Index a position inside the match, then try the position right after it: runs of
      // matches follow each other without a literal between them.
      table_put(table, hash_at(ip - 2, small), (uint32_t)(ip - 2 - src), small);
      uint32_t h = hash_at(ip, small);
      uint32_t cur = (uint32_t)(ip - src);
      uint32_t idx = table_get(table, h, small);
      table_put(table, h, cur, small);
      ref = src + idx;
      if (!(in_window(idx, cur, small) && read32(ref) == read32(ip))) break;
    }
    ip++;
  }

last_literals: {
    size_t lit = (size_t)(iend - anchor);
    if (1 + extra_len_bytes(lit) + lit > (size_t)(oend - op)) return -1;
    *op++ = (uint8_t)((lit >= 15 ? 15 : lit) << 4);
    if (lit >= 15) op = put_len(op, lit);
    memcpy(op, anchor, lit);
    op += lit;
  }
  return (long)(op - dst);
}

// Compresses src into dst; returns the block's size, or -1 when it does not fit in dst_cap.
// The two variants as separate functions, so each gets its own register allocation.
static __attribute__((noinline)) long compress_small(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_cap) {
  return compress_block(src, src_len, dst, dst_cap, 1);
}

static __attribute__((noinline)) long compress_large(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_cap) {
  return compress_block(src, src_len, dst, dst_cap, 0);
}

long lz4_block_compress(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_cap) {
  return src_len < SMALL_LIMIT ? compress_small(src, src_len, dst, dst_cap) : compress_large(src, src_len, dst, dst_cap);
}
static int bytes_arg(napi_env env, napi_value value, uint8_t **data, size_t *len) {
  napi_typedarray_type type;
  size_t length, offset;
  void *base;
  napi_value buffer;
  if (napi_get_typedarray_info(env, value, &type, &length, &base, &buffer, &offset) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, "expected a Uint8Array");
    return 0;
  }
  *data = base;
  *len = length;
  return 1;
}

// lz4CompressInto(dst: Uint8Array, src: Uint8Array): bytes written, or -1 when the block does not fit in dst.
napi_value lz4_compress_into(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  uint8_t *dst, *src;
  size_t dst_len, src_len;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) {
    napi_throw_type_error(env, NULL, "lz4CompressInto(dst, src)");
    return NULL;
  }
  if (!bytes_arg(env, argv[0], &dst, &dst_len) || !bytes_arg(env, argv[1], &src, &src_len)) return NULL;
  long n = lz4_block_compress(src, src_len, dst, dst_len);
  napi_create_double(env, (double)n, &result);
  return result;
}
