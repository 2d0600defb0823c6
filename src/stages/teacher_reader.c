/* teacher_reader.c: store rows into teacher views. */
#include "kd/stages/teacher_reader.h"
#include "kd/core/log.h"
#include "kd/model/hf_config.h"

#include <stdlib.h>
#include <string.h>

static int has_layer(const int32_t *v, int n, int32_t l)
{
    for (int i = 0; i < n; i++)
        if (v[i] == l)
            return 1;
    return 0;
}

static int check_needs(const struct store_spec *s, const struct kd_needs *n, const char *path,
                       const char *stage, struct kd_err *err)
{
    const char *fix = "add it to the extract stage's outputs/layers and run it again";
    if (n->logits && !(s->datasets & STORE_BIT(STORE_DS_LOGITS))) {
        kd_errf(err, "%s: stage \"%s\" needs the teacher's /logits, which the store does "
                     "not hold; %s", path, stage, fix);
        return -1;
    }
    for (int i = 0; i < n->n_hidden; i++)
        if (!(s->datasets & STORE_BIT(STORE_DS_HIDDEN)) ||
            !has_layer(s->hidden_layers, s->n_hidden_layers, n->hidden_layers[i])) {
            kd_errf(err, "%s: stage \"%s\" needs /hidden/layer_%02d, which the store does not "
                         "hold; %s", path, stage, n->hidden_layers[i], fix);
            return -1;
        }
    if (n->n_hidden && n->hidden_tokens == TOKEN_SEL_ALL && s->tokens == STORE_TOKENS_CLS) {
        kd_errf(err, "%s: stage \"%s\" compares every token's hidden state but the store "
                     "holds [CLS] only (extract tokens = \"cls\"); extract with tokens = "
                     "\"all\"", path, stage);
        return -1;
    }
    for (int i = 0; i < n->n_attention; i++)
        if (!(s->datasets & STORE_BIT(STORE_DS_ATTENTION)) ||
            !has_layer(s->attention_layers, s->n_attention_layers, n->attention_layers[i]) ||
            s->n_heads != s->model_heads) {
            kd_errf(err, "%s: stage \"%s\" needs every head of /attention/layer_%02d, which "
                         "the store does not hold; %s", path, stage, n->attention_layers[i],
                    fix);
            return -1;
        }
    return 0;
}

/* Reads rows [0, N) of one component into a new buffer of N x width. */
static float *read_whole(store_reader_t *r, enum store_ds ds, int layer, int64_t N,
                         int64_t width, struct kd_err *err)
{
    float *all = malloc((size_t)(N * width) * sizeof *all);
    if (!all) {
        kd_errf(err, "out of memory for %.1f MB of the teacher's outputs",
                (double)(N * width) * 4e-6);
        return NULL;
    }
    const int64_t step = 8192; /* bounded HDF5 conversion buffers */
    for (int64_t first = 0; first < N; first += step)
        if (store_read_f32(r, ds, layer, first, first + step <= N ? step : N - first,
                           all + first * width, err)) {
            free(all);
            return NULL;
        }
    return all;
}

/* Keeps logits and [CLS] hidden states in memory when they fit. */
static int cache_small(struct teacher_reader *tr, const char *path, struct kd_err *err)
{
    const struct store_spec *s = tr->spec;
    const int64_t N = s->n_examples, H = s->hidden_size, K = s->num_classes;
    const int cls = s->tokens == STORE_TOKENS_CLS;
    const double bytes = 4.0 * (double)N *
                         ((tr->needs.logits ? (double)K : 0.0) +
                          (cls ? (double)(tr->needs.n_hidden * H) : 0.0));
    if (bytes == 0.0 || bytes > (double)TEACHER_READER_CACHE_BYTES)
        return 0;
    if (tr->needs.logits && !(tr->all_logits = read_whole(tr->r, STORE_DS_LOGITS, 0, N, K, err)))
        return -1;
    for (int i = 0; cls && i < tr->needs.n_hidden; i++) {
        const int l = tr->needs.hidden_layers[i];
        if (!(tr->all_hidden[l] = read_whole(tr->r, STORE_DS_HIDDEN, l, N, H, err)))
            return -1;
    }
    log_info0("%s: %.1f MB of the teacher's outputs held in memory", path, bytes / 1e6);
    return 0;
}

