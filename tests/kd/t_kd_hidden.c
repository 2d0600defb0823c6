/* t_kd_hidden.c: the hidden-state term through the loss set on plain arrays
 * (kd/loss_set.h, src/kd/loss_hidden.c).
 *
 * Batch: B = 3 examples of T = 4 tokens; example 1 has 2 padded tokens,
 * example 2 is batch padding (mask all zero). Student L_s = 2 layers of
 * C = 6 (equal widths: teacher Ct = 6) or Ct = 10 (projection); teacher
 * L_t = 4; uniform map (1 <-> 2, 2 <-> 4).
 *   values vs double references: rel 1e-9 (rows in double), 1e-6 with the
 *     projection (an fp32 gemm); MSE / cosine over every real token or
 *     [CLS], averaged per example, summed over pairs;
 *   FD of d loss / d student hidden (both layers) for mse/all, cos/cls,
 *     cos/all, mse/cls, and with the projection also of d loss / d W and
 *     d loss / d bias of both pairs: eps 5e-3, rel 1e-3, abs 1e-6 (2e-6
 *     with the projection). Budget: the projected rows are rounded to fp32,
 *     which moves the double loss by ~2e-8, i.e. ~2e-6 after dividing by
 *     2 eps; at eps 1e-2 the cosine's truncation error (its 1/|p| terms)
 *     reaches 6e-6 on the bias, measured;
 *   identity: student = teacher gives exactly 0 MSE and 0 gradient, and
 *     cosine 0 and gradient within 1e-12; with a projection
 *     set from outside (kd_loss_set_projection) and the teacher computed
 *     through it, the MSE is ~0 (< 1e-10);
 *   padding: values do not change when padded tokens or the padding
 *     example change, and their gradient rows are exactly 0;
 *   a [CLS]-only teacher view (B,Ct) gives the same loss as the all-token
 *     view (B,T,Ct);
 *   pairs off (kd_active.layer) add nothing and leave their dhidden NULL;
 *   projection parameters: segment table (names, offsets, decay 1/0),
 *     deterministic from the seed, bound 1/sqrt(C), bias 0, a different
 *     seed differs; gradients accumulate across computes until zeroed. */
#include "kd/kd/loss_set.h"
#include "../gradcheck.h"
#include "../model/bert_testutil.h"
#include "../tap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { B = 3, T = 4, C = 6, LS = 2, LT = 4, CTMAX = 10 };

static const int32_t mask[B * T] = {1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0};

struct fx {
    struct kd_loss_set set;
    struct kd_student_view sv;
    struct kd_teacher_view tv;
    struct kd_step st;
    int64_t Ct;
    float xs[LS + 1][B * T * C];        /* student hidden h_0..h_2 */
    float ht[LT + 1][B * T * CTMAX];    /* teacher hidden */
    float gx[LS + 1][B * T * C];
    float *gp;                          /* (n_params) */
    float dy[1];
    double loss;
};

static struct loss_cfg hidden_cfg(int metric, int tokens)
{
    struct loss_cfg c;
    memset(&c, 0, sizeof c);
    c.kind = LOSS_KIND_HIDDEN;
    c.line = 4;
    c.weight = 1.0;
    c.metric = metric;
    c.tokens = tokens;
    c.map = LAYER_MAP_UNIFORM;
    return c;
}

static void setup(struct fx *f, const struct loss_cfg *l, int64_t Ct, uint64_t seed)
{
    memset(f, 0, sizeof *f);
    struct bert_config cfg;
    bt_tiny_config(&cfg, LS, 2, 3, 8, 10, 8, 2);
    struct kd_teacher_dims td = {.layers = LT, .hidden = Ct, .heads = 2, .num_labels = 2};
    struct kd_err err;
    if (kd_loss_set_init(&f->set, l, 1, NULL, &cfg, &td, B, T, seed, &err))
        bail_out("%s", err.msg);
    f->Ct = Ct;
    for (int l2 = 0; l2 <= LS; l2++) {
        gc_rand(f->xs[l2], B * T * C, -1, 1, 20 + (uint64_t)l2);
        f->sv.hidden[l2] = f->xs[l2];
    }
    for (int l2 = 0; l2 <= LT; l2++) {
        gc_rand(f->ht[l2], B * T * Ct, -1, 1, 40 + (uint64_t)l2);
        f->tv.hidden[l2] = f->ht[l2];
    }
    f->sv.B = f->tv.B = B;
    f->sv.T = f->tv.T = T;
    f->tv.attention_mask = mask;
    f->tv.hidden_tokens = TOKEN_SEL_ALL;
    f->st.total_steps = 1;
    f->gp = calloc(f->set.n_params + 1, sizeof(float));
}

