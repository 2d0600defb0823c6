/* t_safetensors_fuzz.c: deterministic mutation fuzzing of the safetensors
 * reader (header parser, validation, conversions) and of the index reader.
 *
 * Valid images (written by our writer and by Python's safetensors) are
 * mutated with truncations, bit flips, header-length edits and JSON-level
 * edits (numbers, strings, spans, structure). Every mutated image must
 * either be rejected with a message or open into a reader whose tensors all
 * lie inside the image, agree with their dtype and shape, and read back
 * without error. Images live in exact-size heap buffers, so a build with
 * -fsanitize=address (or a run under valgrind) flags any read past the end.
 * Every 64th image also goes through a file and mmap, which must give the
 * same verdict.
 *
 * Environment: KD_FUZZ_ITERS (default 20000), KD_FUZZ_SEED (default 1). */
#include "kd/core/fsutil.h"
#include "kd/core/log.h"
#include "kd/model/safetensors.h"
#include "../tap.h"
#include "ckpt_util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* splitmix64: small, deterministic, good enough to pick mutations */
static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static size_t rng_below(size_t n) { return n ? (size_t)(rng_next() % n) : 0; }

struct image {
    uint8_t *p;
    size_t n;
};

static struct image image_copy(const struct image *src)
{
    struct image im = {malloc(src->n ? src->n : 1), src->n};
    memcpy(im.p, src->p, src->n);
    return im;
}

static uint64_t header_len(const struct image *im)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0 && im->n >= 8; i--)
        v = (v << 8) | im->p[i];
    return v;
}

