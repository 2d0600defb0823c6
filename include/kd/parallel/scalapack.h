/* scalapack.h: distributed dense linear algebra over the student ranks
 * (parallel layer: the only code that talks to BLACS and ScaLAPACK; the
 * layers above hand it row-distributed float data and get small replicated
 * double results back).
 *
 * Data model. Every operation takes a matrix whose ROWS are samples spread
 * over the ranks of the grid's communicator: rank r holds n_r consecutive
 * rows (any n_r >= 0, uneven or zero), row-major floats (e.g. teacher hidden
 * states of the tokens of its own examples, (n_r, C)). The global matrix is
 * the concatenation in rank order; results do not depend on how the rows are
 * split, up to rounding (the tests hold 1, 2 and 4 ranks to the same serial
 * reference). Results are replicated on every rank, in double.
 *
 * How the data reaches ScaLAPACK:
 *   - PCA: each rank forms its own centred Gram matrix X_r^T X_r (d,d) in
 *     double (BLAS dsyrk), and one MPI_Reduce_scatter sums the ranks'
 *     contributions straight into the 2-D block-cyclic layout PDSYEVD reads:
 *     d^2 doubles per rank of traffic, independent of the row count, and no
 *     rank ever holds all rows. Top-k eigenpairs of the covariance by
 *     PDSYEVD (divide and conquer, all pairs: for d up to a few thousand
 *     simpler than a subset solver). Kept over PDSYEV after one trap was
 *     understood: its workspace query is short when nb is large against
 *     d / nprow, and it then returns info 0 with wrong vectors;
 *     scalapack_pca.c adds the inner routines' needs and verifies
 *     ||S z - w z|| on every returned pair (d = 1..100, nb = 1..64 on 1, 2,
 *     3, 4 ranks all pass).
 *   - Least squares: the row blocks are described as ONE ScaLAPACK matrix on
 *     a (P x 1) grid with row block m_blk = max_r n_r, each rank's block
 *     padded with zero rows. Zero rows in both A and B leave
 *     min ||A W - B|| unchanged, which is what makes uneven (and empty)
 *     shares expressible with a uniform block size. PDGEMR2D moves it onto
 *     the 2-D grid and PDGELS (Householder QR: no squared condition number,
 *     unlike normal equations) solves it.
 *
 * Grid: nprow x npcol = P with nprow the largest divisor of P not above
 * sqrt(P) (1x1, 1x2, 2x2, 2x3, ...), every rank in it, cells mapped to
 * communicator ranks row-major through Cblacs_gridmap, so rank_of[] is known
 * rather than assumed. */
#ifndef KD_PARALLEL_SCALAPACK_H
#define KD_PARALLEL_SCALAPACK_H

#include <stdint.h>

#include <mpi.h>

#include "kd/core/error.h"
#include "kd/parallel/comm.h"

/* Default square block size of the 2-D block-cyclic layout. */
#define SCALAPACK_NB_DEFAULT 32

struct scalapack_grid {
    MPI_Comm comm;   /* duplicate of the caller's communicator */
    int rank, size;  /* in comm */
    int sys;         /* BLACS system handle of comm */
    int ctxt;        /* nprow x npcol grid (2-D block-cyclic work) */
    int ctxt_rows;   /* size x 1 grid: process row r = comm rank r (input rows) */
    int nprow, npcol, myrow, mycol;
    int nb;          /* block size (rows = columns) on ctxt */
    int *rank_of;    /* [nprow*npcol] comm rank of cell (r,c) at r*npcol + c */
};

/* Builds both grids over c's communicator (collective over it). nb <= 0
 * takes SCALAPACK_NB_DEFAULT. Returns -1 with a message if BLACS refuses the
 * grid. */
int scalapack_grid_init(struct scalapack_grid *g, const struct comm *c, int nb,
                        struct kd_err *err);
void scalapack_grid_free(struct scalapack_grid *g);

/* ---- principal component analysis ------------------------------------- */

struct scalapack_pca {
    int64_t n;          /* total rows over all ranks */
    int64_t d, k;
    double *mean;       /* (d) column mean */
    double *components; /* (k,d) row i = i-th principal axis, unit norm,
                         * sign: its largest-|.| entry positive (first such
                         * index on ties) */
    double *variance;   /* (k) eigenvalues of the covariance, descending:
                         * the explained variance of each axis */
    double total_variance; /* trace of the covariance (sum of all d eigenvalues) */
};

/* Mean, covariance (unbiased, / (n - 1)) and its top-k eigenpairs of the
 * row-distributed x (n_local, d) row-major on this rank. Collective over
 * g; d and k must agree on every rank. Errors (returned on every rank with
 * the same message): k not in [1, d], fewer than 2 rows in total, ranks
 * disagreeing on d or k, PDSYEVD failing to converge. out is filled on
 * success only; free with scalapack_pca_free. */
int scalapack_pca(struct scalapack_pca *out, const struct scalapack_grid *g, const float *x,
                  int64_t n_local, int64_t d, int64_t k, struct kd_err *err);
void scalapack_pca_free(struct scalapack_pca *p);

/* ---- linear least squares ---------------------------------------------- */

struct scalapack_lstsq_opts {
    /* ridge >= 0: minimise ||A W + 1 b^T - B||_F^2 + ridge ||W||_F^2, done
     * by appending the p rows sqrt(ridge) I to A (zeros to B; rank 0 adds
     * them to its share), so the same QR solves it; the intercept b is not
     * penalised. ridge > 0 also makes n < p solvable. */
    double ridge;
    int intercept; /* 1: fit the bias b (a column of ones appended to A) */
};

struct scalapack_lstsq {
    int64_t n, p, q;
    double *w;    /* (p,q) row-major: prediction of a row a is a W (+ b) */
    double *bias; /* (q) with opts.intercept, else NULL */
    double rss;   /* ||A W (+ 1 b^T) - B||_F^2 over the n data rows (ridge rows excluded) */
    double tss;   /* ||B - 1 mean(B)^T||_F^2: 1 - rss/tss is R^2 */
};

/* Solves min_W ||A W - B||_F (see opts) for row-distributed a (n_local, p)
 * and b (n_local, q), row-major, the same rows on each side. Collective over
 * g; p, q and opts must agree on every rank. opts may be NULL (no ridge, no
 * intercept). Errors (on every rank): p or q < 1, fewer rows than unknowns
 * without a ridge (n < p + intercept: the solution would not be unique),
 * ranks disagreeing on p, q or opts. Free with scalapack_lstsq_free. */
int scalapack_lstsq(struct scalapack_lstsq *out, const struct scalapack_grid *g, const float *a,
                    const float *b, int64_t n_local, int64_t p, int64_t q,
                    const struct scalapack_lstsq_opts *opts, struct kd_err *err);
void scalapack_lstsq_free(struct scalapack_lstsq *s);

#endif