static void teardown(struct fx *f)
{
    kd_loss_set_free(&f->set);
    free(f->gp);
}

static double run(struct fx *f)
{
    kd_loss_set_zero_param_grads(&f->set);
    f->loss = kd_loss_set_compute(&f->set, &f->sv, &f->tv, &f->st, NULL, NULL);
    return f->loss;
}

static void fwd(void *p) { run(p); }

static void bwd(void *p)
{
    struct fx *f = p;
    for (int l = 1; l <= LS; l++)
        for (int i = 0; i < B * T * C; i++)
            f->gx[l][i] += f->dy[0] * f->set.dhidden[l][i];
    for (size_t i = 0; i < f->set.n_params; i++)
        f->gp[i] += f->dy[0] * f->set.grads[i];
}

static void fd(struct fx *f, const char *what, double abs_tol)
{
    struct gc_output out = {"loss", NULL, &f->loss, f->dy, 1};
    struct gc_param prm[2 + 4];
    int np = 0;
    prm[np++] = (struct gc_param){"student h1", f->xs[1], f->gx[1], B * T * C};
    prm[np++] = (struct gc_param){"student h2", f->xs[2], f->gx[2], B * T * C};
    for (size_t s = 0; s < f->set.nseg; s++)
        prm[np++] = (struct gc_param){f->set.segs[s].name, f->set.params + f->set.segs[s].offset,
                                      f->gp + f->set.segs[s].offset,
                                      (int64_t)f->set.segs[s].count};
    struct gc_problem p = {what, f, fwd, bwd, &out, 1, prm, np};
    struct gc_opts o = {.eps = 5e-3, .rel_tol = 1e-3, .abs_tol = abs_tol, .check_accumulate = 1,
                        .seed = 5};
    memset(f->gx, 0, sizeof f->gx);
    memset(f->gp, 0, f->set.n_params * sizeof(float));
    gradcheck(&p, &o);
}

/* double reference: the student row (projected if W) of (b,t) in layer l */
static void student_row(const struct fx *f, int l, int b, int t, double *out)
{
    const float *x = f->xs[l] + (b * T + t) * C;
    struct kd_projection pj;
    struct kd_err err;
    if (f->Ct == C) {
        for (int i = 0; i < C; i++)
            out[i] = x[i];
        return;
    }
    if (kd_loss_set_projection(&f->set, 0, l, &pj, &err))
        bail_out("%s", err.msg);
    for (int o = 0; o < f->Ct; o++) {
        double s = pj.bias[o];
        for (int i = 0; i < C; i++)
            s += (double)pj.weight[o * C + i] * x[i];
        out[o] = s;
    }
}

static double reference(const struct fx *f, int metric, int tokens)
{
    const int64_t Ct = f->Ct;
    double total = 0;
    for (int l = 1; l <= LS; l++) {
        const float *H = f->ht[2 * l];
        double sum = 0;
        for (int b = 0; b < 2; b++) {
            int n = 0;
            double lb = 0;
            for (int t = 0; t < (tokens == TOKEN_SEL_CLS ? 1 : T); t++) {
                if (!mask[b * T + t])
                    continue;
                double p[CTMAX], pp = 0, hh = 0, ph = 0, se = 0;
                student_row(f, l, b, t, p);
                for (int i = 0; i < Ct; i++) {
                    double h = H[(b * T + t) * Ct + i];
                    pp += p[i] * p[i], hh += h * h, ph += p[i] * h, se += (p[i] - h) * (p[i] - h);
                }
                lb += metric == HIDDEN_METRIC_MSE ? se / (double)Ct : 1 - ph / sqrt(pp * hh);
                n++;
            }
            sum += lb / n;
        }
        total += sum / 2;
    }
    return total;
}

