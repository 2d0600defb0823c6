/* p_linalg_init.c: the ScaLAPACK-backed student initialisers on 1, 2 and 4
 * ranks, and the ablation that justifies them.
 *
 *   p_linalg_init OUT          run; rank 0 prints TAP, writes the MSEs to OUT
 *   p_linalg_init --compare A B   the MSEs of two runs agree to 1e-4 (no MPI)
 *
 * Teacher: random BERT, 4 layers, hidden 64 (4 heads of 16), FFN 128,
 * vocabulary 64, std 0.1 (weights large enough that layers change the
 * hidden states). Student: 2 layers, hidden 32 (4 heads of 8: the head-size
 * reduction path), FFN 64 (the neuron selection path), uniform map 2, 4.
 * Data: 48 "fit" sequences (PCA basis and projection fit) and 16 held-out
 * "eval" sequences of up to 16 tokens (padded), shared unevenly over the
 * ranks (one rank gets none at 4 ranks).
 *
 * Metric: mean squared error per element between the teacher hidden state
 * and the student's mapped back into the teacher's space, over the real
 * eval tokens of the pairs (h_0, h_0), (h_1, h_2), (h_2, h_4), for
 *   pca student  + back-projection U z + c     vs   random student + U z + c
 *   pca student  + fitted W (PDGELS on fit)    vs   random student + fitted W
 * and the mean predictor (every token -> the teacher mean) as a floor. The
 * PCA student must start lower in both comparisons (with U: below half,
 * overall and at the deepest pair), and below the mean predictor overall. */
#include "kd/init/student_init.h"
#include "kd/parallel/comm.h"
#include "kd/core/rng.h"
#include "../model/bert_testutil.h"
#include "../tap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { V = 64, MP = 32, T = 16, N_FIT = 48, N_EVAL = 16, CT = 64, CS = 32, NPAIR = 3 };
static const int pair_s[NPAIR] = {0, 1, 2}, pair_t[NPAIR] = {0, 2, 4};

struct data {
    int32_t ids[N_FIT * T], mask[N_FIT * T];
    int n;
};

static void make_data(struct data *d, int n, uint64_t stream)
{
    d->n = n;
    for (int i = 0; i < n * T; i++) {
        int row = i / T, len = 6 + (int)(rng_bits_at(4, stream, (uint64_t)row) % (T - 5));
        d->ids[i] = (int32_t)(rng_bits_at(4, stream + 1, (uint64_t)i) % V);
        d->mask[i] = i % T < len;
    }
}

/* Sequences [first, first+count) of n for this rank: uneven, one empty at 4. */
static void share(int n, int rank, int size, int *first, int *count)
{
    static const int cut4[5] = {0, 3, 3, 9, 16}; /* sixteenths of n */
    if (size == 1) {
        *first = 0, *count = n;
    } else if (size == 2) {
        *first = rank ? n / 4 : 0, *count = rank ? n - n / 4 : n / 4;
    } else {
        *first = n * cut4[rank] / 16, *count = n * cut4[rank + 1] / 16 - *first;
    }
}

static struct bert_batch batch_of(const struct data *d, int first, int count)
{
    struct bert_batch b = {.B = count, .T = T, .input_ids = d->ids + first * T,
                           .attention_mask = d->mask + first * T};
    return b;
}

static void make_model(struct bert_model *m, int64_t L, int64_t NH, int64_t HS, int64_t F)
{
    struct bert_config cfg;
    bt_tiny_config(&cfg, L, NH, HS, F, V, MP, 2);
    struct bert_opts o = {.B = N_FIT, .T = T};
    struct kd_err err;
    if (bert_init(m, &cfg, &o, &err) != 0)
        bail_out("bert_init: %s", err.msg);
}

/* Row pairs (student, teacher) of every mapped layer over the real tokens
 * of this rank's sequences; returns the row count. */
