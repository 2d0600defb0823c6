/* scalapack_lib.h: the BLACS / ScaLAPACK / BLAS symbols kd_hpc calls and the
 * helpers the scalapack_*.c files share (parallel layer, internal: only
 * src/parallel/scalapack*.c include it).
 *
 * Which interfaces: Debian's libscalapack-openmpi exports the BLACS C
 * interface (Csys2blacs_handle, Cblacs_gridmap, ...) which takes an MPI_Comm
 * directly, so grids are built over any communicator, not only the world.
 * ScaLAPACK itself only has Fortran symbols (trailing underscore, every
 * argument by pointer, column-major, 1-based global indices); a BLACS context
 * is the same integer in both interfaces. BLAS dsyrk_ and dgemm_ are the Fortran
 * symbols of the BLAS ScaLAPACK links; the project's gemm() is fp32 only and the
 * covariance is accumulated in double. */
#ifndef KD_PARALLEL_SCALAPACK_LIB_H
#define KD_PARALLEL_SCALAPACK_LIB_H

#include <stdint.h>

#include <mpi.h>

#include "kd/core/error.h"
#include "kd/parallel/scalapack.h"

/* ScaLAPACK array descriptor length (DLEN_) and field indices. */
enum { SL_DLEN = 9, SL_CTXT = 1, SL_M = 2, SL_N = 3, SL_MB = 4, SL_NB = 5, SL_LLD = 8 };

/* BLACS, C interface */
int Csys2blacs_handle(MPI_Comm comm);
void Cfree_blacs_system_handle(int handle);
void Cblacs_gridmap(int *ctxt, int *usermap, int ldumap, int nprow, int npcol);
void Cblacs_gridinfo(int ctxt, int *nprow, int *npcol, int *myrow, int *mycol);
void Cblacs_gridexit(int ctxt);

/* ScaLAPACK tools and drivers, Fortran interface */
int numroc_(const int *n, const int *nb, const int *iproc, const int *isrcproc,
            const int *nprocs);
void descinit_(int *desc, const int *m, const int *n, const int *mb, const int *nb,
               const int *irsrc, const int *icsrc, const int *ictxt, const int *lld, int *info);
void pdsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *ia,
              const int *ja, const int *desca, double *w, double *z, const int *iz,
              const int *jz, const int *descz, double *work, const int *lwork, int *iwork,
              const int *liwork, int *info);
void pdgels_(const char *trans, const int *m, const int *n, const int *nrhs, double *a,
             const int *ia, const int *ja, const int *desca, double *b, const int *ib,
             const int *jb, const int *descb, double *work, const int *lwork, int *info);
void pdgemr2d_(const int *m, const int *n, const double *a, const int *ia, const int *ja,
               const int *desca, double *b, const int *ib, const int *jb, const int *descb,
               const int *ictxt);
/* BLAS, Fortran interface */
void dsyrk_(const char *uplo, const char *trans, const int *n, const int *k,
            const double *alpha, const double *a, const int *lda, const double *beta,
            double *c, const int *ldc);

void dgemm_(const char *transa, const char *transb, const int *m, const int *n, const int *k,
            const double *alpha, const double *a, const int *lda, const double *b,
            const int *ldb, const double *beta, double *c, const int *ldc);

/* Local rows (or columns) of an n-long dimension in blocks of nb over
 * nprocs processes, on process iproc (source process 0). */
int sl_numroc(int64_t n, int nb, int iproc, int nprocs);

/* Global 0-based index of local index l on process iproc (source 0). */
static inline int64_t sl_l2g(int64_t l, int nb, int iproc, int nprocs)
{
    return (l / nb * nprocs + iproc) * nb + l % nb;
}

/* descinit_ on g->ctxt for an (m,n) matrix in nb x nb blocks whose local
 * array has lld rows; an info != 0 is a bug (arguments are ours): fatal. */
void sl_desc_2d(int desc[SL_DLEN], const struct scalapack_grid *g, int64_t m, int64_t n);

/* Copies rows [0,rows) x columns [c0, c0+cols) of a matrix distributed as
 * desc (2-D, on g->ctxt, local array loc) into out (rows, cols) row-major,
 * on every rank (each entry has one owner; an all-reduce sums them). If
 * transpose, out is (cols, rows): out[j*rows + i] = global (i, c0 + j). */
void sl_gather(double *out, const struct scalapack_grid *g, const double *loc,
               const int desc[SL_DLEN], int64_t rows, int64_t c0, int64_t cols, int transpose);

/* Checks a ScaLAPACK info: < 0 means we passed a bad argument (a bug:
 * fatal, naming the routine and argument). Returns info. */
int sl_info(const char *routine, int info);

/* 1 if every rank passed the same n values (all-reduce of min and max). */
int sl_agree(const struct scalapack_grid *g, const int64_t *vals, int n);

/* Maximum of an int over the grid's ranks (collective error agreement). */
int sl_max_int(const struct scalapack_grid *g, int v);

/* Narrowing to the ScaLAPACK integer (checked: fatal if it does not fit). */
int sl_int(int64_t v, const char *what);

#endif
