/* loss_set.c: a distill stage's loss terms together: sizing and allocating
 * their buffers once, the per-step compute, and the learned-parameter block
 * (kd layer). Contract in include/kd/kd/loss_set.h. */
#include "kd/kd/loss_set.h"

#include <stdlib.h>
#include <string.h>

/* ---- tap buffers ------------------------------------------------------ */

static struct kd_loss_set *set_of(struct kd_term_ctx *c) { return c->set; }

static float *first_use(float *buf, uint8_t *used, size_t n)
{
    if (!*used) {
        memset(buf, 0, n * sizeof(float));
        *used = 1;
    }
    return buf;
}

float *kd_tap_dlogits(struct kd_term_ctx *c)
{
    struct kd_loss_set *s = set_of(c);
    KD_ASSERT(s->dlogits, "no dlogits buffer: the term does not declare KD_TAP_LOGITS");
    return first_use(s->dlogits, &s->used_logits, (size_t)(s->B * s->dims.student.num_labels));
}

float *kd_tap_dhidden(struct kd_term_ctx *c, int32_t layer)
{
    struct kd_loss_set *s = set_of(c);
    KD_ASSERT(layer >= 0 && layer <= s->dims.student.num_hidden_layers && s->dhidden[layer],
              "no dhidden buffer for student layer %d", (int)layer);
    return first_use(s->dhidden[layer], &s->used_hidden[layer],
                     (size_t)(s->B * s->T * s->dims.student.hidden_size));
}

float *kd_tap_dscores(struct kd_term_ctx *c, int32_t layer)
{
    struct kd_loss_set *s = set_of(c);
    KD_ASSERT(layer >= 1 && layer <= s->dims.student.num_hidden_layers && s->dscores[layer],
              "no dscores buffer for student layer %d", (int)layer);
    const int64_t NH = s->dims.student.layer_heads[layer - 1];
    return first_use(s->dscores[layer], &s->used_scores[layer],
                     (size_t)(s->B * NH * s->T * s->T));
}

/* ---- init ------------------------------------------------------------------ */

static void add_mapped(struct kd_loss_set *s, int32_t l)
{
    int i = 0;
    while (i < s->n_mapped && s->mapped[i] < l)
        i++;
    if (i < s->n_mapped && s->mapped[i] == l)
        return;
    memmove(s->mapped + i + 1, s->mapped + i, (size_t)(s->n_mapped - i) * sizeof(int32_t));
    s->mapped[i] = l;
    s->n_mapped++;
}

/* Plans (and with base != NULL, assigns) the tap buffers and scratch; returns
 * the floats needed. One function for both so the sizes cannot drift. */
static size_t layout_taps(struct kd_loss_set *s, float *base)
{
    const struct bert_config *sc = &s->dims.student;
    const size_t B = (size_t)s->dims.B, T = (size_t)s->dims.T;
    uint8_t hid[BERT_MAX_LAYERS + 1] = {0}, sco[BERT_MAX_LAYERS + 1] = {0};
    int logits = 0;
    for (int i = 0; i < s->n; i++) {
        const struct kd_term *t = &s->term[i];
        logits |= (t->ops->taps & KD_TAP_LOGITS) != 0;
        for (int k = 0; k < t->map.n; k++) {
            if (t->ops->taps & KD_TAP_HIDDEN)
                hid[t->map.pair[k].student] = 1;
            if (t->ops->taps & KD_TAP_SCORES)
                sco[t->map.pair[k].student] = 1;
        }
    }
    size_t off = 0;
#define TAKE(ptr, n)                      \
    do {                                  \
        if (base)                         \
            (ptr) = base + off;           \
        off += (n);                       \
    } while (0)
    if (logits)
        TAKE(s->dlogits, B * (size_t)sc->num_labels);
    for (int64_t l = 0; l <= sc->num_hidden_layers; l++)
        if (hid[l])
            TAKE(s->dhidden[l], B * T * (size_t)sc->hidden_size);
    for (int64_t l = 1; l <= sc->num_hidden_layers; l++)
        if (sco[l])
            TAKE(s->dscores[l], B * (size_t)sc->layer_heads[l - 1] * T * T);
    for (int i = 0; i < s->n; i++) {
        struct kd_term *t = &s->term[i];
        const size_t n = t->ops->scratch_floats ? t->ops->scratch_floats(t, &s->dims) : 0;
        if (n)
            TAKE(t->scratch, n);
    }
#undef TAKE
    return off;
}

/* Declares every learned tensor, builds the segment table and allocates
 * parameters and gradients; -1 if a term declares too many. */