static int64_t pairs(float *srows, float *trows, struct bert_model *s, struct bert_model *t,
                     const struct bert_batch *b)
{
    if (b->B == 0)
        return 0;
    bert_forward(t, b);
    bert_forward(s, b);
    int64_t n = 0;
    for (int p = 0; p < NPAIR; p++) {
        int64_t ns = student_token_rows(srows + n * CS, s, pair_s[p], b->attention_mask,
                                        b->B, T);
        int64_t nt = student_token_rows(trows + n * CT, t, pair_t[p], b->attention_mask,
                                        b->B, T);
        if (ns != nt)
            bail_out("row counts differ: %lld vs %lld", (long long)ns, (long long)nt);
        n += ns;
    }
    return n;
}

/* Sum over ranks of squared errors / (rows * CT). pred (n, CT). */
static double mse(const struct comm *c, const float *pred, const float *want, int64_t n)
{
    double s[2] = {0, (double)n * CT};
    for (int64_t i = 0; i < n * CT; i++)
        s[0] += ((double)pred[i] - want[i]) * ((double)pred[i] - want[i]);
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, s, 2, MPI_DOUBLE, MPI_SUM, c->world));
    return s[0] / s[1];
}

/* pred = srows W^T + b, nn.Linear layout weight (CT, CS) */
static void apply_fit(float *pred, const float *srows, int64_t n, const float *w,
                      const float *bias)
{
    for (int64_t r = 0; r < n; r++)
        for (int64_t i = 0; i < CT; i++) {
            double v = bias[i];
            for (int64_t j = 0; j < CS; j++)
                v += (double)w[i * CS + j] * srows[r * CS + j];
            pred[r * CT + i] = (float)v;
        }
}

