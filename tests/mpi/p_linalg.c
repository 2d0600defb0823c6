/* p_linalg.c: the ScaLAPACK drivers of parallel/scalapack.h against serial
 * double-precision references computed here, on 1, 2 and 4 ranks.
 *
 *   p_linalg SPLIT NB OUT     run the checks; SPLIT = uneven | first-empty
 *                             (how the rows are shared, see share()), NB the
 *                             block size; writes every result to OUT (raw
 *                             doubles) for the cross-rank comparison
 *   p_linalg --compare A B    max difference of two OUT files (no MPI)
 *
 * Data (a pure function of the global row index, so every rank count sees
 * the same matrix):
 *   PCA:  x_i = mu + sum_r s_r z_ir v_r + sigma e_i, d = 48, planted rank 4
 *         with s = (6, 4, 3, 2), sigma = 0.3, |mu| ~ 5 (tests the centring),
 *         v_r orthonormal; k = 4 (eigengaps >= 5, so the axes are well
 *         conditioned; noise axes would not be).
 *   LS:   b_i = a_i W0 + b0 + 0.1 e_i, p = 24, q = 16, a_i ~ N(0, diag(c)).
 * References: mean/covariance in double + cyclic Jacobi (PCA); normal
 * equations in double + Cholesky (LS, all cases well conditioned:
 * cond(A^T A) < 100, so their error is ~1e-13).
 * Tolerances (rel = relative to max(|ref|, 1)): eigenvalues 1e-10, axes and
 * mean 1e-9 abs, W and bias 1e-9, rss/tss 1e-9; across rank counts 1e-9.
 * Plus: refusals (k > d, too few rows), and a sweep of small d with a block
 * size of 64 (the PDSYEVD workspace trap, see scalapack_pca.c).
 * Rank 0 prints TAP; the exit status is the verdict on every rank. */
#include "kd/parallel/comm.h"
#include "kd/parallel/scalapack.h"
#include "kd/core/rng.h"
#include "../tap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N_PCA = 1000, D = 48, R = 4, K = 4, N_LS = 600, P = 24, Q = 16, N_SMALL = 10 };

static const double strength[R] = {6, 4, 3, 2};

/* ---- data ---------------------------------------------------------------- */

static void orthonormal(double *v, int r, int d, uint64_t seed)
{
    float *f = kd_malloc((size_t)r * d * sizeof *f);
    rng_normal(f, 0, 1, seed, 1, 0, (int64_t)r * d);
    for (int i = 0; i < r * d; i++)
        v[i] = f[i];
    free(f);
    for (int i = 0; i < r; i++) { /* modified Gram-Schmidt */
        for (int j = 0; j < i; j++) {
            double dot = 0;
            for (int t = 0; t < d; t++)
                dot += v[i * d + t] * v[j * d + t];
            for (int t = 0; t < d; t++)
                v[i * d + t] -= dot * v[j * d + t];
        }
        double nrm = 0;
        for (int t = 0; t < d; t++)
            nrm += v[i * d + t] * v[i * d + t];
        for (int t = 0; t < d; t++)
            v[i * d + t] /= sqrt(nrm);
    }
}

static float *pca_data(double *dirs)
{
    orthonormal(dirs, R, D, 11);
    float *x = kd_malloc((size_t)N_PCA * D * sizeof *x);
    float *z = kd_malloc((size_t)N_PCA * R * sizeof *z), *e = kd_malloc((size_t)N_PCA * D * 4);
    float mu[D];
    rng_normal(z, 0, 1, 12, 2, 0, (int64_t)N_PCA * R);
    rng_normal(e, 0, 1, 12, 3, 0, (int64_t)N_PCA * D);
    rng_uniform(mu, -5, 5, 12, 4, 0, D);
    for (int i = 0; i < N_PCA; i++)
        for (int j = 0; j < D; j++) {
            double v = mu[j] + 0.3 * e[i * D + j];
            for (int r = 0; r < R; r++)
                v += strength[r] * z[i * R + r] * dirs[r * D + j];
            x[i * D + j] = (float)v;
        }
    free(z), free(e);
    return x;
}

