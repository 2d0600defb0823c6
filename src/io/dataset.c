/* dataset.c: tokenized in-memory datasets from TSV tables or the synthetic
 * task, rank shards and per-epoch shuffles (io layer; no MPI). Contracts are
 * in include/kd/io/dataset.h.
 *
 * Each text is tokenized once with tokenizer_tokenize. When [CLS] a [SEP]
 * (b [SEP]) fits in T the row is assembled here; only an example that must be
 * truncated goes through tokenizer_encode, which owns the longest-first rule,
 * so the rule lives in one place and the common case tokenizes once.
 */
#include "kd/io/dataset.h"
#include "kd/io/teacher_store.h"
#include "kd/core/log.h"
#include "kd/core/rng.h"
#include "kd/parallel/layout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


void dataset_free(struct dataset *d)
{
    free(d->name);
    free(d->input_ids);
    free(d->token_type_ids);
    free(d->attention_mask);
    free(d->lengths);
    free(d->labels);
    free(d->targets);
    free(d->source_lines);
    label_map_free(&d->map);
    memset(d, 0, sizeof *d);
}

/* Allocates the (N,T) and (N) arrays: 12*N*T + 4*N bytes, e.g. 103 MB for
 * SST-2 train at T = 128 (the attention mask is kept although lengths
 * imply it, because the model and the teacher store take it as is). */
static int dataset_alloc(struct dataset *d, const char *name, int64_t n, int64_t t,
                         int pair, struct kd_err *err)
{
    memset(d, 0, sizeof *d);
    if (t < (pair ? 3 : 2))
        return kd_errf(err, "%s: expected max_seq_len >= %d for %s, got %lld", name,
                       pair ? 3 : 2, pair ? "sentence pairs" : "single sentences",
                       (long long)t);
    d->name = kd_strdup(name);
    d->n = n;
    d->max_seq_len = t;
    d->pair = pair;
    size_t cells = (size_t)n * (size_t)t;
    d->input_ids = kd_malloc(cells * sizeof *d->input_ids);
    d->token_type_ids = kd_malloc(cells * sizeof *d->token_type_ids);
    d->attention_mask = kd_malloc(cells * sizeof *d->attention_mask);
    d->lengths = kd_malloc((size_t)n * sizeof *d->lengths);
    return 0;
}

/* Scratch for encoding: the two texts' word pieces. */
struct encoder {
    tokenizer_t *tok;
    struct tokenizer_ids a, b;
    int32_t cls, sep, pad, unk;
};

static void encoder_init(struct encoder *e, tokenizer_t *tok)
{
    memset(e, 0, sizeof *e);
    e->tok = tok;
    e->cls = tokenizer_special_id(tok, TOKENIZER_SPECIAL_CLS);
    e->sep = tokenizer_special_id(tok, TOKENIZER_SPECIAL_SEP);
    e->pad = tokenizer_special_id(tok, TOKENIZER_SPECIAL_PAD);
    e->unk = tokenizer_special_id(tok, TOKENIZER_SPECIAL_UNK);
}

static void encoder_free(struct encoder *e)
{
    tokenizer_ids_free(&e->a);
    tokenizer_ids_free(&e->b);
}

/* Encodes example i of d from text a (and b when non-NULL). */
static int encode_row(struct dataset *d, struct encoder *e, int64_t i, const char *a,
                      size_t len_a, const char *b, size_t len_b, struct kd_err *err)
{
    const int64_t t = d->max_seq_len;
    int32_t *ids = d->input_ids + i * t;
    int32_t *types = d->token_type_ids + i * t;
    int32_t *mask = d->attention_mask + i * t;
    e->a.n = e->b.n = 0;
    tokenizer_tokenize(e->tok, a, len_a, &e->a);
    if (b)
        tokenizer_tokenize(e->tok, b, len_b, &e->b);
    int64_t need = (int64_t)e->a.n + (int64_t)e->b.n + (b ? 3 : 2);
    int64_t len;
    if (need > t) {
        /* the tokenizer owns the truncation rule */
        d->n_truncated++;
        len = tokenizer_encode(e->tok, a, len_a, b, len_b, t, ids, types, mask, err);
        if (len < 0)
            return kd_err_prefix(err, "%s: example %lld", d->name, (long long)i);
    } else {
        /* the layout tokenizer_encode produces when nothing is cut (checked
         * row for row against it in tests/io/t_dataset.c) */
        int64_t k = 0;
        ids[k] = e->cls, types[k++] = 0;
        for (size_t j = 0; j < e->a.n; j++)
            ids[k] = e->a.ids[j], types[k++] = 0;
        ids[k] = e->sep, types[k++] = 0;
        if (b) {
            for (size_t j = 0; j < e->b.n; j++)
                ids[k] = e->b.ids[j], types[k++] = 1;
            ids[k] = e->sep, types[k++] = 1;
        }
        len = k;
        for (int64_t j = 0; j < len; j++)
            mask[j] = 1;
        for (; k < t; k++)
            ids[k] = e->pad, types[k] = 0, mask[k] = 0;
    }
    d->lengths[i] = (int32_t)len;
    /* [UNK] count: a high value means the vocabulary does not fit the data
     * (e.g. a cased vocab with data.lowercase = true) */
    for (int64_t j = 0; j < len; j++)
        d->n_unk += ids[j] == e->unk;
    return 0;
}

static void warn_truncated(const struct dataset *d)
{
    if (d->n_truncated)
        log_warn0("%s: %lld of %lld examples (%.2f%%) are longer than max_seq_len = %lld "
                  "tokens and were truncated (longest first)", d->name,
                  (long long)d->n_truncated, (long long)d->n,
                  100.0 * (double)d->n_truncated / (double)d->n, (long long)d->max_seq_len);
}

