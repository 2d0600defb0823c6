/* scalapack_pca.c: principal components of row-distributed samples (mean,
 * covariance formed distributed, top-k eigenpairs by PDSYEVD), replicated on
 * every rank. See scalapack.h for the data model.
 *
 *   mean  m = (1/n) sum_i x_i                       all-reduce of column sums
 *   cov   S = 1/(n-1) sum_i (x_i - m)(x_i - m)^T     local dsyrk per rank, then
 *                                                    reduce-scatter into the
 *                                                    2-D block-cyclic layout
 *   S Z = Z diag(w)                                  PDSYEVD, w ascending
 *
 * Centring with the exact global mean before the products (two passes over
 * the local rows) avoids the cancellation of the one-pass form
 * sum x x^T - n m m^T, which loses digits when |m| >> spread, as happens for
 * LayerNorm outputs with large biases. */
#include "kd/parallel/scalapack_lib.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Rows converted and centred per dsyrk call: bounded scratch, full-rank
 * updates. */
#define PCA_CHUNK_ROWS 256
/* Accepted eigen-equation residual, relative to the largest eigenvalue:
 * double-precision PDSYEVD reaches ~1e-14; a wrong pair is O(1). */
#define PCA_RESIDUAL_TOL 1e-8

/* The local centred Gram matrix G = sum (x - m)(x - m)^T, (d,d) full
 * (both triangles), column-major = row-major since it is symmetric. */
static void local_gram(double *G, const float *x, int64_t n_local, int64_t d, const double *mean)
{
    memset(G, 0, (size_t)d * (size_t)d * sizeof *G);
    double *buf = kd_malloc((size_t)PCA_CHUNK_ROWS * (size_t)d * sizeof *buf);
    int di = sl_int(d, "d");
    const double one = 1.0;
    for (int64_t r0 = 0; r0 < n_local; r0 += PCA_CHUNK_ROWS) {
        int rows = (int)(n_local - r0 < PCA_CHUNK_ROWS ? n_local - r0 : PCA_CHUNK_ROWS);
        for (int r = 0; r < rows; r++)
            for (int64_t j = 0; j < d; j++)
                buf[r * d + j] = (double)x[(r0 + r) * d + j] - mean[j];
        /* buf is row-major (rows,d) = column-major (d,rows): G += buf^T buf
         * in the row-major view is "N" on the column-major (d,rows). */
        dsyrk_("L", "N", &di, &rows, &one, buf, &di, &one, G, &di);
    }
    free(buf);
    for (int64_t j = 0; j < d; j++)
        for (int64_t i = j + 1; i < d; i++)
            G[i * d + j] = G[j * d + i]; /* lower (i,j) at i + j*d -> upper (j,i) */
}

/* Sums every rank's (d,d) G into the block-cyclic local array loc of this
 * rank (lld = local rows), scaled by s. */
static void reduce_scatter_2d(double *loc, const struct scalapack_grid *g, const double *G,
                              int64_t d, double s)
{
    int P = g->size;
    int *counts = kd_malloc((size_t)P * sizeof *counts);
    double *send = kd_malloc((size_t)d * (size_t)d * sizeof *send);
    size_t pos = 0;
    /* Pack in comm-rank order, each destination's entries in the order of
     * its column-major local array, so the received block is ready to use. */
    for (int dest = 0; dest < P; dest++) {
        int pr = -1, pc = -1;
        for (int cell = 0; cell < P; cell++)
            if (g->rank_of[cell] == dest)
                pr = cell / g->npcol, pc = cell % g->npcol;
        KD_ASSERT(pr >= 0, "rank %d has no grid cell", dest);
        int mloc = sl_numroc(d, g->nb, pr, g->nprow);
        int nloc = sl_numroc(d, g->nb, pc, g->npcol);
        for (int lj = 0; lj < nloc; lj++) {
            int64_t j = sl_l2g(lj, g->nb, pc, g->npcol);
            for (int li = 0; li < mloc; li++)
                send[pos++] = G[j * d + sl_l2g(li, g->nb, pr, g->nprow)];
        }
        counts[dest] = mloc * nloc;
    }
    KD_ASSERT(pos == (size_t)d * (size_t)d, "packed %zu of %lld entries", pos,
              (long long)(d * d));
    MPI_CHECK(MPI_Reduce_scatter(send, loc, counts, MPI_DOUBLE, MPI_SUM, g->comm));
    for (int i = 0; i < counts[g->rank]; i++)
        loc[i] *= s;
    free(send);
    free(counts);
}

