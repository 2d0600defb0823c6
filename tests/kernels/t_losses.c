/* t_losses.c: cross-entropy and MSE.
 *   CE forward vs a double log-sum-exp reference with ignored rows
 *     (-100): rel err 1e-6; logits near +-1e4 stay finite and exact (rel
 *     1e-6); all rows ignored gives 0 and no gradient; the cached and
 *     recomputed log-sum-exp give identical gradients;
 *   MSE forward vs double: rel 1e-12 (summed in double);
 *   FD gradients (loss returned in double, weighted by the upstream dloss):
 *     CE logits eps 1e-2, rel 1e-3, abs 1e-5; MSE pred and target
 *     eps 1e-2, rel 1e-4, abs 1e-6 (quadratic: central differences exact). */
#include "kd/kernels/losses.h"
#include "../gradcheck.h"
#include "../tap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { N = 6, K = 19, M = 41 };

static const int32_t targets[N] = {3, LOSS_IGNORE_INDEX, 0, 18, 7, LOSS_IGNORE_INDEX};

struct ce {
    float logits[N * K], dlogits[N * K], lse[N], dloss;
    double loss;
};

static void ce_fwd(void *p)
{
    struct ce *c = p;
    c->loss = crossentropy_forward(c->lse, c->logits, targets, N, K);
}

static void ce_bwd(void *p)
{
    struct ce *c = p;
    crossentropy_backward(c->dlogits, c->dloss, c->logits, c->lse, targets, N, K);
}

struct mse {
    float pred[M], target[M], dpred[M], dtarget[M], dloss;
    double loss;
};

static void mse_fwd(void *p)
{
    struct mse *c = p;
    c->loss = mse_forward(c->pred, c->target, M);
}

static void mse_bwd(void *p)
{
    struct mse *c = p;
    mse_backward(c->dpred, c->dtarget, c->dloss, c->pred, c->target, M);
}

static double ref_ce(const float *logits, const int32_t *t, int n, int k)
{
    double sum = 0;
    int valid = 0;
    for (int r = 0; r < n; r++) {
        if (t[r] == LOSS_IGNORE_INDEX)
            continue;
        double m = -INFINITY, s = 0;
        for (int j = 0; j < k; j++)
            m = fmax(m, logits[r * k + j]);
        for (int j = 0; j < k; j++)
            s += exp((double)logits[r * k + j] - m);
        sum += m + log(s) - logits[r * k + t[r]];
        valid++;
    }
    return valid ? sum / valid : 0.0;
}

static void test_ce(void)
{
    struct ce *c = calloc(1, sizeof *c);
    gc_rand(c->logits, N * K, -3, 3, 1);
    ce_fwd(c);
    ok_near(c->loss, ref_ce(c->logits, targets, N, K), 1e-6, 0.0,
            "cross-entropy vs double reference, ignore_index rows skipped");

    /* stability: logits near +-1e4 */
    float big[N * K];
    for (int i = 0; i < N * K; i++)
        big[i] = c->logits[i] + (i % 2 ? 1.0e4f : -1.0e4f);
    double lb = crossentropy_forward(NULL, big, targets, N, K);
    ok(isfinite(lb), "cross-entropy of logits near +-1e4 is finite");
    ok_near(lb, ref_ce(big, targets, N, K), 1e-6, 0.0, "and matches the reference");

    /* cached vs recomputed log-sum-exp */
    float d1[N * K] = {0}, d2[N * K] = {0};
    crossentropy_backward(d1, 1.0f, c->logits, c->lse, targets, N, K);
    crossentropy_backward(d2, 1.0f, c->logits, NULL, targets, N, K);
    ok(memcmp(d1, d2, sizeof d1) == 0, "backward with cached or recomputed lse is identical");
    int ign = 1;
    for (int j = 0; j < K; j++)
        ign &= d1[1 * K + j] == 0.0f && d1[5 * K + j] == 0.0f;
    ok(ign, "ignored rows get no gradient");
    double rowsum = 0;
    for (int j = 0; j < K; j++)
        rowsum += d1[j];
    ok(fabs(rowsum) < 1e-7, "each row's gradient sums to 0 (softmax - onehot), %.2g", rowsum);

    /* all rows ignored */
    int32_t none[N];
    for (int r = 0; r < N; r++)
        none[r] = LOSS_IGNORE_INDEX;
    float d3[N * K] = {0};
    double l0 = crossentropy_forward(NULL, c->logits, none, N, K);
    crossentropy_backward(d3, 1.0f, c->logits, NULL, none, N, K);
    int z = 1;
    for (int i = 0; i < N * K; i++)
        z &= d3[i] == 0.0f;
    ok(l0 == 0.0 && z, "all rows ignored: loss 0, no gradient");

    struct gc_output outs[] = {{"loss", NULL, &c->loss, &c->dloss, 1}};
    struct gc_param prm[] = {{"logits", c->logits, c->dlogits, N * K}};
    struct gc_problem p = {"crossentropy", c, ce_fwd, ce_bwd, outs, 1, prm, 1};
    struct gc_opts o = {.eps = 1e-2, .rel_tol = 1e-3, .abs_tol = 1e-5,
                        .max_entries = 0, .check_accumulate = 1, .seed = 8};
    gradcheck(&p, &o);
    free(c);
}

static void test_mse(void)
{
    struct mse *c = calloc(1, sizeof *c);
    gc_rand(c->pred, M, -2, 2, 3);
    gc_rand(c->target, M, -2, 2, 4);
    mse_fwd(c);
    double want = 0;
    for (int i = 0; i < M; i++)
        want += ((double)c->pred[i] - c->target[i]) * ((double)c->pred[i] - c->target[i]);
    ok_near(c->loss, want / M, 1e-12, 0.0, "MSE vs double reference");
    ok(mse_forward(c->pred, c->pred, M) == 0.0, "MSE of identical tensors is 0");

    struct gc_output outs[] = {{"loss", NULL, &c->loss, &c->dloss, 1}};
    struct gc_param prm[] = {{"pred", c->pred, c->dpred, M}, {"target", c->target, c->dtarget, M}};
    struct gc_problem p = {"mse", c, mse_fwd, mse_bwd, outs, 1, prm, 2};
    struct gc_opts o = {.eps = 1e-2, .rel_tol = 1e-4, .abs_tol = 1e-6,
                        .max_entries = 0, .check_accumulate = 1, .seed = 6};
    gradcheck(&p, &o);
    float dp[M] = {0};
    mse_backward(dp, NULL, 1.0f, c->pred, c->target, M);
    ok(dp[0] == 2.0f * (c->pred[0] - c->target[0]) / M, "NULL dtarget (constant teacher) is "
                                                         "allowed");
    free(c);
}

int main(void)
{
    test_ce();
    test_mse();
    return done_testing();
}
