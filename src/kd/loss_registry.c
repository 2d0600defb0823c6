/* loss_registry.c: the table of loss terms, setting one term up from its
 * job entry, and the union of what a stage's terms need from the teacher
 * (kd layer).
 *
 * A new term is one new file defining `const struct kd_term_ops
 * kd_term_<name>` and its name added to KD_TERMS below (plus its kind in
 * job.h's enum loss_kind and the key table, which are the job layer's). */
#include "kd/kd/loss_term.h"

#include <string.h>

#define KD_TERMS(X) X(hard) X(soft) X(hidden) X(attention)

#define KD_TERM_EXTERN(name) extern const struct kd_term_ops kd_term_##name;
#define KD_TERM_ENTRY(name) &kd_term_##name,
KD_TERMS(KD_TERM_EXTERN)
static const struct kd_term_ops *const registry[] = {KD_TERMS(KD_TERM_ENTRY)};

const struct kd_term_ops *kd_term_ops_of(int kind)
{
    for (size_t i = 0; i < sizeof registry / sizeof registry[0]; i++)
        if (registry[i]->kind == kind)
            return registry[i];
    return NULL;
}

_Static_assert((int)KD_SOFT_KL == (int)SOFT_FORM_KL && (int)KD_SOFT_CE == (int)SOFT_FORM_CE,
               "the job's soft forms are the kd layer's");
_Static_assert((int)KD_ATTN_ROWS_REAL == (int)ATTENTION_ROWS_REAL &&
                   (int)KD_ATTN_ROWS_ALL == (int)ATTENTION_ROWS_ALL,
               "the job's attention rows are the kd layer's");

void kd_term_opts_of(struct kd_term_opts *o, const struct loss_cfg *cfg)
{
    o->soft_form = cfg->form;
    o->attention_rows = cfg->rows;
}

int kd_term_setup(struct kd_term *t, const struct loss_cfg *cfg, int index,
                  const struct kd_term_opts *opts, int64_t student_layers,
                  int64_t teacher_layers, struct kd_err *err)
{
    memset(t, 0, sizeof *t);
    t->ops = kd_term_ops_of(cfg->kind);
    if (!t->ops)
        return kd_errf(err, "losses.[%d]: unknown loss kind %d", index, cfg->kind);
    t->index = index;
    t->cfg = *cfg;
    if (opts)
        t->opts = *opts;
    else
        kd_term_opts_of(&t->opts, cfg);
    if (t->ops->uses_map &&
        kd_layer_map_resolve(&t->map, cfg, index, student_layers, teacher_layers,
                             t->ops->map_embeddings, err))
        return -1;
    /* the lists belong to the job; the resolved map is all a term needs */
    memset(&t->cfg.student_layers, 0, sizeof t->cfg.student_layers);
    memset(&t->cfg.teacher_layers, 0, sizeof t->cfg.teacher_layers);
    return 0;
}

/* Appends v to a small ascending set (list, *n). */
static void add_sorted(int32_t *list, int *n, int32_t v)
{
    int i = 0;
    while (i < *n && list[i] < v)
        i++;
    if (i < *n && list[i] == v)
        return;
    memmove(list + i + 1, list + i, (size_t)(*n - i) * sizeof *list);
    list[i] = v;
    (*n)++;
}

/* Each term lists its own needs (layers in any order, repeats allowed);
 * the union sorts and deduplicates them. */
int kd_needs_of(struct kd_needs *out, const struct loss_cfg *losses, int n,
                int64_t student_layers, int64_t teacher_layers, struct kd_err *err)
{
    memset(out, 0, sizeof *out);
    out->hidden_tokens = TOKEN_SEL_CLS;
    struct kd_needs one;
    struct kd_term t;
    int any_all = 0;
    for (int i = 0; i < n; i++) {
        if (kd_term_setup(&t, &losses[i], i, NULL, student_layers, teacher_layers, err))
            return -1;
        memset(&one, 0, sizeof one);
        one.hidden_tokens = TOKEN_SEL_CLS;
        t.ops->needs(&t, &one);
        out->logits |= one.logits;
        out->labels |= one.labels;
        if (one.n_hidden && one.hidden_tokens == TOKEN_SEL_ALL)
            any_all = 1;
        for (int k = 0; k < one.n_hidden; k++)
            add_sorted(out->hidden_layers, &out->n_hidden, one.hidden_layers[k]);
        for (int k = 0; k < one.n_attention; k++)
            add_sorted(out->attention_layers, &out->n_attention, one.attention_layers[k]);
    }
    /* the store keeps one token selection for all its hidden layers */
    out->hidden_tokens = any_all ? TOKEN_SEL_ALL : TOKEN_SEL_CLS;
    return 0;
}