static int layout_params(struct kd_loss_set *s, struct kd_err *err)
{
    struct kd_param_decl decl[KD_TERM_MAX_TENSORS]; /* 20 KiB, once per stage */
    size_t nseg = 0;
    for (int i = 0; i < s->n; i++) {
        struct kd_term *t = &s->term[i];
        t->n_tensors = t->ops->params ? t->ops->params(t, &s->dims, NULL) : 0;
        KD_ASSERT(t->n_tensors >= 0 && t->n_tensors <= KD_TERM_MAX_TENSORS,
                  "term %s declares %d tensors", t->ops->name, t->n_tensors);
        t->seg0 = nseg;
        nseg += (size_t)t->n_tensors;
    }
    s->nseg = nseg;
    if (nseg == 0)
        return 0;
    s->segs = kd_calloc(nseg, sizeof *s->segs);
    s->seg_names = kd_calloc(nseg, sizeof *s->seg_names);
    size_t off = 0;
    for (int i = 0; i < s->n; i++) {
        struct kd_term *t = &s->term[i];
        if (!t->n_tensors)
            continue;
        t->ops->params(t, &s->dims, decl);
        for (int k = 0; k < t->n_tensors; k++) {
            struct optim_segment *g = &s->segs[t->seg0 + (size_t)k];
            char *nm = s->seg_names[t->seg0 + (size_t)k];
            memcpy(nm, decl[k].name, sizeof decl[k].name);
            nm[sizeof decl[k].name - 1] = '\0';
            g->name = nm;
            g->offset = off;
            g->count = decl[k].count;
            g->decay = decl[k].decay;
            off += decl[k].count;
        }
    }
    s->n_params = off;
    s->params = kd_calloc(2 * off, sizeof(float));
    s->grads = s->params + off;
    for (int i = 0; i < s->n; i++) {
        s->term[i].segs = s->segs;
        s->term[i].params = s->params;
        s->term[i].grads = s->grads;
    }
    return optim_segments_check(s->segs, s->nseg, s->n_params, err);
}

