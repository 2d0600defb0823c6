/* teacher_store_schema.c: the shape of a teacher store: spec checking, the
 * table of datasets with their types and per-example shapes, chunk sizing,
 * ragged attention offsets and the size plan (io layer). The file layout
 * itself is described in hdf5-schemas/teacher_store.v1.md. */
#include "teacher_store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const ds_paths[STORE_DS_COUNT] = {
    [STORE_DS_INPUT_IDS] = "/examples/input_ids",
    [STORE_DS_TOKEN_TYPE_IDS] = "/examples/token_type_ids",
    [STORE_DS_ATTENTION_MASK] = "/examples/attention_mask",
    [STORE_DS_LABELS] = "/examples/labels",
    [STORE_DS_LENGTHS] = "/examples/lengths",
    [STORE_DS_LOGITS] = "/logits",
    [STORE_DS_HIDDEN] = "/hidden",
    [STORE_DS_ATTENTION] = "/attention",
    [STORE_DS_ATTRIBUTION] = "/attribution",
    [STORE_DS_DECISION_TOP1] = "/decision/top1",
    [STORE_DS_DECISION_VOTES] = "/decision/votes",
    [STORE_DS_DECISION_LOGITS_EST] = "/decision/logits_est",
    [STORE_DS_MLM_POSITIONS] = "/mlm/positions",
    [STORE_DS_MLM_TOPK_IDS] = "/mlm/topk_ids",
    [STORE_DS_MLM_TOPK_LOGITS] = "/mlm/topk_logits",
};

const char *store_ds_path(enum store_ds ds)
{
    return (unsigned)ds < STORE_DS_COUNT ? ds_paths[ds] : "?";
}

int store_ds_is_float(enum store_ds ds)
{
    switch (ds) {
    case STORE_DS_LOGITS:
    case STORE_DS_HIDDEN:
    case STORE_DS_ATTENTION:
    case STORE_DS_ATTRIBUTION:
    case STORE_DS_DECISION_VOTES:
    case STORE_DS_DECISION_LOGITS_EST:
    case STORE_DS_MLM_TOPK_LOGITS:
        return 1;
    default:
        return 0;
    }
}

void store_spec_init(struct store_spec *s)
{
    memset(s, 0, sizeof *s);
    s->tokens = STORE_TOKENS_ALL;
    for (int i = 0; i < STORE_DS_COUNT; i++)
        s->precision[i] = H5_PREC_F32;
}

/* Per-example shape of a non-ragged dataset: rank after N and dims. */
static int row_shape(const struct store_spec *s, enum store_ds ds, hsize_t row[3])
{
    switch (ds) {
    case STORE_DS_INPUT_IDS:
    case STORE_DS_TOKEN_TYPE_IDS:
    case STORE_DS_ATTENTION_MASK:
        row[0] = (hsize_t)s->seq_len;
        return 1;
    case STORE_DS_LABELS:
    case STORE_DS_LENGTHS:
    case STORE_DS_DECISION_TOP1:
        return 0;
    case STORE_DS_LOGITS:
    case STORE_DS_DECISION_VOTES:
    case STORE_DS_DECISION_LOGITS_EST:
        row[0] = (hsize_t)s->num_classes;
        return 1;
    case STORE_DS_HIDDEN:
        if (s->tokens == STORE_TOKENS_CLS) {
            row[0] = (hsize_t)s->hidden_size;
            return 1;
        }
        row[0] = (hsize_t)s->seq_len;
        row[1] = (hsize_t)s->hidden_size;
        return 2;
    case STORE_DS_ATTRIBUTION:
        row[0] = (hsize_t)s->attribution_views;
        row[1] = (hsize_t)s->seq_len;
        return 2;
    case STORE_DS_MLM_POSITIONS:
        row[0] = (hsize_t)s->mlm_positions;
        return 1;
    case STORE_DS_MLM_TOPK_IDS:
    case STORE_DS_MLM_TOPK_LOGITS:
        row[0] = (hsize_t)s->mlm_positions;
        row[1] = (hsize_t)s->mlm_topk;
        return 2;
    default:
        return -1; /* attention is ragged */
    }
}

size_t store_example_elems(const struct store_spec *s, enum store_ds ds)
{
    if (ds == STORE_DS_ATTENTION)
        return (size_t)s->n_heads * (size_t)s->seq_len * (size_t)s->seq_len;
    hsize_t row[3];
    int r = row_shape(s, ds, row);
    size_t n = 1;
    for (int i = 0; i < r; i++)
        n *= (size_t)row[i];
    return r < 0 ? 0 : n;
}

