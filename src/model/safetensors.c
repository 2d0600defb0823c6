/* safetensors.c: safetensors reader (single file, sharded index, directory),
 * BERT name normalisation and writer (model layer; no MPI, no knowledge of
 * which tensors a BERT has). Format and contracts: see safetensors.h.
 *
 * Reading happens in two phases. Opening validates the whole header of every
 * shard against the file size, so that afterwards every tensor's
 * [offset, offset + nbytes) is known to lie inside its mapped shard; reading
 * then only converts bytes. The fuzz test (tests/model/t_safetensors_fuzz.c)
 * relies on that split: a mutated image either fails to open or reads
 * completely. */
#include "kd/model/safetensors.h"

#include "kd/core/atomic_file.h"
#include "kd/core/fsutil.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host (the format is little-endian)"
#endif

/* ---- dtypes --------------------------------------------------------------- */

/* Spellings and element sizes of the format's dtypes, indexed by enum
 * st_dtype. The list is the one of the Rust reference implementation
 * (safetensors::Dtype); a header naming anything else is rejected. */

static const struct {
    const char *name;
    size_t size;
} dtype_table[ST_DTYPE_COUNT] = {
    [ST_DTYPE_F32] = {"F32", 4},     [ST_DTYPE_F16] = {"F16", 2},
    [ST_DTYPE_BF16] = {"BF16", 2},   [ST_DTYPE_F64] = {"F64", 8},
    [ST_DTYPE_I64] = {"I64", 8},     [ST_DTYPE_I32] = {"I32", 4},
    [ST_DTYPE_I16] = {"I16", 2},     [ST_DTYPE_I8] = {"I8", 1},
    [ST_DTYPE_U64] = {"U64", 8},     [ST_DTYPE_U32] = {"U32", 4},
    [ST_DTYPE_U16] = {"U16", 2},     [ST_DTYPE_U8] = {"U8", 1},
    [ST_DTYPE_BOOL] = {"BOOL", 1},   [ST_DTYPE_F8_E4M3] = {"F8_E4M3", 1},
    [ST_DTYPE_F8_E5M2] = {"F8_E5M2", 1},
};

const char *st_dtype_name(enum st_dtype dt)
{
    return (unsigned)dt < ST_DTYPE_COUNT ? dtype_table[dt].name : "?";
}

size_t st_dtype_size(enum st_dtype dt)
{
    return (unsigned)dt < ST_DTYPE_COUNT ? dtype_table[dt].size : 0;
}

int st_dtype_parse(const char *s, enum st_dtype *dt)
{
    for (int i = 0; i < ST_DTYPE_COUNT; i++)
        if (strcmp(s, dtype_table[i].name) == 0) {
            *dt = (enum st_dtype)i;
            return 0;
        }
    return -1;
}

/* ---- scalar conversions ---------------------------------------------------- */

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* The four conversions below are the only places that know the bit layouts
 * of IEEE 754 binary16 and bfloat16. They work on the bits (no _Float16 or
 * __bf16 from the compiler, which older compilers and -march targets lack),
 * and they are exact where exactness is possible: every binary16/bfloat16
 * value is a float32 value, so widening never rounds. Narrowing rounds to
 * nearest, ties to even, as torch's .to(torch.float16/bfloat16) does; the
 * tests check every binary16 value and every halfway point. */
float st_f16_to_f32(uint16_t h)
{
    /* IEEE 754 binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits. */
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    if (exp == 0) {
        /* zero or subnormal: man * 2^-24 exactly (man < 2^10 fits a float) */
        float v = (float)man * 0x1p-24f;
        return bits_f32(f32_bits(v) | sign);
    }
    if (exp == 31) /* infinity or NaN; the payload moves to the top bits */
        return bits_f32(sign | 0x7f800000u | (man << 13));
    return bits_f32(sign | ((exp + 127 - 15) << 23) | (man << 13));
}

float st_bf16_to_f32(uint16_t b)
{
    /* bfloat16 is the upper half of a float32 */
    return bits_f32((uint32_t)b << 16);
}

/* float32 -> binary16, round to nearest even. Three ranges of |f|:
 * below 2^-25 (rounds to zero), [2^-25, 2^-14) (binary16 subnormals, counted
 * in units of 2^-24), and the normal range; the rounding increment may carry
 * into the exponent field, which yields the correct next binade (or
 * infinity, excluded beforehand). */
uint16_t st_f32_to_f16(float f)
{
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) /* NaN: keep the top payload bits, force quiet */
        return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
    /* 65520 = 0x477ff000 is halfway between the largest half (65504) and
     * 2^16; ties go to even, which is upwards here, so >= overflows. */
    if (ax >= 0x477ff000u)
        return (uint16_t)(sign | 0x7c00u);
    uint32_t e = ax >> 23;
    if (e < 102) /* |f| < 2^-25: rounds to zero */
        return sign;
    uint32_t r, rem, half;
    if (e < 113) {
        /* result is subnormal (|f| < 2^-14): count units of 2^-24 */
        uint32_t m = (ax & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e; /* in [14, 24] */
        r = m >> shift;
        rem = m & ((1u << shift) - 1);
        half = 1u << (shift - 1);
    } else {
        r = ((e - 112) << 10) | ((ax >> 13) & 0x3ffu);
        rem = ax & 0x1fffu;
        half = 0x1000u;
    }
    if (rem > half || (rem == half && (r & 1u)))
        r++; /* a carry into the exponent is the correct next value */
    return (uint16_t)(sign | r);
}

uint16_t st_f32_to_bf16(float f)
{
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 0x40u); /* quiet NaN, same sign */
    /* round to nearest even on the dropped 16 bits */
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

/* ---- small helpers ----------------------------------------------------------- */

/* Growable text buffer for the header the writer builds. Allocation
 * failure ends the job through kd_realloc, so callers need no checks. */
struct sbuf {
    char *p;
    size_t n, cap;
};

static void sbuf_reserve(struct sbuf *b, size_t extra)
{
    if (b->n + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + extra + 1)
        cap *= 2;
    b->p = kd_realloc(b->p, cap);
    b->cap = cap;
}

/* Appends n bytes and keeps the buffer NUL-terminated. */
static void sbuf_put(struct sbuf *b, const char *s, size_t n)
{
    sbuf_reserve(b, n);
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sbuf_puts(struct sbuf *b, const char *s) { sbuf_put(b, s, strlen(s)); }

static void sbuf_printf(struct sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    sbuf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)n;
}

/* JSON string literal with the escapes RFC 8259 requires: quote, backslash
 * and control characters. Bytes >= 0x80 pass through, so UTF-8 names stay
 * UTF-8 (serde_json in the Python library requires valid UTF-8; we pass on
 * whatever bytes the caller's name has). */
