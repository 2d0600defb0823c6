/* student_pca.c: a narrower student initialised in the principal subspace
 * of its teacher's hidden states (the PCA basis over all student ranks by
 * parallel/scalapack.h, then a serial projection of every tensor on each
 * rank: all ranks hold the same basis and teacher, so they build the same
 * student). Exactly what is projected, and what stays random, is listed in
 * student_init.h. */
#include "kd/init/lowrank.h"
#include "kd/init/student_init.h"
#include "kd/kernels/gemm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The basis in the forms the projections use. */
struct pbasis {
    int64_t C, k;  /* teacher width, student width */
    float *uf;     /* (k,C) = U^T (rows = principal axes) */
    double *c;     /* (C) mean outside the subspace, (I - U U^T) m */
    double energy; /* E |U^T h|^2 = sum of the k variances + |U^T m|^2 */
};

/* out (rows, k) = w (rows, C; row stride ldw) U */
static void times_u(float *out, const float *w, int64_t ldw, int64_t rows,
                    const struct pbasis *b)
{
    if (rows > 0)
        gemm(out, b->k, w, ldw, b->uf, b->C, GEMM_TRANS_N, GEMM_TRANS_T, rows, b->k, b->C,
             1.0f, 0.0f);
}

/* out (k, cols) = U^T w, w (C, cols; row stride ldw) */
static void ut_times(float *out, const float *w, int64_t ldw, int64_t cols,
                     const struct pbasis *b)
{
    if (cols > 0)
        gemm(out, cols, b->uf, b->C, w, ldw, GEMM_TRANS_N, GEMM_TRANS_N, b->k, cols, b->C,
             1.0f, 0.0f);
}

/* out (k) = U^T v */
static void ut_vec(float *out, const float *v, const struct pbasis *b)
{
    for (int64_t i = 0; i < b->k; i++) {
        double s = 0;
        for (int64_t j = 0; j < b->C; j++)
            s += (double)b->uf[i * b->C + j] * v[j];
        out[i] = (float)s;
    }
}

/* w (C) row dotted with c */
static double dot_c(const float *w, const struct pbasis *b)
{
    double s = 0;
    for (int64_t j = 0; j < b->C; j++)
        s += (double)w[j] * b->c[j];
    return s;
}

/* LayerNorm: beta_s = U^T beta, gamma_s = a diag(U^T diag(gamma) U) with a
 * chosen so that the student's LN output carries the second moment of the
 * projected teacher states: a^2 sum_i diag_i^2 + |beta_s|^2 = E|U^T h|^2
 * (the student's normalised vector has unit mean square per coordinate;
 * at least 1% of the energy is left to gamma). */
static void project_ln(float *gs, float *bs, const float *gt, const float *bt,
                       const struct pbasis *b)
{
    double dd = 0, bb = 0;
    ut_vec(bs, bt, b);
    for (int64_t i = 0; i < b->k; i++) {
        double s = 0;
        for (int64_t j = 0; j < b->C; j++) {
            double u = b->uf[i * b->C + j];
            s += u * u * gt[j];
        }
        gs[i] = (float)s;
        dd += s * s;
        bb += (double)bs[i] * bs[i];
    }
    double a = dd > 0 ? sqrt(fmax(b->energy - bb, 0.01 * b->energy) / dd) : 1.0;
    for (int64_t i = 0; i < b->k; i++)
        gs[i] = (float)(a * gs[i]);
}

/* [W U | W c + bias] for rows [r0, r0+h) of w (., C): x (h, k+1) double */
static void augmented_in(double *x, const float *w, const float *bias, int64_t r0, int64_t h,
                         const struct pbasis *b, float *tmp)
{
    int64_t k = b->k;
    times_u(tmp, w + r0 * b->C, b->C, h, b);
    for (int64_t i = 0; i < h; i++) {
        for (int64_t t = 0; t < k; t++)
            x[i * (k + 1) + t] = tmp[i * k + t];
        x[i * (k + 1) + k] = dot_c(w + (r0 + i) * b->C, b) + bias[r0 + i];
    }
}

/* One layer: teacher layer a (NHt heads of HSt, FFN Ft) into student
 * layer s (NHs heads of HSs, FFN Fs). */
