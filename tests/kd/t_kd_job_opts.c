/* t_kd_job_opts.c: the job keys losses.[].form and losses.[].rows reach the
 * loss terms. The demo job is loaded with --set form = "ce" on its soft
 * loss and rows = "all" on its attention loss, and its loss entries are
 * handed to kd_loss_set_init with opts = NULL, exactly as the distill
 * stage does. On random logits and attention maps (B = 3 examples of T = 5
 * tokens, one with two padded tokens, K = 2 labels, NH = 4 heads, student
 * 2 layers <-> teacher 4 layers uniformly):
 *   - the terms carry the job's choice (opts.soft_form, opts.attention_rows);
 *   - their values equal those of sets given the same options explicitly
 *     (bit for bit: the same computation), and differ from the defaults';
 *   - ce - kl = T^2 mean_b H(softmax(z_T / T)) (rel 1e-6, reference in
 *     double: the terms' row sums are double, the logits fp32);
 *   - the "all" rows value equals a double reference that averages KL
 *     over all T query rows of each example, and the "real" one a reference
 *     over the real rows only (rel 1e-5: one fp32 log per key). */
#include "kd/job/job.h"
#include "kd/kd/loss_set.h"
#include "../gradcheck.h"
#include "../model/bert_testutil.h"
#include "../tap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { B = 3, T = 5, K = 2, NH = 4, LS = 2, LT = 4 };

static const int32_t mask[B * T] = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1};

static const char *srcdir(void)
{
    const char *s = getenv("KD_SRCDIR");
    return s ? s : KD_TOP_SRCDIR;
}

/* Random attention probabilities (B,NH,T,T): softmax over real keys,
 * exactly 0 on padded keys; every query row, padded ones included, is a
 * distribution (the model's padded rows attend to the real keys too). */
static void make_probs(float *p, uint64_t seed)
{
    float s[B * NH * T * T];
    gc_rand(s, B * NH * T * T, -2, 2, seed);
    for (int b = 0; b < B; b++)
        for (int r = 0; r < NH * T; r++) {
            float *row = p + ((size_t)b * NH * T + (size_t)r) * T;
            const float *sr = s + ((size_t)b * NH * T + (size_t)r) * T;
            double z = 0;
            for (int k = 0; k < T; k++)
                z += mask[b * T + k] ? exp(sr[k]) : 0.0;
            for (int k = 0; k < T; k++)
                row[k] = mask[b * T + k] ? (float)(exp(sr[k]) / z) : 0.0f;
        }
}

/* mean_b (1/(NH |Q_b|)) sum_h sum_{q in Q_b} KL(pT row || pS row) */
static double attention_ref(const float *pS, const float *pT, int all_rows)
{
    double sum = 0;
    for (int b = 0; b < B; b++) {
        int n = 0;
        for (int t = 0; t < T; t++)
            n += mask[b * T + t];
        const int rows = all_rows ? T : n;
        double lb = 0;
        for (int h = 0; h < NH; h++)
            for (int q = 0; q < T; q++) {
                if (!all_rows && !mask[b * T + q])
                    continue;
                const size_t off = (((size_t)b * NH + (size_t)h) * T + (size_t)q) * T;
                for (int k = 0; k < T; k++)
                    if (mask[b * T + k] && pT[off + k] > 0)
                        lb += pT[off + k] * log((double)pT[off + k] / pS[off + k]);
            }
        sum += lb / (NH * rows);
    }
    return sum / B;
}

static double soft_entropy_ref(const float *zt, double temp)
{
    double h = 0;
    for (int b = 0; b < B; b++) {
        double m = -1e300, z = 0;
        for (int k = 0; k < K; k++)
            m = fmax(m, zt[b * K + k] / temp);
        for (int k = 0; k < K; k++)
            z += exp(zt[b * K + k] / temp - m);
        for (int k = 0; k < K; k++) {
            const double p = exp(zt[b * K + k] / temp - m) / z;
            h -= p * log(p);
        }
    }
    return temp * temp * h / B;
}

/* The value of the one-term set built from cfg (opts NULL: the job's). */
static double value_of(const struct loss_cfg *cfg, const struct kd_term_opts *o,
                       const struct kd_student_view *sv, const struct kd_teacher_view *tv,
                       struct kd_term_opts *seen)
{
    struct bert_config sc;
    bt_tiny_config(&sc, LS, NH, 2, 8, 16, 8, K);
    const struct kd_teacher_dims td = {.layers = LT, .hidden = 12, .heads = NH, .num_labels = K};
    struct kd_loss_set set;
    struct kd_err err;
    if (kd_loss_set_init(&set, cfg, 1, o, &sc, &td, B, T, 1, &err))
        bail_out("kd_loss_set_init: %s", err.msg);
    if (seen)
        *seen = set.term[0].opts;
    struct kd_step st = {.total_steps = 1};
    const double v = kd_loss_set_compute(&set, sv, tv, &st, NULL, NULL);
    kd_loss_set_free(&set);
    return v;
}