static int check_list(const int32_t *v, int32_t n, int32_t lo, int32_t hi,
                      const char *what, struct kd_err *err)
{
    if (n < 1 || n > hi - lo + 1)
        return kd_errf(err, "store spec: %s: expected 1 to %d entries, got %d", what,
                       hi - lo + 1, n);
    for (int32_t i = 0; i < n; i++) {
        if (v[i] < lo || v[i] > hi)
            return kd_errf(err, "store spec: %s[%d] = %d is outside %d..%d", what, i,
                           v[i], lo, hi);
        if (i > 0 && v[i] <= v[i - 1])
            return kd_errf(err, "store spec: %s[%d] = %d is not above %s[%d] = %d "
                           "(expected ascending, no repeats)", what, i, v[i], what,
                           i - 1, v[i - 1]);
    }
    return 0;
}

/* Everything but the lengths (which --dry-run planning may not have). */
static int spec_check_shape(const struct store_spec *s, struct kd_err *err)
{
    uint32_t has = s->datasets | STORE_BIT(STORE_DS_LENGTHS);
    if (s->n_examples < 1)
        return kd_errf(err, "store spec: n_examples: expected >= 1, got %lld",
                       (long long)s->n_examples);
    if (s->seq_len < 1 || s->seq_len > 65536)
        return kd_errf(err, "store spec: seq_len: expected 1..65536, got %d", s->seq_len);
    if (has >> STORE_DS_COUNT)
        return kd_errf(err, "store spec: datasets: unknown bits 0x%x",
                       (unsigned)(has >> STORE_DS_COUNT << STORE_DS_COUNT));
    if (s->tokens != STORE_TOKENS_ALL && s->tokens != STORE_TOKENS_CLS)
        return kd_errf(err, "store spec: tokens: expected all or cls");
    if (s->deflate < 0 || s->deflate > 9)
        return kd_errf(err, "store spec: deflate: expected 0 (off) to 9, got %d", s->deflate);
    for (int d = 0; d < STORE_DS_COUNT; d++)
        if (store_ds_is_float((enum store_ds)d) && (unsigned)s->precision[d] > H5_PREC_BF16)
            return kd_errf(err, "store spec: %s: unknown precision %d", ds_paths[d],
                           (int)s->precision[d]);
    if (has & STORE_BIT(STORE_DS_HIDDEN)) {
        if (s->hidden_size < 1)
            return kd_errf(err, "store spec: hidden_size: expected >= 1, got %d",
                           s->hidden_size);
        if (check_list(s->hidden_layers, s->n_hidden_layers, 0, STORE_MAX_LAYERS - 1,
                       "hidden_layers", err) < 0)
            return -1;
    }
    if (has & STORE_BIT(STORE_DS_ATTENTION)) {
        if (s->model_heads < 1 || s->model_heads > STORE_MAX_HEADS)
            return kd_errf(err, "store spec: model_heads: expected 1..%d, got %d",
                           STORE_MAX_HEADS, s->model_heads);
        if (check_list(s->attention_layers, s->n_attention_layers, 1, STORE_MAX_LAYERS - 1,
                       "attention_layers", err) < 0 ||
            check_list(s->heads, s->n_heads, 0, s->model_heads - 1, "heads", err) < 0)
            return -1;
    }
    uint32_t need_c = STORE_BIT(STORE_DS_LOGITS) | STORE_BIT(STORE_DS_DECISION_VOTES) |
                      STORE_BIT(STORE_DS_DECISION_LOGITS_EST);
    if ((has & need_c) && s->num_classes < 1)
        return kd_errf(err, "store spec: num_classes: expected >= 1, got %d", s->num_classes);
    if ((has & STORE_BIT(STORE_DS_ATTRIBUTION)) && s->attribution_views < 1)
        return kd_errf(err, "store spec: attribution_views: expected >= 1, got %d",
                       s->attribution_views);
    uint32_t mlm = STORE_BIT(STORE_DS_MLM_POSITIONS) | STORE_BIT(STORE_DS_MLM_TOPK_IDS) |
                   STORE_BIT(STORE_DS_MLM_TOPK_LOGITS);
    if ((has & mlm) && s->mlm_positions < 1)
        return kd_errf(err, "store spec: mlm_positions: expected >= 1, got %d",
                       s->mlm_positions);
    if ((has & (mlm & ~STORE_BIT(STORE_DS_MLM_POSITIONS))) && s->mlm_topk < 1)
        return kd_errf(err, "store spec: mlm_topk: expected >= 1, got %d", s->mlm_topk);
    return 0;
}

int store_spec_check(const struct store_spec *s, struct kd_err *err)
{
    if (spec_check_shape(s, err) < 0)
        return -1;
    if (!s->lengths)
        return kd_errf(err, "store spec: lengths: expected the real token count of "
                       "every example, got none");
    for (int64_t i = 0; i < s->n_examples; i++)
        if (s->lengths[i] < 1 || s->lengths[i] > s->seq_len)
            return kd_errf(err, "store spec: lengths[%lld]: expected 1..%d (seq_len), got %d",
                           (long long)i, s->seq_len, s->lengths[i]);
    return 0;
}