static void sbuf_put_json_string(struct sbuf *b, const char *s)
{
    sbuf_puts(b, "\"");
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') {
            char esc[2] = {'\\', (char)*c};
            sbuf_put(b, esc, 2);
        } else if (*c < 0x20) {
            sbuf_printf(b, "\\u%04x", *c);
        } else {
            sbuf_put(b, (const char *)c, 1);
        }
    }
    sbuf_puts(b, "\"");
}

/* "[768, 3072]" (at most cap bytes). */
static void shape_str(char *out, size_t cap, int ndim, const int64_t *shape)
{
    size_t n = 0;
    n += (size_t)snprintf(out, cap, "[");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (n < cap)
        snprintf(out + n, cap - n, "]");
}

/* Short printable form of a JSON value for "got ..." in messages: the
 * compact JSON text, cut at 60 characters so that a corrupt header cannot
 * flood the message; "nothing (key absent)" for a missing key. */
static void json_describe(const cJSON *v, char *out, size_t cap)
{
    if (!v) {
        snprintf(out, cap, "nothing (key absent)");
        return;
    }
    char *s = cJSON_PrintUnformatted(v);
    if (!s) {
        snprintf(out, cap, "(unprintable value)");
        return;
    }
    if (strlen(s) > 60)
        snprintf(out, cap, "%.57s...", s);
    else
        snprintf(out, cap, "%s", s);
    cJSON_free(s);
}

/* A JSON number that is an integer in [0, max]. cJSON stores numbers as
 * doubles, so integers are exact only up to 2^53: callers pass max <= 2^53
 * (offsets, i.e. files below 8 PiB) or smaller (dims). 1e3 is accepted as
 * 1000; 2.5, -1, 1e400 (inf) and NaN are not. */
static int json_uint(const cJSON *v, uint64_t max, uint64_t *out)
{
    if (!cJSON_IsNumber(v))
        return -1;
    double d = v->valuedouble;
    if (!isfinite(d) || d < 0 || d != floor(d) || d > (double)max)
        return -1;
    *out = (uint64_t)d;
    return 0;
}

/* The header length field: u64 little-endian, read bytewise so it works at
 * any alignment. */
static uint64_t read_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* ---- reader -------------------------------------------------------------------- */

/* Memory layout of an opened checkpoint: one st_shard per file (the whole
 * file mapped read-only), one flat array of st_tensor_info over all shards
 * sorted by name (binary search for st_reader_find), and a second sorted
 * array from canonical BERT names to tensor indices. Names are copied out of
 * the cJSON tree, which is freed as soon as a header is validated. */

/* One "__metadata__" entry (string values only). */

struct st_meta {
    char *key, *value;
};

/* One safetensors file of the checkpoint. */
struct st_shard {
    char *path;           /* file path, or the label of a memory image */
    const uint8_t *image; /* whole file */
    size_t size;
    int mapped;           /* 1: munmap on close */
    uint64_t data_start;  /* 8 + header length */
    struct st_meta *meta;
    size_t n_meta;
};

/* canonical BERT name -> tensor index, sorted by canon */
struct st_canon {
    char *canon;
    size_t idx;
};

/* The opaque handle behind st_reader_t. */
struct st_reader {
    char *label; /* what was opened: file, index or directory path */
    struct st_shard *shards;
    int n_shards;
    struct st_tensor_info *tensors; /* sorted by name */
    size_t n_tensors, cap_tensors;
    struct st_canon *canon;
    size_t n_canon;
};

static st_reader_t *reader_new(const char *label)
{
    st_reader_t *r = kd_calloc(1, sizeof *r);
    r->label = kd_strdup(label);
    return r;
}

/* Unmaps every shard and frees everything, also for a half-built reader
 * (open failures go through here). */
void st_reader_close(st_reader_t *r)
{
    if (!r)
        return;
    for (int s = 0; s < r->n_shards; s++) {
        struct st_shard *sh = &r->shards[s];
        if (sh->mapped && sh->image)
            munmap((void *)sh->image, sh->size);
        for (size_t i = 0; i < sh->n_meta; i++) {
            free(sh->meta[i].key);
            free(sh->meta[i].value);
        }
        free(sh->meta);
        free(sh->path);
    }
    for (size_t i = 0; i < r->n_tensors; i++)
        free((char *)r->tensors[i].name);
    for (size_t i = 0; i < r->n_canon; i++)
        free(r->canon[i].canon);
    free(r->canon);
    free(r->tensors);
    free(r->shards);
    free(r->label);
    free(r);
}

/* Appends an empty shard named path (the image is set by the caller). */
static struct st_shard *reader_add_shard(st_reader_t *r, const char *path)
{
    r->shards = kd_realloc(r->shards, (size_t)(r->n_shards + 1) * sizeof *r->shards);
    struct st_shard *sh = &r->shards[r->n_shards++];
    memset(sh, 0, sizeof *sh);
    sh->path = kd_strdup(path);
    return sh;
}

/* Appends a zeroed entry to the tensor array, growing it geometrically. */
static struct st_tensor_info *reader_push_tensor(st_reader_t *r)
{
    if (r->n_tensors == r->cap_tensors) {
        r->cap_tensors = r->cap_tensors ? 2 * r->cap_tensors : 64;
        r->tensors = kd_realloc(r->tensors, r->cap_tensors * sizeof *r->tensors);
    }
    struct st_tensor_info *t = &r->tensors[r->n_tensors++];
    memset(t, 0, sizeof *t);
    return t;
}

/* Validates one tensor entry of a header and appends it. data_size is the
 * length of the shard's data section. The checks run in the order of the
 * entry's fields (dtype, shape, data_offsets) and the first failure is
 * reported, so a message always names the field that is wrong. After this
 * returns 0, [offset, offset + nbytes) lies inside the shard's image: that is
 * the invariant every read relies on. */
static int parse_tensor_entry(st_reader_t *r, int shard, const cJSON *e, uint64_t data_size,
                              struct kd_err *err)
{
    const struct st_shard *sh = &r->shards[shard];
    const char *path = sh->path, *name = e->string;
    char got[96];
    if (!cJSON_IsObject(e)) {
        json_describe(e, got, sizeof got);
        return kd_errf(err, "%s: tensor '%s': expected an object with dtype, shape and "
                       "data_offsets, got %s", path, name, got);
    }
    /* unknown extra keys in an entry are ignored, as the Rust library does */
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");

    enum st_dtype dt;
    if (!cJSON_IsString(jd)) {
        json_describe(jd, got, sizeof got);
        return kd_errf(err, "%s: tensor '%s': dtype: expected a string, got %s", path,
                       name, got);
    }
    if (st_dtype_parse(jd->valuestring, &dt) != 0)
        return kd_errf(err, "%s: tensor '%s': unknown dtype: expected one of F32, F16, "
                       "BF16, F64, I64, I32, I16, I8, U64, U32, U16, U8, BOOL, F8_E4M3, "
                       "F8_E5M2, got \"%.40s\"", path, name, jd->valuestring);