static double max_abs(const float *x, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++)
        m = fmax(m, fabs(x[i]));
    return m;
}

static void combos(void)
{
    static const struct { int metric, tokens; const char *name; } k[4] = {
        {HIDDEN_METRIC_MSE, TOKEN_SEL_ALL, "mse/all"},
        {HIDDEN_METRIC_COSINE, TOKEN_SEL_CLS, "cosine/cls"},
        {HIDDEN_METRIC_COSINE, TOKEN_SEL_ALL, "cosine/all"},
        {HIDDEN_METRIC_MSE, TOKEN_SEL_CLS, "mse/cls"}};
    struct fx *f = malloc(sizeof *f);
    for (int proj = 0; proj < 2; proj++)
        for (int i = 0; i < 4; i++) {
            struct loss_cfg l = hidden_cfg(k[i].metric, k[i].tokens);
            setup(f, &l, proj ? CTMAX : C, 9);
            char what[64];
            snprintf(what, sizeof what, "hidden %s%s", k[i].name, proj ? " projected" : "");
            ok_near(run(f), reference(f, k[i].metric, k[i].tokens), proj ? 1e-6 : 1e-9, 0,
                    "%s: value vs double reference", what);
            /* padding: rows of padded tokens and of the padding example */
            double pad = 0;
            for (int l2 = 1; l2 <= LS; l2++)
                for (int b = 0; b < B; b++)
                    for (int t = 0; t < T; t++)
                        if (!mask[b * T + t] || (k[i].tokens == TOKEN_SEL_CLS && t > 0))
                            pad = fmax(pad, max_abs(f->set.dhidden[l2] + (b * T + t) * C, C));
            ok(pad == 0, "%s: exactly zero gradient on padded / unused rows", what);
            const double v = f->loss;
            f->xs[1][(1 * T + 3) * C] += 3, f->xs[2][(2 * T + 0) * C + 1] -= 2;
            f->ht[2][(1 * T + 2) * f->Ct] += 3, f->ht[4][(2 * T + 1) * f->Ct] += 1;
            ok(run(f) == v, "%s: padded tokens and the padding example change nothing", what);
            fd(f, what, proj ? 2e-6 : 1e-6);
            teardown(f);
        }
    free(f);
}

static void identity(void)
{
    struct fx *f = malloc(sizeof *f);
    for (int metric = 0; metric < 2; metric++) {
        struct loss_cfg l = hidden_cfg(metric, TOKEN_SEL_ALL);
        setup(f, &l, C, 1);
        memcpy(f->ht[2], f->xs[1], sizeof f->xs[1]);
        memcpy(f->ht[4], f->xs[2], sizeof f->xs[2]);
        const double v = run(f);
        const double g = fmax(max_abs(f->set.dhidden[1], B * T * C),
                              max_abs(f->set.dhidden[2], B * T * C));
        if (metric == HIDDEN_METRIC_MSE)
            ok(v == 0 && g == 0, "student = teacher: MSE exactly 0, gradient exactly 0");
        else
            ok(fabs(v) <= 1e-12 && g <= 1e-12,
               "student = teacher: cosine loss %.1e, max gradient %.1e", v, g);
        teardown(f);
    }
    /* projection set from outside; the teacher is the projected student */
    struct loss_cfg l = hidden_cfg(HIDDEN_METRIC_MSE, TOKEN_SEL_ALL);
    setup(f, &l, CTMAX, 1);
    struct kd_err err;
    for (int s = 1; s <= LS; s++) {
        struct kd_projection pj;
        if (kd_loss_set_projection(&f->set, 0, s, &pj, &err))
            bail_out("%s", err.msg);
        gc_rand(pj.weight, pj.out * pj.in, -0.5f, 0.5f, 70 + (uint64_t)s);
        gc_rand(pj.bias, pj.out, -0.1f, 0.1f, 80 + (uint64_t)s);
        double p[CTMAX];
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                student_row(f, s, b, t, p);
                for (int o = 0; o < CTMAX; o++)
                    f->ht[pj.teacher_layer][(b * T + t) * CTMAX + o] = (float)p[o];
            }
    }
    ok(run(f) < 1e-10, "projection set from outside, teacher = projected student: MSE %.1e",
       f->loss);
    teardown(f);
    free(f);
}