static int compare(const char *fa, const char *fb)
{
    double a[16], b[16];
    FILE *f = fopen(fa, "rb"), *g = fopen(fb, "rb");
    if (!f || !g)
        bail_out("cannot open %s or %s", fa, fb);
    size_t na = fread(a, 8, 16, f), nb = fread(b, 8, 16, g);
    fclose(f), fclose(g);
    double m = na == nb && na > 0 ? 0 : INFINITY;
    for (size_t i = 0; i < na && i < nb; i++)
        m = fmax(m, fabs(a[i] - b[i]) / fmax(fabs(a[i]), 1e-30));
    ok(m <= 1e-4, "MSEs agree: max rel diff %.3g <= 1e-4 (%zu values)", m, na);
    return done_testing();
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--compare") == 0)
        return compare(argv[2], argv[3]);
    struct comm c;
    comm_init(&c, &argc, &argv);
    if (argc != 2)
        bail_out("usage: p_linalg_init OUT | --compare A B");
    struct scalapack_grid g;
    struct kd_err err;
    if (scalapack_grid_init(&g, &c, 8, &err) != 0)
        bail_out("%s", err.msg);

    static struct data fit, ev;
    make_data(&fit, N_FIT, 10);
    make_data(&ev, N_EVAL, 20);
    int ff, fc, ef, ec;
    share(N_FIT, c.rank, c.size, &ff, &fc);
    share(N_EVAL, c.rank, c.size, &ef, &ec);
    struct bert_batch bfit = batch_of(&fit, ff, fc), bev = batch_of(&ev, ef, ec);

    struct bert_model t, s_pca, s_rnd;
    make_model(&t, 4, 4, 16, 128);
    bert_init_random(&t, 1, 0.1f);
    make_model(&s_pca, 2, 4, 8, 64);
    make_model(&s_rnd, 2, 4, 8, 64);
    student_init_random(&s_rnd, 5);

    int64_t map[2];
    if (student_layer_map(map, NULL, 0, 2, 4, &err) != 0)
        bail_out("%s", err.msg);
    struct scalapack_pca basis;
    int rc = student_pca_basis(&basis, &g, &t, &bfit, map, 2, CS, &err);
    if (rc == 0)
        rc = student_init_pca(&s_pca, &t, &basis, NULL, 0, 5, &err);
    if (comm_agree_max(&c, rc != 0))
        bail_out("pca init: %s", err.msg);

    size_t cap = (size_t)NPAIR * N_FIT * T;
    float *sr = kd_malloc(cap * CS * 4), *tr = kd_malloc(cap * CT * 4);
    float *sr2 = kd_malloc(cap * CS * 4), *tr2 = kd_malloc(cap * CT * 4);
    float *pred = kd_malloc(cap * CT * 4);
    float w[CT * CS], bias[CT];
    double r[10]; /* pca_U, rnd_U, pca_fit, rnd_fit, mean, pca_U h0, pca_U last, r2 pca,
                 * mean at the last pair, random + U at the last pair */
    struct bert_model *studs[2] = {&s_pca, &s_rnd};
    for (int which = 0; which < 2; which++) {
        struct bert_model *s = studs[which];
        /* back-projection by U */
        int64_t n = pairs(sr, tr, s, &t, &bev);
        student_pca_backproject(pred, &basis, sr, n);
        r[which] = mse(&c, pred, tr, n);
        int64_t per = n / NPAIR; /* rows per pair (same tokens) */
        if (which == 1)
            r[9] = mse(&c, pred + 2 * per * CT, tr + 2 * per * CT, per);
        if (which == 0) {
            r[5] = mse(&c, pred, tr, per);
            r[6] = mse(&c, pred + 2 * per * CT, tr + 2 * per * CT, per);
            for (int64_t i = 0; i < n; i++) /* the mean predictor */
                for (int64_t j = 0; j < CT; j++)
                    pred[i * CT + j] = (float)basis.mean[j];
            r[4] = mse(&c, pred, tr, n);
            r[8] = mse(&c, pred + 2 * per * CT, tr + 2 * per * CT, per);
        }
        /* projection fitted by PDGELS on the fit sequences, judged on eval */
        int64_t nf = pairs(sr2, tr2, s, &t, &bfit);
        double r2;
        if (student_fit_projection(w, bias, &r2, &g, sr2, tr2, nf, CS, CT, 1e-3, &err) != 0)
            bail_out("%s", err.msg);
        if (which == 0)
            r[7] = r2;
        apply_fit(pred, sr, n, w, bias);
        r[2 + which] = mse(&c, pred, tr, n);
    }

    if (c.rank == 0) {
        diag("hidden-state MSE per element on %d held-out sequences, %d ranks:", N_EVAL,
             c.size);
        diag("  mean predictor %.5f | back-projection by U: pca %.5f, random %.5f | "
             "PDGELS-fitted W: pca %.5f (fit R^2 %.3f), random %.5f", r[4], r[0], r[1], r[2],
             r[7], r[3]);
        double kept = 0;
        for (int i = 0; i < CS; i++)
            kept += basis.variance[i];
        diag("  pca + U per pair: (h0,h0) %.5f, (h2,h4) %.5f; the %d axes keep %.3f of the "
             "variance", r[5], r[6], CS, kept / basis.total_variance);
        ok(r[0] < 0.5 * r[1], "pca student + U (%.5f) < half of random student + U (%.5f)",
           r[0], r[1]);
        ok(r[2] < r[3], "pca student + fitted W (%.5f) < random student + fitted W (%.5f)",
           r[2], r[3]);
        ok(r[0] < r[4], "pca student + U (%.5f) beats the mean predictor (%.5f) overall", r[0],
           r[4]);
        /* Not asserted, reported: LayerNorm does not commute with the
         * projection, so the U back-projection drifts with depth and at the
         * deepest pair it is above the mean predictor (0.506 vs 0.434 when
         * written); the fitted W is the remedy (and is asserted above). */
        diag("  deepest pair (h2,h4) with U: pca %.5f, random %.5f, mean predictor %.5f",
             r[6], r[9], r[8]);
        ok(r[6] < 0.5 * r[9], "pca + U < half of random + U at the deepest pair too: %.5f "
           "< %.5f / 2", r[6], r[9]);
        FILE *f = fopen(argv[1], "wb");
        if (!f || fwrite(r, 8, 10, f) != 10)
            bail_out("cannot write %s", argv[1]);
        fclose(f);
    }
    free(sr), free(tr), free(sr2), free(tr2), free(pred);
    scalapack_pca_free(&basis);
    bert_free(&t), bert_free(&s_pca), bert_free(&s_rnd);
    scalapack_grid_free(&g);
    comm_finalize(&c);
    return c.rank == 0 ? done_testing() : 0;
}