/* Units per chunk for `total` units with at most `cap` per chunk. HDF5
 * stores the edge chunk whole, so among the sizes in [cap/2, cap] take the
 * one that leaves the least unused space in it (the largest on ties):
 * e.g. 96 rows with cap 5 give chunks of 4, not 20 chunks of 5 with the
 * last one holding a single row. */
static hsize_t balanced(uint64_t total, uint64_t cap)
{
    if (cap < 1)
        cap = 1;
    if (total <= cap)
        return total < 1 ? 1 : (hsize_t)total;
    uint64_t best = cap, best_waste = UINT64_MAX;
    for (uint64_t c = cap; c >= 1 && 2 * c >= cap; c--) {
        uint64_t waste = (total + c - 1) / c * c - total;
        if (waste < best_waste) {
            best = c;
            best_waste = waste;
            if (waste == 0)
                break;
        }
    }
    return (hsize_t)best;
}

hsize_t store__chunk_rows(size_t row_bytes, int64_t n_examples)
{
    /* About STORE_CHUNK_BYTES per chunk: big enough for full-speed I/O,
     * small enough that a batch of a few examples rewrites little; tiny
     * rows are capped so each batch does not rewrite a large shared chunk. */
    uint64_t cap = row_bytes ? STORE_CHUNK_BYTES / row_bytes : 1;
    if (cap > STORE_CHUNK_MAX_EXAMPLES)
        cap = STORE_CHUNK_MAX_EXAMPLES;
    return balanced((uint64_t)n_examples, cap);
}

hsize_t store__chunk_elems(size_t esize, uint64_t total_elems)
{
    return balanced(total_elems, STORE_CHUNK_BYTES / esize);
}

int64_t *store__attention_offsets(const struct store_spec *s)
{
    int64_t *off = kd_malloc((size_t)(s->n_examples + 1) * sizeof *off);
    off[0] = 0;
    for (int64_t i = 0; i < s->n_examples; i++) {
        int64_t l = s->lengths[i];
        off[i + 1] = off[i] + (int64_t)s->n_heads * l * l;
    }
    return off;
}

static void dset_fill(struct store_dset *d, const struct store_spec *s, enum store_ds ds,
                      int layer, int slot)
{
    memset(d, 0, sizeof *d);
    d->ds = ds;
    d->layer = layer;
    d->slot = slot;
    d->id = H5I_INVALID_HID;
    d->type = H5I_INVALID_HID;
    if (layer >= 0)
        snprintf(d->name, sizeof d->name, "%s/layer_%02d", ds_paths[ds], layer);
    else
        snprintf(d->name, sizeof d->name, "%s", ds_paths[ds]);
    d->is_float = store_ds_is_float(ds) || (ds == STORE_DS_LABELS && s->labels_float);
    d->prec = store_ds_is_float(ds) ? s->precision[ds] : H5_PREC_F32;
    d->esize = d->is_float ? h5_prec_size(d->prec) : 4;
    d->ragged = ds == STORE_DS_ATTENTION;
    if (d->ragged) {
        d->rank = 1;
        return;
    }
    int r = row_shape(s, ds, d->row);
    d->rank = r + 1;
    d->row_elems = 1;
    for (int i = 0; i < r; i++)
        d->row_elems *= (size_t)d->row[i];
}

int store__dsets_plan(const struct store_spec *s, struct store_dset **out,
                      struct kd_err *err)
{
    uint32_t has = s->datasets | STORE_BIT(STORE_DS_LENGTHS);
    int n = 0;
    for (int ds = 0; ds < STORE_DS_COUNT; ds++)
        if (has & STORE_BIT(ds))
            n += ds == STORE_DS_HIDDEN      ? s->n_hidden_layers
                 : ds == STORE_DS_ATTENTION ? s->n_attention_layers
                                            : 1;
    struct store_dset *d = kd_calloc((size_t)n, sizeof *d);
    int k = 0;
    for (int ds = 0; ds < STORE_DS_COUNT; ds++) {
        if (!(has & STORE_BIT(ds)))
            continue;
        if (ds == STORE_DS_HIDDEN)
            for (int i = 0; i < s->n_hidden_layers; i++)
                dset_fill(&d[k++], s, (enum store_ds)ds, s->hidden_layers[i], i);
        else if (ds == STORE_DS_ATTENTION)
            for (int i = 0; i < s->n_attention_layers; i++)
                dset_fill(&d[k++], s, (enum store_ds)ds, s->attention_layers[i], i);
        else
            dset_fill(&d[k++], s, (enum store_ds)ds, -1, 0);
    }
    for (int i = 0; i < n; i++) {
        if (d[i].is_float)
            d[i].type = h5_prec_type(d[i].prec, err);
        else
            d[i].type = H5Tcopy(H5T_STD_I32LE);
        if (d[i].type < 0) {
            if (!d[i].is_float)
                h5_fail(err, "H5Tcopy()", "%s: int32 type", d[i].name);
            store__dsets_close(d, n);
            *out = NULL;
            return -1;
        }
    }
    *out = d;
    return n;
}