static void project_layer(struct bert_layer_params *s, const struct bert_layer_params *a,
                          int64_t NHt, int64_t HSt, int64_t Ft, int64_t NHs, int64_t HSs,
                          int64_t Fs, const struct pbasis *b)
{
    const int64_t C = b->C, k = b->k, k1 = k + 1, CHt = NHt * HSt, CHs = NHs * HSs;
    const int64_t big = (Ft > CHt ? Ft : CHt) + 1;
    float *tmp = kd_malloc((size_t)(big * (k > 1 ? k : 1) + k) * sizeof *tmp);
    double *qa = kd_malloc((size_t)(HSt * k1) * 8), *kb = kd_malloc((size_t)(HSt * k1) * 8);
    double *ova = kd_malloc((size_t)(HSt * k) * 8), *ovb = kd_malloc((size_t)(HSt * k1) * 8);
    double *fa = kd_malloc((size_t)(HSs * k1) * 8), *fb = kd_malloc((size_t)(HSs * k1) * 8);

    /* ---- attention: rank the teacher heads by the norm of their OV circuit */
    double *imp = kd_calloc((size_t)(NHt ? NHt : 1), sizeof *imp);
    for (int64_t h = 0; h < NHt; h++) {
        ut_times(tmp, a->attn_out_w + h * HSt, CHt, HSt, b); /* (k, HSt) = U^T W_o,h */
        for (int64_t i = 0; i < HSt; i++)
            for (int64_t t = 0; t < k; t++)
                ova[i * k + t] = tmp[t * HSt + i];
        augmented_in(ovb, a->qkv_w, a->qkv_b, 2 * CHt + h * HSt, HSt, b, tmp);
        imp[h] = lowrank_factor(fa, fb, ova, ovb, HSt, k, k1, HSs);
    }
    int64_t *keep = kd_malloc((size_t)(NHs ? NHs : 1) * sizeof *keep), nkeep = 0;
    char *taken = kd_calloc((size_t)(NHt ? NHt : 1), 1);
    for (; nkeep < NHs && nkeep < NHt; nkeep++) {
        int64_t best = -1;
        for (int64_t h = 0; h < NHt; h++)
            if (!taken[h] && (best < 0 || imp[h] > imp[best]))
                best = h;
        taken[best] = 1;
    }
    for (int64_t h = 0, n = 0; h < NHt; h++) /* kept heads in teacher order */
        if (taken[h])
            keep[n++] = h;

    const double qscale = sqrt((double)HSs / (double)HSt);
    memset(s->attn_out_w, 0, (size_t)(C * CHs) * sizeof(float)); /* extra heads silent */
    for (int64_t sh = 0; sh < nkeep; sh++) {
        int64_t h = keep[sh];
        /* QK circuit -> query and key rows of student head sh */
        augmented_in(qa, a->qkv_w, a->qkv_b, h * HSt, HSt, b, tmp);
        augmented_in(kb, a->qkv_w, a->qkv_b, CHt + h * HSt, HSt, b, tmp);
        lowrank_factor(fa, fb, qa, kb, HSt, k1, k1, HSs);
        for (int64_t i = 0; i < HSs; i++) {
            int64_t rq = sh * HSs + i, rk = CHs + sh * HSs + i;
            for (int64_t t = 0; t < k; t++) {
                s->qkv_w[rq * k + t] = (float)(qscale * fa[i * k1 + t]);
                s->qkv_w[rk * k + t] = (float)fb[i * k1 + t];
            }
            s->qkv_b[rq] = (float)(qscale * fa[i * k1 + k]);
            s->qkv_b[rk] = (float)fb[i * k1 + k];
        }
        /* OV circuit -> value rows and output columns */
        ut_times(tmp, a->attn_out_w + h * HSt, CHt, HSt, b);
        for (int64_t i = 0; i < HSt; i++)
            for (int64_t t = 0; t < k; t++)
                ova[i * k + t] = tmp[t * HSt + i];
        augmented_in(ovb, a->qkv_w, a->qkv_b, 2 * CHt + h * HSt, HSt, b, tmp);
        lowrank_factor(fa, fb, ova, ovb, HSt, k, k1, HSs);
        for (int64_t i = 0; i < HSs; i++) {
            int64_t rv = 2 * CHs + sh * HSs + i;
            for (int64_t t = 0; t < k; t++) {
                s->qkv_w[rv * k + t] = (float)fb[i * k1 + t];
                s->attn_out_w[t * CHs + sh * HSs + i] = (float)fa[i * k + t];
            }
            s->qkv_b[rv] = (float)fb[i * k1 + k];
        }
    }
    ut_vec(s->attn_out_b, a->attn_out_b, b);
    project_ln(s->attn_ln_w, s->attn_ln_b, a->attn_ln_w, a->attn_ln_b, b);

    /* ---- FFN: keep the Fs neurons with the largest in x out norms */
    float *w1u = kd_malloc((size_t)((Ft ? Ft : 1) * k) * sizeof *w1u);
    float *w2u = kd_malloc((size_t)((Ft ? Ft : 1) * k) * sizeof *w2u);
    double *b1 = kd_malloc((size_t)(Ft ? Ft : 1) * sizeof *b1);
    times_u(w1u, a->ffn_in_w, C, Ft, b);  /* (Ft, k) */
    ut_times(w2u, a->ffn_out_w, Ft, Ft, b); /* (k, Ft) */
    double *nimp = kd_malloc((size_t)(Ft ? Ft : 1) * sizeof *nimp);
    for (int64_t i = 0; i < Ft; i++) {
        b1[i] = a->ffn_in_b[i] + dot_c(a->ffn_in_w + i * C, b);
        double ni = b1[i] * b1[i], no = 0;
        for (int64_t t = 0; t < k; t++) {
            ni += (double)w1u[i * k + t] * w1u[i * k + t];
            no += (double)w2u[t * Ft + i] * w2u[t * Ft + i];
        }
        nimp[i] = sqrt(ni * no);
    }
    char *ntaken = kd_calloc((size_t)(Ft ? Ft : 1), 1);
    for (int64_t q = 0; q < Fs && q < Ft; q++) {
        int64_t best = -1;
        for (int64_t i = 0; i < Ft; i++)
            if (!ntaken[i] && (best < 0 || nimp[i] > nimp[best]))
                best = i;
        ntaken[best] = 1;
    }
    memset(s->ffn_out_w, 0, (size_t)(k * Fs) * sizeof(float)); /* extra neurons silent */
    for (int64_t i = 0, q = 0; i < Ft; i++) {
        if (!ntaken[i])
            continue;
        memcpy(s->ffn_in_w + q * k, w1u + i * k, (size_t)k * sizeof(float));
        s->ffn_in_b[q] = (float)b1[i];
        for (int64_t t = 0; t < k; t++)
            s->ffn_out_w[t * Fs + q] = w2u[t * Ft + i];
        q++;
    }
    ut_vec(s->ffn_out_b, a->ffn_out_b, b);
    project_ln(s->ffn_ln_w, s->ffn_ln_b, a->ffn_ln_w, a->ffn_ln_b, b);

    free(w1u), free(w2u), free(b1), free(nimp), free(ntaken);
    free(imp), free(keep), free(taken);
    free(tmp), free(qa), free(kb), free(ova), free(ovb), free(fa), free(fb);
}