int dataset_from_tsv(struct dataset *d, const struct tsv_table *t, tokenizer_t *tok,
                     int64_t max_seq_len, struct kd_err *err)
{
    int pair = t->n_rows > 0 && t->rows[0].text_b != NULL;
    if (dataset_alloc(d, t->path, t->n_rows, max_seq_len, pair, err))
        return -1;
    d->source_lines = kd_malloc((size_t)t->n_rows * sizeof *d->source_lines);
    struct encoder e;
    encoder_init(&e, tok);
    for (int64_t i = 0; i < t->n_rows; i++) {
        const struct tsv_row *r = &t->rows[i];
        if (encode_row(d, &e, i, r->text_a, (size_t)r->len_a, r->text_b, (size_t)r->len_b,
                       err)) {
            encoder_free(&e);
            dataset_free(d);
            return -1;
        }
        d->source_lines[i] = r->line;
    }
    encoder_free(&e);
    if (t->labels) {
        d->labels = kd_malloc((size_t)d->n * sizeof *d->labels);
        memcpy(d->labels, t->labels, (size_t)d->n * sizeof *d->labels);
    }
    if (t->targets) {
        d->targets = kd_malloc((size_t)d->n * sizeof *d->targets);
        memcpy(d->targets, t->targets, (size_t)d->n * sizeof *d->targets);
    }
    label_map_copy(&d->map, &t->map);
    d->n_skipped = t->n_skipped;
    warn_truncated(d);
    return 0;
}

int dataset_from_synthetic(struct dataset *d, const struct synthetic_set *s,
                           tokenizer_t *tok, int64_t max_seq_len, struct kd_err *err)
{
    static const char *const split_names[] = {"train", "dev", "test"};
    char name[64];
    snprintf(name, sizeof name, "%s:%s", synthetic_kind_name(s->kind),
             s->split >= 0 && s->split <= 2 ? split_names[s->split] : "?");
    int pair = s->kind == SYNTHETIC_PAIR;
    if (dataset_alloc(d, name, s->n, max_seq_len, pair, err))
        return -1;
    struct encoder e;
    encoder_init(&e, tok);
    for (int64_t i = 0; i < s->n; i++) {
        const struct synthetic_example *x = &s->ex[i];
        if (encode_row(d, &e, i, x->text_a, strlen(x->text_a), x->text_b,
                       x->text_b ? strlen(x->text_b) : 0, err)) {
            encoder_free(&e);
            dataset_free(d);
            return -1;
        }
    }
    encoder_free(&e);
    d->labels = kd_malloc((size_t)d->n * sizeof *d->labels);
    for (int64_t i = 0; i < s->n; i++)
        d->labels[i] = s->ex[i].label;
    const char *names[SYNTHETIC_NUM_LABELS];
    for (int32_t k = 0; k < SYNTHETIC_NUM_LABELS; k++)
        names[k] = synthetic_label_name(s->kind, k);
    label_map_from_names(&d->map, names, SYNTHETIC_NUM_LABELS);
    warn_truncated(d);
    return 0;
}

int dataset_load(struct dataset *d, const struct dataset_spec *spec,
                 const struct label_map *train_map, tokenizer_t *tok, struct kd_err *err)
{
    memset(d, 0, sizeof *d);
    if (spec->task == DATASET_TASK_TSV) {
        if (!spec->path || !spec->path[0])
            return kd_errf(err, "data: expected a TSV path for this split, got \"\"");
        struct tsv_table t;
        if (tsv_read(&t, spec->path, &spec->tsv, train_map, err))
            return -1;
        int rc = dataset_from_tsv(d, &t, tok, spec->max_seq_len, err);
        tsv_free(&t);
        return rc;
    }
    if (spec->task != DATASET_TASK_SYNTHETIC && spec->task != DATASET_TASK_SYNTHETIC_PAIR)
        return kd_errf(err, "data.task: expected tsv, synthetic or synthetic_pair, got %d",
                       spec->task);
    if (spec->tsv.problem != TSV_PROBLEM_CLASSIFICATION)
        return kd_errf(err, "data.problem: expected \"classification\" for the synthetic "
                       "task, got \"regression\"");
    if (spec->tsv.num_labels != 0 && spec->tsv.num_labels != SYNTHETIC_NUM_LABELS)
        return kd_errf(err, "data.num_labels: expected 0 or %d for the synthetic task, "
                       "got %lld", SYNTHETIC_NUM_LABELS, (long long)spec->tsv.num_labels);
    struct synthetic_set s;
    int kind = spec->task == DATASET_TASK_SYNTHETIC ? SYNTHETIC_SINGLE : SYNTHETIC_PAIR;
    /* label noise is a property of the training data only: dev and test
     * stay clean so that evaluation measures the rule */
    double noise = spec->split == DATASET_SPLIT_TRAIN ? spec->synthetic_noise : 0.0;
    if (synthetic_generate(&s, kind, spec->split, spec->synthetic_n, spec->seed, noise, err))
        return -1;
    int rc = dataset_from_synthetic(d, &s, tok, spec->max_seq_len, err);
    synthetic_free(&s);
    return rc;
}

void dataset_shard(int64_t n, int rank, int nranks, int64_t *begin, int64_t *end)
{
    KD_ASSERT(nranks >= 1 && rank >= 0 && rank < nranks, "rank %d of %d", rank, nranks);
    long long b, e;
    layout_shard((long long)n, rank, nranks, &b, &e);
    *begin = (int64_t)b;
    *end = (int64_t)e;
}

void dataset_epoch_order(int64_t *order, int64_t n, uint64_t seed, int64_t epoch)
{
    /* one shuffle for the whole program: the teacher store's readers and the
     * tokenized datasets visit examples in the same order */
    store_epoch_order(order, n, seed, epoch);
}