void store__dsets_close(struct store_dset *d, int n)
{
    if (!d)
        return;
    for (int i = 0; i < n; i++) {
        h5_close_any(&d[i].id);
        h5_close_any(&d[i].type);
    }
    free(d);
}

void store__components_text(uint32_t datasets, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    datasets |= STORE_BIT(STORE_DS_LENGTHS);
    for (int ds = 0; ds < STORE_DS_COUNT; ds++) {
        if (!(datasets & STORE_BIT(ds)))
            continue;
        int k = snprintf(buf + used, len - used, "%s%s", used ? "," : "", ds_paths[ds] + 1);
        if (k < 0 || (size_t)k >= len - used)
            break;
        used += (size_t)k;
    }
}

int store__components_parse(const char *text, uint32_t *datasets, struct kd_err *err)
{
    *datasets = 0;
    const char *p = text;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        int found = -1;
        for (int ds = 0; ds < STORE_DS_COUNT; ds++)
            if (strlen(ds_paths[ds] + 1) == n && strncmp(ds_paths[ds] + 1, p, n) == 0)
                found = ds;
        if (found < 0)
            return kd_errf(err, "components: unknown dataset \"%.*s\"", (int)n, p);
        *datasets |= STORE_BIT(found);
        p += n + (end ? 1 : 0);
    }
    if (!(*datasets & STORE_BIT(STORE_DS_LENGTHS)))
        return kd_errf(err, "components: examples/lengths is missing");
    return 0;
}

int store__is_sha256(const char *s)
{
    if (!s || strlen(s) != 64)
        return 0;
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

int store_plan_size(const struct store_spec *s, struct store_size *out,
                    struct kd_err *err)
{
    memset(out, 0, sizeof *out);
    /* Planning may run before lengths are known (--dry-run): then the
     * ragged attention is planned for full-length examples. */
    if ((s->lengths ? store_spec_check(s, err) : spec_check_shape(s, err)) < 0)
        return -1;
    struct store_dset *d = NULL;
    int n = store__dsets_plan(s, &d, err);
    if (n < 0)
        return -1;
    uint64_t attn_elems = 0;
    for (int64_t i = 0; i < s->n_examples; i++) {
        uint64_t l = s->lengths ? (uint64_t)s->lengths[i] : (uint64_t)s->seq_len;
        attn_elems += (uint64_t)s->n_heads * l * l;
    }
    /* Every chunk is stored whole (edge chunks too) with a 4-byte
     * Fletcher32 word. */
    uint64_t chunks = 0;
    for (int i = 0; i < n; i++) {
        uint64_t units, per_unit, c;
        if (d[i].ragged) {
            units = attn_elems;
            per_unit = d[i].esize;
            c = store__chunk_elems(d[i].esize, units);
        } else {
            units = (uint64_t)s->n_examples;
            per_unit = d[i].row_elems * d[i].esize;
            c = store__chunk_rows(per_unit, s->n_examples);
        }
        uint64_t nchunk = (units + c - 1) / c;
        out->bytes[d[i].ds] += nchunk * (c * per_unit + 4);
        chunks += nchunk;
    }
    if (s->datasets & STORE_BIT(STORE_DS_ATTENTION)) { /* /attention/offsets */
        uint64_t n1 = (uint64_t)s->n_examples + 1, c = store__chunk_rows(8, (int64_t)n1);
        uint64_t nchunk = (n1 + c - 1) / c;
        out->bytes[STORE_DS_ATTENTION] += nchunk * (c * 8 + 4);
        chunks += nchunk;
    }
    for (int ds = 0; ds < STORE_DS_COUNT; ds++)
        out->data += out->bytes[ds];
    /* Metadata: superblock, groups and root attributes (~8 KiB with the
     * teacher config), an object header with attributes per dataset
     * (~2.5 KiB) and a chunk-index B-tree entry per chunk (~48 bytes, nodes
     * included). Compression, when on, is not estimated (upper bound). */
    out->metadata = 8192 + 2560 * (uint64_t)(n + 1) + 48 * chunks;
    out->total = out->data + out->metadata;
    store__dsets_close(d, n);
    return 0;
}