int student_init_pca(struct bert_model *s, const struct bert_model *t,
                     const struct scalapack_pca *basis, const int64_t *layers, int n,
                     uint64_t seed, struct kd_err *err)
{
    const struct bert_config *cs = &s->cfg, *ct = &t->cfg;
    KD_ASSERT(s->opts.layer_begin == 0 && t->opts.layer_begin == 0 &&
              (s->opts.layer_end == 0 || s->opts.layer_end == cs->num_hidden_layers) &&
              (t->opts.layer_end == 0 || t->opts.layer_end == ct->num_hidden_layers),
              "student initialisation needs whole models, not pipeline slices");
    int64_t map[BERT_MAX_LAYERS];
    if (student_layer_map(map, layers, n, cs->num_hidden_layers, ct->num_hidden_layers, err))
        return kd_err_prefix(err, "pca init");
    if (basis->d != ct->hidden_size || basis->k != cs->hidden_size)
        return kd_errf(err, "pca init: expected a basis of %lld axes in %lld dims (student "
                       "and teacher hidden sizes), got %lld in %lld",
                       (long long)cs->hidden_size, (long long)ct->hidden_size,
                       (long long)basis->k, (long long)basis->d);
    if (cs->vocab_size != ct->vocab_size || cs->max_position_embeddings >
        ct->max_position_embeddings || cs->type_vocab_size > ct->type_vocab_size)
        return kd_errf(err, "pca init: expected the teacher's vocabulary (%lld) and at most "
                       "its positions (%lld) and token types (%lld), got %lld, %lld, %lld",
                       (long long)ct->vocab_size, (long long)ct->max_position_embeddings,
                       (long long)ct->type_vocab_size, (long long)cs->vocab_size,
                       (long long)cs->max_position_embeddings, (long long)cs->type_vocab_size);
    student_init_random(s, seed);

    struct pbasis b = {.C = basis->d, .k = basis->k};
    b.uf = kd_malloc((size_t)(b.k * b.C) * sizeof *b.uf);
    b.c = kd_malloc((size_t)b.C * sizeof *b.c);
    double explained = 0;
    for (int64_t i = 0; i < b.k; i++)
        explained += basis->variance[i];
    for (int64_t i = 0; i < b.k * b.C; i++)
        b.uf[i] = (float)basis->components[i];
    memcpy(b.c, basis->mean, (size_t)b.C * sizeof *b.c);
    for (int64_t i = 0; i < b.k; i++) { /* c = m - U (U^T m) */
        double um = 0;
        for (int64_t j = 0; j < b.C; j++)
            um += basis->components[i * b.C + j] * basis->mean[j];
        for (int64_t j = 0; j < b.C; j++)
            b.c[j] -= um * basis->components[i * b.C + j];
    }
    b.energy = explained;
    for (int64_t i = 0; i < b.k; i++) {
        double um = 0;
        for (int64_t j = 0; j < b.C; j++)
            um += basis->components[i * b.C + j] * basis->mean[j];
        b.energy += um * um;
    }

    const struct bert_params *pt = &t->p;
    struct bert_params *ps = &s->p;
    times_u(ps->word_emb, pt->word_emb, b.C, cs->vocab_size, &b);
    times_u(ps->pos_emb, pt->pos_emb, b.C, cs->max_position_embeddings, &b);
    times_u(ps->type_emb, pt->type_emb, b.C, cs->type_vocab_size, &b);
    project_ln(ps->emb_ln_w, ps->emb_ln_b, pt->emb_ln_w, pt->emb_ln_b, &b);
    for (int64_t j = 0; j < cs->num_hidden_layers; j++) {
        int64_t l = map[j] - 1;
        project_layer(&ps->layer[j], &pt->layer[l], ct->layer_heads[l], t->HS,
                      ct->layer_intermediate[l], cs->layer_heads[j], s->HS,
                      cs->layer_intermediate[j], &b);
    }
    if (ps->mlm_bias && pt->mlm_bias)
        memcpy(ps->mlm_bias, pt->mlm_bias, (size_t)cs->vocab_size * sizeof(float));
    free(b.uf);
    free(b.c);
    return 0;
}