    if (!cJSON_IsArray(js)) {
        json_describe(js, got, sizeof got);
        return kd_errf(err, "%s: tensor '%s': shape: expected an array of integers, got %s",
                       path, name, got);
    }
    int ndim = cJSON_GetArraySize(js);
    if (ndim > ST_MAX_DIMS)
        return kd_errf(err, "%s: tensor '%s': shape: expected at most %d dimensions, got %d",
                       path, name, ST_MAX_DIMS, ndim);
    int64_t shape[ST_MAX_DIMS];
    uint64_t numel = 1;
    int k = 0, overflow = 0;
    for (const cJSON *d = js->child; d; d = d->next, k++) {
        uint64_t v;
        if (json_uint(d, (uint64_t)ST_MAX_DIM, &v) != 0) {
            json_describe(d, got, sizeof got);
            return kd_errf(err, "%s: tensor '%s': shape[%d]: expected an integer in [0, "
                           "2^40], got %s", path, name, k, got);
        }
        shape[k] = (int64_t)v;
        /* dims are <= 2^40; the running product is capped below to keep the
         * multiplication exact, and a product past the data size fails the
         * byte-count check anyway */
        if (v != 0 && numel > (UINT64_MAX / 16) / v)
            overflow = 1;
        else
            numel *= v;
    }
    if (overflow) {
        /* a zero dim later in the shape still makes the tensor empty */
        for (int i = 0; i < ndim; i++)
            if (shape[i] == 0)
                overflow = 0, numel = 0;
        if (overflow) {
            char s[160];
            shape_str(s, sizeof s, ndim, shape);
            return kd_errf(err, "%s: tensor '%s': shape %s: expected at most 2^60 "
                           "elements, got more", path, name, s);
        }
    }

    /* Offsets are relative to the data section. 2^53 is where doubles stop
     * being exact integers; no real file comes near it. */
    uint64_t begin, end;
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2 ||
        json_uint(jo->child, UINT64_C(1) << 53, &begin) != 0 ||
        json_uint(jo->child->next, UINT64_C(1) << 53, &end) != 0) {
        json_describe(jo, got, sizeof got);
        return kd_errf(err, "%s: tensor '%s': data_offsets: expected [begin, end] with "
                       "non-negative integers, got %s", path, name, got);
    }
    if (end < begin)
        return kd_errf(err, "%s: tensor '%s': data_offsets: expected begin <= end, got "
                       "[%" PRIu64 ", %" PRIu64 "]", path, name, begin, end);
    if (end > data_size)
        return kd_errf(err, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] out "
                       "of range: expected end <= %" PRIu64 " (the data section size)",
                       path, name, begin, end, data_size);
    /* numel <= 2^60 and sizes <= 8 bytes: this product cannot wrap */
    uint64_t nbytes = numel * st_dtype_size(dt);
    if (end - begin != nbytes) {
        char s[160];
        shape_str(s, sizeof s, ndim, shape);
        return kd_errf(err, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] hold "
                       "%" PRIu64 " bytes: expected %" PRIu64 " (%s x %s of %zu bytes)",
                       path, name, begin, end, end - begin, nbytes, s,
                       st_dtype_name(dt), st_dtype_size(dt));
    }

    struct st_tensor_info *t = reader_push_tensor(r);
    t->name = kd_strdup(name);
    t->dtype = dt;
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof shape[0]);
    t->numel = (int64_t)numel;
    t->nbytes = nbytes;
    t->offset = sh->data_start + begin;
    t->shard = shard;
    return 0;
}

/* qsort order of tensor pointers by absolute offset. */
static int cmp_tensor_offset(const void *a, const void *b)
{
    const struct st_tensor_info *x = *(const struct st_tensor_info *const *)a;
    const struct st_tensor_info *y = *(const struct st_tensor_info *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* No two non-empty tensors of one shard may share bytes: sort the shard's
 * tensors (those from index `first` on) by offset and compare neighbours,
 * O(n log n). Empty tensors have no bytes and may sit anywhere, also at a
 * neighbour's offset (the Python library writes them so). Gaps and bytes
 * after the last tensor are accepted: they cannot make a read go wrong. */
static int check_overlap(st_reader_t *r, size_t first, struct kd_err *err)
{
    size_t n = r->n_tensors - first;
    if (n < 2)
        return 0;
    const struct st_tensor_info **v = kd_malloc(n * sizeof *v);
    size_t m = 0;
    for (size_t i = first; i < r->n_tensors; i++)
        if (r->tensors[i].nbytes > 0)
            v[m++] = &r->tensors[i];
    qsort(v, m, sizeof *v, cmp_tensor_offset);
    int rc = 0;
    for (size_t i = 1; i < m; i++) {
        const struct st_tensor_info *a = v[i - 1], *b = v[i];
        if (b->offset < a->offset + a->nbytes) {
            const struct st_shard *sh = &r->shards[b->shard];
            rc = kd_errf(err, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] "
                         "overlap tensor '%s' [%" PRIu64 ", %" PRIu64 "]: expected "
                         "disjoint byte ranges", sh->path, b->name,
                         b->offset - sh->data_start, b->offset - sh->data_start + b->nbytes,
                         a->name, a->offset - sh->data_start,
                         a->offset - sh->data_start + a->nbytes);
            break;
        }
    }
    free(v);
    return rc;
}

/* Validates the header of shard `shard` (image already set) and appends its
 * tensors to r->tensors. Order of checks: the length field against the file
 * (before anything is read past byte 8), NUL bytes (cJSON would stop at one
 * and silently ignore the rest), JSON syntax, then every entry. The header
 * is copied out of the image so that cJSON always sees a terminated string,
 * whatever follows the header in the file. */
static int parse_shard(st_reader_t *r, int shard, struct kd_err *err)
{
    struct st_shard *sh = &r->shards[shard];
    const char *path = sh->path;
    if (sh->size < 8)
        return kd_errf(err, "%s: file is %zu bytes: expected at least 8 (the header length "
                       "field); not a safetensors file", path, sh->size);
    uint64_t n = read_le64(sh->image);
    if (n > ST_MAX_HEADER_BYTES)
        return kd_errf(err, "%s: header length field: expected at most %" PRIu64 " bytes, "
                       "got %" PRIu64 "; not a safetensors file or corrupt", path,
                       ST_MAX_HEADER_BYTES, n);
    if (n > sh->size - 8)
        return kd_errf(err, "%s: header length field: expected at most %zu (file size %zu "
                       "minus 8), got %" PRIu64 "; file truncated or corrupt", path,
                       sh->size - 8, sh->size, n);
    /* "{}" is the shortest valid header */
    if (n < 2)
        return kd_errf(err, "%s: header: expected a JSON object, got %" PRIu64 " bytes",
                       path, n);
    const char *hdr = (const char *)sh->image + 8;
    const char *nul = memchr(hdr, '\0', (size_t)n);
    if (nul)
        return kd_errf(err, "%s: header: expected JSON text, got a NUL byte at header "
                       "offset %td", path, nul - hdr);
    sh->data_start = 8 + n;
    uint64_t data_size = sh->size - sh->data_start;

    /* cJSON wants the NUL inside the length it is given; with
     * require_null_terminated it also rejects anything but whitespace after
     * the object (the writer's space padding is whitespace) */
    char *text = kd_malloc((size_t)n + 1);
    memcpy(text, hdr, (size_t)n);
    text[n] = '\0';
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, (size_t)n + 1, &end, 1);
    int rc = -1;
    size_t first = r->n_tensors;
    if (!root) {
        size_t at = end && end >= text && end <= text + n ? (size_t)(end - text) : 0;
        kd_errf(err, "%s: header: expected JSON, got invalid JSON near header byte %zu "
                "(\"%.20s\")", path, at, text + at);
        goto done;
    }
    if (!cJSON_IsObject(root)) {
        char got[96];
        json_describe(root, got, sizeof got);
        kd_errf(err, "%s: header: expected a JSON object, got %s", path, got);
        goto done;
    }
    /* cJSON keeps duplicate keys as separate children: they are appended
     * here and caught by reader_finish's duplicate check */
    for (const cJSON *e = root->child; e; e = e->next) {
        if (!e->string) /* cannot happen for an object, but be safe */
            continue;
        if (strcmp(e->string, "__metadata__") == 0) {
            /* Kept for st_reader_metadata; anything but strings is ignored. */
            if (!cJSON_IsObject(e))
                continue;
            for (const cJSON *m = e->child; m; m = m->next) {
                if (!cJSON_IsString(m) || !m->string)
                    continue;
                sh->meta = kd_realloc(sh->meta, (sh->n_meta + 1) * sizeof *sh->meta);
                sh->meta[sh->n_meta].key = kd_strdup(m->string);
                sh->meta[sh->n_meta].value = kd_strdup(m->valuestring);
                sh->n_meta++;
            }
            continue;
        }
        if (parse_tensor_entry(r, shard, e, data_size, err) != 0)
            goto done;
    }
    rc = check_overlap(r, first, err);
done:
    cJSON_Delete(root);
    free(text);
    return rc;
}

