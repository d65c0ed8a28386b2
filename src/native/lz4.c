// LZ4 block compression into the caller's buffer: RAFS stores bare LZ4 blocks (no frame, no
// length prefix), and a codec that writes straight into a pooled buffer leaves no garbage per
// chunk in the workers. Greedy single-pass matcher over a 4096-entry hash of 4-byte sequences,
// skipping faster through data that does not match, as LZ4's fast mode does. The output obeys
// the block format's end rules: the last 5 bytes are literals and no match starts in the last
// 12 bytes, so every LZ4 decoder (including the fast ones that rely on these rules) reads it.
#include <node_api.h>
#include <stdint.h>
#include <string.h>

#define MINMATCH 4
#define LASTLITERALS 5
#define MFLIMIT 12
#define MAX_DISTANCE 65535
#define HASH_LOG 12
#define SKIP_TRIGGER 6

static inline uint32_t read32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

static inline uint32_t hash4(uint32_t seq) {
  return (seq * 2654435761u) >> (32 - HASH_LOG);
}

// Bytes a length field of `len` needs after its 4 bits in the token.
static inline size_t extra_len_bytes(size_t len) {
  return len >= 15 ? (len - 15) / 255 + 1 : 0;
}

static inline uint8_t *put_len(uint8_t *op, size_t len) {
  len -= 15;
  while (len >= 255) {
    *op++ = 255;
    len -= 255;
  }
  *op++ = (uint8_t)len;
  return op;
}

// One sequence: literals [anchor, anchor + lit) then, if match_len > 0, a match of match_len
// bytes at distance `offset`. Returns the new output position, or NULL when it does not fit.
static uint8_t *put_sequence(uint8_t *op, const uint8_t *oend, const uint8_t *anchor, size_t lit, size_t offset, size_t match_len) {
  size_t ml = match_len > 0 ? match_len - MINMATCH : 0;
  size_t need = 1 + extra_len_bytes(lit) + lit + (match_len > 0 ? 2 + extra_len_bytes(ml) : 0);
  if (need > (size_t)(oend - op)) return NULL;
  uint8_t *token = op++;
  *token = (uint8_t)((lit >= 15 ? 15 : lit) << 4);
  if (lit >= 15) op = put_len(op, lit);
  memcpy(op, anchor, lit);
  op += lit;
  if (match_len == 0) return op;
  *op++ = (uint8_t)(offset & 0xff);
  *op++ = (uint8_t)(offset >> 8);
  *token |= (uint8_t)(ml >= 15 ? 15 : ml);
  if (ml >= 15) op = put_len(op, ml);
  return op;
}

// Compresses src into dst; returns the block's size, or -1 when it does not fit in dst_cap.
long lz4_block_compress(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_cap) {
  uint32_t table[1 << HASH_LOG];
  const uint8_t *ip = src;
  const uint8_t *anchor = src;
  const uint8_t *const iend = src + src_len;
  uint8_t *op = dst;
  const uint8_t *const oend = dst + dst_cap;

  if (src_len >= MFLIMIT + 1) {
    const uint8_t *const mflimit = iend - MFLIMIT;
    const uint8_t *const matchlimit = iend - LASTLITERALS;
    // Slots hold positions from src; zeroed, every slot starts out naming src itself (position
    // 0), which is only taken when its bytes really match and it lies before ip.
    memset(table, 0, sizeof table);
    ip++;
    unsigned misses = 1u << SKIP_TRIGGER;
    while (ip < mflimit) {
      uint32_t seq = read32(ip);
      uint32_t h = hash4(seq);
      const uint8_t *ref = src + table[h];
      table[h] = (uint32_t)(ip - src);
      if (ref >= ip || (size_t)(ip - ref) > MAX_DISTANCE || read32(ref) != seq) {
        ip += misses++ >> SKIP_TRIGGER;
        continue;
      }
      misses = 1u << SKIP_TRIGGER;
      // Grow the match backwards over pending literals, then forwards up to the literal tail.
      while (ip > anchor && ref > src && ip[-1] == ref[-1]) {
        ip--;
        ref--;
      }
      const uint8_t *p = ip + MINMATCH;
      const uint8_t *q = ref + MINMATCH;
      while (p < matchlimit && *p == *q) {
        p++;
        q++;
      }
      size_t match_len = (size_t)(p - ip);
      op = put_sequence(op, oend, anchor, (size_t)(ip - anchor), (size_t)(ip - ref), match_len);
      if (op == NULL) return -1;
      ip = p;
      anchor = ip;
      // Index a position inside the match, so the next search has a nearby candidate.
      if (ip < mflimit) table[hash4(read32(ip - 2))] = (uint32_t)(ip - 2 - src);
    }
  }
  op = put_sequence(op, oend, anchor, (size_t)(iend - anchor), 0, 0);
  if (op == NULL) return -1;
  return (long)(op - dst);
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