int student_pca_basis(struct scalapack_pca *basis, const struct scalapack_grid *g,
                      struct bert_model *t, const struct bert_batch *batch, const int64_t *map,
                      int64_t L_s, int64_t k, struct kd_err *err)
{
    const int64_t C = t->cfg.hidden_size, per = batch->B * batch->T;
    float *rows = kd_malloc((size_t)((L_s + 1) * (per ? per : 1) * C) * sizeof *rows);
    int64_t n = 0;
    if (batch->B > 0) {
        struct bert_batch eval = *batch;
        eval.train = 0;
        bert_forward(t, &eval);
        for (int64_t j = 0; j <= L_s; j++) /* h_0, then h_map[0..L_s) */
            n += student_token_rows(rows + n * C, t, j == 0 ? 0 : map[j - 1],
                                    batch->attention_mask, batch->B, batch->T);
    }
    int rc = scalapack_pca(basis, g, rows, n, C, k, err);
    free(rows);
    return rc ? kd_err_prefix(err, "pca basis of the teacher's hidden states") : 0;
}

void student_pca_backproject(float *out, const struct scalapack_pca *basis, const float *z,
                             int64_t n)
{
    const int64_t C = basis->d, k = basis->k;
    double *c = kd_malloc((size_t)C * sizeof *c);
    memcpy(c, basis->mean, (size_t)C * sizeof *c);
    for (int64_t i = 0; i < k; i++) {
        double um = 0;
        for (int64_t j = 0; j < C; j++)
            um += basis->components[i * C + j] * basis->mean[j];
        for (int64_t j = 0; j < C; j++)
            c[j] -= um * basis->components[i * C + j];
    }
    for (int64_t r = 0; r < n; r++)
        for (int64_t j = 0; j < C; j++) {
            double v = c[j];
            for (int64_t i = 0; i < k; i++)
                v += basis->components[i * C + j] * z[r * k + i];
            out[r * C + j] = (float)v;
        }
    free(c);
}