/* qsort/bsearch order of st_tensor_info by name (byte order). */
static int cmp_tensor_name(const void *a, const void *b)
{
    return strcmp(((const struct st_tensor_info *)a)->name,
                  ((const struct st_tensor_info *)b)->name);
}

/* Canonical names, ties broken by tensor index so the order is total and
 * the "two spellings" message is deterministic. */
static int cmp_canon(const void *a, const void *b)
{
    const struct st_canon *x = a, *y = b;
    int c = strcmp(x->canon, y->canon);
    return c ? c : (x->idx < y->idx ? -1 : x->idx > y->idx);
}

/* After all shards are parsed: sort by name, reject duplicates (within one
 * file or across shards), build the canonical-name index. Two file names
 * with the same canonical name are not an error here: only a lookup of that
 * name is (st_reader_find_bert), so a stray duplicate the model never asks
 * for does not stop a job. */
static int reader_finish(st_reader_t *r, struct kd_err *err)
{
    if (r->n_tensors > 1)
        qsort(r->tensors, r->n_tensors, sizeof *r->tensors, cmp_tensor_name);
    for (size_t i = 1; i < r->n_tensors; i++) {
        const struct st_tensor_info *a = &r->tensors[i - 1], *b = &r->tensors[i];
        if (strcmp(a->name, b->name) != 0)
            continue;
        if (a->shard == b->shard)
            return kd_errf(err, "%s: tensor '%s': duplicate name: expected each tensor "
                           "once in the header, got it twice", r->shards[a->shard].path,
                           a->name);
        return kd_errf(err, "%s: tensor '%s': expected in one shard, got it in both %s and "
                       "%s", r->label, a->name, r->shards[a->shard].path,
                       r->shards[b->shard].path);
    }
    r->canon = kd_malloc((r->n_tensors ? r->n_tensors : 1) * sizeof *r->canon);
    for (size_t i = 0; i < r->n_tensors; i++) {
        size_t cap = strlen(r->tensors[i].name) + 8;
        char *c = kd_malloc(cap);
        st_bert_name_canonical(r->tensors[i].name, c, cap);
        r->canon[i].canon = c;
        r->canon[i].idx = i;
    }
    r->n_canon = r->n_tensors;
    qsort(r->canon, r->n_canon, sizeof *r->canon, cmp_canon);
    return 0;
}

/* Maps `path` read-only into a new shard of r and validates its header.
 * mmap rather than read: a BERT-large file is 1.3 GB, ranks on one node share
 * the page cache, and only the pages of the tensors a rank converts are ever
 * touched. The descriptor is closed at once; the mapping stays valid. Files
 * shorter than 8 bytes are not mapped (mmap of 0 bytes fails) and are
 * rejected by parse_shard. */
