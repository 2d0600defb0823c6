/* t_store_fixture.c: see t_store_fixture.h. */
#include "t_store_fixture.h"
#include "kd/parallel/layout.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct store_provenance fx_prov = {
    .teacher_config = "{\"hidden_size\": 8, \"num_attention_heads\": 4}",
    .teacher_sha256 = "1111111111111111111111111111111111111111111111111111111111111111",
    .vocab_sha256 = "2222222222222222222222222222222222222222222222222222222222222222",
    .data_sha256 = "3333333333333333333333333333333333333333333333333333333333333333",
    .created = "2024-01-01T00:00:00Z",
};

void fx_spec_full(struct store_spec *s, int32_t *lengths, int64_t n, int32_t seq_len,
                  enum h5_prec prec, enum store_tokens tokens, int labels_float)
{
    store_spec_init(s);
    s->n_examples = n;
    s->seq_len = seq_len;
    s->hidden_size = 8;
    s->model_heads = 4;
    s->num_classes = 3;
    s->attribution_views = 2;
    s->mlm_positions = 3;
    s->mlm_topk = 2;
    s->datasets = (1u << STORE_DS_COUNT) - 1;
    s->tokens = tokens;
    s->n_hidden_layers = 3;
    s->hidden_layers[0] = 0;
    s->hidden_layers[1] = 2;
    s->hidden_layers[2] = 3;
    s->n_attention_layers = 2;
    s->attention_layers[0] = 1;
    s->attention_layers[1] = 3;
    s->n_heads = 3;
    s->heads[0] = 0;
    s->heads[1] = 2;
    s->heads[2] = 3;
    s->labels_float = labels_float;
    for (int d = 0; d < STORE_DS_COUNT; d++)
        s->precision[d] = prec;
    for (int64_t i = 0; i < n; i++)
        lengths[i] = i == 0 ? seq_len : 1 + (int32_t)((i * 7 + 3) % seq_len);
    s->lengths = lengths;
}

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t key(enum store_ds ds, int layer, int64_t ex, size_t index)
{
    return mix(mix(mix((uint64_t)ds * 131 + (uint64_t)(layer + 1)) ^ (uint64_t)ex) ^ index);
}

float fx_value(const struct store_spec *s, enum store_ds ds, int layer, int64_t ex,
               size_t index)
{
    double u = (double)(key(ds, layer, ex, index) >> 11) * 0x1p-53; /* [0,1) */
    if (ds == STORE_DS_ATTENTION) {
        size_t T = (size_t)s->seq_len, L = (size_t)s->lengths[ex];
        size_t r = index / T % T, c = index % T;
        if (r >= L || c >= L)
            return 7.0f;
        return (float)(0.001 + 0.999 * u);
    }
    if (ds == STORE_DS_LABELS)
        return (float)(u * 5.0); /* regression target, e.g. STS-B in [0,5) */
    /* magnitudes in [0.01, 4): no fp16 subnormals, so the relative
     * rounding bound holds for every value */
    double m = 0.01 + 3.99 * (double)(mix(key(ds, layer, ex, index)) >> 11) * 0x1p-53;
    return (float)(u < 0.5 ? -m : m);
}

int32_t fx_int(const struct store_spec *s, enum store_ds ds, int64_t ex, size_t index)
{
    uint64_t h = key(ds, -1, ex, index);
    int32_t L = s->lengths[ex];
    switch (ds) {
    case STORE_DS_INPUT_IDS: return (int32_t)index < L ? (int32_t)(h % 30522) : 0;
    case STORE_DS_TOKEN_TYPE_IDS: return (int32_t)index < L && (int32_t)index >= L / 2;
    case STORE_DS_ATTENTION_MASK: return (int32_t)index < L;
    case STORE_DS_LABELS:
    case STORE_DS_DECISION_TOP1: return (int32_t)(h % (uint64_t)s->num_classes);
    case STORE_DS_LENGTHS: return L;
    case STORE_DS_MLM_POSITIONS: return (int32_t)(h % (uint64_t)L);
    case STORE_DS_MLM_TOPK_IDS: return (int32_t)(h % 30522);
    default: return -1;
    }
}

/* Values per example in the batch (natural) shape. */
static size_t natural_elems(const struct store_spec *s, enum store_ds ds)
{
    size_t T = (size_t)s->seq_len;
    switch (ds) {
    case STORE_DS_HIDDEN: return T * (size_t)s->hidden_size;
    case STORE_DS_ATTENTION: return (size_t)s->model_heads * T * T;
    default: return store_example_elems(s, ds);
    }
}

static int is_float_input(const struct store_spec *s, enum store_ds ds)
{
    return store_ds_is_float(ds) || (ds == STORE_DS_LABELS && s->labels_float);
}

