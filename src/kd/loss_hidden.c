/* loss_hidden.c: hidden-state distillation over mapped layer pairs (kd
 * layer): TinyBERT-style MSE on every token, or Aguilar et al.'s cosine on
 * the [CLS] vector (METHODS.md 2(b)), or the other two combinations.
 *
 * For a pair (student layer j, teacher layer i), student hidden X (B,T,C),
 * teacher H (B,T,Ct), rows r of example b = its real tokens (tokens "all",
 * n_b rows) or position 0 (tokens "cls", 1 row):
 *     p_r = W x_r + c   when C != Ct (a learned projection, W (Ct,C),
 *                       c (Ct), one per pair), else p_r = x_r
 *     mse     l_b = (1/(n_b Ct)) sum_r |p_r - h_r|^2
 *     cosine  l_b = (1/n_b) sum_r (1 - cos(p_r, h_r))
 *     L_pair  = (1/N) sum_b l_b,    term value = sum over active pairs
 * Gradients (METHODS.md 2(e) for the cosine), times weight / (N n_b ...):
 *     mse     dp = 2 (p - h) / Ct
 *     cosine  dp = -( h / (|p||h|) - cos * p / |p|^2 )
 * with norms clamped below at 1e-8 as torch.cosine_similarity (a clamped
 * |p| is treated as a constant). Through the projection: dW += dP^T X,
 * dc += sum_r dP_r, dX += dP W (linear.h). Padded tokens and batch-padding
 * examples get exactly zero gradient.
 *
 * Projection initialisation: W ~ U(-1/sqrt(C), 1/sqrt(C)), c = 0 (the bound
 * of torch.nn.Linear's default), from the set's seed with a stream per
 * (term, student layer); kd_loss_set_projection lets a least-squares fit
 * overwrite it. Per-row sums are in double. */
#include "kd/kd/loss_term.h"
#include "kd/core/rng.h"
#include "kd/kernels/linear.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define COS_EPS 1e-8

static int projecting(const struct kd_model_dims *d)
{
    return d->student.hidden_size != d->teacher.hidden;
}

static void hidden_needs(const struct kd_term *t, struct kd_needs *n)
{
    for (int k = 0; k < t->map.n; k++)
        n->hidden_layers[n->n_hidden++] = t->map.pair[k].teacher;
    n->hidden_tokens = t->cfg.tokens == TOKEN_SEL_ALL ? TOKEN_SEL_ALL : TOKEN_SEL_CLS;
}

static int hidden_check(const struct kd_term *t, const struct kd_model_dims *d,
                        struct kd_err *err)
{
    char where[96];
    kd_loss_where(where, sizeof where, t->index, &t->cfg);
    if (t->cfg.metric != HIDDEN_METRIC_MSE && t->cfg.metric != HIDDEN_METRIC_COSINE)
        return kd_errf(err, "%s: unknown metric %d", where, t->cfg.metric);
    if (t->cfg.tokens != TOKEN_SEL_ALL && t->cfg.tokens != TOKEN_SEL_CLS)
        return kd_errf(err, "%s: unknown token selection %d", where, t->cfg.tokens);
    if (d->student.hidden_size < 1 || d->teacher.hidden < 1)
        return kd_errf(err, "%s: expected hidden sizes >= 1, got %lld student and %lld "
                       "teacher", where, (long long)d->student.hidden_size,
                       (long long)d->teacher.hidden);
    return 0;
}

static int hidden_params(const struct kd_term *t, const struct kd_model_dims *d,
                         struct kd_param_decl *decl)
{
    if (!projecting(d))
        return 0;
    const size_t C = (size_t)d->student.hidden_size, Ct = (size_t)d->teacher.hidden;
    if (decl)
        for (int k = 0; k < t->map.n; k++) {
            struct kd_param_decl *w = &decl[2 * k], *b = &decl[2 * k + 1];
            snprintf(w->name, sizeof w->name, "kd.losses.%d.proj.%d.weight", t->index,
                     (int)t->map.pair[k].student);
            snprintf(b->name, sizeof b->name, "kd.losses.%d.proj.%d.bias", t->index,
                     (int)t->map.pair[k].student);
            w->count = Ct * C, w->decay = 1;
            b->count = Ct, b->decay = 0;
        }
    return 2 * t->map.n;
}