static void ls_data(float *a, float *b, int n, uint64_t seed)
{
    float *w0 = kd_malloc(P * Q * sizeof *w0), b0[Q], *e = kd_malloc((size_t)n * Q * 4);
    rng_normal(a, 0, 1, seed, 5, 0, (int64_t)n * P);
    rng_normal(w0, 0, 1, 13, 6, 0, P * Q);
    rng_normal(b0, 2, 1, 13, 7, 0, Q);
    rng_normal(e, 0, 0.1f, seed, 8, 0, (int64_t)n * Q);
    for (int i = 0; i < n; i++) {
        for (int t = 0; t < P; t++)
            a[i * P + t] *= (float)(0.5 + t / (double)P); /* column scales 0.5 .. 1.5 */
        for (int j = 0; j < Q; j++) {
            double v = b0[j] + e[i * Q + j];
            for (int t = 0; t < P; t++)
                v += (double)a[i * P + t] * w0[t * Q + j];
            b[i * Q + j] = (float)v;
        }
    }
    free(w0), free(e);
}

/* Rows [*first, *first + *count) of n for this rank. uneven: shares
 * 1 | 1/3, 2/3 | 1/10, 0, 11/20, rest; first-empty: rank 0 gets none and
 * the others split the rows evenly (1 rank: all rows). */
static void share(int n, int rank, int size, const char *split, int *first, int *count)
{
    int cut[5] = {0};
    if (size == 1) {
        cut[1] = n;
    } else if (strcmp(split, "first-empty") == 0) {
        for (int r = 1; r <= size; r++)
            cut[r] = (int)((long)n * (r - 1) / (size - 1));
    } else if (size == 2) {
        cut[1] = n / 3, cut[2] = n;
    } else {
        cut[1] = n / 10, cut[2] = n / 10, cut[3] = n / 10 + n * 11 / 20, cut[4] = n;
    }
    *first = cut[rank];
    *count = cut[rank + 1] - cut[rank];
}

/* ---- serial references --------------------------------------------------- */

/* Cyclic Jacobi on the symmetric (n,n) a (destroyed): eigenvalues w,
 * eigenvectors as the columns of v. Sweeps until the off-diagonal mass is
 * below 1e-30 of the total. */