static void *fill(const struct store_spec *s, enum store_ds ds, int layer, int64_t first,
                  int64_t count)
{
    size_t per = natural_elems(s, ds);
    if (is_float_input(s, ds)) {
        float *v = kd_malloc((size_t)count * per * sizeof *v + 1);
        for (int64_t i = 0; i < count; i++)
            for (size_t k = 0; k < per; k++)
                v[(size_t)i * per + k] = fx_value(s, ds, layer, first + i, k);
        return v;
    }
    int32_t *v = kd_malloc((size_t)count * per * sizeof *v + 1);
    for (int64_t i = 0; i < count; i++)
        for (size_t k = 0; k < per; k++)
            v[(size_t)i * per + k] = fx_int(s, ds, first + i, k);
    return v;
}

void fx_batch_fill(struct fx_batch *fb, const struct store_spec *s, int64_t first,
                   int64_t count)
{
    memset(fb, 0, sizeof *fb);
    fb->b.first = first;
    fb->b.count = count;
    uint32_t has = s->datasets;
    for (int d = 0; d < STORE_DS_COUNT; d++)
        if ((has & STORE_BIT(d)) && d != STORE_DS_HIDDEN && d != STORE_DS_ATTENTION &&
            d != STORE_DS_LENGTHS)
            fb->mem[d] = fill(s, (enum store_ds)d, -1, first, count);
    fb->b.input_ids = fb->mem[STORE_DS_INPUT_IDS];
    fb->b.token_type_ids = fb->mem[STORE_DS_TOKEN_TYPE_IDS];
    fb->b.attention_mask = fb->mem[STORE_DS_ATTENTION_MASK];
    if (s->labels_float)
        fb->b.labels_f32 = fb->mem[STORE_DS_LABELS];
    else
        fb->b.labels_i32 = fb->mem[STORE_DS_LABELS];
    fb->b.logits = fb->mem[STORE_DS_LOGITS];
    fb->b.attribution = fb->mem[STORE_DS_ATTRIBUTION];
    fb->b.decision_top1 = fb->mem[STORE_DS_DECISION_TOP1];
    fb->b.decision_votes = fb->mem[STORE_DS_DECISION_VOTES];
    fb->b.decision_logits_est = fb->mem[STORE_DS_DECISION_LOGITS_EST];
    fb->b.mlm_positions = fb->mem[STORE_DS_MLM_POSITIONS];
    fb->b.mlm_topk_ids = fb->mem[STORE_DS_MLM_TOPK_IDS];
    fb->b.mlm_topk_logits = fb->mem[STORE_DS_MLM_TOPK_LOGITS];
    if (has & STORE_BIT(STORE_DS_HIDDEN)) {
        fb->n_hidden = s->n_hidden_layers;
        fb->hidden = kd_calloc((size_t)s->n_hidden_layers, sizeof *fb->hidden);
        for (int l = 0; l < s->n_hidden_layers; l++)
            fb->hidden[l] = fill(s, STORE_DS_HIDDEN, s->hidden_layers[l], first, count);
        fb->b.hidden = (const float *const *)fb->hidden;
    }
    if (has & STORE_BIT(STORE_DS_ATTENTION)) {
        fb->n_attention = s->n_attention_layers;
        fb->attention = kd_calloc((size_t)s->n_attention_layers, sizeof *fb->attention);
        for (int l = 0; l < s->n_attention_layers; l++)
            fb->attention[l] = fill(s, STORE_DS_ATTENTION, s->attention_layers[l], first,
                                    count);
        fb->b.attention = (const float *const *)fb->attention;
    }
}

void fx_batch_free(struct fx_batch *fb)
{
    for (int d = 0; d < STORE_DS_COUNT; d++)
        free(fb->mem[d]);
    for (int l = 0; fb->hidden && l < fb->n_hidden; l++)
        free(fb->hidden[l]);
    for (int l = 0; fb->attention && l < fb->n_attention; l++)
        free(fb->attention[l]);
    free(fb->hidden);
    free(fb->attention);
    memset(fb, 0, sizeof *fb);
}

void fx_expected(const struct store_spec *s, enum store_ds ds, int layer, int64_t ex,
                 float *out)
{
    size_t T = (size_t)s->seq_len, n = store_example_elems(s, ds);
    if (ds == STORE_DS_ATTENTION) {
        size_t L = (size_t)s->lengths[ex];
        for (int32_t h = 0; h < s->n_heads; h++)
            for (size_t r = 0; r < T; r++)
                for (size_t c = 0; c < T; c++)
                    out[((size_t)h * T + r) * T + c] =
                        r < L && c < L
                            ? fx_value(s, ds, layer, ex, ((size_t)s->heads[h] * T + r) * T + c)
                            : 0.0f;
        return;
    }
    if (ds == STORE_DS_HIDDEN && s->tokens == STORE_TOKENS_CLS) {
        for (size_t k = 0; k < n; k++) /* position 0 of (T,H) */
            out[k] = fx_value(s, ds, layer, ex, k);
        return;
    }
    for (size_t k = 0; k < n; k++)
        out[k] = is_float_input(s, ds) ? fx_value(s, ds, layer, ex, k)
                                       : (float)fx_int(s, ds, ex, k);
}