static int reader_map_shard(st_reader_t *r, const char *path, struct kd_err *err)
{
    struct st_shard *sh = reader_add_shard(r, path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return kd_errf(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return kd_errf(err, "%s: expected a regular file", path);
    }
    sh->size = (size_t)st.st_size;
    if (sh->size >= 8) {
        void *p = mmap(NULL, sh->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return kd_errf(err, "%s: mmap of %zu bytes failed: %s", path, sh->size,
                           strerror(e));
        }
        sh->image = p;
        sh->mapped = 1;
    }
    close(fd);
    return parse_shard(r, r->n_shards - 1, err);
}

int st_reader_open_buffer(st_reader_t **out, const void *data, size_t size,
                          const char *label, struct kd_err *err)
{
    *out = NULL;
    st_reader_t *r = reader_new(label);
    struct st_shard *sh = reader_add_shard(r, label);
    sh->image = data;
    sh->size = size;
    if (parse_shard(r, 0, err) != 0 || reader_finish(r, err) != 0) {
        st_reader_close(r);
        return -1;
    }
    *out = r;
    return 0;
}

int st_reader_open_file(st_reader_t **out, const char *path, struct kd_err *err)
{
    *out = NULL;
    st_reader_t *r = reader_new(path);
    if (reader_map_shard(r, path, err) != 0 || reader_finish(r, err) != 0) {
        st_reader_close(r);
        return -1;
    }
    *out = r;
    return 0;
}

/* qsort/bsearch order of string pointers. */
static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Checks the index's weight_map against the opened shards: a bijection where
 * each name maps to the shard that holds it. Names are unique across shards
 * (reader_finish), so "no duplicate keys + every key found in its shard +
 * equal counts" proves it; when the counts differ, the loop names a shard
 * tensor the index does not list. */
static int index_check_weight_map(st_reader_t *r, const cJSON *wm, char **shard_names,
                                  struct kd_err *err)
{
    size_t n = (size_t)cJSON_GetArraySize(wm), k = 0;
    const char **keys = kd_malloc((n ? n : 1) * sizeof *keys);
    int rc = -1;
    for (const cJSON *e = wm->child; e; e = e->next)
        keys[k++] = e->string;
    qsort(keys, n, sizeof *keys, cmp_str_ptr);
    for (size_t i = 1; i < n; i++)
        if (strcmp(keys[i - 1], keys[i]) == 0) {
            kd_errf(err, "%s: weight_map: tensor '%s': expected once, got it twice",
                    r->label, keys[i]);
            goto done;
        }
    for (const cJSON *e = wm->child; e; e = e->next) {
        const struct st_tensor_info *t = st_reader_find(r, e->string);
        if (!t) {
            kd_errf(err, "%s: weight_map: tensor '%s': expected in shard %s, got no such "
                    "tensor there", r->label, e->string, e->valuestring);
            goto done;
        }
        if (strcmp(shard_names[t->shard], e->valuestring) != 0) {
            kd_errf(err, "%s: weight_map: tensor '%s': expected in shard %s, got it in %s",
                    r->label, e->string, e->valuestring, shard_names[t->shard]);
            goto done;
        }
    }
    if (r->n_tensors != n) {
        /* some shard holds a tensor the index does not list: name it */
        for (size_t i = 0; i < r->n_tensors; i++)
            if (!bsearch(&r->tensors[i].name, keys, n, sizeof *keys, cmp_str_ptr)) {
                kd_errf(err, "%s: tensor '%s' of shard %s: expected it listed in "
                        "weight_map, got no entry", r->label, r->tensors[i].name,
                        shard_names[r->tensors[i].shard]);
                goto done;
            }
    }
    rc = 0;
done:
    free(keys);
    return rc;
}

/* Index layout (transformers' save_pretrained with max_shard_size):
 *   {"metadata": {"total_size": bytes}, "weight_map": {"<tensor>": "<file>"}}
 * "metadata" is not checked: total_size counts only tensor bytes and is
 * informational. */
int st_reader_open_index(st_reader_t **out, const char *index_path, struct kd_err *err)
{
    *out = NULL;
    char *text = NULL, *dir = NULL;
    size_t len;
    cJSON *root = NULL;
    char **shard_names = NULL;
    size_t n_names = 0;
    st_reader_t *r = NULL;
    int rc = -1;
    if (fs_file_read(index_path, &text, &len, err) != 0)
        return -1;
    root = cJSON_ParseWithLength(text, len);
    if (!root || !cJSON_IsObject(root)) {
        kd_errf(err, "%s: expected a JSON object (safetensors index), got %s", index_path,
                root ? "another JSON value" : "invalid JSON");
        goto done;
    }
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(wm)) {
        char got[96];
        json_describe(wm, got, sizeof got);
        kd_errf(err, "%s: key 'weight_map': expected an object {tensor: shard file}, got %s",
                index_path, got);
        goto done;
    }
    /* distinct shard file names, sorted: shard order is then deterministic */
    size_t n_wm = (size_t)cJSON_GetArraySize(wm);
    shard_names = kd_malloc((n_wm ? n_wm : 1) * sizeof *shard_names);
    for (const cJSON *e = wm->child; e; e = e->next) {
        if (!cJSON_IsString(e)) {
            char got[96];
            json_describe(e, got, sizeof got);
            kd_errf(err, "%s: weight_map: tensor '%s': expected a shard file name, got %s",
                    index_path, e->string, got);
            goto done;
        }
        const char *s = e->valuestring;
        if (!*s || strchr(s, '/') || strchr(s, '\\') || strcmp(s, ".") == 0 ||
            strcmp(s, "..") == 0) {
            kd_errf(err, "%s: weight_map: tensor '%s': expected a file name in the index's "
                    "directory, got \"%.80s\"", index_path, e->string, s);
            goto done;
        }
        shard_names[n_names++] = e->valuestring;
    }
    qsort(shard_names, n_names, sizeof *shard_names, cmp_str_ptr);
    size_t u = 0;
    for (size_t i = 0; i < n_names; i++)
        if (u == 0 || strcmp(shard_names[u - 1], shard_names[i]) != 0)
            shard_names[u++] = shard_names[i];
    n_names = u;

    /* shard paths are relative to the directory holding the index */
    dir = kd_strdup(index_path);
    char *slash = strrchr(dir, '/');
    if (slash)
        slash[1] = '\0';
    else
        dir[0] = '\0';
    r = reader_new(index_path);
    for (size_t i = 0; i < n_names; i++) {
        char *p = fs_path_join(dir, shard_names[i]);
        int s = reader_map_shard(r, p, err);
        free(p);
        if (s != 0) {
            kd_err_prefix(err, "%s: shard %s", index_path, shard_names[i]);
            goto done;
        }
    }
    if (reader_finish(r, err) != 0 || index_check_weight_map(r, wm, shard_names, err) != 0)
        goto done;
    *out = r;
    r = NULL;
    rc = 0;
done:
    st_reader_close(r);
    free(shard_names);
    free(dir);
    cJSON_Delete(root);
    free(text);
    return rc;
}

/* transformers' own preference order (modeling_utils.py): the single file
 * first, then the safetensors index. pytorch_model.bin (pickle) is never
 * read: unpickling is code execution, and transformers converts it. */
int st_reader_open_dir(st_reader_t **out, const char *dir, struct kd_err *err)
{
    *out = NULL;
    char *single = fs_path_join(dir, "model.safetensors");
    char *index = fs_path_join(dir, "model.safetensors.index.json");
    int rc;
    if (fs_file_exists(single)) {
        rc = st_reader_open_file(out, single, err);
    } else if (fs_file_exists(index)) {
        rc = st_reader_open_index(out, index, err);
    } else {
        char *bin = fs_path_join(dir, "pytorch_model.bin");
        const char *hint = fs_file_exists(bin)
            ? "\nHINT: the directory holds pytorch_model.bin; convert it with transformers: "
              "model.save_pretrained(dir, safe_serialization=True)"
            : "";
        rc = kd_errf(err, "%s: expected a Hugging Face checkpoint with model.safetensors or "
                     "model.safetensors.index.json, got neither%s%s", dir,
                     fs_is_dir(dir) ? "" : " (no such directory)", hint);
        free(bin);
    }
    free(single);
    free(index);
    return rc;
}

size_t st_reader_count(const st_reader_t *r) { return r->n_tensors; }

const struct st_tensor_info *st_reader_at(const st_reader_t *r, size_t i)
{
    return i < r->n_tensors ? &r->tensors[i] : NULL;
}

