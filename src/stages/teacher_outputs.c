/* teacher_outputs.c: the store spec of an extract stage. The stage's own
 * keys (outputs, hidden_layers, attention_layers, tokens) say what the user
 * asked for; the loss terms of the distill stages that read the store say
 * what training needs (kd_needs_of). The store holds the union, so a job
 * whose extract stage names no layers still gets the layers its losses map,
 * and each addition is logged with the loss that asked for it. */
#include "kd/stages/teacher_outputs.h"
#include "kd/core/log.h"
#include "kd/core/text.h"
#include "kd/job/keys.h"
#include "kd/kd/loss_term.h"
#include "kd/stages/stage_models.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int has_output(const struct stage_cfg *st, int which)
{
    for (int i = 0; i < st->outputs.n; i++)
        if (st->outputs.v[i] == which)
            return 1;
    return 0;
}

int teacher_outputs_reads_store(const struct job *job, int extract, int stage)
{
    if (extract < 0 || stage <= extract || stage >= job->n_stages ||
        job->stages[extract].kind != STAGE_KIND_EXTRACT)
        return 0;
    /* a later extract stage rewrites teacher.h5: the stages after it read
     * that one */
    for (int j = extract + 1; j < stage; j++)
        if (job->stages[j].kind == STAGE_KIND_EXTRACT)
            return 0;
    const struct stage_cfg *st = &job->stages[stage];
    return st->kind == STAGE_KIND_DISTILL && st->mode == DISTILL_MODE_OFFLINE;
}

/* Inserts l into the ascending list v (n entries); 1 if it was not there. */
static int add_layer(int32_t *v, int32_t *n, int32_t l)
{
    int32_t i = 0;
    while (i < *n && v[i] < l)
        i++;
    if (i < *n && v[i] == l)
        return 0;
    memmove(v + i + 1, v + i, (size_t)(*n - i) * sizeof *v);
    v[i] = l;
    (*n)++;
    return 1;
}

/* "02, 04" */
static void layers_text(char *buf, size_t n, const int32_t *v, int k)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < k; i++)
        used += (size_t)snprintf(buf + used, used < n ? n - used : 0, "%s%02d", i ? ", " : "",
                                 (int)v[i]);
}

/* The user's choice of the extract stage, before any loss is considered. */
static int explicit_spec(const struct job *job, const struct stage_cfg *st,
                         const struct bert_config *cfg, struct store_spec *spec,
                         struct kd_err *err)
{
    const int64_t L = cfg->num_hidden_layers;
    if (has_output(st, EXTRACT_LOGITS))
        spec->datasets |= STORE_BIT(STORE_DS_LOGITS);
    if (has_output(st, EXTRACT_HIDDEN)) {
        spec->datasets |= STORE_BIT(STORE_DS_HIDDEN);
        spec->tokens = st->tokens == TOKEN_SEL_CLS ? STORE_TOKENS_CLS : STORE_TOKENS_ALL;
        if (st->hidden_layers.n == 0)
            for (int64_t l = 0; l <= L; l++)
                add_layer(spec->hidden_layers, &spec->n_hidden_layers, (int32_t)l);
        for (int i = 0; i < st->hidden_layers.n; i++) {
            if (st->hidden_layers.v[i] > L)
                return kd_errf(err, "%s:%d: stage \"%s\": hidden_layers has %lld but the "
                               "teacher has %lld layers (0 = embeddings .. %lld)", job->path,
                               st->line, st->name, (long long)st->hidden_layers.v[i],
                               (long long)L, (long long)L);
            add_layer(spec->hidden_layers, &spec->n_hidden_layers,
                      (int32_t)st->hidden_layers.v[i]);
        }
    }
    if (has_output(st, EXTRACT_ATTENTION)) {
        spec->datasets |= STORE_BIT(STORE_DS_ATTENTION);
        if (st->attention_layers.n == 0)
            for (int64_t l = 1; l <= L; l++)
                add_layer(spec->attention_layers, &spec->n_attention_layers, (int32_t)l);
        for (int i = 0; i < st->attention_layers.n; i++) {
            const int64_t l = st->attention_layers.v[i];
            if (l < 1 || l > L)
                return kd_errf(err, "%s:%d: stage \"%s\": attention_layers has %lld but the "
                               "teacher's layers are 1..%lld", job->path, st->line, st->name,
                               (long long)l, (long long)L);
            add_layer(spec->attention_layers, &spec->n_attention_layers, (int32_t)l);
        }
    }
    return 0;
}

