/* teacher_outputs.c: the store spec of an extract stage. */
#include "kd/stages/teacher_outputs.h"

#include <string.h>

static int has_output(const struct stage_cfg *st, int which)
{
    for (int i = 0; i < st->outputs.n; i++)
        if (st->outputs.v[i] == which)
            return 1;
    return 0;
}

int teacher_outputs_spec(const struct job *job, int index, const struct bert_config *cfg,
                         const struct dataset *d, struct store_spec *spec, struct kd_err *err)
{
    const struct stage_cfg *st = &job->stages[index];
    const int64_t L = cfg->num_hidden_layers;
    store_spec_init(spec);
    spec->n_examples = d->n;
    spec->seq_len = (int32_t)d->max_seq_len;
    spec->hidden_size = (int32_t)cfg->hidden_size;
    spec->model_heads = (int32_t)cfg->num_attention_heads;
    spec->num_classes = (int32_t)cfg->num_labels;
    spec->labels_float = cfg->num_labels == 1;
    spec->tokens = st->tokens == TOKEN_SEL_CLS ? STORE_TOKENS_CLS : STORE_TOKENS_ALL;
    spec->lengths = d->lengths;
    spec->deflate = st->compress ? 1 : 0;
    spec->datasets = STORE_BIT(STORE_DS_INPUT_IDS) | STORE_BIT(STORE_DS_TOKEN_TYPE_IDS) |
                     STORE_BIT(STORE_DS_ATTENTION_MASK) | STORE_BIT(STORE_DS_LABELS);
    if (has_output(st, EXTRACT_LOGITS))
        spec->datasets |= STORE_BIT(STORE_DS_LOGITS);
    if (has_output(st, EXTRACT_HIDDEN)) {
        spec->datasets |= STORE_BIT(STORE_DS_HIDDEN);
        if (st->hidden_layers.n == 0)
            for (int64_t l = 0; l <= L; l++)
                spec->hidden_layers[spec->n_hidden_layers++] = (int32_t)l;
        for (int i = 0; i < st->hidden_layers.n; i++) {
            if (st->hidden_layers.v[i] > L) {
                kd_errf(err, "%s:%d: stage \"%s\": hidden_layers has %lld but the teacher "
                             "has %lld layers (0 = embeddings .. %lld)", job->path, st->line,
                        st->name, (long long)st->hidden_layers.v[i], (long long)L,
                        (long long)L);
                return -1;
            }
            spec->hidden_layers[spec->n_hidden_layers++] = (int32_t)st->hidden_layers.v[i];
        }
    }
    if (has_output(st, EXTRACT_ATTENTION)) {
        spec->datasets |= STORE_BIT(STORE_DS_ATTENTION);
        if (st->attention_layers.n == 0)
            for (int64_t l = 1; l <= L; l++)
                spec->attention_layers[spec->n_attention_layers++] = (int32_t)l;
        for (int i = 0; i < st->attention_layers.n; i++) {
            const int64_t l = st->attention_layers.v[i];
            if (l < 1 || l > L) {
                kd_errf(err, "%s:%d: stage \"%s\": attention_layers has %lld but the teacher's "
                             "layers are 1..%lld", job->path, st->line, st->name,
                        (long long)l, (long long)L);
                return -1;
            }
            spec->attention_layers[spec->n_attention_layers++] = (int32_t)l;
        }
        for (int64_t l = 0; l < L; l++)
            if (cfg->layer_heads[l] != cfg->num_attention_heads) {
                kd_errf(err, "stage \"%s\": attention maps of a pruned teacher (layer %lld "
                             "has %lld of %lld heads) cannot be stored", st->name,
                        (long long)l + 1, (long long)cfg->layer_heads[l],
                        (long long)cfg->num_attention_heads);
                return -1;
            }
        spec->n_heads = (int32_t)cfg->num_attention_heads;
        for (int h = 0; h < spec->n_heads; h++)
            spec->heads[h] = h;
    }
    const enum h5_prec p = st->precision == PRECISION_FP16   ? H5_PREC_F16
                           : st->precision == PRECISION_BF16 ? H5_PREC_BF16
                                                             : H5_PREC_F32;
    spec->precision[STORE_DS_LOGITS] = spec->precision[STORE_DS_HIDDEN] =
        spec->precision[STORE_DS_ATTENTION] = p;
    return store_spec_check(spec, err);
}

void teacher_pad_hidden(float *dst, const float *src, int64_t n, int64_t t, int64_t T,
                        int64_t H)
{
    memset(dst, 0, (size_t)(n * T * H) * sizeof *dst);
    for (int64_t i = 0; i < n; i++)
        memcpy(dst + i * T * H, src + i * t * H, (size_t)(t * H) * sizeof *dst);
}

void teacher_pad_probs(float *dst, const float *src, int64_t n, int64_t NH, int64_t t,
                       int64_t T)
{
    memset(dst, 0, (size_t)(n * NH * T * T) * sizeof *dst);
    for (int64_t m = 0; m < n * NH; m++)
        for (int64_t q = 0; q < t; q++)
            memcpy(dst + (m * T + q) * T, src + (m * t + q) * t, (size_t)t * sizeof *dst);
}