int teacher_reader_open(struct teacher_reader *tr, const char *path,
                        const struct store_expect *expect, const struct kd_needs *needs,
                        int64_t B, int64_t T, const char *stage, struct kd_err *err)
{
    memset(tr, 0, sizeof *tr);
    if (store_open(&tr->r, path, NULL, expect, err))
        return -1;
    tr->spec = store_reader_spec(tr->r);
    const struct store_provenance *p = store_reader_provenance(tr->r);
    if (hf_config_parse(p->teacher_config, strlen(p->teacher_config), path, &tr->cfg, NULL,
                        err) ||
        check_needs(tr->spec, needs, path, stage, err)) {
        teacher_reader_close(tr);
        return -1;
    }
    if (tr->spec->seq_len != T) {
        kd_errf(err, "%s: the store's sequences have %d tokens, the job's data.max_seq_len is "
                     "%lld", path, tr->spec->seq_len, (long long)T);
        teacher_reader_close(tr);
        return -1;
    }
    tr->needs = *needs;
    tr->B = B, tr->T = T;
    const int64_t H = tr->spec->hidden_size, NH = tr->spec->model_heads;
    const int64_t K = tr->spec->num_classes;
    int ok = (tr->logits = malloc((size_t)(B * K) * sizeof(float))) != NULL;
    ok &= (tr->row = malloc((size_t)(NH * T * T + T * H) * sizeof(float))) != NULL;
    for (int i = 0; i < needs->n_hidden; i++)
        ok &= (tr->hidden[needs->hidden_layers[i]] =
                   malloc((size_t)(B * T * H) * sizeof(float))) != NULL;
    for (int i = 0; i < needs->n_attention; i++)
        ok &= (tr->probs[needs->attention_layers[i] - 1] =
                   malloc((size_t)(B * NH * T * T) * sizeof(float))) != NULL;
    if (!ok) {
        kd_errf(err, "out of memory for the teacher's batch");
        teacher_reader_close(tr);
        return -1;
    }
    if (cache_small(tr, path, err)) {
        teacher_reader_close(tr);
        return -1;
    }
    return 0;
}

int teacher_reader_batch(struct teacher_reader *tr, const struct batch_rows *b,
                         struct kd_teacher_view *v, struct kd_err *err)
{
    const struct store_spec *s = tr->spec;
    const int64_t n = b->n, t = b->t, T = tr->T, H = s->hidden_size, NH = s->model_heads;
    const int64_t K = s->num_classes;
    const int cls = s->tokens == STORE_TOKENS_CLS;
    memset(v, 0, sizeof *v);
    v->B = n, v->T = t;
    v->attention_mask = b->mask;
    v->labels = b->labels;
    v->labels_f32 = b->targets;
    v->hidden_tokens = cls ? TOKEN_SEL_CLS : TOKEN_SEL_ALL;
    for (int64_t i = 0; i < n; i++) {
        const int64_t row = b->rows[i];
        if (tr->all_logits) {
            memcpy(tr->logits + i * K, tr->all_logits + row * K, (size_t)K * sizeof(float));
        } else if (tr->needs.logits) {
            if (store_read_f32(tr->r, STORE_DS_LOGITS, 0, row, 1, tr->logits + i * K, err))
                return -1;
        }
        for (int k = 0; k < tr->needs.n_hidden; k++) {
            const int l = tr->needs.hidden_layers[k];
            if (tr->all_hidden[l]) {
                memcpy(tr->hidden[l] + i * H, tr->all_hidden[l] + row * H,
                       (size_t)H * sizeof(float));
            } else if (cls) {
                if (store_read_f32(tr->r, STORE_DS_HIDDEN, l, row, 1, tr->hidden[l] + i * H,
                                   err))
                    return -1;
            } else {
                if (store_read_f32(tr->r, STORE_DS_HIDDEN, l, row, 1, tr->row, err))
                    return -1;
                memcpy(tr->hidden[l] + i * t * H, tr->row, (size_t)(t * H) * sizeof(float));
            }
        }
        for (int k = 0; k < tr->needs.n_attention; k++) {
            const int l = tr->needs.attention_layers[k];
            if (store_read_f32(tr->r, STORE_DS_ATTENTION, l, row, 1, tr->row, err))
                return -1;
            float *dst = tr->probs[l - 1] + i * NH * t * t;
            for (int64_t h = 0; h < NH; h++)
                for (int64_t q = 0; q < t; q++)
                    memcpy(dst + (h * t + q) * t, tr->row + (h * T + q) * T,
                           (size_t)t * sizeof(float));
        }
    }
    v->logits = tr->needs.logits ? tr->logits : NULL;
    for (int k = 0; k < tr->needs.n_hidden; k++)
        v->hidden[tr->needs.hidden_layers[k]] = tr->hidden[tr->needs.hidden_layers[k]];
    for (int k = 0; k < tr->needs.n_attention; k++)
        v->probs[tr->needs.attention_layers[k] - 1] =
            tr->probs[tr->needs.attention_layers[k] - 1];
    return 0;
}

void teacher_reader_close(struct teacher_reader *tr)
{
    if (tr->r)
        store_close(tr->r);
    free(tr->logits), free(tr->row), free(tr->all_logits);
    for (int i = 0; i <= BERT_MAX_LAYERS; i++)
        free(tr->hidden[i]), free(tr->all_hidden[i]);
    for (int i = 0; i < BERT_MAX_LAYERS; i++)
        free(tr->probs[i]);
    memset(tr, 0, sizeof *tr);
}
