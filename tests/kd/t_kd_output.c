/* t_kd_output.c: the output terms, hard (gold labels) and soft (teacher
 * logits), through the loss set on plain arrays (kd/loss_set.h).
 *
 * Batch: B = 4 examples of T = 3 tokens, K = 5 labels; example 1 has one
 * padded token, example 3 is batch padding (mask all zero); labels
 * {2, -100, 4, 1} (example 1 unlabelled, example 3 padding), so the local
 * normalisers are 3 examples and 2 labelled examples.
 *   hard: value vs a double reference (rel 1e-6: the kernel's log-sum-exp
 *     is fp32); FD of d loss / d logits (eps 1e-2, rel 1e-3, abs 5e-6: the
 *     fp32 log-sum-exp rounds the loss at ~1e-8, i.e. ~1e-6 after the
 *     division by 2 eps, measured 1.2e-6); regression (K = 1) value (rel
 *     1e-12) and FD (quadratic, so central differences are exact up to
 *     rounding: eps 1e-2, rel 1e-6, abs 1e-9);
 *   soft (rows in double): KL and CE values vs double references (rel
 *     1e-12); FD of both (eps 1e-3, rel 1e-4, abs 1e-9: the loss is exact in
 *     double, so the step only bounds truncation, which at eps 1e-2 reached
 *     7e-8 on a gradient entry of 2e-5, measured); the T^2 factor: the
 *     value at T = 4 is 16 x the plain KL at T = 4 and the gradient is
 *     T (p_S - p_T) / N (rel 1e-6, fp32 storage); CE - KL = T^2 mean_b
 *     H(p_T) (rel 1e-10); the temperature at steps 0, 50, 100, 200 of a
 *     101-step linear 4 -> 1 anneal is 4, 2.5, 1, 1, constant and 1-step
 *     schedules stay at 4, and the set's value at step 50 equals a
 *     constant T = 2.5 set's (rel 1e-12); regression (K = 1) soft MSE
 *     (value rel 1e-12, FD as hard's regression);
 *   identity: student logits = teacher logits give exactly 0 loss and 0
 *     gradient (KL);
 *   normalisers: doubling norm_examples halves soft's value and gradient,
 *     norm_labelled = 8 quarters hard's (rel 1e-12; the data-parallel
 *     contract);
 *   padding: the batch-padding example's logits do not change any value
 *     and get exactly zero gradient; an unlabelled example gets no hard
 *     gradient;
 *   the set: total = sum of weight x value, both terms accumulate into one
 *     dlogits, term weights from kd_step override the job's, output terms
 *     off leave total 0 and g.dlogits NULL. */
#include "kd/kd/loss_set.h"
#include "../gradcheck.h"
#include "../model/bert_testutil.h"
#include "../tap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { B = 4, T = 3, K = 5 };

static const int32_t mask[B * T] = {1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0};
static const int32_t labels[B] = {2, -100, 4, 1};

struct fx {
    struct kd_loss_set set;
    struct kd_student_view sv;
    struct kd_teacher_view tv;
    struct kd_step st;
    struct kd_values vals;
    int64_t K;
    float zs[B * K], zt[B * K], ys[B]; /* student, teacher logits; float labels */
    float gz[B * K], dy[1];
    double loss;
};

static struct loss_cfg cfg_of(int kind, double T0)
{
    struct loss_cfg c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.line = 1;
    c.weight = 1.0;
    c.temperature = c.temperature_end = T0;
    return c;
}

static void setup(struct fx *f, const struct loss_cfg *l, int n, const struct kd_term_opts *o,
                  int64_t k)
{
    memset(f, 0, sizeof *f);
    struct bert_config cfg;
    bt_tiny_config(&cfg, 2, 2, 2, 4, 10, 8, k);
    struct kd_teacher_dims td = {.layers = 2, .hidden = 4, .heads = 2, .num_labels = k};
    struct kd_err err;
    if (kd_loss_set_init(&f->set, l, n, o, &cfg, &td, B, T, 1, &err))
        bail_out("%s", err.msg);
    f->K = k;
    gc_rand(f->zs, B * K, -3, 3, 11);
    gc_rand(f->zt, B * K, -3, 3, 12);
    gc_rand(f->ys, B, -1, 1, 13);
    f->sv.B = f->tv.B = B;
    f->sv.T = f->tv.T = T;
    f->sv.logits = f->zs;
    f->tv.logits = f->zt;
    f->tv.attention_mask = mask;
    f->tv.labels = labels;
    f->tv.labels_f32 = f->ys;
    f->st.total_steps = 1;
}

