/* scalapack_lstsq.c: linear least squares min ||A W - B||_F (optional
 * ridge, optional intercept) on row-distributed A and B by PDGELS, solution
 * replicated on every rank. See scalapack.h for the data model.
 *
 * Steps:
 *   1. each rank writes its rows into an (m_blk, p') column-major block,
 *      zero rows below (m_blk = largest share, p' = p + intercept); rank 0
 *      also appends the ridge rows [sqrt(lambda) I | 0]. Together the blocks
 *      are one (P*m_blk, p') ScaLAPACK matrix on the P x 1 grid, block rows
 *      m_blk. Zero rows add 0 to the objective, ridge rows add
 *      lambda ||W||_F^2 (Hoerl & Kennard's augmented-data form of ridge).
 *   2. PDGEMR2D redistributes A and B onto the 2-D grid (nb x nb blocks).
 *   3. PDGELS: QR of A, then the first p' rows of Q^T B solved against R
 *      hold [W; b^T].
 *   4. the (p', q) solution is gathered onto every rank; the residual and
 *      total sums of squares are computed from the local data rows (so the
 *      reported rss excludes the ridge rows). */
#include "kd/parallel/scalapack_lib.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Fills a column-major (m_blk, cols) block: src rows (n, ld) in columns
 * [0, src_cols), then extra (column of ones / ridge rows), zero padding. */
static double *pack_block(int64_t m_blk, int64_t cols, const float *src, int64_t n,
                          int64_t src_cols, int ones_col, int64_t ridge_rows, double ridge_val)
{
    size_t sz = (size_t)m_blk * (size_t)cols;
    double *blk = kd_calloc(sz ? sz : 1, sizeof *blk);
    for (int64_t i = 0; i < n; i++) {
        for (int64_t j = 0; j < src_cols; j++)
            blk[i + j * m_blk] = src[i * src_cols + j];
        if (ones_col)
            blk[i + src_cols * m_blk] = 1.0;
    }
    for (int64_t t = 0; t < ridge_rows; t++)
        blk[(n + t) + t * m_blk] = ridge_val; /* row n+t: sqrt(lambda) e_t */
    return blk;
}