static void jacobi_eig(double *a, int n, double *w, double *v)
{
    for (int i = 0; i < n * n; i++)
        v[i] = (i % (n + 1)) == 0;
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0, tot = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                *(i == j ? &tot : &off) += a[i * n + j] * a[i * n + j];
        if (off <= 1e-30 * (tot + off))
            break;
        for (int p = 0; p < n - 1; p++)
            for (int q = p + 1; q < n; q++) {
                double apq = a[p * n + q];
                if (apq == 0)
                    continue;
                double th = (a[q * n + q] - a[p * n + p]) / (2 * apq);
                double t = (th >= 0 ? 1 : -1) / (fabs(th) + sqrt(th * th + 1));
                double c = 1 / sqrt(t * t + 1), s = t * c;
                for (int k = 0; k < n; k++) { /* rotate columns p, q */
                    double akp = a[k * n + p], akq = a[k * n + q];
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for (int k = 0; k < n; k++) { /* and rows p, q */
                    double apk = a[p * n + k], aqk = a[q * n + k];
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for (int k = 0; k < n; k++) {
                    double vkp = v[k * n + p], vkq = v[k * n + q];
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
    }
    for (int i = 0; i < n; i++)
        w[i] = a[i * n + i];
}

/* Reference PCA: mean, top-K eigenvalues (descending), axes (K,D) with the
 * sign convention of scalapack.h, and the trace. */
static void ref_pca(const float *x, double *mean, double *var, double *axes, double *trace)
{
    double *c = kd_calloc(D * D, sizeof *c), *v = kd_malloc(D * D * sizeof *v), w[D];
    for (int j = 0; j < D; j++) {
        mean[j] = 0;
        for (int i = 0; i < N_PCA; i++)
            mean[j] += x[i * D + j];
        mean[j] /= N_PCA;
    }
    for (int i = 0; i < N_PCA; i++)
        for (int p = 0; p < D; p++)
            for (int q = 0; q < D; q++)
                c[p * D + q] += (x[i * D + p] - mean[p]) * (x[i * D + q] - mean[q]);
    for (int i = 0; i < D * D; i++)
        c[i] /= N_PCA - 1;
    *trace = 0;
    for (int i = 0; i < D; i++)
        *trace += c[i * D + i];
    jacobi_eig(c, D, w, v);
    int used[D] = {0};
    for (int r = 0; r < K; r++) {
        int best = -1;
        for (int i = 0; i < D; i++)
            if (!used[i] && (best < 0 || w[i] > w[best]))
                best = i;
        used[best] = 1;
        var[r] = w[best];
        int at = 0;
        for (int j = 0; j < D; j++)
            if (fabs(v[j * D + best]) > fabs(v[at * D + best]))
                at = j;
        double sg = v[at * D + best] < 0 ? -1 : 1;
        for (int j = 0; j < D; j++)
            axes[r * D + j] = sg * v[j * D + best];
    }
    free(c), free(v);
}

/* Reference least squares by normal equations: [W; b] (pa,Q) minimising
 * ||[A 1] X - B||^2 + ridge ||W||^2 over n rows; returns rss. */
static double ref_ls(const float *a, const float *b, int n, int intercept, double ridge,
                     double *x)
{
    int pa = P + intercept;
    double *g = kd_calloc((size_t)pa * pa, sizeof *g), *r = kd_calloc((size_t)pa * Q, 8);
    double row[P + 1];
    for (int i = 0; i < n; i++) {
        for (int t = 0; t < P; t++)
            row[t] = a[i * P + t];
        if (intercept)
            row[P] = 1;
        for (int s = 0; s < pa; s++) {
            for (int t = 0; t < pa; t++)
                g[s * pa + t] += row[s] * row[t];
            for (int j = 0; j < Q; j++)
                r[s * Q + j] += row[s] * b[i * Q + j];
        }
    }
    for (int t = 0; t < P; t++)
        g[t * pa + t] += ridge;
    for (int j = 0; j < pa; j++) { /* Cholesky g = L L^T in place (lower) */
        for (int k = 0; k < j; k++)
            g[j * pa + j] -= g[j * pa + k] * g[j * pa + k];
        g[j * pa + j] = sqrt(g[j * pa + j]);
        for (int i = j + 1; i < pa; i++) {
            for (int k = 0; k < j; k++)
                g[i * pa + j] -= g[i * pa + k] * g[j * pa + k];
            g[i * pa + j] /= g[j * pa + j];
        }
    }
    for (int c = 0; c < Q; c++) { /* L y = r, L^T x = y */
        for (int i = 0; i < pa; i++) {
            double s = r[i * Q + c];
            for (int k = 0; k < i; k++)
                s -= g[i * pa + k] * x[k * Q + c];
            x[i * Q + c] = s / g[i * pa + i];
        }
        for (int i = pa - 1; i >= 0; i--) {
            double s = x[i * Q + c];
            for (int k = i + 1; k < pa; k++)
                s -= g[k * pa + i] * x[k * Q + c];
            x[i * Q + c] = s / g[i * pa + i];
        }
    }
    double rss = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < Q; j++) {
            double pr = intercept ? x[P * Q + j] : 0;
            for (int t = 0; t < P; t++)
                pr += (double)a[i * P + t] * x[t * Q + j];
            rss += (pr - b[i * Q + j]) * (pr - b[i * Q + j]);
        }
    free(g), free(r);
    return rss;
}

/* max_i |got_i - want_i| / max(|want_i|, 1) */
static double maxdiff(const double *got, const double *want, int n)
{
    double m = 0;
    for (int i = 0; i < n; i++)
        m = fmax(m, fabs(got[i] - want[i]) / fmax(fabs(want[i]), 1.0));
    return m;
}

/* ---- results file and --compare ---------------------------------------- */

static double results[4096];
static int n_results;

static void keep(const double *v, int n)
{
    if (n_results + n > (int)(sizeof results / sizeof *results))
        bail_out("results buffer too small");
    memcpy(results + n_results, v, (size_t)n * sizeof *v);
    n_results += n;
}

static int compare(const char *fa, const char *fb)
{
    static double a[4096], b[4096];
    FILE *f = fopen(fa, "rb"), *g = fopen(fb, "rb");
    if (!f || !g)
        bail_out("cannot open %s or %s", fa, fb);
    size_t na = fread(a, sizeof *a, 4096, f), nb = fread(b, sizeof *b, 4096, g);
    fclose(f), fclose(g);
    double m = na == nb ? maxdiff(a, b, (int)na) : INFINITY;
    ok(na == nb && na > 0, "%s and %s hold the same number of results (%zu, %zu)", fa, fb, na,
       nb);
    ok(m <= 1e-9, "results agree: max diff %.3g <= 1e-9 (relative to max(|x|, 1))", m);
    return done_testing();
}

/* ---- the checks ----------------------------------------------------------- */

static void check_pca(const struct scalapack_grid *g, const char *split, int *fails)
{
    double dirs[R * D], mean[D], var[K], axes[K * D], trace;
    float *x = pca_data(dirs);
    int first, count;
    share(N_PCA, g->rank, g->size, split, &first, &count);
    struct scalapack_pca pc;
    struct kd_err err;
    int rc = scalapack_pca(&pc, g, x + (size_t)first * D, count, D, K, &err);
    if (g->rank == 0 && !ok(rc == 0, "pca of %d x %d over %d ranks (%s rows)", N_PCA, D,
                            g->size, split))
        diag("%s", err.msg);
    if (rc != 0) {
        ++*fails;
        free(x);
        return;
    }
    if (g->rank == 0) {
        ref_pca(x, mean, var, axes, &trace);
        double dv = 0;
        for (int r = 0; r < K; r++)
            dv = fmax(dv, fabs(pc.variance[r] - var[r]) / var[r]);
        *fails += !ok(dv <= 1e-10, "eigenvalues = Jacobi reference: max rel err %.3g <= 1e-10 "
                      "(%.6g %.6g %.6g %.6g)", dv, pc.variance[0], pc.variance[1],
                      pc.variance[2], pc.variance[3]);
        double da = maxdiff(pc.components, axes, K * D);
        *fails += !ok(da <= 1e-9, "principal axes = reference (same sign convention): max "
                      "abs err %.3g <= 1e-9", da);
        double dm = maxdiff(pc.mean, mean, D);
        *fails += !ok(dm <= 1e-9, "mean = reference: max err %.3g <= 1e-9", dm);
        *fails += !ok_near(pc.total_variance, trace, 1e-10, 0, "total variance = trace %.6g",
                           trace);
        *fails += !ok(pc.n == N_PCA, "row count %lld", (long long)pc.n);
        /* the planted structure: axis r spans planted direction r, variance
         * s_r^2 + sigma^2 up to sampling error (~ s_r^2 * sqrt(2/n) = 4.5%) */
        double worst = 1;
        for (int r = 0; r < K; r++) {
            double dot = 0;
            for (int j = 0; j < D; j++)
                dot += pc.components[r * D + j] * dirs[r * D + j];
            worst = fmin(worst, fabs(dot));
        }
        /* sampling rotates axis r towards q by about
         * s_r s_q / (sqrt(n) (s_r^2 - s_q^2)) ~ 0.04 .. 0.1 rad here */
        *fails += !ok(worst >= 0.98, "every axis recovers its planted direction: min "
                      "|cos| %.6f >= 0.98", worst);
        double rel = 0;
        for (int r = 0; r < K; r++) {
            double want = strength[r] * strength[r] + 0.09;
            rel = fmax(rel, fabs(pc.variance[r] - want) / want);
        }
        *fails += !ok(rel <= 0.15, "explained variances match s_r^2 + sigma^2 within "
                      "sampling error: max rel %.3f <= 0.15", rel);
    }
    keep(pc.variance, K);
    keep(pc.components, K * D);
    keep(pc.mean, D);
    keep(&pc.total_variance, 1);
    scalapack_pca_free(&pc);
    free(x);
}

static void check_ls(const struct scalapack_grid *g, const char *split, int n, int intercept,
                     double ridge, const char *what, int *fails)
{
    float *a = kd_malloc((size_t)n * P * 4), *b = kd_malloc((size_t)n * Q * 4);
    ls_data(a, b, n, 100 + (uint64_t)n);
    int first, count;
    share(n, g->rank, g->size, split, &first, &count);
    struct scalapack_lstsq_opts o = {.ridge = ridge, .intercept = intercept};
    struct scalapack_lstsq s;
    struct kd_err err;
    int rc = scalapack_lstsq(&s, g, a + (size_t)first * P, b + (size_t)first * Q, count, P,
                             Q, &o, &err);
    if (g->rank == 0 && !ok(rc == 0, "%s: lstsq %d x %d -> %d on %d ranks", what, n, P, Q,
                            g->size))
        diag("%s", err.msg);
    if (rc != 0) {
        ++*fails;
        free(a), free(b);
        return;
    }
    if (g->rank == 0) {
        double x[(P + 1) * Q];
        double rss = ref_ls(a, b, n, intercept, ridge, x);
        double dw = maxdiff(s.w, x, P * Q);
        *fails += !ok(dw <= 1e-9, "%s: W = normal-equation reference: max err %.3g <= 1e-9",
                      what, dw);
        if (intercept) {
            double db = maxdiff(s.bias, x + P * Q, Q);
            *fails += !ok(db <= 1e-9, "%s: bias = reference: max err %.3g <= 1e-9", what, db);
        }
        *fails += !ok_near(s.rss, rss, 1e-9, 0, "%s: rss %.6g = reference", what, rss);
        if (intercept && n > P + 1)
            *fails += !ok(s.rss / s.tss < 0.01, "%s: R^2 = %.5f > 0.99 (noise 0.1 on a "
                          "planted linear map)", what, 1 - s.rss / s.tss);
    }
    keep(s.w, P * Q);
    if (s.bias)
        keep(s.bias, Q);
    keep(&s.rss, 1);
    scalapack_lstsq_free(&s);
    free(a), free(b);
}

/* Workspace regression: PDSYEVD's own query is short when the block size
 * is large against d / nprow (wrong vectors with info 0 before the margins
 * of scalapack_pca.c). All d eigenvalues of small problems with nb = 64,
 * against Jacobi, max error relative to the largest <= 1e-10. */
static void check_sweep(const struct comm *c, int *fails)
{
    static const int dims[] = {1, 2, 3, 5, 9, 17, 33, 63};
    struct scalapack_grid g;
    struct kd_err err;
    if (scalapack_grid_init(&g, c, 64, &err) != 0)
        bail_out("%s", err.msg);
    double worst = 0;
    int bad = 0;
    for (size_t t = 0; t < sizeof dims / sizeof *dims; t++) {
        int d = dims[t], n = 2 * d + 3, first, count;
        float *x = kd_malloc((size_t)n * d * sizeof *x);
        rng_normal(x, 0, 1, 20, (uint64_t)d, 0, (int64_t)n * d);
        for (int i = 0; i < n * d; i++)
            x[i] *= (float)(1 + i % d); /* distinct spreads per column */
        share(n, g.rank, g.size, "uneven", &first, &count);
        struct scalapack_pca pc;
        if (scalapack_pca(&pc, &g, x + (size_t)first * d, count, d, d, &err) != 0) {
            if (g.rank == 0)
                diag("d = %d: %s", d, err.msg);
            bad++;
            free(x);
            continue;
        }
        double *cv = kd_calloc((size_t)d * d, sizeof *cv), *v = kd_malloc((size_t)d * d * 8);
        double *w = kd_malloc((size_t)d * sizeof *w);
        for (int i = 0; i < n; i++)
            for (int p = 0; p < d; p++)
                for (int q = 0; q < d; q++)
                    cv[p * d + q] += (x[i * d + p] - pc.mean[p]) * (x[i * d + q] - pc.mean[q]) /
                                     (n - 1);
        jacobi_eig(cv, d, w, v);
        for (int i = 0; i < d; i++) /* sort descending (insertion) */
            for (int j = i; j > 0 && w[j] > w[j - 1]; j--) {
                double tmp = w[j];
                w[j] = w[j - 1], w[j - 1] = tmp;
            }
        for (int i = 0; i < d; i++)
            worst = fmax(worst, fabs(pc.variance[i] - w[i]) / w[0]);
        scalapack_pca_free(&pc);
        free(cv), free(v), free(w), free(x);
    }
    if (g.rank == 0)
        *fails += !ok(bad == 0 && worst <= 1e-10, "nb 64, d = 1 .. 63: every eigenvalue = "
                      "Jacobi, max err %.3g <= 1e-10 of the largest (%d failures)", worst, bad);
    scalapack_grid_free(&g);
}

static void check_errors(const struct scalapack_grid *g, int *fails)
{
    struct kd_err err = {{0}};
    struct scalapack_pca pc;
    float x[4 * 3] = {0};
    int rc = scalapack_pca(&pc, g, x, g->rank == 0 ? 4 : 0, 3, 4, &err);
    int same = rc == -1 && strstr(err.msg, "k = 4, d = 3") != NULL;
    if (g->rank == 0)
        ok(same, "k > d is refused naming both: %s", err.msg);
    *fails += !same;

    struct scalapack_lstsq s;
    float a[5 * P] = {0}, b[5 * Q] = {0};
    rc = scalapack_lstsq(&s, g, a, b, g->rank == g->size - 1 ? 5 : 0, P, Q, NULL, &err);
    same = rc == -1 && strstr(err.msg, "at least 24 rows") && strstr(err.msg, "got 5");
    if (g->rank == 0)
        ok(same, "fewer rows than unknowns without a ridge is refused on every rank: %s",
           err.msg);
    *fails += !same;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--compare") == 0)
        return compare(argv[2], argv[3]);
    struct comm c;
    comm_init(&c, &argc, &argv);
    if (argc != 4)
        bail_out("usage: p_linalg uneven|first-empty NB OUT | --compare A B");
    const char *split = argv[1];
    struct scalapack_grid g;
    struct kd_err err;
    int fails = 0;
    if (scalapack_grid_init(&g, &c, atoi(argv[2]), &err) != 0)
        bail_out("%s", err.msg);
    if (c.rank == 0)
        fails += !ok(g.nprow * g.npcol == c.size && g.nprow <= g.npcol &&
                     (c.size != 4 || g.nprow == 2),
                     "grid %dx%d over %d ranks, nb %d", g.nprow, g.npcol, c.size, g.nb);
    check_pca(&g, split, &fails);
    check_ls(&g, split, N_LS, 0, 0.0, "plain", &fails);
    check_ls(&g, split, N_LS, 1, 5.0, "intercept + ridge 5", &fails);
    check_ls(&g, split, N_SMALL, 0, 1.0, "n = 10 < p with ridge 1", &fails);
    check_errors(&g, &fails);
    check_sweep(&c, &fails);

    int all = comm_agree_max(&c, fails);
    if (c.rank == 0) {
        ok(all == 0, "every rank passed its checks");
        FILE *f = fopen(argv[3], "wb");
        if (!f || fwrite(results, sizeof *results, (size_t)n_results, f) != (size_t)n_results)
            bail_out("cannot write %s", argv[3]);
        fclose(f);
    }
    scalapack_grid_free(&g);
    comm_finalize(&c);
    return c.rank == 0 ? done_testing() : (all != 0);
}
