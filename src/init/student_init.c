/* student_init.c: the layer map, random and teacher-layer initialisation,
 * and the least-squares fit of a hidden-state projection (see
 * student_init.h). PCA initialisation lives in student_pca.c. */
#include "kd/init/student_init.h"
#include "kd/kernels/linear.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int student_layer_map(int64_t *map, const int64_t *layers, int n, int64_t L_s, int64_t L_t,
                      struct kd_err *err)
{
    if (n == 0) {
        for (int64_t j = 0; j < L_s; j++)
            map[j] = (j + 1) * L_t / L_s;
        if (L_s > L_t)
            return kd_errf(err, "student has %lld layers, teacher %lld: the uniform map "
                           "needs a student no deeper than its teacher; list the teacher "
                           "layers explicitly", (long long)L_s, (long long)L_t);
        return 0;
    }
    if (n != L_s)
        return kd_errf(err, "layer map: expected %lld teacher layers (one per student "
                       "layer), got %d", (long long)L_s, n);
    for (int j = 0; j < n; j++) {
        if (layers[j] < 1 || layers[j] > L_t)
            return kd_errf(err, "layer map: element %d: expected a teacher layer in [1, %lld],"
                           " got %lld", j, (long long)L_t, (long long)layers[j]);
        map[j] = layers[j];
    }
    return 0;
}

void student_init_random(struct bert_model *s, uint64_t seed)
{
    bert_init_random(s, seed, STUDENT_INIT_STD);
}

static void copy_f(float *dst, const float *src, int64_t n)
{
    memcpy(dst, src, (size_t)n * sizeof *dst);
}

/* Shapes that must agree for exact copies; the message names both. */
static int check_copy(const struct bert_model *s, const struct bert_model *t,
                      const int64_t *map, struct kd_err *err)
{
    const struct bert_config *cs = &s->cfg, *ct = &t->cfg;
    KD_ASSERT(s->opts.layer_begin == 0 && t->opts.layer_begin == 0 &&
              (s->opts.layer_end == 0 || s->opts.layer_end == cs->num_hidden_layers) &&
              (t->opts.layer_end == 0 || t->opts.layer_end == ct->num_hidden_layers),
              "student initialisation needs whole models, not pipeline slices");
    if (cs->vocab_size != ct->vocab_size)
        return kd_errf(err, "teacher_layers: vocabulary sizes differ: teacher %lld, student "
                       "%lld", (long long)ct->vocab_size, (long long)cs->vocab_size);
    if (cs->hidden_size != ct->hidden_size)
        return kd_errf(err, "teacher_layers: expected student hidden_size = teacher's (%lld),"
                       " got %lld; HINT: use \"pca\" for a narrower student",
                       (long long)ct->hidden_size, (long long)cs->hidden_size);
    if (s->HS != t->HS)
        return kd_errf(err, "teacher_layers: expected head size %lld (teacher hidden %lld / "
                       "%lld heads), got %lld (%lld heads)", (long long)t->HS,
                       (long long)ct->hidden_size, (long long)ct->num_attention_heads,
                       (long long)s->HS, (long long)cs->num_attention_heads);
    if (cs->max_position_embeddings > ct->max_position_embeddings ||
        cs->type_vocab_size > ct->type_vocab_size)
        return kd_errf(err, "teacher_layers: student has %lld positions and %lld token types,"
                       " teacher only %lld and %lld", (long long)cs->max_position_embeddings,
                       (long long)cs->type_vocab_size, (long long)ct->max_position_embeddings,
                       (long long)ct->type_vocab_size);
    for (int64_t j = 0; j < cs->num_hidden_layers; j++) {
        int64_t l = map[j] - 1;
        if (cs->layer_heads[j] != ct->layer_heads[l] ||
            cs->layer_intermediate[j] != ct->layer_intermediate[l])
            return kd_errf(err, "teacher_layers: student layer %lld has %lld heads and FFN "
                           "width %lld, its teacher layer %lld has %lld and %lld",
                           (long long)j, (long long)cs->layer_heads[j],
                           (long long)cs->layer_intermediate[j], (long long)map[j],
                           (long long)ct->layer_heads[l], (long long)ct->layer_intermediate[l]);
    }
    return 0;
}