static void views_and_layers(void)
{
    struct fx *f = malloc(sizeof *f);
    struct loss_cfg l = hidden_cfg(HIDDEN_METRIC_COSINE, TOKEN_SEL_CLS);
    setup(f, &l, CTMAX, 2);
    const double v = run(f);
    static float cls[LT + 1][B * CTMAX];
    for (int t = 0; t <= LT; t++) {
        for (int b = 0; b < B; b++)
            memcpy(cls[t] + b * CTMAX, f->ht[t] + b * T * CTMAX, CTMAX * sizeof(float));
        f->tv.hidden[t] = cls[t];
    }
    f->tv.hidden_tokens = TOKEN_SEL_CLS;
    ok(run(f) == v, "a [CLS]-only teacher view (B,Ct) gives the same loss as (B,T,Ct)");
    struct kd_active a;
    memset(&a, 0, sizeof a);
    a.internal = 1;
    a.layer[2] = 1;
    f->st.active = &a;
    struct bert_grad_in g;
    memset(&g, 0, sizeof g);
    const double v2 = kd_loss_set_compute(&f->set, &f->sv, &f->tv, &f->st, NULL, &g);
    a.layer[2] = 0, a.layer[1] = 1;
    const double v1 = kd_loss_set_compute(&f->set, &f->sv, &f->tv, &f->st, NULL, NULL);
    ok_near(v1 + v2, v, 1e-12, 0, "pairs computed one layer at a time sum to the whole");
    ok(g.dhidden[2] == f->set.dhidden[2] && g.dhidden[1] == NULL && g.dhidden[0] == NULL,
       "only the active layer's dhidden is handed to the backward");

    /* parameters */
    ok(f->set.nseg == 4 && f->set.n_params == 2 * (CTMAX * C + CTMAX),
       "two projections: 4 segments, %zu floats", f->set.n_params);
    ok_str(f->set.segs[0].name, "kd.losses.0.proj.1.weight", "segment 0 name");
    ok_str(f->set.segs[3].name, "kd.losses.0.proj.2.bias", "segment 3 name");
    ok(f->set.segs[0].decay == 1 && f->set.segs[1].decay == 0 &&
       f->set.segs[2].offset == CTMAX * C + CTMAX, "decay on weights only; dense offsets");
    struct kd_err err;
    ok(optim_segments_check(f->set.segs, f->set.nseg, f->set.n_params, &err) == 0,
       "the optimizer accepts the segment table");
    const float bound = 1.0f / sqrtf((float)C);
    ok(max_abs(f->set.params, CTMAX * C) <= bound && max_abs(f->set.params, CTMAX * C) > 0.5f * bound &&
       max_abs(f->set.params + CTMAX * C, CTMAX) == 0, "W in U(-1/sqrt(C), 1/sqrt(C)), bias 0");
    struct fx *h = malloc(sizeof *h);
    setup(h, &l, CTMAX, 2);
    ok(memcmp(f->set.params, h->set.params, f->set.n_params * sizeof(float)) == 0,
       "same seed, same initial projections");
    teardown(h);
    setup(h, &l, CTMAX, 3);
    ok(memcmp(f->set.params, h->set.params, f->set.n_params * sizeof(float)) != 0,
       "another seed, other projections");
    teardown(h);
    free(h);
    f->st.active = NULL;
    kd_loss_set_zero_param_grads(&f->set);
    kd_loss_set_compute(&f->set, &f->sv, &f->tv, &f->st, NULL, NULL);
    const float g1 = f->set.grads[3];
    kd_loss_set_compute(&f->set, &f->sv, &f->tv, &f->st, NULL, NULL);
    ok(g1 != 0 && f->set.grads[3] == 2 * g1, "projection gradients accumulate across computes");
    teardown(f);
    free(f);
}

int main(void)
{
    combos();
    identity();
    views_and_layers();
    return done_testing();
}