int fx_write(const char *path, const struct comm *c, const struct store_spec *s,
             int64_t batch, struct kd_err *err)
{
    return fx_write_io(path, c, s, batch, STORE_WRITER_AUTO, err);
}

int fx_write_io(const char *path, const struct comm *c, const struct store_spec *s,
                int64_t batch, enum store_writer_io io, struct kd_err *err)
{
    store_writer_t *w = NULL;
    if (store_create_io(&w, path, c, s, &fx_prov, io, err) < 0)
        return -1;
    long long b, e, rounds = 0;
    for (int r = 0; r < c->size; r++) { /* the largest shard sets the rounds */
        layout_shard(s->n_examples, r, c->size, &b, &e);
        if ((e - b + batch - 1) / batch > rounds)
            rounds = (e - b + batch - 1) / batch;
    }
    layout_shard(s->n_examples, c->rank, c->size, &b, &e);
    for (long long k = 0; k < rounds; k++) {
        int64_t first = b + k * batch;
        int64_t count = first >= e ? 0 : (e - first < batch ? e - first : batch);
        struct fx_batch fb;
        fx_batch_fill(&fb, s, count ? first : 0, count);
        int rc = store_write_batch(w, &fb.b, err);
        fx_batch_free(&fb);
        if (rc < 0) {
            store_abort(w);
            return -1;
        }
    }
    return store_finish(w, err);
}

static double tol_of(const struct store_spec *s, enum store_ds ds)
{
    if (!store_ds_is_float(ds))
        return 0;
    switch (s->precision[ds]) {
    case H5_PREC_F16: return 0x1p-11;
    case H5_PREC_BF16: return 0x1p-8;
    default: return 0;
    }
}

static void fnv(uint64_t *h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        *h ^= b[i];
        *h *= 0x100000001b3ull;
    }
}

int fx_verify(store_reader_t *r, int64_t first, int64_t count, uint64_t *digest,
              char *why, size_t len)
{
    const struct store_spec *s = store_reader_spec(r);
    int bad = 0;
    struct kd_err err = {""};
    why[0] = '\0';
    for (int d = 0; d < STORE_DS_COUNT; d++) {
        if (!((s->datasets | STORE_BIT(STORE_DS_LENGTHS)) & STORE_BIT(d)))
            continue;
        enum store_ds ds = (enum store_ds)d;
        int nl = ds == STORE_DS_HIDDEN ? s->n_hidden_layers
                 : ds == STORE_DS_ATTENTION ? s->n_attention_layers : 1;
        size_t per = store_example_elems(s, ds);
        float *got = kd_malloc((size_t)count * per * sizeof *got + 1);
        float *want = kd_malloc(per * sizeof *want + 1);
        int32_t *ints = kd_malloc((size_t)count * per * sizeof *ints + 1);
        for (int l = 0; l < nl; l++) {
            int layer = ds == STORE_DS_HIDDEN      ? s->hidden_layers[l]
                        : ds == STORE_DS_ATTENTION ? s->attention_layers[l] : -1;
            if (store_read_f32(r, ds, layer, first, count, got, &err) < 0) {
                if (!bad++)
                    snprintf(why, len, "%s", err.msg);
                continue;
            }
            int ints_ok = 1;
            if (!store_ds_is_float(ds) && !(ds == STORE_DS_LABELS && s->labels_float)) {
                /* the integer path must agree with the float path */
                ints_ok = store_read_i32(r, ds, first, count, ints, &err) == 0;
                for (size_t k = 0; ints_ok && k < (size_t)count * per; k++)
                    ints_ok = (float)ints[k] == got[k];
            }
            double tol = tol_of(s, ds);
            size_t worst = 0;
            double worst_err = 0;
            int over = !ints_ok;
            for (int64_t i = 0; i < count; i++) {
                fx_expected(s, ds, layer, first + i, want);
                for (size_t k = 0; k < per; k++) {
                    double g = got[(size_t)i * per + k], w = want[k];
                    double e = fabs(g - w);
                    if (e > tol * fabs(w) || isnan(g)) {
                        over = 1;
                        if (e > worst_err || isnan(g)) {
                            worst_err = e;
                            worst = (size_t)i * per + k;
                        }
                    }
                }
            }
            if (over && !bad++)
                snprintf(why, len, "%s layer %d: examples [%lld, %lld): value %zu is %.9g, "
                         "differs by %.3g (tolerance %.3g relative)%s", store_ds_path(ds),
                         layer, (long long)first, (long long)(first + count), worst,
                         got[worst], worst_err, tol, ints_ok ? "" : "; int32 read differs");
            if (digest)
                fnv(digest, got, (size_t)count * per * sizeof *got);
        }
        free(got);
        free(want);
        free(ints);
    }
    return bad;
}