int student_init_teacher_layers(struct bert_model *s, const struct bert_model *t,
                                const int64_t *layers, int n, uint64_t seed, struct kd_err *err)
{
    const struct bert_config *cs = &s->cfg, *ct = &t->cfg;
    int64_t map[BERT_MAX_LAYERS];
    if (student_layer_map(map, layers, n, cs->num_hidden_layers, ct->num_hidden_layers, err) ||
        check_copy(s, t, map, err))
        return -1;
    student_init_random(s, seed);
    const int64_t C = cs->hidden_size, HS = s->HS;
    const struct bert_params *ps = &s->p, *pt = &t->p;
    copy_f(ps->word_emb, pt->word_emb, cs->vocab_size * C);
    copy_f(ps->pos_emb, pt->pos_emb, cs->max_position_embeddings * C);
    copy_f(ps->type_emb, pt->type_emb, cs->type_vocab_size * C);
    copy_f(ps->emb_ln_w, pt->emb_ln_w, C);
    copy_f(ps->emb_ln_b, pt->emb_ln_b, C);
    for (int64_t j = 0; j < cs->num_hidden_layers; j++) {
        const struct bert_layer_params *a = &pt->layer[map[j] - 1];
        struct bert_layer_params *b = &ps->layer[j];
        int64_t CH = cs->layer_heads[j] * HS, F = cs->layer_intermediate[j];
        copy_f(b->qkv_w, a->qkv_w, 3 * CH * C);
        copy_f(b->qkv_b, a->qkv_b, 3 * CH);
        copy_f(b->attn_out_w, a->attn_out_w, C * CH);
        copy_f(b->attn_out_b, a->attn_out_b, C);
        copy_f(b->attn_ln_w, a->attn_ln_w, C);
        copy_f(b->attn_ln_b, a->attn_ln_b, C);
        copy_f(b->ffn_in_w, a->ffn_in_w, F * C);
        copy_f(b->ffn_in_b, a->ffn_in_b, F);
        copy_f(b->ffn_out_w, a->ffn_out_w, C * F);
        copy_f(b->ffn_out_b, a->ffn_out_b, C);
        copy_f(b->ffn_ln_w, a->ffn_ln_w, C);
        copy_f(b->ffn_ln_b, a->ffn_ln_b, C);
    }
    /* heads present on both sides with equal shapes; others stay random */
    if (ps->pool_w && pt->pool_w) {
        copy_f(ps->pool_w, pt->pool_w, C * C);
        copy_f(ps->pool_b, pt->pool_b, C);
    }
    if (ps->cls_w && pt->cls_w && cs->num_labels == ct->num_labels) {
        copy_f(ps->cls_w, pt->cls_w, cs->num_labels * C);
        copy_f(ps->cls_b, pt->cls_b, cs->num_labels);
    }
    if (ps->mlm_w && pt->mlm_w) {
        copy_f(ps->mlm_w, pt->mlm_w, C * C);
        copy_f(ps->mlm_b, pt->mlm_b, C);
        copy_f(ps->mlm_ln_w, pt->mlm_ln_w, C);
        copy_f(ps->mlm_ln_b, pt->mlm_ln_b, C);
        copy_f(ps->mlm_bias, pt->mlm_bias, cs->vocab_size);
    }
    return 0;
}

int64_t student_token_rows(float *rows, const struct bert_model *m, int64_t l,
                           const int32_t *mask, int64_t B, int64_t T)
{
    const int64_t C = m->cfg.hidden_size;
    const float *h = bert_hidden(m, l);
    int64_t n = 0;
    for (int64_t i = 0; i < B * T; i++)
        if (!mask || mask[i])
            memcpy(rows + n++ * C, h + i * C, (size_t)C * sizeof *rows);
    return n;
}

int student_fit_projection(float *weight, float *bias, double *r2,
                           const struct scalapack_grid *g, const float *student_rows,
                           const float *teacher_rows, int64_t n_local, int64_t C_s, int64_t C_t,
                           double ridge, struct kd_err *err)
{
    struct scalapack_lstsq ls;
    struct scalapack_lstsq_opts o = {.ridge = ridge, .intercept = bias != NULL};
    if (scalapack_lstsq(&ls, g, student_rows, teacher_rows, n_local, C_s, C_t, &o, err))
        return kd_err_prefix(err, "fit_projection (student %lld -> teacher %lld)",
                             (long long)C_s, (long long)C_t);
    /* ls.w is (C_s, C_t) with prediction h_s W; nn.Linear holds W^T */
    for (int64_t i = 0; i < C_t; i++)
        for (int64_t j = 0; j < C_s; j++)
            weight[i * C_s + j] = (float)ls.w[j * C_t + i];
    if (bias)
        for (int64_t i = 0; i < C_t; i++)
            bias[i] = (float)ls.bias[i];
    if (r2)
        *r2 = ls.tss > 0 ? 1.0 - ls.rss / ls.tss : 0.0;
    scalapack_lstsq_free(&ls);
    return 0;
}

double student_projection_sse(const float *weight, const float *bias, const float *student_rows,
                              const float *teacher_rows, int64_t n, int64_t C_s, int64_t C_t)
{
    /* in blocks of rows, so the projected rows need little memory */
    enum { ROWS = 256 };
    float *p = kd_malloc((size_t)(ROWS * C_t) * sizeof *p);
    double sse = 0.0;
    for (int64_t r0 = 0; r0 < n; r0 += ROWS) {
        const int64_t m = n - r0 < ROWS ? n - r0 : ROWS;
        linear_forward(p, student_rows + r0 * C_s, weight, bias, m, C_s, C_t);
        const float *h = teacher_rows + r0 * C_t;
        for (int64_t i = 0; i < m * C_t; i++) {
            const double e = (double)p[i] - h[i];
            sse += e * e;
        }
    }
    free(p);
    return sse;
}