/* max_i ||S z_i - w_i z_i|| / max(w_0, tiny) for the k returned pairs, with
 * S = sum_r G_r / (n - 1) applied as the sum of every rank's local Gram
 * times Z (d*k doubles all-reduced): PDSYEVD has been seen to return info 0
 * with wrong vectors when its workspace was short, so the answer is checked
 * rather than trusted. Cost d^2 k per rank, small next to forming G. */
static double eigen_residual(const struct scalapack_grid *g, const double *G,
                             const struct scalapack_pca *pc)
{
    int64_t d = pc->d, k = pc->k;
    double *sz = kd_malloc((size_t)d * (size_t)k * sizeof *sz);
    int di = sl_int(d, "d"), ki = sl_int(k, "k");
    const double one = 1.0, zero = 0.0;
    /* column-major: SZ (d,k) = G (d,d) * Z^T, Z^T = components as (d,k) */
    dgemm_("N", "N", &di, &ki, &di, &one, G, &di, pc->components, &di, &zero, sz, &di);
    KD_ASSERT(d * k <= INT_MAX, "d*k = %lld exceeds an MPI count", (long long)(d * k));
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, sz, (int)(d * k), MPI_DOUBLE, MPI_SUM, g->comm));
    double worst = 0, scale = fmax(fabs(pc->variance[0]), 1e-300);
    for (int64_t i = 0; i < k; i++) {
        double r2 = 0;
        for (int64_t j = 0; j < d; j++) {
            double r = sz[i * d + j] / (double)(pc->n - 1) -
                       pc->variance[i] * pc->components[i * d + j];
            r2 += r * r;
        }
        worst = fmax(worst, sqrt(r2) / scale);
    }
    free(sz);
    return worst;
}

/* Sign convention: the entry of largest magnitude (first on ties) is
 * positive, so results agree across grids and rank counts. */
static void fix_sign(double *v, int64_t d)
{
    int64_t at = 0;
    for (int64_t j = 1; j < d; j++)
        if (fabs(v[j]) > fabs(v[at]))
            at = j;
    if (v[at] < 0)
        for (int64_t j = 0; j < d; j++)
            v[j] = -v[j];
}

/* PDSYEVD on the (d,d) matrix A (local array a, desc); eigenvalues into w
 * (d, ascending, on every rank), eigenvectors into z (same layout as a).
 * Returns info (> 0: no convergence). */
static int syevd(const struct scalapack_grid *g, double *a, const int *desc, double *w,
                 double *z, int64_t d)
{
    int n = sl_int(d, "d"), one = 1, info = 0, lwork = -1, liwork = -1, iq = 0;
    double wq = 0;
    pdsyevd_("V", "L", &n, a, &one, &one, desc, w, z, &one, &one, desc, &wq, &lwork, &iq,
             &liwork, &info);
    sl_info("pdsyevd (workspace query)", info);
    /* The workspace query under-reports whenever the block size is large
     * against N / NPROW (seen here at N = 48, NB = 32 on 1x2 and 2x2 grids,
     * and at any N < 64 with NB = 64 even on 1x1). Two inner routines get
     * what is left of WORK and refuse it through PXERBLA ("On entry to
     * PDORMTR parameter number 16 had an illegal value", likewise PDLASRT
     * parameter 9), yet PDSYEVD returns info = 0 with wrong eigenvectors.
     * Their documented needs are added on top of the query:
     *   PDLASRT  NP*(NB+NQ)
     *   PDORMTR  max(NB*(NB-1)/2, (NP+NQ)*NB) + NB*NB
     * (NP, NQ = local rows, columns), and the documented minimum LIWORK,
     * 7*N + 8*NPCOL + 2, is a floor under the queried one. scalapack_pca
     * also checks the eigen-equation residual afterwards. */
    int nb = g->nb, np = sl_numroc(d, nb, g->myrow, g->nprow);
    int nq = sl_numroc(d, nb, g->mycol, g->npcol);
    int ormtr = nb * (nb - 1) / 2 > (np + nq) * nb ? nb * (nb - 1) / 2 : (np + nq) * nb;
    lwork = (int)wq + np * (nb + nq) + ormtr + nb * nb + 2 * n + 64;
    liwork = iq;
    int floor_iwork = 7 * n + 8 * g->npcol + 2;
    if (liwork < floor_iwork)
        liwork = floor_iwork;
    double *work = kd_malloc((size_t)lwork * sizeof *work);
    int *iwork = kd_malloc((size_t)liwork * sizeof *iwork);
    pdsyevd_("V", "L", &n, a, &one, &one, desc, w, z, &one, &one, desc, work, &lwork, iwork,
             &liwork, &info);
    free(work);
    free(iwork);
    return sl_info("pdsyevd", info);
}

