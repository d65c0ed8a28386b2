// Random access into gzip streams (targz-ref, blob.md §4.3 "ZRAN context"): an inflater that
// reports every deflate block boundary it crosses, and a one-shot inflate that resumes at such
// a boundary. Built on zlib's inflate with Z_BLOCK, which returns at each block boundary with
// the count of unused bits of the last input byte in data_type; a decoder can restart there
// given those bits, that byte and the 32 KiB of output before the boundary (the window).
//
// zranNew(): an inflater handle for one .tar.gz (any number of gzip members, back to back).
// zranRun(h, input, out, points, res): inflates `input` into `out` until either is used up or
// `points` is full. Each boundary is reported as 4 doubles in `points`:
//   [kind, in_pos, out_pos, bits | prev_byte << 8]
// kind 1 = a block boundary (also the one just after each member's gzip header), kind 2 = the
// end of a member (its trailer checked). in_pos/out_pos count from the start of the file and of
// the uncompressed stream. `res` gets [bytes of input consumed, bytes of output written, points
// written, 1 when the stream rests between members (a clean place to end), 0 otherwise].
// Corrupt data throws an Error whose message is zlib's (the caller adds where).
// The window is not copied here: it is the output before out_pos, which the caller has.
//
// zranExtract(input, bits, prevByte, dict, out, res): raw-inflates `input` from a boundary
// (primed with `bits` bits of `prevByte`, `dict` as the window) into `out` until it is full or
// the input ends, crossing member ends (trailer then next header) on the way; res gets
// [input consumed, output written].
#include <node_api.h>
#include <zlib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define THROW(env, msg)                          \
  do {                                           \
    napi_throw_error((env), NULL, (msg));        \
    return NULL;                                 \
  } while (0)

typedef struct {
  z_stream strm;
  int live;              // inflateInit2 succeeded and inflateEnd not yet called
  double in_total;       // bytes of input consumed since the start of the file
  double out_total;      // bytes of output produced
  unsigned char last;    // the last input byte consumed (for a boundary at the start of a buffer)
  int between;           // 1: a member ended and no byte of the next one was consumed yet
} zran_t;

static void zran_free(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  zran_t *z = data;
  if (z->live) inflateEnd(&z->strm);
  free(z);
}

// A typed-array argument of the given element type: its data and element count.
static int typed_arg(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *len) {
  napi_typedarray_type type;
  napi_value buffer;
  size_t offset;
  if (napi_get_typedarray_info(env, v, &type, len, data, &buffer, &offset) != napi_ok || type != want) return 0;
  return 1;
}
#define u8_arg(env, v, data, len) typed_arg((env), (v), napi_uint8_array, (void **)(data), (len))
#define f64_arg(env, v, data, len) typed_arg((env), (v), napi_float64_array, (void **)(data), (len))

static napi_value zran_new(napi_env env, napi_callback_info info) {
  (void)info;
  zran_t *z = calloc(1, sizeof *z);
  if (!z) THROW(env, "out of memory");
  // 31: gzip only (15-bit window + 16), as a .tar.gz layer is.
  if (inflateInit2(&z->strm, 31) != Z_OK) {
    free(z);
    THROW(env, "inflateInit2 failed");
  }
  z->live = 1;
  z->between = 1;
  napi_value ext;
  if (napi_create_external(env, z, zran_free, NULL, &ext) != napi_ok) {
    zran_free(env, z, NULL);
    THROW(env, "napi_create_external failed");
  }
  return ext;
}

static napi_value zran_run(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  zran_t *z;
  uint8_t *in, *out;
  size_t in_len, out_len, pts_len, res_len;
  double *pts, *res;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5 ||
      napi_get_value_external(env, argv[0], (void **)&z) != napi_ok || !u8_arg(env, argv[1], &in, &in_len) ||
      !u8_arg(env, argv[2], &out, &out_len) || !f64_arg(env, argv[3], &pts, &pts_len) || !f64_arg(env, argv[4], &res, &res_len) ||
      res_len < 4 || pts_len < 4) {
    THROW(env, "zranRun(handle, input, out, points, res)");
  }
  if (!z->live) THROW(env, "the inflater was closed by an earlier error");
  z_stream *s = &z->strm;
  size_t in_used = 0, out_used = 0, npts = 0, max_pts = pts_len / 4;
  while (in_used < in_len && out_used < out_len && npts < max_pts) {
    // zlib counts in uInt: feed at most 1 GiB per call.
    uInt avail_in = (uInt)((in_len - in_used) > (1u << 30) ? (1u << 30) : (in_len - in_used));
    uInt avail_out = (uInt)((out_len - out_used) > (1u << 30) ? (1u << 30) : (out_len - out_used));
    s->next_in = in + in_used;
    s->avail_in = avail_in;
    s->next_out = out + out_used;
    s->avail_out = avail_out;
    int ret = inflate(s, Z_BLOCK);
    size_t took = avail_in - s->avail_in, gave = avail_out - s->avail_out;
    if (took > 0) {
      z->last = in[in_used + took - 1];
      z->between = 0;
    }
    in_used += took;
    out_used += gave;
    z->in_total += (double)took;
    z->out_total += (double)gave;
    if (ret == Z_STREAM_END) {
      pts[npts * 4] = 2;
      pts[npts * 4 + 1] = z->in_total;
      pts[npts * 4 + 2] = z->out_total;
      pts[npts * 4 + 3] = 0;
      npts++;
      // The next member (if any) starts with its own header: same mode, fresh window.
      if (inflateReset(s) != Z_OK) THROW(env, "inflateReset failed");
      z->between = 1;
      continue;
    }
    if (ret != Z_OK && ret != Z_BUF_ERROR) {
      const char *msg = s->msg ? s->msg : ret == Z_DATA_ERROR ? "invalid deflate data" : ret == Z_MEM_ERROR ? "out of memory" : "inflate failed";
      char text[160];
      strncpy(text, msg, sizeof text - 1);
      text[sizeof text - 1] = 0;
      inflateEnd(s);
      z->live = 0;
      THROW(env, text);
    }
    if (ret == Z_BUF_ERROR && took == 0 && gave == 0) break; // cannot happen with input and output left; guard anyway
    // 128: stopped at a block boundary (or just after a header); 64: that was the last block.
    if ((s->data_type & 128) && !(s->data_type & 64)) {
      int bits = s->data_type & 7;
      pts[npts * 4] = 1;
      pts[npts * 4 + 1] = z->in_total;
      pts[npts * 4 + 2] = z->out_total;
      pts[npts * 4 + 3] = (double)(bits | (bits ? (z->last << 8) : 0));
      npts++;
    }
  }
  res[0] = (double)in_used;
  res[1] = (double)out_used;
  res[2] = (double)npts;
  res[3] = z->between ? 1 : 0;
  return NULL;
}