/* Adds what one loss needs to spec and logs each addition. */
static void merge_needs(struct store_spec *spec, const struct kd_needs *nd,
                        const char *extract, const struct stage_cfg *ds, int li)
{
    char why[160], list[BERT_MAX_LAYERS * 4 + 8];
    snprintf(why, sizeof why, "stage \"%s\" losses.[%d] (%s)", ds->name, li,
             loss_kind_name(ds->losses[li].kind));
    if (nd->logits && !(spec->datasets & STORE_BIT(STORE_DS_LOGITS))) {
        spec->datasets |= STORE_BIT(STORE_DS_LOGITS);
        log_info0("stage \"%s\": also storing /logits: %s needs them", extract, why);
    }
    if (nd->n_hidden) {
        const int all = nd->hidden_tokens == TOKEN_SEL_ALL;
        if (!(spec->datasets & STORE_BIT(STORE_DS_HIDDEN))) {
            /* the user asked for no hidden states: store only what the
             * losses read, [CLS] rows unless a loss compares every token */
            spec->datasets |= STORE_BIT(STORE_DS_HIDDEN);
            spec->tokens = all ? STORE_TOKENS_ALL : STORE_TOKENS_CLS;
        } else if (all && spec->tokens == STORE_TOKENS_CLS) {
            spec->tokens = STORE_TOKENS_ALL;
            log_info0("stage \"%s\": storing the hidden states of all tokens instead of "
                      "[CLS] only: %s compares every token", extract, why);
        }
        int32_t added[BERT_MAX_LAYERS + 1];
        int n_added = 0;
        for (int k = 0; k < nd->n_hidden; k++)
            if (add_layer(spec->hidden_layers, &spec->n_hidden_layers, nd->hidden_layers[k]))
                added[n_added++] = nd->hidden_layers[k];
        if (n_added) {
            layers_text(list, sizeof list, added, n_added);
            log_info0("stage \"%s\": also storing /hidden/layer_{%s} (%s): %s maps them",
                      extract, list, spec->tokens == STORE_TOKENS_CLS ? "[CLS]" : "all tokens",
                      why);
        }
    }
    if (nd->n_attention) {
        spec->datasets |= STORE_BIT(STORE_DS_ATTENTION);
        int32_t added[BERT_MAX_LAYERS];
        int n_added = 0;
        for (int k = 0; k < nd->n_attention; k++)
            if (add_layer(spec->attention_layers, &spec->n_attention_layers,
                          nd->attention_layers[k]))
                added[n_added++] = nd->attention_layers[k];
        if (n_added) {
            layers_text(list, sizeof list, added, n_added);
            log_info0("stage \"%s\": also storing /attention/layer_{%s}: %s maps them",
                      extract, list, why);
        }
    }
}

/* The needs of every loss of the distill stages that read this store. */
static int merge_distill_needs(const struct job *job, int index, const struct bert_config *cfg,
                               struct store_spec *spec, struct kd_err *err)
{
    const char *ex = job->stages[index].name;
    struct bert_config scfg;
    int have_student = 0;
    for (int j = index + 1; j < job->n_stages; j++) {
        if (!teacher_outputs_reads_store(job, index, j))
            continue;
        const struct stage_cfg *ds = &job->stages[j];
        if (!have_student) {
            /* the student the distill stage builds (distill.c) */
            if (stage_student_config(job, cfg, &scfg, err))
                return kd_err_prefix(err, "storing what stage \"%s\" needs", ds->name);
            have_student = 1;
        }
        /* the whole list first, so an error names the loss by its index */
        struct kd_needs nd;
        if (kd_needs_of(&nd, ds->losses, ds->n_losses, scfg.num_hidden_layers,
                        cfg->num_hidden_layers, err))
            return kd_err_prefix(err, "storing what stage \"%s\" needs", ds->name);
        for (int li = 0; li < ds->n_losses; li++) {
            kd_needs_of(&nd, &ds->losses[li], 1, scfg.num_hidden_layers, cfg->num_hidden_layers,
                        err);
            merge_needs(spec, &nd, ex, ds, li);
        }
    }
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
    if (explicit_spec(job, st, cfg, spec, err) || merge_distill_needs(job, index, cfg, spec, err))
        return -1;
    if (spec->datasets & STORE_BIT(STORE_DS_ATTENTION)) {
        for (int64_t l = 0; l < L; l++)
            if (cfg->layer_heads[l] != cfg->num_attention_heads)
                return kd_errf(err, "stage \"%s\": attention maps of a pruned teacher (layer "
                               "%lld has %lld of %lld heads) cannot be stored", st->name,
                               (long long)l + 1, (long long)cfg->layer_heads[l],
                               (long long)cfg->num_attention_heads);
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

/* The loss keys that decide what a loss reads from the teacher; weights,
 * temperatures, forms and metrics change training, not the store. */
static const char *const need_keys[] = {"kind", "map", "student_layers", "teacher_layers",
                                        "tokens"};

char *teacher_outputs_config(const struct job *job, int index)
{
    struct kd_text t = {0};
    kd_text_add(&t, "%s", "");
    char path[96];
    for (int j = index + 1; j < job->n_stages; j++) {
        if (!teacher_outputs_reads_store(job, index, j))
            continue;
        const struct stage_cfg *ds = &job->stages[j];
        for (int li = 0; li < ds->n_losses; li++) {
            const struct loss_cfg *lc = &ds->losses[li];
            for (size_t q = 0; q < sizeof need_keys / sizeof *need_keys; q++) {
                snprintf(path, sizeof path, "stages.[].losses.[].%s", need_keys[q]);
                const struct key_def *k = key_lookup(path);
                KD_ASSERT(k, "no key %s", path);
                if (k->kinds && !(k->kinds & (1u << lc->kind)))
                    continue;
                kd_text_add(&t, "reader.%s.losses.[%d].%s = ", ds->name, li, need_keys[q]);
                key_value_text(&t, k, lc);
                kd_text_add(&t, "\n");
            }
        }
    }
    return t.buf;
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