int kd_loss_set_init(struct kd_loss_set *s, const struct loss_cfg *losses, int n,
                     const struct kd_term_opts *opts, const struct bert_config *student,
                     const struct kd_teacher_dims *teacher, int64_t B, int64_t T,
                     uint64_t seed, struct kd_err *err)
{
    memset(s, 0, sizeof *s);
    if (n < 1 || n > KD_MAX_TERMS)
        return kd_errf(err, "distill losses: expected 1 to %d loss terms, got %d",
                       KD_MAX_TERMS, n);
    if (B < 1 || T < 1)
        return kd_errf(err, "distill losses: expected a batch of at least 1 x 1, got %lld x "
                       "%lld", (long long)B, (long long)T);
    if (teacher->layers < 1 || teacher->hidden < 1 || teacher->heads < 0)
        return kd_errf(err, "distill losses: teacher dimensions %lld layers, hidden %lld, "
                       "%lld heads are not a model", (long long)teacher->layers,
                       (long long)teacher->hidden, (long long)teacher->heads);
    s->dims.student = *student;
    s->dims.teacher = *teacher;
    s->dims.B = B;
    s->dims.T = T;
    s->n = n;
    s->term = kd_calloc((size_t)n, sizeof *s->term);
    for (int i = 0; i < n; i++) {
        struct kd_term *t = &s->term[i];
        if (kd_term_setup(t, &losses[i], i, opts ? &opts[i] : NULL,
                          student->num_hidden_layers, teacher->layers, err) ||
            t->ops->check(t, &s->dims, err)) {
            kd_loss_set_free(s);
            return -1;
        }
        if (t->ops->internal)
            for (int k = 0; k < t->map.n; k++)
                add_mapped(s, t->map.pair[k].student);
    }
    if (layout_params(s, err)) {
        kd_loss_set_free(s);
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (s->term[i].n_tensors && s->term[i].ops->init_params)
            s->term[i].ops->init_params(&s->term[i], seed);
    s->tap_floats = layout_taps(s, NULL);
    s->tap_block = kd_calloc(s->tap_floats ? s->tap_floats : 1, sizeof(float));
    layout_taps(s, s->tap_block);
    s->n_real = kd_calloc((size_t)B, sizeof *s->n_real);
    return 0;
}

void kd_loss_set_free(struct kd_loss_set *s)
{
    free(s->term);
    free(s->tap_block);
    free(s->n_real);
    free(s->params);
    free(s->segs);
    free(s->seg_names);
    memset(s, 0, sizeof *s);
}

size_t kd_loss_set_bytes(const struct kd_loss_set *s)
{
    return s->tap_floats * sizeof(float) + 2 * s->n_params * sizeof(float) +
           (size_t)s->dims.B * sizeof(int64_t);
}

/* ---- compute ------------------------------------------------------------- */

double kd_loss_set_compute(struct kd_loss_set *s, const struct kd_student_view *sv,
                           const struct kd_teacher_view *tv, const struct kd_step *st,
                           struct kd_values *vals, struct bert_grad_in *g)
{
    const int64_t B = sv->B, T = sv->T;
    KD_ASSERT(B == tv->B && T == tv->T, "student batch %lld x %lld, teacher batch %lld x %lld",
              (long long)B, (long long)T, (long long)tv->B, (long long)tv->T);
    KD_ASSERT(B >= 1 && B <= s->dims.B && T >= 1 && T <= s->dims.T,
              "batch %lld x %lld outside the set's maximum %lld x %lld", (long long)B,
              (long long)T, (long long)s->dims.B, (long long)s->dims.T);
    s->B = B;
    s->T = T;
    for (int64_t b = 0; b < B; b++) {
        int64_t r = T;
        if (tv->attention_mask) {
            r = 0;
            for (int64_t t = 0; t < T; t++)
                r += tv->attention_mask[b * T + t] != 0;
        }
        s->n_real[b] = r;
    }
    double ex, lab;
    kd_batch_counts(tv, s->dims.student.num_labels == 1, &ex, &lab);
    if (st->norm_examples > 0)
        ex = st->norm_examples;
    if (st->norm_labelled > 0)
        lab = st->norm_labelled;
    /* nothing to average (every example padding or unlabelled): the sums
     * are 0 and so is the loss */
    if (ex <= 0)
        ex = 1;
    if (lab <= 0)
        lab = 1;

    s->used_logits = 0;
    memset(s->used_hidden, 0, sizeof s->used_hidden);
    memset(s->used_scores, 0, sizeof s->used_scores);
    struct kd_active all;
    const struct kd_active *act = st->active;
    if (!act) {
        kd_active_all(&all);
        act = &all;
    }
    struct kd_term_ctx c = {.s = sv, .t = tv, .d = &s->dims, .B = B, .T = T,
                            .n_real = s->n_real, .layer_on = act->layer, .step = st->step,
                            .total_steps = st->total_steps, .norm_examples = ex,
                            .norm_labelled = lab, .set = s};
    double total = 0.0;
    if (vals)
        memset(vals, 0, sizeof *vals);
    for (int i = 0; i < s->n; i++) {
        struct kd_term *t = &s->term[i];
        if (!(t->ops->internal ? act->internal : act->output))
            continue;
        const double w = st->weights ? st->weights[i] : t->cfg.weight;
        c.weight = (float)w;
        const double v = t->ops->compute(t, &c);
        total += w * v;
        if (vals) {
            vals->term[i] = v;
            vals->on[i] = 1;
        }
    }
    if (vals)
        vals->total = total;
    if (g) {
        const int64_t L = s->dims.student.num_hidden_layers;
        g->dlogits = s->used_logits ? s->dlogits : NULL;
        for (int64_t l = 0; l <= L; l++)
            g->dhidden[l] = s->used_hidden[l] ? s->dhidden[l] : NULL;
        for (int64_t l = 1; l <= L; l++)
            g->dscores[l - 1] = s->used_scores[l] ? s->dscores[l] : NULL;
    }
    return total;
}

/* ---- parameters -------------------------------------------------------------- */

void kd_loss_set_params(const struct kd_loss_set *s, float **params, float **grads,
                        size_t *count, const struct optim_segment **segs, size_t *nseg)
{
    if (params)
        *params = s->params;
    if (grads)
        *grads = s->grads;
    if (count)
        *count = s->n_params;
    if (segs)
        *segs = s->segs;
    if (nseg)
        *nseg = s->nseg;
}

void kd_loss_set_zero_param_grads(struct kd_loss_set *s)
{
    if (s->n_params)
        memset(s->grads, 0, s->n_params * sizeof(float));
}

int kd_loss_set_projection(const struct kd_loss_set *s, int term, int32_t student_layer,
                           struct kd_projection *out, struct kd_err *err)
{
    if (term < 0 || term >= s->n)
        return kd_errf(err, "projection: expected a loss index in [0, %d), got %d", s->n,
                       term);
    const struct kd_term *t = &s->term[term];
    char where[96];
    kd_loss_where(where, sizeof where, t->index, &t->cfg);
    if (t->cfg.kind != LOSS_KIND_HIDDEN || t->n_tensors == 0)
        return kd_errf(err, "%s: has no projection (only hidden losses between different "
                       "widths have one; student %lld, teacher %lld)", where,
                       (long long)s->dims.student.hidden_size, (long long)s->dims.teacher.hidden);
    for (int k = 0; k < t->map.n; k++)
        if (t->map.pair[k].student == student_layer) {
            out->weight = kd_term_param(t, 2 * k);
            out->bias = kd_term_param(t, 2 * k + 1);
            out->in = s->dims.student.hidden_size;
            out->out = s->dims.teacher.hidden;
            out->student_layer = student_layer;
            out->teacher_layer = t->map.pair[k].teacher;
            return 0;
        }
    return kd_errf(err, "%s: student layer %d is not mapped", where, (int)student_layer);
}
