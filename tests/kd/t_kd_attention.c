/* t_kd_attention.c: the attention-map term through the loss set on plain
 * arrays (kd/loss_set.h, src/kd/loss_attention.c).
 *
 * Batch: B = 3 examples of T = 5 tokens, NH = 2 heads; example 1 has 2
 * padded tokens, example 2 is batch padding. Student L_s = 2, teacher
 * L_t = 4, uniform map (1 <-> 2, 2 <-> 4). The student's probabilities are
 * the fp32 masked softmax (kernels/softmax.h) of random scores S, as
 * bert_forward computes them; the teacher's likewise from other scores.
 *   value vs a double reference (rel 1e-6: p_S and the logs are fp32): mean over heads
 *     and real query rows of KL(p_T || p_S) over real keys, per example,
 *     then over the 2 real examples, summed over pairs;
 *   FD of d loss / d S (the pre-softmax scores: the loss is recomputed
 *     through the softmax), eps 1e-2, rel 1e-3, abs 1e-6, for real rows,
 *     for all rows, and for a teacher whose rows sum to 0.9 (as fp16
 *     storage can leave them) where the exact gradient p_S s_T - p_T
 *     differs from p_S - p_T;
 *   padding: exactly zero gradient on padded keys, padded query rows and
 *     the padding example; changing the teacher's padded rows or the
 *     padding example changes nothing (real rows);
 *   rows "all" averages over T rows: its value differs from "real";
 *   identity: p_S = p_T gives exactly 0 loss and a gradient below 1e-7
 *     (p_S (s_T - 1), s_T = 1 within fp32 rounding);
 *   the dscores handed to the backward are indexed 0-based by layer
 *     (bert_grad_in.dscores[l - 1]) and NULL for inactive pairs. */
#include "kd/kd/loss_set.h"
#include "kd/kernels/softmax.h"
#include "../gradcheck.h"
#include "../model/bert_testutil.h"
#include "../tap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { B = 3, T = 5, NH = 2, LS = 2, LT = 4, N4 = B * NH * T * T };

static const int32_t mask[B * T] = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0};

struct fx {
    struct kd_loss_set set;
    struct kd_student_view sv;
    struct kd_teacher_view tv;
    struct kd_step st;
    float S[LS][N4], pS[LS][N4], pT[LT][N4], gS[LS][N4];
    float dy[1];
    double loss;
};

static void probs(float *p, const float *s)
{
    softmax_forward(p, s, mask, NULL, B * NH * T, T, NH * T);
}

static void setup(struct fx *f, int rows, double teacher_sum)
{
    memset(f, 0, sizeof *f);
    struct bert_config cfg;
    bt_tiny_config(&cfg, LS, NH, 2, 8, 10, 8, 2);
    struct kd_teacher_dims td = {.layers = LT, .hidden = 8, .heads = NH, .num_labels = 2};
    struct loss_cfg l;
    memset(&l, 0, sizeof l);
    l.kind = LOSS_KIND_ATTENTION;
    l.line = 6;
    l.weight = 1.0;
    l.map = LAYER_MAP_UNIFORM;
    struct kd_term_opts o = {.attention_rows = rows};
    struct kd_err err;
    if (kd_loss_set_init(&f->set, &l, 1, &o, &cfg, &td, B, T, 1, &err))
        bail_out("%s", err.msg);
    float s[N4];
    for (int k = 0; k < LS; k++) {
        gc_rand(f->S[k], N4, -2, 2, 30 + (uint64_t)k);
        probs(f->pS[k], f->S[k]);
        f->sv.probs[k] = f->pS[k];
    }
    for (int k = 0; k < LT; k++) {
        gc_rand(s, N4, -2, 2, 50 + (uint64_t)k);
        probs(f->pT[k], s);
        for (int i = 0; i < N4; i++)
            f->pT[k][i] *= (float)teacher_sum;
        f->tv.probs[k] = f->pT[k];
    }
    f->sv.B = f->tv.B = B;
    f->sv.T = f->tv.T = T;
    f->tv.attention_mask = mask;
    f->st.total_steps = 1;
}

static double run(struct fx *f)
{
    f->loss = kd_loss_set_compute(&f->set, &f->sv, &f->tv, &f->st, NULL, NULL);
    return f->loss;
}

static void fwd(void *p)
{
    struct fx *f = p;
    for (int k = 0; k < LS; k++)
        probs(f->pS[k], f->S[k]);
    run(f);
}

static void bwd(void *p)
{
    struct fx *f = p;
    for (int k = 0; k < LS; k++)
        for (int i = 0; i < N4; i++)
            f->gS[k][i] += f->dy[0] * f->set.dscores[k + 1][i];
}