static void hidden_init_params(struct kd_term *t, uint64_t seed)
{
    for (int k = 0; k < t->n_tensors / 2; k++) {
        const int64_t n_w = (int64_t)t->segs[t->seg0 + 2 * (size_t)k].count;
        const int64_t Ct = (int64_t)t->segs[t->seg0 + 2 * (size_t)k + 1].count;
        const float bound = (float)(1.0 / sqrt((double)(n_w / Ct)));
        const uint64_t stream = 0x4b44000000000000ull | ((uint64_t)t->index << 16) |
                                (uint64_t)t->map.pair[k].student;
        rng_uniform(kd_term_param(t, 2 * k), -bound, bound, seed, stream, 0, n_w);
        memset(kd_term_param(t, 2 * k + 1), 0, (size_t)Ct * sizeof(float));
    }
}

static size_t hidden_scratch(const struct kd_term *t, const struct kd_model_dims *d)
{
    if (!projecting(d))
        return 0;
    const size_t B = (size_t)d->B, T = (size_t)d->T;
    const size_t C = (size_t)d->student.hidden_size, Ct = (size_t)d->teacher.hidden;
    /* P and dP (rows, Ct); for [CLS]: gathered X and its gradient (B, C) */
    return 2 * B * T * Ct + 2 * B * C;
}

/* Row loss and dp += coef * d(row loss)/dp; returns the row loss. */
static double row_mse(float *dp, const float *p, const float *h, int64_t n, double coef)
{
    double s = 0.0;
    const float g = (float)(2.0 * coef);
    for (int64_t i = 0; i < n; i++) {
        const float e = p[i] - h[i];
        s += (double)e * e;
        dp[i] += g * e;
    }
    return s;
}

static double row_cos(float *dp, const float *p, const float *h, int64_t n, double coef)
{
    double pp = 0.0, hh = 0.0, ph = 0.0;
    for (int64_t i = 0; i < n; i++) {
        pp += (double)p[i] * p[i];
        hh += (double)h[i] * h[i];
        ph += (double)p[i] * h[i];
    }
    const double np = sqrt(pp), nh = sqrt(hh);
    const double cp = np > COS_EPS ? np : COS_EPS, ch = nh > COS_EPS ? nh : COS_EPS;
    const double cosv = ph / (cp * ch);
    /* d(1 - cos)/dp = -h/(|p||h|) + cos p/|p|^2  (second part only when |p|
     * is not clamped) */
    const double a = -coef / (cp * ch);
    const double b = np > COS_EPS ? coef * cosv / (cp * cp) : 0.0;
    /* in double: for p close to h the two parts nearly cancel, and fp32
     * would leave a rounding residue of ~1e-8 * coef where the gradient
     * is ~0 */
    for (int64_t i = 0; i < n; i++)
        dp[i] += (float)(a * h[i] + b * p[i]);
    return 1.0 - cosv;
}