int scalapack_pca(struct scalapack_pca *out, const struct scalapack_grid *g, const float *x,
                  int64_t n_local, int64_t d, int64_t k, struct kd_err *err)
{
    memset(out, 0, sizeof *out);
    int64_t args[2] = {d, k};
    if (!sl_agree(g, args, 2))
        return kd_errf(err, "pca: ranks disagree on d = %lld or k = %lld", (long long)d,
                       (long long)k);
    if (d < 1 || k < 1 || k > d)
        return kd_errf(err, "pca: expected 1 <= k <= d, got k = %lld, d = %lld", (long long)k,
                       (long long)d);
    KD_ASSERT(n_local >= 0, "n_local = %lld", (long long)n_local);
    KD_ASSERT((int64_t)d * d <= INT_MAX, "d = %lld: d^2 exceeds an MPI count", (long long)d);

    /* mean: column sums and row count in one all-reduce */
    double *sum = kd_calloc((size_t)d + 1, sizeof *sum);
    for (int64_t i = 0; i < n_local; i++)
        for (int64_t j = 0; j < d; j++)
            sum[j] += x[i * d + j];
    sum[d] = (double)n_local;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, sum, (int)d + 1, MPI_DOUBLE, MPI_SUM, g->comm));
    int64_t n = (int64_t)sum[d];
    if (n < 2) {
        free(sum);
        return kd_errf(err, "pca: expected at least 2 rows over all ranks, got %lld",
                       (long long)n);
    }
    for (int64_t j = 0; j < d; j++)
        sum[j] /= (double)n;

    /* covariance, distributed 2-D block-cyclic */
    double *G = kd_malloc((size_t)d * (size_t)d * sizeof *G);
    local_gram(G, x, n_local, d, sum);
    int desc[SL_DLEN];
    sl_desc_2d(desc, g, d, d);
    int mloc = sl_numroc(d, g->nb, g->myrow, g->nprow);
    int nloc = sl_numroc(d, g->nb, g->mycol, g->npcol);
    size_t nl = (size_t)mloc * (size_t)nloc;
    double *a = kd_malloc((nl ? nl : 1) * sizeof *a);
    double *z = kd_malloc((nl ? nl : 1) * sizeof *z);
    reduce_scatter_2d(a, g, G, d, 1.0 / (double)(n - 1));

    double *w = kd_malloc((size_t)d * sizeof *w);
    int info = sl_max_int(g, syevd(g, a, desc, w, z, d));
    free(a);
    if (info > 0) {
        free(z), free(w), free(sum), free(G);
        return kd_errf(err, "pca: PDSYEVD did not converge on the %lldx%lld covariance "
                       "(info = %d)", (long long)d, (long long)d, info);
    }

    /* top k = the last k columns of Z, largest first: gather Z[:, d-k:]
     * transposed (row i = eigenvector of w[d-k+i]) then reverse the order */
    double *zt = kd_malloc((size_t)k * (size_t)d * sizeof *zt);
    sl_gather(zt, g, z, desc, d, d - k, k, 1);
    free(z);
    out->n = n, out->d = d, out->k = k;
    out->mean = sum;
    out->components = kd_malloc((size_t)k * (size_t)d * sizeof *out->components);
    out->variance = kd_malloc((size_t)k * sizeof *out->variance);
    for (int64_t i = 0; i < k; i++) {
        memcpy(out->components + i * d, zt + (k - 1 - i) * d, (size_t)d * sizeof *zt);
        fix_sign(out->components + i * d, d);
        out->variance[i] = w[d - 1 - i];
    }
    out->total_variance = 0;
    for (int64_t j = 0; j < d; j++)
        out->total_variance += w[j];
    free(zt);
    free(w);
    double resid = eigen_residual(g, G, out);
    free(G);
    if (!(resid <= PCA_RESIDUAL_TOL)) {
        scalapack_pca_free(out);
        return kd_errf(err, "pca: PDSYEVD returned eigenpairs of the %lldx%lld covariance "
                       "with residual max_i ||S z_i - w_i z_i|| / w_max = %.3g (expected <= "
                       "%.0e); HINT: try another block size", (long long)d, (long long)d,
                       resid, PCA_RESIDUAL_TOL);
    }
    return 0;
}

void scalapack_pca_free(struct scalapack_pca *p)
{
    free(p->mean);
    free(p->components);
    free(p->variance);
    memset(p, 0, sizeof *p);
}