const struct st_tensor_info *st_reader_find(const st_reader_t *r, const char *name)
{
    struct st_tensor_info key = {.name = name};
    if (r->n_tensors == 0)
        return NULL;
    return bsearch(&key, r->tensors, r->n_tensors, sizeof *r->tensors, cmp_tensor_name);
}

int st_reader_shard_count(const st_reader_t *r) { return r->n_shards; }

const char *st_reader_shard_path(const st_reader_t *r, int shard)
{
    return shard >= 0 && shard < r->n_shards ? r->shards[shard].path : NULL;
}

const char *st_reader_metadata(const st_reader_t *r, const char *key)
{
    if (r->n_shards == 0)
        return NULL;
    const struct st_shard *sh = &r->shards[0];
    for (size_t i = 0; i < sh->n_meta; i++)
        if (strcmp(sh->meta[i].key, key) == 0)
            return sh->meta[i].value;
    return NULL;
}

/* Shape check shared by the two read functions: every dimension is
 * compared (not only the first two), and the message prints both shapes. */
static int check_shape(const st_reader_t *r, const struct st_tensor_info *t, int ndim,
                       const int64_t *shape, struct kd_err *err)
{
    if (ndim < 0)
        return 0;
    int same = ndim == t->ndim;
    for (int i = 0; same && i < ndim; i++)
        same = shape[i] == t->shape[i];
    if (same)
        return 0;
    char want[200], got[200];
    shape_str(want, sizeof want, ndim, shape);
    shape_str(got, sizeof got, t->ndim, t->shape);
    return kd_errf(err, "%s: tensor '%s': expected shape %s, got %s",
                   r->shards[t->shard].path, t->name, want, got);
}

/* The image may be unaligned for the element type (8 + N need not be a
 * multiple of 4 in files from other writers), so elements are copied with
 * memcpy, which compilers turn into plain loads on x86. */
int st_reader_read_f32(const st_reader_t *r, const struct st_tensor_info *t, float *dst,
                       int expect_ndim, const int64_t *expect_shape, struct kd_err *err)
{
    if (check_shape(r, t, expect_ndim, expect_shape, err) != 0)
        return -1;
    const uint8_t *src = r->shards[t->shard].image + t->offset;
    size_t n = (size_t)t->numel;
    switch (t->dtype) {
    case ST_DTYPE_F32:
        if (n)
            memcpy(dst, src, n * sizeof(float));
        return 0;
    case ST_DTYPE_F16:
    case ST_DTYPE_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h = (uint16_t)(src[2 * i] | (src[2 * i + 1] << 8));
            dst[i] = t->dtype == ST_DTYPE_F16 ? st_f16_to_f32(h) : st_bf16_to_f32(h);
        }
        return 0;
    case ST_DTYPE_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, src + 8 * i, sizeof d);
            dst[i] = (float)d;
        }
        return 0;
    default:
        return kd_errf(err, "%s: tensor '%s': expected a floating-point dtype (F32, F16, "
                       "BF16, F64), got %s", r->shards[t->shard].path, t->name,
                       st_dtype_name(t->dtype));
    }
}

/* dtypes that st_reader_read_i64 converts. */
static int dtype_is_integer(enum st_dtype dt)
{
    switch (dt) {
    case ST_DTYPE_I64: case ST_DTYPE_I32: case ST_DTYPE_I16: case ST_DTYPE_I8:
    case ST_DTYPE_U64: case ST_DTYPE_U32: case ST_DTYPE_U16: case ST_DTYPE_U8:
    case ST_DTYPE_BOOL:
        return 1;
    default:
        return 0;
    }
}

int st_reader_read_i64(const st_reader_t *r, const struct st_tensor_info *t, int64_t *dst,
                       int expect_ndim, const int64_t *expect_shape, struct kd_err *err)
{
    if (check_shape(r, t, expect_ndim, expect_shape, err) != 0)
        return -1;
    if (!dtype_is_integer(t->dtype))
        return kd_errf(err, "%s: tensor '%s': expected an integer dtype (I64, I32, I16, I8, "
                       "U64, U32, U16, U8, BOOL), got %s", r->shards[t->shard].path,
                       t->name, st_dtype_name(t->dtype));
    const uint8_t *src = r->shards[t->shard].image + t->offset;
    size_t n = (size_t)t->numel;
    if (t->dtype == ST_DTYPE_I64) {
        if (n)
            memcpy(dst, src, n * sizeof(int64_t));
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        switch (t->dtype) {
        case ST_DTYPE_I32: { int32_t v; memcpy(&v, src + 4 * i, 4); dst[i] = v; break; }
        case ST_DTYPE_I16: { int16_t v; memcpy(&v, src + 2 * i, 2); dst[i] = v; break; }
        case ST_DTYPE_I8: dst[i] = (int8_t)src[i]; break;
        case ST_DTYPE_U32: { uint32_t v; memcpy(&v, src + 4 * i, 4); dst[i] = v; break; }
        case ST_DTYPE_U16: { uint16_t v; memcpy(&v, src + 2 * i, 2); dst[i] = v; break; }
        case ST_DTYPE_U8: dst[i] = src[i]; break;
        case ST_DTYPE_BOOL: dst[i] = src[i] != 0; break;
        default: { /* U64 */
            uint64_t v;
            memcpy(&v, src + 8 * i, 8);
            if (v > (uint64_t)INT64_MAX)
                return kd_errf(err, "%s: tensor '%s': element %zu: expected a value <= "
                               "2^63-1, got %" PRIu64, r->shards[t->shard].path, t->name,
                               i, v);
            dst[i] = (int64_t)v;
            break;
        }
        }
    }
    return 0;
}

/* ---- BERT names ------------------------------------------------------------ */

/* 1 if s[0..n) ends with suffix as a whole dotted component sequence
 * ("x.LayerNorm.gamma" matches "LayerNorm.gamma", "xLayerNorm.gamma" not). */
static int ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0 && (n == k || s[n - k - 1] == '.');
}

/* Only the two renamings BERT checkpoints need. transformers' loader does
 * the same gamma/beta mapping (_fix_key in modeling_utils.py) and strips or
 * adds base_model_prefix ("bert"). */
int st_bert_name_canonical(const char *file_name, char *out, size_t cap)
{
    const char *s = strncmp(file_name, "bert.", 5) == 0 ? file_name + 5 : file_name;
    size_t n = strlen(s);
    /* TF-converted checkpoints: LayerNorm.gamma / LayerNorm.beta */
    const char *from = NULL, *to = NULL;
    if (ends_with(s, n, "LayerNorm.gamma"))
        from = "gamma", to = "weight";
    else if (ends_with(s, n, "LayerNorm.beta"))
        from = "beta", to = "bias";
    size_t keep = from ? n - strlen(from) : n;
    size_t total = keep + (to ? strlen(to) : 0);
    if (total + 1 > cap)
        return -1;
    memcpy(out, s, keep);
    if (to)
        memcpy(out + keep, to, strlen(to));
    out[total] = '\0';
    return 0;
}