/* One pair; returns L_pair. */
static double pair_compute(struct kd_term *t, struct kd_term_ctx *c, int k)
{
    const struct kd_layer_pair pr = t->map.pair[k];
    const int64_t B = c->B, T = c->T, C = c->d->student.hidden_size, Ct = c->d->teacher.hidden;
    const int cls = t->cfg.tokens == TOKEN_SEL_CLS;
    const int proj = projecting(c->d);
    const int t_all = c->t->hidden_tokens == TOKEN_SEL_ALL;
    const float *X = c->s->hidden[pr.student], *H = c->t->hidden[pr.teacher];
    KD_ASSERT(X, "hidden loss: no student hidden state for layer %d", (int)pr.student);
    KD_ASSERT(H, "hidden loss: no teacher hidden state for layer %d", (int)pr.teacher);
    KD_ASSERT(cls || t_all, "hidden loss over all tokens, but the teacher view holds [CLS] "
              "only (teacher layer %d)", (int)pr.teacher);
    float *dX = kd_tap_dhidden(c, pr.student);
    const int32_t *am = c->t->attention_mask;

    /* the rows the metric sees: X itself, or [CLS] rows, projected or not */
    const int64_t R = cls ? B : B * T;
    const float *xin = X, *P = X;
    float *dP = dX, *xs = NULL, *dxs = NULL, *W = NULL, *bias = NULL;
    const int64_t pw = proj ? Ct : C; /* width of a metric row */
    if (proj) {
        float *Pm = t->scratch, *dPm = Pm + B * T * Ct;
        xs = dPm + B * T * Ct;
        dxs = xs + B * C;
        if (cls) {
            for (int64_t b = 0; b < B; b++)
                memcpy(xs + b * C, X + b * T * C, (size_t)C * sizeof(float));
            xin = xs;
        }
        W = kd_term_param(t, 2 * k);
        bias = kd_term_param(t, 2 * k + 1);
        linear_forward(Pm, xin, W, bias, R, C, Ct);
        memset(dPm, 0, (size_t)(R * Ct) * sizeof(float));
        P = Pm, dP = dPm;
    }
    /* metric rows: projected rows are dense in r; unprojected ones are X's
     * rows (b,t) at stride T even for [CLS] */
    const int64_t rstride_b = (proj && cls) ? 1 : T;
    const int cosine = t->cfg.metric == HIDDEN_METRIC_COSINE;
    const double N = c->norm_examples;
    double sum = 0.0;
    for (int64_t b = 0; b < B; b++) {
        if (c->n_real[b] == 0)
            continue;
        const int64_t nt = cls ? 1 : T, rows = cls ? 1 : c->n_real[b];
        const double coef = c->weight / (N * (double)rows * (cosine ? 1.0 : (double)Ct));
        double lb = 0.0;
        for (int64_t tk = 0; tk < nt; tk++) {
            if (!cls && am && am[b * T + tk] == 0)
                continue; /* padded token */
            const int64_t r = b * rstride_b + tk;
            const float *h = H + (t_all ? (b * T + tk) * Ct : b * Ct);
            lb += cosine ? row_cos(dP + r * pw, P + r * pw, h, pw, coef)
                         : row_mse(dP + r * pw, P + r * pw, h, pw, coef);
        }
        sum += lb / ((double)rows * (cosine ? 1.0 : (double)Ct));
    }
    if (proj) {
        float *dW = kd_term_grad(t, 2 * k), *db = kd_term_grad(t, 2 * k + 1);
        if (cls) {
            memset(dxs, 0, (size_t)(B * C) * sizeof(float));
            linear_backward(dxs, dW, db, dP, xin, W, R, C, Ct);
            for (int64_t b = 0; b < B; b++)
                for (int64_t i = 0; i < C; i++)
                    dX[b * T * C + i] += dxs[b * C + i];
        } else {
            linear_backward(dX, dW, db, dP, xin, W, R, C, Ct);
        }
    }
    return sum / N;
}

static double hidden_compute(struct kd_term *t, struct kd_term_ctx *c)
{
    double v = 0.0;
    for (int k = 0; k < t->map.n; k++)
        if (c->layer_on[t->map.pair[k].student])
            v += pair_compute(t, c, k);
    return v;
}

const struct kd_term_ops kd_term_hidden = {
    .name = "hidden",
    .kind = LOSS_KIND_HIDDEN,
    .internal = 1,
    .taps = KD_TAP_HIDDEN,
    .uses_map = 1,
    .map_embeddings = 1,
    .needs = hidden_needs,
    .check = hidden_check,
    .params = hidden_params,
    .init_params = hidden_init_params,
    .scratch_floats = hidden_scratch,
    .compute = hidden_compute,
};