// Skips a member's trailer and the next member's header in `s` (raw mode): returns 0, or -1
// when the input ends first, or a zlib error.
static int next_member(z_stream *s) {
  if (s->avail_in < 8) return -1;
  s->next_in += 8;
  s->avail_in -= 8;
  if (s->avail_in == 0) return -1;
  if (inflateReset2(s, 31) != Z_OK) return Z_STREAM_ERROR;
  unsigned char scratch[1];
  for (;;) {
    // The header produces no output; Z_BLOCK stops right after it (data_type bit 128).
    s->next_out = scratch;
    s->avail_out = 0;
    uInt before = s->avail_in;
    int ret = inflate(s, Z_BLOCK);
    if (ret != Z_OK && ret != Z_BUF_ERROR) return ret;
    if (s->data_type & 128) break;
    if (s->avail_in == 0 || s->avail_in == before) return -1;
  }
  return inflateReset2(s, -15) == Z_OK ? 0 : Z_STREAM_ERROR;
}

static napi_value zran_extract(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  uint8_t *in, *dict, *out;
  size_t in_len, dict_len, out_len, res_len;
  int32_t bits, prev;
  double *res;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 6 || !u8_arg(env, argv[0], &in, &in_len) ||
      napi_get_value_int32(env, argv[1], &bits) != napi_ok || napi_get_value_int32(env, argv[2], &prev) != napi_ok ||
      !u8_arg(env, argv[3], &dict, &dict_len) || !u8_arg(env, argv[4], &out, &out_len) || !f64_arg(env, argv[5], &res, &res_len) ||
      res_len < 2 || bits < 0 || bits > 7 || dict_len > 32768 || in_len > 0xffffffffu || out_len > 0xffffffffu) {
    THROW(env, "zranExtract(input, bits, prevByte, dict, out, res)");
  }
  z_stream s;
  memset(&s, 0, sizeof s);
  if (inflateInit2(&s, -15) != Z_OK) THROW(env, "inflateInit2 failed");
  const char *err = NULL;
  if (bits > 0 && inflatePrime(&s, bits, (prev & 0xff) >> (8 - bits)) != Z_OK) err = "inflatePrime failed";
  if (!err && dict_len > 0 && inflateSetDictionary(&s, dict, (uInt)dict_len) != Z_OK) err = "inflateSetDictionary failed";
  s.next_in = in;
  s.avail_in = (uInt)in_len;
  size_t produced = 0;
  while (!err && produced < out_len) {
    s.next_out = out + produced;
    s.avail_out = (uInt)(out_len - produced);
    uInt before_out = s.avail_out;
    int ret = inflate(&s, Z_NO_FLUSH);
    produced += before_out - s.avail_out;
    if (ret == Z_STREAM_END) {
      if (produced >= out_len) break;
      int r = next_member(&s);
      if (r == -1) break; // the input ends with this member
      if (r != 0) err = s.msg ? s.msg : "invalid gzip member header";
      continue;
    }
    if (ret == Z_BUF_ERROR) break; // the input ran out
    if (ret != Z_OK) err = s.msg ? s.msg : "invalid deflate data";
  }
  res[0] = (double)(in_len - s.avail_in);
  res[1] = (double)produced;
  inflateEnd(&s);
  if (err) {
    char text[160];
    strncpy(text, err, sizeof text - 1);
    text[sizeof text - 1] = 0;
    THROW(env, text);
  }
  return NULL;
}

napi_value zran_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"zranNew", NULL, zran_new, NULL, NULL, NULL, napi_default, NULL},
    {"zranRun", NULL, zran_run, NULL, NULL, NULL, napi_default, NULL},
    {"zranExtract", NULL, zran_extract, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}