int st_bert_name_for_file(const char *canonical, char *out, size_t cap)
{
    const char *s = strncmp(canonical, "bert.", 5) == 0 ? canonical + 5 : canonical;
    int base = strncmp(s, "embeddings.", 11) == 0 || strncmp(s, "encoder.", 8) == 0 ||
               strncmp(s, "pooler.", 7) == 0;
    int n = snprintf(out, cap, "%s%s", base ? "bert." : "", s);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* Binary search for the first canonical entry equal to the query; a second
 * equal entry right after it means two spellings of one parameter. */
int st_reader_find_bert(const st_reader_t *r, const char *canonical,
                        const struct st_tensor_info **out, struct kd_err *err)
{
    *out = NULL;
    size_t cap = strlen(canonical) + 8;
    char *c = kd_malloc(cap);
    st_bert_name_canonical(canonical, c, cap);
    /* lower bound of c in the sorted canonical index */
    size_t lo = 0, hi = r->n_canon;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(r->canon[mid].canon, c) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    int rc = 0;
    if (lo < r->n_canon && strcmp(r->canon[lo].canon, c) == 0) {
        const struct st_tensor_info *t = &r->tensors[r->canon[lo].idx];
        if (lo + 1 < r->n_canon && strcmp(r->canon[lo + 1].canon, c) == 0) {
            const struct st_tensor_info *t2 = &r->tensors[r->canon[lo + 1].idx];
            rc = kd_errf(err, "%s: tensor '%s': expected one spelling in the checkpoint, "
                         "got two: '%s' and '%s'", r->label, c, t->name, t2->name);
        } else {
            *out = t;
            rc = 1;
        }
    }
    free(c);
    return rc;
}

int st_reader_load_bert_f32(const st_reader_t *r, const char *canonical, float *dst,
                            int expect_ndim, const int64_t *expect_shape, struct kd_err *err)
{
    const struct st_tensor_info *t;
    int found = st_reader_find_bert(r, canonical, &t, err);
    if (found < 0)
        return -1;
    if (found == 0)
        return kd_errf(err, "%s: tensor '%s': expected in the checkpoint (spelled with or "
                       "without \"bert.\", LayerNorm as weight/bias or gamma/beta), got no "
                       "such tensor", r->label, canonical);
    return st_reader_read_f32(r, t, dst, expect_ndim, expect_shape, err);
}

/* ---- writer ----------------------------------------------------------------- */

/* Tensors are kept as borrowed pointers until st_writer_write, which
 * converts them chunk by chunk: the writer never holds a second copy of a
 * model's weights (the export of a BERT-large is 1.3 GB). */

/* One tensor to be written. */
struct st_wtensor {
    char *name;
    enum st_dtype dtype; /* stored dtype */
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    uint64_t numel;
    const float *f32;   /* source for F32/F16/BF16 */
    const int64_t *i64; /* source for I64/I32 */
};

/* The opaque handle behind st_writer_t. */
struct st_writer {
    struct st_wtensor *t;
    size_t n, cap;
    struct st_meta *meta;
    size_t n_meta;
};

st_writer_t *st_writer_new(void) { return kd_calloc(1, sizeof(st_writer_t)); }

void st_writer_free(st_writer_t *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n; i++)
        free(w->t[i].name);
    for (size_t i = 0; i < w->n_meta; i++) {
        free(w->meta[i].key);
        free(w->meta[i].value);
    }
    free(w->meta);
    free(w->t);
    free(w);
}

int st_writer_set_metadata(st_writer_t *w, const char *key, const char *value,
                           struct kd_err *err)
{
    if (!key || !value)
        return kd_errf(err, "safetensors metadata: expected a key and a value, got NULL");
    for (size_t i = 0; i < w->n_meta; i++)
        if (strcmp(w->meta[i].key, key) == 0) {
            free(w->meta[i].value);
            w->meta[i].value = kd_strdup(value);
            return 0;
        }
    w->meta = kd_realloc(w->meta, (w->n_meta + 1) * sizeof *w->meta);
    w->meta[w->n_meta].key = kd_strdup(key);
    w->meta[w->n_meta].value = kd_strdup(value);
    w->n_meta++;
    return 0;
}

/* Validation and bookkeeping shared by st_writer_add_f32/_i64; the caller
 * sets the data pointer on the returned entry. */
static int writer_add(st_writer_t *w, const char *name, int ndim, const int64_t *shape,
                      enum st_dtype dt, const void *data, struct kd_err *err,
                      struct st_wtensor **out)
{
    if (!name || !*name)
        return kd_errf(err, "safetensors writer: expected a tensor name, got an empty one");
    if (strcmp(name, "__metadata__") == 0)
        return kd_errf(err, "safetensors writer: tensor '%s': expected a name other than "
                       "the reserved __metadata__", name);
    if (ndim < 0 || ndim > ST_MAX_DIMS)
        return kd_errf(err, "safetensors writer: tensor '%s': expected 0..%d dimensions, "
                       "got %d", name, ST_MAX_DIMS, ndim);
    /* numel with an overflow check before each multiplication; a 0 dim
     * anywhere makes the tensor empty whatever the other dims are */
    const uint64_t max_numel = (uint64_t)1 << 57; /* bytes stay below 2^60 */
    uint64_t numel = 1;
    int too_big = 0;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || shape[i] > ST_MAX_DIM)
            return kd_errf(err, "safetensors writer: tensor '%s': shape[%d]: expected an "
                           "integer in [0, 2^40], got %" PRId64, name, i, shape[i]);
        if (shape[i] != 0 && numel > max_numel / (uint64_t)shape[i])
            too_big = 1;
        else
            numel *= (uint64_t)shape[i];
    }
    for (int i = 0; too_big && i < ndim; i++)
        if (shape[i] == 0)
            too_big = 0, numel = 0;
    if (too_big)
        return kd_errf(err, "safetensors writer: tensor '%s': expected at most 2^57 "
                       "elements, got more", name);
    if (numel > 0 && !data)
        return kd_errf(err, "safetensors writer: tensor '%s': expected data for %" PRIu64
                       " elements, got NULL", name, numel);
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return kd_errf(err, "safetensors writer: tensor '%s': expected a new name, got "
                           "a duplicate", name);
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 64;
        w->t = kd_realloc(w->t, w->cap * sizeof *w->t);
    }
    struct st_wtensor *t = &w->t[w->n++];
    memset(t, 0, sizeof *t);
    t->name = kd_strdup(name);
    t->dtype = dt;
    t->ndim = ndim;
    if (ndim)
        memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    t->numel = numel;
    *out = t;
    return 0;
}