static double run(struct fx *f)
{
    f->loss = kd_loss_set_compute(&f->set, &f->sv, &f->tv, &f->st, &f->vals, NULL);
    return f->loss;
}

static void fwd(void *p) { run(p); }

static void bwd(void *p)
{
    struct fx *f = p;
    for (int64_t i = 0; i < B * f->K; i++)
        f->gz[i] += f->dy[0] * f->set.dlogits[i];
}

static void fd(struct fx *f, const char *what, double eps, double rel, double abs_tol)
{
    struct gc_output out = {"loss", NULL, &f->loss, f->dy, 1};
    struct gc_param prm = {"student logits", f->zs, f->gz, B * f->K};
    struct gc_problem p = {what, f, fwd, bwd, &out, 1, &prm, 1};
    struct gc_opts o = {.eps = eps, .rel_tol = rel, .abs_tol = abs_tol, .check_accumulate = 1,
                        .seed = 3};
    memset(f->gz, 0, sizeof f->gz);
    gradcheck(&p, &o);
}

/* log-softmax of x/T (K) in double */
static void log_softmax(double *out, const float *x, int64_t k, double Tm)
{
    double m = -INFINITY, s = 0;
    for (int64_t i = 0; i < k; i++)
        m = fmax(m, x[i] / Tm);
    for (int64_t i = 0; i < k; i++)
        s += exp(x[i] / Tm - m);
    for (int64_t i = 0; i < k; i++)
        out[i] = x[i] / Tm - m - log(s);
}

/* mean over examples 0..2 of T^2 KL (ce = 0) or T^2 CE (ce = 1) */
static double soft_ref(const struct fx *f, double Tm, int ce)
{
    double sum = 0;
    for (int b = 0; b < 3; b++) {
        double ls[K], lt[K], r = 0;
        log_softmax(ls, f->zs + b * K, K, Tm);
        log_softmax(lt, f->zt + b * K, K, Tm);
        for (int k = 0; k < K; k++)
            r += ce ? -exp(lt[k]) * ls[k] : exp(lt[k]) * (lt[k] - ls[k]);
        sum += Tm * Tm * r;
    }
    return sum / 3;
}

static double max_abs_rows(const float *g, int b0, int b1, int64_t k)
{
    double m = 0;
    for (int64_t i = b0 * k; i < b1 * k; i++)
        m = fmax(m, fabs(g[i]));
    return m;
}

static void hard(void)
{
    struct fx *f = calloc(1, sizeof *f);
    struct loss_cfg l = cfg_of(LOSS_KIND_HARD, 1);
    setup(f, &l, 1, NULL, K);
    double ref = 0;
    for (int b = 0; b < 3; b += 2) {
        double ls[K];
        log_softmax(ls, f->zs + b * K, K, 1);
        ref -= ls[labels[b]];
    }
    ok_near(run(f), ref / 2, 1e-6, 0, "hard CE = mean over the 2 labelled real examples");
    ok(max_abs_rows(f->set.dlogits, 1, 2, K) == 0 && max_abs_rows(f->set.dlogits, 3, 4, K) == 0,
       "hard: no gradient for the unlabelled and the padding example");
    const double v1 = f->loss;
    f->st.norm_labelled = 8;
    ok_near(run(f), v1 / 4, 1e-12, 0, "hard: norm_labelled 8 (vs local 2) quarters the value");
    f->st.norm_labelled = 0;
    fd(f, "hard CE", 1e-2, 1e-3, 5e-6);
    kd_loss_set_free(&f->set);

    setup(f, &l, 1, NULL, 1); /* regression */
    ref = 0;
    for (int b = 0; b < 3; b++)
        ref += ((double)f->zs[b] - f->ys[b]) * ((double)f->zs[b] - f->ys[b]);
    ok_near(run(f), ref / 3, 1e-12, 0, "hard regression: MSE over the 3 real examples");
    fd(f, "hard MSE (K = 1)", 1e-2, 1e-6, 1e-9);
    kd_loss_set_free(&f->set);
    free(f);
}