int main(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/jobs/demo.cfg", srcdir());
    const char *sets[] = {"stages.distill.losses.[1].form=ce",
                          "stages.distill.losses.[3].rows=all"};
    struct job job;
    struct job_errors errs = {0};
    if (job_load(&job, path, sets, 2, &errs))
        bail_out("%s: %s", path, errs.n ? errs.msgs[0] : "invalid");
    const struct stage_cfg *d = job_find_stage(&job, "distill");
    if (!d || d->n_losses != 4 || d->losses[1].kind != LOSS_KIND_SOFT ||
        d->losses[3].kind != LOSS_KIND_ATTENTION)
        bail_out("the demo's distill stage changed: expected losses hard, soft, hidden, attention");
    const struct loss_cfg *soft = &d->losses[1], *att = &d->losses[3];

    float zs[B * K], zt[B * K];
    static float ps[LS][B * NH * T * T], pt[LT][B * NH * T * T];
    gc_rand(zs, B * K, -3, 3, 21);
    gc_rand(zt, B * K, -3, 3, 22);
    for (int l = 0; l < LS; l++)
        make_probs(ps[l], 30 + (uint64_t)l);
    for (int l = 0; l < LT; l++)
        make_probs(pt[l], 40 + (uint64_t)l);
    struct kd_student_view sv = {.B = B, .T = T, .logits = zs};
    struct kd_teacher_view tv = {.B = B, .T = T, .attention_mask = mask, .logits = zt};
    for (int l = 0; l < LS; l++)
        sv.probs[l] = ps[l];
    for (int l = 0; l < LT; l++)
        tv.probs[l] = pt[l];

    /* soft: form */
    struct kd_term_opts seen;
    const struct kd_term_opts kl = {KD_SOFT_KL, KD_ATTN_ROWS_REAL},
                              ce = {KD_SOFT_CE, KD_ATTN_ROWS_REAL};
    const double v_job = value_of(soft, NULL, &sv, &tv, &seen);
    ok(seen.soft_form == KD_SOFT_CE, "form = \"ce\" in the job: the soft term's form is CE");
    const double v_ce = value_of(soft, &ce, &sv, &tv, NULL);
    const double v_kl = value_of(soft, &kl, &sv, &tv, NULL);
    ok(v_job == v_ce, "soft value through the job (%.9g) = with explicit CE options (%.9g)",
       v_job, v_ce);
    ok(v_job != v_kl, "and differs from the default KL form (%.9g)", v_kl);
    const double h = soft_entropy_ref(zt, soft->temperature);
    ok_near(v_ce - v_kl, h, 1e-6, 0, "ce - kl = T^2 mean H(p_T) (T = %g): %.9g", soft->temperature,
            h);

    /* attention: rows */
    const struct kd_term_opts real = {KD_SOFT_KL, KD_ATTN_ROWS_REAL},
                              all = {KD_SOFT_KL, KD_ATTN_ROWS_ALL};
    const double a_job = value_of(att, NULL, &sv, &tv, &seen);
    ok(seen.attention_rows == KD_ATTN_ROWS_ALL,
       "rows = \"all\" in the job: the attention term averages all rows");
    const double a_all = value_of(att, &all, &sv, &tv, NULL);
    const double a_real = value_of(att, &real, &sv, &tv, NULL);
    ok(a_job == a_all, "attention value through the job (%.9g) = with explicit rows all (%.9g)",
       a_job, a_all);
    ok(a_job != a_real, "and differs from the default real rows (%.9g)", a_real);
    /* uniform map 2 -> 4: student 1 <-> teacher 2, student 2 <-> teacher 4 */
    const double r_all = attention_ref(ps[0], pt[1], 1) + attention_ref(ps[1], pt[3], 1);
    const double r_real = attention_ref(ps[0], pt[1], 0) + attention_ref(ps[1], pt[3], 0);
    ok_near(a_all, r_all, 1e-5, 0, "rows all = double reference over all T rows (%.9g)", r_all);
    ok_near(a_real, r_real, 1e-5, 0, "rows real = double reference over real rows (%.9g)",
            r_real);

    /* the default job (no --set) keeps the defaults */
    struct job plain;
    struct job_errors errs2 = {0};
    if (job_load(&plain, path, NULL, 0, &errs2))
        bail_out("%s: %s", path, errs2.n ? errs2.msgs[0] : "invalid");
    const struct stage_cfg *pd = job_find_stage(&plain, "distill");
    ok(value_of(&pd->losses[1], NULL, &sv, &tv, &seen) == v_kl && seen.soft_form == KD_SOFT_KL,
       "the demo without --set: KL form");
    ok(value_of(&pd->losses[3], NULL, &sv, &tv, &seen) == a_real &&
           seen.attention_rows == KD_ATTN_ROWS_REAL,
       "the demo without --set: real rows");
    job_errors_free(&errs2);
    job_free(&plain);
    job_errors_free(&errs);
    job_free(&job);
    return done_testing();
}