int st_writer_add_f32(st_writer_t *w, const char *name, const float *data, int ndim,
                      const int64_t *shape, enum st_dtype store_as, struct kd_err *err)
{
    if (store_as != ST_DTYPE_F32 && store_as != ST_DTYPE_F16 && store_as != ST_DTYPE_BF16)
        return kd_errf(err, "safetensors writer: tensor '%s': expected F32, F16 or BF16 "
                       "storage for float data, got %s", name ? name : "?",
                       st_dtype_name(store_as));
    struct st_wtensor *t;
    if (writer_add(w, name, ndim, shape, store_as, data, err, &t) != 0)
        return -1;
    t->f32 = data;
    return 0;
}

int st_writer_add_i64(st_writer_t *w, const char *name, const int64_t *data, int ndim,
                      const int64_t *shape, enum st_dtype store_as, struct kd_err *err)
{
    if (store_as != ST_DTYPE_I64 && store_as != ST_DTYPE_I32)
        return kd_errf(err, "safetensors writer: tensor '%s': expected I64 or I32 storage "
                       "for integer data, got %s", name ? name : "?",
                       st_dtype_name(store_as));
    struct st_wtensor *t;
    if (writer_add(w, name, ndim, shape, store_as, data, err, &t) != 0)
        return -1;
    t->i64 = data;
    return 0;
}

/* Data order: larger elements first (keeps every tensor aligned to its
 * element size, as the Python library does), then by name. */
static int cmp_wtensor(const void *a, const void *b)
{
    const struct st_wtensor *x = *(const struct st_wtensor *const *)a;
    const struct st_wtensor *y = *(const struct st_wtensor *const *)b;
    size_t sx = st_dtype_size(x->dtype), sy = st_dtype_size(y->dtype);
    if (sx != sy)
        return sx > sy ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* fwrite that reports through kd_err; the caller aborts the output. */
static int out_write(struct fs_atomic *out, const void *p, size_t n, struct kd_err *err)
{
    if (n > 0 && fwrite(p, 1, n, out->f) != n)
        return kd_errf(err, "%s: write failed: %s", out->tmp_path, strerror(errno));
    return 0;
}

/* Converts and writes one tensor through a 32 KiB staging buffer (4096
 * elements of at most 8 bytes), so narrow dtypes need no full-size copy. */
static int writer_emit(struct fs_atomic *out, const struct st_wtensor *t, struct kd_err *err)
{
    enum { CHUNK = 4096 };
    uint8_t buf[CHUNK * 8];
    size_t es = st_dtype_size(t->dtype);
    for (uint64_t i0 = 0; i0 < t->numel; i0 += CHUNK) {
        size_t m = (size_t)(t->numel - i0 < CHUNK ? t->numel - i0 : CHUNK);
        for (size_t i = 0; i < m; i++) {
            uint8_t *p = buf + i * es;
            switch (t->dtype) {
            case ST_DTYPE_F32: memcpy(p, &t->f32[i0 + i], 4); break;
            case ST_DTYPE_F16:
            case ST_DTYPE_BF16: {
                uint16_t h = t->dtype == ST_DTYPE_F16 ? st_f32_to_f16(t->f32[i0 + i])
                                                      : st_f32_to_bf16(t->f32[i0 + i]);
                memcpy(p, &h, 2);
                break;
            }
            case ST_DTYPE_I64: memcpy(p, &t->i64[i0 + i], 8); break;
            case ST_DTYPE_I32: {
                int64_t v = t->i64[i0 + i];
                if (v < INT32_MIN || v > INT32_MAX) {
                    return kd_errf(err, "%s: tensor '%s': element %" PRIu64 ": expected a "
                                   "value in the I32 range, got %" PRId64, out->path, t->name,
                                   i0 + i, v);
                }
                int32_t v32 = (int32_t)v;
                memcpy(p, &v32, 4);
                break;
            }
            default: break; /* add_* admit no other dtype */
            }
        }
        if (out_write(out, buf, m * es, err) != 0)
            return -1;
    }
    return 0;
}

/* Layout as the Python library writes it (safetensors serialize): metadata
 * first, tensors sorted by descending element size then name, data packed
 * without gaps in that order, header padded with spaces. The output is
 * therefore a function of the set of tensors, not of the order of the
 * add calls, and byte-identical runs give byte-identical files (the job's
 * manifest hashes outputs). */
int st_writer_write(const st_writer_t *w, const char *path, struct kd_err *err)
{
    const struct st_wtensor **order = kd_malloc((w->n ? w->n : 1) * sizeof *order);
    for (size_t i = 0; i < w->n; i++)
        order[i] = &w->t[i];
    qsort(order, w->n, sizeof *order, cmp_wtensor);

    /* header: __metadata__ first, then tensors in data order; offsets are
     * running sums of the byte sizes */
    struct sbuf h = {0};
    sbuf_puts(&h, "{");
    int first = 1;
    if (w->n_meta) {
        sbuf_puts(&h, "\"__metadata__\":{");
        for (size_t i = 0; i < w->n_meta; i++) {
            if (i)
                sbuf_puts(&h, ",");
            sbuf_put_json_string(&h, w->meta[i].key);
            sbuf_puts(&h, ":");
            sbuf_put_json_string(&h, w->meta[i].value);
        }
        sbuf_puts(&h, "}");
        first = 0;
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n; i++) {
        const struct st_wtensor *t = order[i];
        uint64_t nb = t->numel * st_dtype_size(t->dtype);
        if (!first)
            sbuf_puts(&h, ",");
        first = 0;
        sbuf_put_json_string(&h, t->name);
        sbuf_printf(&h, ":{\"dtype\":\"%s\",\"shape\":[", st_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++)
            sbuf_printf(&h, "%s%" PRId64, d ? "," : "", t->shape[d]);
        sbuf_printf(&h, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", off, off + nb);
        off += nb;
    }
    sbuf_puts(&h, "}");
    /* pad with spaces so the data section starts 8-aligned (8 + N = 0 mod 8) */
    while (h.n % 8)
        sbuf_puts(&h, " ");

    uint8_t len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (uint8_t)((uint64_t)h.n >> (8 * i));
    struct fs_atomic out;
    char msg[512];
    int rc = -1;
    if (fs_atomic_open(&out, path, msg, sizeof msg) != 0) {
        kd_errf(err, "%s", msg);
        goto done;
    }
    if (out_write(&out, len8, 8, err) != 0 || out_write(&out, h.p, h.n, err) != 0)
        goto fail;
    for (size_t i = 0; i < w->n; i++)
        if (writer_emit(&out, order[i], err) != 0)
            goto fail;
    if (fs_atomic_commit(&out, msg, sizeof msg) != 0) {
        kd_errf(err, "%s", msg);
        goto done;
    }
    rc = 0;
    goto done;
fail:
    fs_atomic_abort(&out);
done:
    free(h.p);
    free(order);
    return rc;
}