static void soft(void)
{
    struct fx *f = calloc(1, sizeof *f);
    struct loss_cfg l = cfg_of(LOSS_KIND_SOFT, 2);
    struct kd_term_opts ce = {.soft_form = KD_SOFT_CE};
    setup(f, &l, 1, NULL, K);
    ok_near(run(f), soft_ref(f, 2, 0), 1e-12, 0, "soft KL at T = 2 vs double reference");
    const double kl = f->loss;
    ok(max_abs_rows(f->set.dlogits, 3, 4, K) == 0, "soft: no gradient for the padding example");
    f->zs[3 * K + 1] += 5;
    ok(run(f) == kl, "soft: the padding example's logits do not change the value");
    f->st.norm_examples = 6;
    ok_near(run(f), kl / 2, 1e-12, 0, "soft: norm_examples 6 (vs local 3) halves the value");
    float g6[B * K];
    memcpy(g6, f->set.dlogits, sizeof g6);
    f->st.norm_examples = 0;
    run(f);
    double worst = 0;
    for (int i = 0; i < B * K; i++)
        worst = fmax(worst, fabs(2 * g6[i] - f->set.dlogits[i]));
    ok(worst <= 1e-7 * max_abs_rows(f->set.dlogits, 0, B, K), "... and the gradient");
    fd(f, "soft KL T=2", 1e-3, 1e-4, 1e-9);
    kd_loss_set_free(&f->set);

    setup(f, &l, 1, &ce, K);
    ok_near(run(f), soft_ref(f, 2, 1), 1e-12, 0, "soft CE at T = 2 vs double reference");
    double H = 0;
    for (int b = 0; b < 3; b++) {
        double lt[K];
        log_softmax(lt, f->zt + b * K, K, 2);
        for (int k = 0; k < K; k++)
            H -= exp(lt[k]) * lt[k];
    }
    ok_near(f->loss - kl, 4 * H / 3, 1e-10, 0, "CE - KL = T^2 mean_b H(p_T)");
    fd(f, "soft CE T=2", 1e-3, 1e-4, 1e-9);
    kd_loss_set_free(&f->set);

    /* T^2: value and gradient at T = 4 */
    l = cfg_of(LOSS_KIND_SOFT, 4);
    setup(f, &l, 1, NULL, K);
    double plain = soft_ref(f, 4, 0) / 16;
    ok_near(run(f), 16 * plain, 1e-12, 0, "T = 4: value is 16 x KL(p_T || p_S) at T = 4");
    double werr = 0;
    for (int b = 0; b < 3; b++) {
        double ls[K], lt[K];
        log_softmax(ls, f->zs + b * K, K, 4);
        log_softmax(lt, f->zt + b * K, K, 4);
        for (int k = 0; k < K; k++) {
            double want = 4 * (exp(ls[k]) - exp(lt[k])) / 3;
            werr = fmax(werr, fabs(f->set.dlogits[b * K + k] - want) / fmax(fabs(want), 1e-3));
        }
    }
    ok(werr <= 1e-6, "T = 4: gradient is T (p_S - p_T) / N (max rel err %.2e)", werr);
    kd_loss_set_free(&f->set);

    /* temperature anneal */
    l = cfg_of(LOSS_KIND_SOFT, 4);
    l.temperature_end = 1;
    l.temperature_schedule = TEMP_SCHEDULE_LINEAR;
    ok(kd_soft_temperature(&l, 0, 101) == 4 && kd_soft_temperature(&l, 50, 101) == 2.5 &&
       kd_soft_temperature(&l, 100, 101) == 1 && kd_soft_temperature(&l, 200, 101) == 1,
       "linear 4 -> 1 over 101 steps: 4, 2.5, 1 at steps 0, 50, 100; 1 after the end");
    ok_near(kd_soft_temperature(&l, 25, 101), 3.25, 1e-15, 0, "step 25: 3.25");
    ok(kd_soft_temperature(&l, 7, 1) == 4, "a 1-step stage stays at the start temperature");
    struct loss_cfg cst = l;
    cst.temperature_schedule = TEMP_SCHEDULE_CONSTANT;
    ok(kd_soft_temperature(&cst, 50, 101) == 4, "constant schedule ignores temperature_end");
    setup(f, &l, 1, NULL, K);
    f->st.step = 50;
    f->st.total_steps = 101;
    const double annealed = run(f);
    kd_loss_set_free(&f->set);
    cst = cfg_of(LOSS_KIND_SOFT, 2.5);
    setup(f, &cst, 1, NULL, K);
    ok_near(annealed, run(f), 1e-12, 0, "the set at step 50 uses T = 2.5");
    kd_loss_set_free(&f->set);

    /* identity */
    l = cfg_of(LOSS_KIND_SOFT, 3);
    setup(f, &l, 1, NULL, K);
    memcpy(f->zt, f->zs, sizeof f->zt);
    ok(run(f) == 0 && max_abs_rows(f->set.dlogits, 0, B, K) == 0,
       "student = teacher logits: loss exactly 0 and gradient exactly 0");
    kd_loss_set_free(&f->set);

    /* regression: MSE to the teacher's prediction */
    setup(f, &l, 1, NULL, 1);
    double ref = 0;
    for (int b = 0; b < 3; b++)
        ref += ((double)f->zs[b] - f->zt[b]) * ((double)f->zs[b] - f->zt[b]);
    ok_near(run(f), ref / 3, 1e-12, 0, "soft, K = 1: MSE to the teacher's output, no T");
    fd(f, "soft MSE (K = 1)", 1e-2, 1e-6, 1e-9);
    kd_loss_set_free(&f->set);
    free(f);
}