static void fd(struct fx *f, const char *what)
{
    struct gc_output out = {"loss", NULL, &f->loss, f->dy, 1};
    struct gc_param prm[2] = {{"scores layer 1", f->S[0], f->gS[0], N4},
                              {"scores layer 2", f->S[1], f->gS[1], N4}};
    struct gc_problem p = {what, f, fwd, bwd, &out, 1, prm, 2};
    struct gc_opts o = {.eps = 1e-2, .rel_tol = 1e-3, .abs_tol = 1e-6, .check_accumulate = 1,
                        .seed = 8};
    memset(f->gS, 0, sizeof f->gS);
    gradcheck(&p, &o);
}

static double reference(const struct fx *f, int all_rows)
{
    double total = 0;
    for (int l = 1; l <= LS; l++) {
        const float *ps = f->pS[l - 1], *pt = f->pT[2 * l - 1];
        double sum = 0;
        for (int b = 0; b < 2; b++) {
            int n = 0;
            for (int t = 0; t < T; t++)
                n += mask[b * T + t];
            const int rows = all_rows ? T : n;
            double lb = 0;
            for (int h = 0; h < NH; h++)
                for (int q = 0; q < T; q++) {
                    if (!all_rows && !mask[b * T + q])
                        continue;
                    for (int k = 0; k < T; k++) {
                        const size_t i = (((size_t)b * NH + h) * T + q) * T + k;
                        if (mask[b * T + k] && pt[i] > 0)
                            lb += pt[i] * (log((double)pt[i]) - log((double)ps[i]));
                    }
                }
            sum += lb / (NH * rows);
        }
        total += sum / 2;
    }
    return total;
}

static void values_and_fd(void)
{
    struct fx *f = malloc(sizeof *f);
    setup(f, KD_ATTN_ROWS_REAL, 1.0);
    const double v = run(f);
    ok_near(v, reference(f, 0), 1e-6, 0, "real rows: value vs double reference");
    double pad = 0;
    for (int l = 1; l <= LS; l++)
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++)
                for (int q = 0; q < T; q++)
                    for (int k = 0; k < T; k++)
                        if (!mask[b * T + q] || !mask[b * T + k])
                            pad = fmax(pad, fabs(f->set.dscores[l][(((b * NH + h) * T + q) * T) + k]));
    ok(pad == 0, "exactly zero gradient on padded keys, padded rows, the padding example");
    f->pT[1][((1 * NH + 1) * T + 4) * T + 2] = 0.7f; /* a padded query row of example 1 */
    f->pT[3][((2 * NH + 0) * T + 0) * T + 0] = 0.3f; /* the padding example */
    ok(run(f) == v, "teacher padded rows and the padding example change nothing");
    fd(f, "attention real rows");
    free(f);

    f = malloc(sizeof *f);
    setup(f, KD_ATTN_ROWS_ALL, 1.0);
    ok_near(run(f), reference(f, 1), 1e-6, 0, "all rows: value vs double reference");
    ok(fabs(f->loss - v) > 1e-3, "all rows differ from real rows (%.4f vs %.4f)", f->loss, v);
    fd(f, "attention all rows");
    free(f);

    f = malloc(sizeof *f);
    setup(f, KD_ATTN_ROWS_REAL, 0.9);
    ok_near(run(f), reference(f, 0), 1e-6, 0, "teacher rows summing to 0.9: value");
    fd(f, "attention, teacher rows sum to 0.9");
    free(f);
}

static void identity_and_taps(void)
{
    struct fx *f = malloc(sizeof *f);
    setup(f, KD_ATTN_ROWS_REAL, 1.0);
    memcpy(f->pT[1], f->pS[0], sizeof f->pT[1]);
    memcpy(f->pT[3], f->pS[1], sizeof f->pT[3]);
    double g = 0;
    const double v = run(f);
    for (int l = 1; l <= LS; l++)
        for (int i = 0; i < N4; i++)
            g = fmax(g, fabs(f->set.dscores[l][i]));
    ok(v == 0 && g < 1e-7, "p_S = p_T: loss exactly 0, max gradient %.1e", g);

    struct kd_active a;
    memset(&a, 0, sizeof a);
    a.internal = 1;
    a.layer[2] = 1;
    f->st.active = &a;
    struct bert_grad_in gin;
    memset(&gin, 0, sizeof gin);
    kd_loss_set_compute(&f->set, &f->sv, &f->tv, &f->st, NULL, &gin);
    ok(gin.dscores[1] == f->set.dscores[2] && gin.dscores[0] == NULL &&
       gin.dhidden[2] == NULL && gin.dlogits == NULL,
       "layer 2 only: bert_grad_in.dscores[1] is its buffer, dscores[0] NULL");
    free(f);
}

int main(void)
{
    values_and_fd();
    identity_and_taps();
    return done_testing();
}