int scalapack_lstsq(struct scalapack_lstsq *out, const struct scalapack_grid *g, const float *a,
                    const float *b, int64_t n_local, int64_t p, int64_t q,
                    const struct scalapack_lstsq_opts *opts, struct kd_err *err)
{
    memset(out, 0, sizeof *out);
    struct scalapack_lstsq_opts o = {0};
    if (opts)
        o = *opts;
    int64_t ridge_bits;
    memcpy(&ridge_bits, &o.ridge, sizeof ridge_bits);
    int64_t args[4] = {p, q, o.intercept != 0, ridge_bits};
    if (!sl_agree(g, args, 4))
        return kd_errf(err, "least squares: ranks disagree on p = %lld, q = %lld, ridge "
                       "or intercept", (long long)p, (long long)q);
    if (p < 1 || q < 1)
        return kd_errf(err, "least squares: expected p >= 1 and q >= 1, got p = %lld, "
                       "q = %lld", (long long)p, (long long)q);
    if (!(o.ridge >= 0.0) || !isfinite(o.ridge))
        return kd_errf(err, "least squares: expected a ridge >= 0, got %g", o.ridge);
    KD_ASSERT(n_local >= 0, "n_local = %lld", (long long)n_local);

    const int64_t pa = p + (o.intercept != 0);
    const int64_t ridge_rows = o.ridge > 0.0 ? p : 0;

    /* row count and column sums of B (for the total sum of squares) */
    double *bsum = kd_calloc((size_t)q + 1, sizeof *bsum);
    for (int64_t i = 0; i < n_local; i++)
        for (int64_t j = 0; j < q; j++)
            bsum[j] += b[i * q + j];
    bsum[q] = (double)n_local;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, bsum, sl_int(q + 1, "q"), MPI_DOUBLE, MPI_SUM,
                            g->comm));
    const int64_t n = (int64_t)bsum[q];
    if (n < 1 || n + ridge_rows < pa) {
        free(bsum);
        return kd_errf(err, "least squares: expected at least %lld rows (p = %lld unknowns "
                       "per column%s) over all ranks, got %lld; HINT: add a ridge term",
                       (long long)(pa - ridge_rows > 1 ? pa - ridge_rows : 1), (long long)p,
                       o.intercept ? " + intercept" : "", (long long)n);
    }

    /* 1. row blocks on the P x 1 grid */
    int64_t my_rows = n_local + (g->rank == 0 ? ridge_rows : 0), m_blk = my_rows;
    MPI_CHECK(MPI_Allreduce(&my_rows, &m_blk, 1, MPI_INT64_T, MPI_MAX, g->comm));
    double *a1 = pack_block(m_blk, pa, a, n_local, p, o.intercept != 0,
                            g->rank == 0 ? ridge_rows : 0, sqrt(o.ridge));
    double *b1 = pack_block(m_blk, q, b, n_local, q, 0, 0, 0.0);
    int M = sl_int(m_blk * g->size, "rows of the stacked matrix");
    int PA = sl_int(pa, "p"), Q = sl_int(q, "q"), MB = sl_int(m_blk, "rows per rank");
    int one = 1, zero = 0, info = 0;
    int da1[SL_DLEN], db1[SL_DLEN];
    descinit_(da1, &M, &PA, &MB, &PA, &zero, &zero, &g->ctxt_rows, &MB, &info);
    sl_info("descinit (A rows)", info);
    descinit_(db1, &M, &Q, &MB, &Q, &zero, &zero, &g->ctxt_rows, &MB, &info);
    sl_info("descinit (B rows)", info);

    /* 2. onto the 2-D grid */
    int da2[SL_DLEN], db2[SL_DLEN];
    sl_desc_2d(da2, g, M, pa);
    sl_desc_2d(db2, g, M, q);
    size_t mloc = (size_t)sl_numroc(M, g->nb, g->myrow, g->nprow);
    size_t na = mloc * (size_t)sl_numroc(pa, g->nb, g->mycol, g->npcol);
    size_t nbq = mloc * (size_t)sl_numroc(q, g->nb, g->mycol, g->npcol);
    double *a2 = kd_calloc(na ? na : 1, sizeof *a2);
    double *b2 = kd_calloc(nbq ? nbq : 1, sizeof *b2);
    pdgemr2d_(&M, &PA, a1, &one, &one, da1, a2, &one, &one, da2, &g->ctxt_rows);
    pdgemr2d_(&M, &Q, b1, &one, &one, db1, b2, &one, &one, db2, &g->ctxt_rows);
    free(a1);
    free(b1);

    /* 3. QR solve */
    int lwork = -1;
    double wq = 0;
    pdgels_("N", &M, &PA, &Q, a2, &one, &one, da2, b2, &one, &one, db2, &wq, &lwork, &info);
    sl_info("pdgels (workspace query)", info);
    lwork = (int)wq + 64;
    double *work = kd_malloc((size_t)lwork * sizeof *work);
    pdgels_("N", &M, &PA, &Q, a2, &one, &one, da2, b2, &one, &one, db2, work, &lwork, &info);
    free(work);
    free(a2);
    info = sl_max_int(g, sl_info("pdgels", info));
    if (info > 0) {
        free(b2), free(bsum);
        return kd_errf(err, "least squares: PDGELS failed (info = %d)", info);
    }

    /* 4. replicate [W; b^T] and measure the fit on the data rows */
    double *sol = kd_malloc((size_t)pa * (size_t)q * sizeof *sol);
    sl_gather(sol, g, b2, db2, pa, 0, q, 0);
    free(b2);
    out->n = n, out->p = p, out->q = q;
    out->w = sol; /* rows [0,p) are W; row p (intercept) moves to bias */
    if (o.intercept) {
        out->bias = kd_malloc((size_t)q * sizeof *out->bias);
        memcpy(out->bias, sol + p * q, (size_t)q * sizeof *sol);
    }
    double ss[2] = {0, 0}; /* rss, tss */
    double *pred = kd_malloc((size_t)q * sizeof *pred);
    for (int64_t i = 0; i < n_local; i++) {
        for (int64_t j = 0; j < q; j++)
            pred[j] = out->bias ? out->bias[j] : 0.0;
        for (int64_t t = 0; t < p; t++) {
            double at = a[i * p + t];
            for (int64_t j = 0; j < q; j++)
                pred[j] += at * sol[t * q + j];
        }
        for (int64_t j = 0; j < q; j++) {
            double r = pred[j] - b[i * q + j], c = b[i * q + j] - bsum[j] / (double)n;
            ss[0] += r * r;
            ss[1] += c * c;
        }
    }
    free(pred);
    free(bsum);
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, ss, 2, MPI_DOUBLE, MPI_SUM, g->comm));
    out->rss = ss[0];
    out->tss = ss[1];
    return 0;
}

void scalapack_lstsq_free(struct scalapack_lstsq *s)
{
    free(s->w);
    free(s->bias);
    memset(s, 0, sizeof *s);
}