static void set_header_len(struct image *im, uint64_t v)
{
    for (int i = 0; i < 8 && (size_t)i < im->n; i++)
        im->p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- JSON-level edits on a header string ----------------------------------- */

static const char *const number_swaps[] = {
    "-1", "0", "1", "3", "7", "8", "1e308", "-1e308", "1e-300", "2.5", "-0", "4294967296",
    "18446744073709551615", "18446744073709551616", "9007199254740993", "1099511627776",
    "1099511627777", "NaN", "null", "[]", "{}", "\"7\"", "true", "99999999999999999999999",
};
static const char *const string_swaps[] = {
    "F32", "F16", "BF16", "F64", "I64", "I32", "I8", "U8", "BOOL", "F8_E4M3", "U64",
    "X", "", "__metadata__", "dtype", "shape", "data_offsets", "bert.pooler.dense.bias",
    "pooler.dense.bias", "a\\u0000b", "\\ud800", "\\\"", "LayerNorm.gamma",
};

/* Positions of tokens of a kind in s: digits runs (kind 0) or string
 * contents (kind 1). Returns a random one as [*b, *e), or 0 if none. */
static int pick_token(const char *s, size_t n, int kind, size_t *b, size_t *e)
{
    size_t count = 0;
    for (int pass = 0; pass < 2; pass++) {
        size_t want = pass ? rng_below(count) : 0, k = 0;
        for (size_t i = 0; i < n;) {
            size_t j = i;
            if (kind == 0 && (s[i] == '-' || (s[i] >= '0' && s[i] <= '9'))) {
                j = i + 1;
                while (j < n && ((s[j] >= '0' && s[j] <= '9') || s[j] == '.' || s[j] == 'e'))
                    j++;
            } else if (kind == 1 && s[i] == '"') {
                j = i + 1;
                while (j < n && s[j] != '"')
                    j += s[j] == '\\' ? 2 : 1;
                if (j >= n)
                    break;
                if (pass && k == want) {
                    *b = i + 1;
                    *e = j;
                    return 1;
                }
                k++;
                i = j + 1;
                continue;
            } else {
                i++;
                continue;
            }
            if (pass && k == want) {
                *b = i;
                *e = j;
                return 1;
            }
            k++;
            i = j;
        }
        count = k;
        if (!count)
            return 0;
    }
    return 0;
}

/* Replaces [b, e) of *s (length *n) with rep. */
static void splice(char **s, size_t *n, size_t b, size_t e, const char *rep, size_t rn)
{
    char *out = malloc(*n - (e - b) + rn + 1);
    memcpy(out, *s, b);
    memcpy(out + b, rep, rn);
    memcpy(out + b + rn, *s + e, *n - e);
    *n = *n - (e - b) + rn;
    out[*n] = '\0';
    free(*s);
    *s = out;
}

static void json_edit(char **s, size_t *n)
{
    size_t b, e;
    switch (rng_below(7)) {
    case 0: /* number -> something else */
    case 1:
        if (pick_token(*s, *n, 0, &b, &e)) {
            const char *r = number_swaps[rng_below(sizeof number_swaps / sizeof *number_swaps)];
            splice(s, n, b, e, r, strlen(r));
        }
        break;
    case 2: /* string content -> something else */
        if (pick_token(*s, *n, 1, &b, &e)) {
            const char *r = string_swaps[rng_below(sizeof string_swaps / sizeof *string_swaps)];
            splice(s, n, b, e, r, strlen(r));
        }
        break;
    case 3: /* delete a span */
        if (*n) {
            b = rng_below(*n);
            e = b + 1 + rng_below(24);
            splice(s, n, b, e > *n ? *n : e, "", 0);
        }
        break;
    case 4: { /* duplicate a span elsewhere */
        if (!*n)
            break;
        b = rng_below(*n);
        e = b + 1 + rng_below(120);
        if (e > *n)
            e = *n;
        size_t len = e - b, at = rng_below(*n + 1);
        char *copy = malloc(len + 1);
        memcpy(copy, *s + b, len);
        splice(s, n, at, at, copy, len);
        free(copy);
        break;
    }
    case 5: { /* insert a structural character */
        static const char chars[] = "{}[]\",:\\ 0-e";
        char c = chars[rng_below(sizeof chars - 1)];
        b = rng_below(*n + 1);
        splice(s, n, b, b, &c, 1);
        break;
    }
    default: { /* swap two numbers: moves offsets and dims around */
        size_t b2, e2;
        if (pick_token(*s, *n, 0, &b, &e) && pick_token(*s, *n, 0, &b2, &e2) && e <= b2) {
            char *x = strndup(*s + b, e - b), *y = strndup(*s + b2, e2 - b2);
            splice(s, n, b2, e2, x, strlen(x));
            splice(s, n, b, e, y, strlen(y));
            free(x);
            free(y);
        }
        break;
    }
    }
}

/* ---- image mutations ------------------------------------------------------------ */

static void mutate(struct image *im)
{
    int k = 1 + (int)rng_below(3);
    for (int m = 0; m < k; m++) {
        uint64_t hl = header_len(im);
        switch (rng_below(8)) {
        case 0: /* truncate */
            im->n = rng_below(im->n + 1);
            break;
        case 1:
        case 2: { /* bit flips, mostly in the header */
            int flips = 1 + (int)rng_below(8);
            for (int f = 0; f < flips && im->n; f++) {
                size_t lim = hl + 8 <= im->n && rng_below(10) < 7 ? (size_t)hl + 8 : im->n;
                im->p[rng_below(lim)] ^= (uint8_t)(1u << rng_below(8));
            }
            break;
        }
        case 3: { /* header length edits */
            uint64_t choices[] = {hl + 1, hl - 1, hl + 8, hl - 8, 0, im->n - 8, im->n - 7,
                                  UINT64_MAX, (uint64_t)1 << 63, rng_next(),
                                  hl + rng_below(64), 100000001};
            set_header_len(im, choices[rng_below(sizeof choices / sizeof *choices)]);
            break;
        }
        default: { /* JSON edits, then usually fix the length field */
            if (im->n < 8 || hl > im->n - 8)
                break;
            size_t n = (size_t)hl;
            char *s = malloc(n + 1);
            memcpy(s, im->p + 8, n);
            s[n] = '\0';
            json_edit(&s, &n);
            size_t data = im->n - 8 - (size_t)hl;
            uint8_t *p = malloc(8 + n + data + 1);
            memcpy(p + 8, s, n);
            memcpy(p + 8 + n, im->p + 8 + hl, data);
            free(s);
            free(im->p);
            im->p = p;
            im->n = 8 + n + data;
            set_header_len(im, rng_below(10) < 8 ? n : hl);
            break;
        }
        }
    }
    /* the final image sits in an exact-size buffer for the sanitizers */
    uint8_t *exact = malloc(im->n ? im->n : 1);
    memcpy(exact, im->p, im->n);
    free(im->p);
    im->p = exact;
}

/* ---- consistency of an accepted image ----------------------------------------- */

static int n_diag;

static int fail(const char *fmt, const char *name)
{
    if (n_diag++ < 10)
        diag(fmt, name);
    return 1;
}

/* shard_size[i]: size of shard i. Returns the number of violations. */
static int check_reader(const st_reader_t *r, const size_t *shard_size)
{
    int bad = 0;
    size_t n = st_reader_count(r);
    for (size_t i = 0; i < n; i++) {
        const struct st_tensor_info *t = st_reader_at(r, i);
        if (t->shard < 0 || t->shard >= st_reader_shard_count(r)) {
            bad += fail("tensor '%s': shard index out of range", t->name);
            continue;
        }
        uint64_t numel = 1;
        for (int d = 0; d < t->ndim; d++)
            numel *= (uint64_t)t->shape[d];
        if (t->ndim < 0 || t->ndim > ST_MAX_DIMS || numel != (uint64_t)t->numel ||
            t->nbytes != numel * st_dtype_size(t->dtype))
            bad += fail("tensor '%s': numel / nbytes disagree with shape and dtype", t->name);
        if (t->offset < 8 || t->offset + t->nbytes > shard_size[t->shard] ||
            t->offset + t->nbytes < t->offset)
            bad += fail("tensor '%s': bytes outside the image", t->name);
        if (st_reader_find(r, t->name) != t)
            bad += fail("tensor '%s': find() does not return it", t->name);
        if (i && strcmp(st_reader_at(r, i - 1)->name, t->name) >= 0)
            bad += fail("tensor '%s': listing not strictly sorted", t->name);
        /* every byte is read through the conversion paths */
        struct kd_err err;
        size_t cnt = (size_t)t->numel;
        int rc;
        switch (t->dtype) {
        case ST_DTYPE_F32: case ST_DTYPE_F16: case ST_DTYPE_BF16: case ST_DTYPE_F64: {
            float *v = malloc(cnt * sizeof *v + 1);
            rc = st_reader_read_f32(r, t, v, t->ndim, t->shape, &err);
            free(v);
            break;
        }
        case ST_DTYPE_F8_E4M3: case ST_DTYPE_F8_E5M2:
            rc = st_reader_read_f32(r, t, NULL, t->ndim, t->shape, &err) == -1 ? 0 : -1;
            break;
        case ST_DTYPE_U64: { /* may legitimately hold values above INT64_MAX */
            int64_t *v = malloc(cnt * sizeof *v + 1);
            st_reader_read_i64(r, t, v, t->ndim, t->shape, &err);
            rc = 0;
            free(v);
            break;
        }
        default: {
            int64_t *v = malloc(cnt * sizeof *v + 1);
            rc = st_reader_read_i64(r, t, v, t->ndim, t->shape, &err);
            free(v);
            break;
        }
        }
        if (rc != 0)
            bad += fail("tensor '%s': read of an accepted tensor failed", t->name);
        char canon[512];
        if (strlen(t->name) < sizeof canon - 8) {
            const struct st_tensor_info *b;
            st_bert_name_canonical(t->name, canon, sizeof canon);
            int f = st_reader_find_bert(r, canon, &b, &err);
            if (f == 0 || (f == 1 && b != t))
                bad += fail("tensor '%s': canonical lookup inconsistent", t->name);
        }
    }
    return bad;
}

/* Rejection kinds, to show which checks the mutations reach. */
static const char *const kinds[] = {
    "file is", "header length field", "NUL byte", "invalid JSON", "expected a JSON object",
    "dtype", "shape", "data_offsets:", "out of range", "hold", "overlap", "duplicate name",
    "elements",
};
enum { N_KINDS = sizeof kinds / sizeof kinds[0] };

static void count_kind(const char *msg, long *hist)
{
    for (int k = N_KINDS - 1; k >= 0; k--)
        if (strstr(msg, kinds[k])) {
            hist[k]++;
            return;
        }
}

/* ---- seeds ------------------------------------------------------------------------ */

static struct image load(const char *path)
{
    struct image im = {0};
    struct kd_err err;
    char *data;
    if (fs_file_read(path, &data, &im.n, &err) != 0)
        bail_out("%s", err.msg);
    im.p = (uint8_t *)data;
    return im;
}

static struct image writer_seed(const char *tmp)
{
    static float f[24];
    static int64_t i64[6] = {INT64_MIN, -1, 0, 1, INT64_MAX, 42};
    static int64_t i32[3] = {-5, 0, 5};
    for (int i = 0; i < 24; i++)
        f[i] = (float)i / 3.0f - 4.0f;
    const int64_t s23[2] = {2, 3}, s4[1] = {4}, s6[1] = {6}, s3[1] = {3}, s0[2] = {0, 5},
                  s222[3] = {2, 2, 2};
    struct kd_err err;
    st_writer_t *w = st_writer_new();
    st_writer_set_metadata(w, "format", "pt", &err);
    st_writer_add_f32(w, "bert.embeddings.LayerNorm.gamma", f, 2, s23, ST_DTYPE_F32, &err);
    st_writer_add_f32(w, "embeddings.LayerNorm.weight", f, 1, s4, ST_DTYPE_F16, &err);
    st_writer_add_f32(w, "pooler.dense.bias", f, 3, s222, ST_DTYPE_BF16, &err);
    st_writer_add_i64(w, "embeddings.position_ids", i64, 1, s6, ST_DTYPE_I64, &err);
    st_writer_add_i64(w, "ids32", i32, 1, s3, ST_DTYPE_I32, &err);
    st_writer_add_f32(w, "empty", NULL, 2, s0, ST_DTYPE_F32, &err);
    st_writer_add_f32(w, "scalar", f, 0, NULL, ST_DTYPE_F32, &err);
    char *p = fs_path_join(tmp, "seed.safetensors");
    if (st_writer_write(w, p, &err) != 0)
        bail_out("%s", err.msg);
    st_writer_free(w);
    struct image im = load(p);
    free(p);
    return im;
}

/* ---- index fuzzing ---------------------------------------------------------------- */

static void fuzz_index(const char *tmp, long iters)
{
    struct kd_err err;
    float x[4] = {1, 2, 3, 4};
    const int64_t s4[1] = {4};
    const char *shards[2] = {"model-00001-of-00002.safetensors",
                             "model-00002-of-00002.safetensors"};
    size_t sizes[2];
    for (int s = 0; s < 2; s++) {
        st_writer_t *w = st_writer_new();
        st_writer_add_f32(w, s ? "c" : "a", x, 1, s4, ST_DTYPE_F32, &err);
        if (!s)
            st_writer_add_f32(w, "b", x, 1, s4, ST_DTYPE_F16, &err);
        char *p = fs_path_join(tmp, shards[s]);
        st_writer_write(w, p, &err);
        struct stat st;
        stat(p, &st);
        sizes[s] = (size_t)st.st_size;
        free(p);
        st_writer_free(w);
    }
    const char *valid = "{\"metadata\": {\"total_size\": 40}, \"weight_map\": {\"a\": "
                        "\"model-00001-of-00002.safetensors\", \"b\": "
                        "\"model-00001-of-00002.safetensors\", \"c\": "
                        "\"model-00002-of-00002.safetensors\"}}";
    char *ipath = fs_path_join(tmp, "model.safetensors.index.json");
    int accepted = 0, rejected = 0, bad = 0;
    for (long it = 0; it < iters; it++) {
        size_t n = strlen(valid);
        char *s = strdup(valid);
        int k = it ? 1 + (int)rng_below(3) : 0;
        for (int m = 0; m < k; m++)
            json_edit(&s, &n);
        free(ckpt_write_bytes(tmp, "model.safetensors.index.json", s, n));
        free(s);
        st_reader_t *r;
        if (st_reader_open_index(&r, ipath, &err) != 0) {
            rejected++;
            bad += err.msg[0] == '\0';
            continue;
        }
        accepted++;
        /* shard order is by name, so index i is shards[i] */
        size_t sz[2] = {sizes[0], sizes[1]};
        if (st_reader_shard_count(r) == 1 && strstr(st_reader_shard_path(r, 0), shards[1]))
            sz[0] = sizes[1];
        bad += check_reader(r, sz);
        st_reader_close(r);
    }
    ok(bad == 0 && accepted > 0 && rejected > 0,
       "index fuzz: %ld mutated indexes, %d accepted and consistent, %d rejected", iters,
       accepted, rejected);
    free(ipath);
}

int main(void)
{
    log_init(0, 1);
    log_set_timestamps(0);
    const char *env = getenv("KD_FUZZ_ITERS");
    long iters = env && *env ? atol(env) : 20000;
    env = getenv("KD_FUZZ_SEED");
    rng_state = env && *env ? strtoull(env, NULL, 10) : 1;
    char *tmp = ckpt_tmpdir();

    struct image seeds[4];
    seeds[0] = writer_seed(tmp);
    const char *fixtures[3] = {"dtypes.safetensors", "base/model.safetensors",
                               "seqcls/model-00002-of-00002.safetensors"};
    for (int i = 0; i < 3; i++) {
        char *p = ckpt_fixture(fixtures[i]);
        seeds[i + 1] = load(p);
        free(p);
    }
    int seeds_ok = 1;
    for (int i = 0; i < 4; i++) {
        st_reader_t *r;
        struct kd_err err;
        if (st_reader_open_buffer(&r, seeds[i].p, seeds[i].n, "seed", &err) != 0) {
            diag("seed %d: %s", i, err.msg);
            seeds_ok = 0;
            continue;
        }
        seeds_ok &= check_reader(r, &seeds[i].n) == 0;
        st_reader_close(r);
    }
    ok(seeds_ok, "the 4 unmutated seeds open and are consistent");

    long accepted = 0, rejected = 0, no_msg = 0, path_mismatch = 0, file_runs = 0;
    long hist[N_KINDS] = {0};
    int bad = 0;
    char *fpath = fs_path_join(tmp, "fuzz.safetensors");
    for (long it = 0; it < iters; it++) {
        struct image im = image_copy(&seeds[rng_below(4)]);
        mutate(&im);
        st_reader_t *r = NULL;
        struct kd_err err;
        err.msg[0] = '\0';
        int rc = st_reader_open_buffer(&r, im.p, im.n, "fuzz.safetensors", &err);
        if (rc == 0) {
            accepted++;
            bad += check_reader(r, &im.n);
            st_reader_close(r);
        } else {
            rejected++;
            no_msg += err.msg[0] == '\0' || r != NULL;
            count_kind(err.msg, hist);
        }
        if (it % 64 == 0) { /* the same image through a file and mmap */
            file_runs++;
            free(ckpt_write_bytes(tmp, "fuzz.safetensors", im.p, im.n));
            st_reader_t *rf;
            int rcf = st_reader_open_file(&rf, fpath, &err);
            path_mismatch += (rcf == 0) != (rc == 0);
            if (rcf == 0) {
                bad += check_reader(rf, &im.n);
                st_reader_close(rf);
            }
        }
        free(im.p);
    }
    diag("%ld mutated images: %ld accepted, %ld rejected (seed %" PRIu64 ")", iters, accepted,
         rejected, (uint64_t)(env && *env ? strtoull(env, NULL, 10) : 1));
    int reached = 0;
    for (int k = 0; k < N_KINDS; k++) {
        diag("  rejected by '%s': %ld", kinds[k], hist[k]);
        reached += hist[k] > 0;
    }
    ok(bad == 0, "every accepted image is consistent and reads completely (%d violations)",
       bad);
    ok(no_msg == 0, "every rejection carries a message and returns no reader");
    ok(accepted > iters / 100 && rejected > iters / 100,
       "mutations reach both outcomes (%ld accepted, %ld rejected)", accepted, rejected);
    ok(reached >= N_KINDS - 3, "mutations reach %d of %d kinds of rejection", reached,
       N_KINDS);
    ok(path_mismatch == 0, "file (mmap) and buffer paths agree on %ld images", file_runs);
    fuzz_index(tmp, iters / 20 > 200 ? iters / 20 : 200);

    for (int i = 0; i < 4; i++)
        free(seeds[i].p);
    free(fpath);
    ckpt_rmtree(tmp);
    free(tmp);
    return done_testing();
}