static void combined(void)
{
    struct fx *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b), *c = calloc(1, sizeof *c);
    struct loss_cfg l[2] = {cfg_of(LOSS_KIND_HARD, 1), cfg_of(LOSS_KIND_SOFT, 2)};
    l[0].weight = 0.3;
    l[1].weight = 0.7;
    setup(a, l, 2, NULL, K);
    setup(b, &l[0], 1, NULL, K);
    setup(c, &l[1], 1, NULL, K);
    struct bert_grad_in g;
    memset(&g, 0, sizeof g);
    const double tot = kd_loss_set_compute(&a->set, &a->sv, &a->tv, &a->st, &a->vals, &g);
    const double vh = run(b) / 0.3, vs = run(c) / 0.7;
    ok_near(tot, 0.3 * vh + 0.7 * vs, 1e-12, 0, "total = 0.3 hard + 0.7 soft");
    ok_near(a->vals.term[0], vh, 1e-12, 0, "per-term value: hard (unweighted)");
    ok_near(a->vals.term[1], vs, 1e-12, 0, "per-term value: soft (unweighted)");
    double worst = 0;
    for (int i = 0; i < B * K; i++)
        worst = fmax(worst, fabs(a->set.dlogits[i] - b->set.dlogits[i] - c->set.dlogits[i]));
    ok(worst <= 1e-7 && g.dlogits == a->set.dlogits,
       "both terms accumulate into one dlogits, which g points at (err %.1e)", worst);
    const double w[2] = {2.0, 0.0};
    a->st.weights = w;
    ok_near(run(a), 2 * vh, 1e-12, 0, "kd_step weights override the job's (2, 0)");
    a->st.weights = NULL;
    struct kd_active act;
    memset(&act, 0, sizeof act);
    act.internal = 1;
    a->st.active = &act;
    g.dlogits = a->zs; /* must be reset */
    ok(kd_loss_set_compute(&a->set, &a->sv, &a->tv, &a->st, &a->vals, &g) == 0 &&
       !a->vals.on[0] && !a->vals.on[1] && g.dlogits == NULL,
       "output terms off: total 0, terms reported off, g.dlogits NULL");
    kd_loss_set_free(&a->set);
    kd_loss_set_free(&b->set);
    kd_loss_set_free(&c->set);
    free(a), free(b), free(c);
}

int main(void)
{
    hard();
    soft();
    combined();
    return done_testing();
}
