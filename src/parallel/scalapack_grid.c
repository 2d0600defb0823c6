/* scalapack_grid.c: BLACS process grids over a communicator, and the small
 * helpers the PCA and least-squares drivers share (descriptors, gathering a
 * distributed block onto every rank, argument agreement).
 *
 * Both grids come from one BLACS system handle of a duplicate of the
 * caller's communicator, so they never see MPI_COMM_WORLD and can live on a
 * sub-communicator (e.g. the student ranks of an online job). Cells are
 * mapped with Cblacs_gridmap rather than gridinit so that the comm rank of
 * every cell is known by construction: the reduce-scatter that builds the
 * covariance needs it. */
#include "kd/parallel/scalapack_lib.h"
#include "kd/parallel/comm.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int sl_int(int64_t v, const char *what)
{
    KD_ASSERT(v >= INT_MIN && v <= INT_MAX, "%s = %lld does not fit the ScaLAPACK integer",
              what, (long long)v);
    return (int)v;
}

int sl_numroc(int64_t n, int nb, int iproc, int nprocs)
{
    int ni = sl_int(n, "matrix dimension"), zero = 0;
    return numroc_(&ni, &nb, &iproc, &zero, &nprocs);
}

int sl_info(const char *routine, int info)
{
    if (info < 0)
        KD_FATAL("%s: argument %d had an illegal value (info = %d)", routine, -info, info);
    return info;
}

void sl_desc_2d(int desc[SL_DLEN], const struct scalapack_grid *g, int64_t m, int64_t n)
{
    int mi = sl_int(m, "rows"), ni = sl_int(n, "columns"), zero = 0, info = 0;
    int lld = sl_numroc(m, g->nb, g->myrow, g->nprow);
    if (lld < 1)
        lld = 1; /* LLD >= 1 even for a process that owns no rows */
    descinit_(desc, &mi, &ni, &g->nb, &g->nb, &zero, &zero, &g->ctxt, &lld, &info);
    sl_info("descinit", info);
}

void sl_gather(double *out, const struct scalapack_grid *g, const double *loc,
               const int desc[SL_DLEN], int64_t rows, int64_t c0, int64_t cols, int transpose)
{
    size_t total = (size_t)rows * (size_t)cols;
    memset(out, 0, total * sizeof *out);
    int64_t mloc = sl_numroc(desc[SL_M], g->nb, g->myrow, g->nprow);
    int64_t nloc = sl_numroc(desc[SL_N], g->nb, g->mycol, g->npcol);
    int64_t lld = desc[SL_LLD];
    for (int64_t lj = 0; lj < nloc; lj++) {
        int64_t j = sl_l2g(lj, g->nb, g->mycol, g->npcol) - c0;
        if (j < 0 || j >= cols)
            continue;
        for (int64_t li = 0; li < mloc; li++) {
            int64_t i = sl_l2g(li, g->nb, g->myrow, g->nprow);
            if (i >= rows)
                continue;
            double v = loc[li + lj * lld];
            if (transpose)
                out[j * rows + i] = v;
            else
                out[i * cols + j] = v;
        }
    }
    /* Every entry has exactly one owner and zeros elsewhere, so a sum is a
     * gather that leaves the result on every rank. */
    KD_ASSERT(total <= INT_MAX, "gathered block of %zu doubles", total);
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, out, (int)total, MPI_DOUBLE, MPI_SUM, g->comm));
}

int sl_agree(const struct scalapack_grid *g, const int64_t *vals, int n)
{
    int64_t lo[8], hi[8];
    KD_ASSERT(n <= 8, "at most 8 values, got %d", n);
    MPI_CHECK(MPI_Allreduce(vals, lo, n, MPI_INT64_T, MPI_MIN, g->comm));
    MPI_CHECK(MPI_Allreduce(vals, hi, n, MPI_INT64_T, MPI_MAX, g->comm));
    for (int i = 0; i < n; i++)
        if (lo[i] != hi[i])
            return 0;
    return 1;
}

int sl_max_int(const struct scalapack_grid *g, int v)
{
    int out = v;
    MPI_CHECK(MPI_Allreduce(&v, &out, 1, MPI_INT, MPI_MAX, g->comm));
    return out;
}

int scalapack_grid_init(struct scalapack_grid *g, const struct comm *c, int nb,
                        struct kd_err *err)
{
    memset(g, 0, sizeof *g);
    g->ctxt = g->ctxt_rows = -1;
    MPI_CHECK(MPI_Comm_dup(c->world, &g->comm));
    MPI_CHECK(MPI_Comm_set_errhandler(g->comm, MPI_ERRORS_RETURN));
    MPI_CHECK(MPI_Comm_rank(g->comm, &g->rank));
    MPI_CHECK(MPI_Comm_size(g->comm, &g->size));
    g->nb = nb > 0 ? nb : SCALAPACK_NB_DEFAULT;

    /* The squarest factorisation keeps both the row and the column
     * communication of PDSYEVD and PDGELS short. */
    int P = g->size;
    g->nprow = 1;
    for (int r = 1; (int64_t)r * r <= P; r++)
        if (P % r == 0)
            g->nprow = r;
    g->npcol = P / g->nprow;

    g->rank_of = kd_malloc((size_t)P * sizeof *g->rank_of);
    int *map = kd_malloc((size_t)P * sizeof *map);
    /* usermap is column-major (ldumap = nprow): cell (r,c) at r + c*nprow */
    for (int r = 0; r < g->nprow; r++)
        for (int cc = 0; cc < g->npcol; cc++) {
            g->rank_of[r * g->npcol + cc] = r * g->npcol + cc;
            map[r + cc * g->nprow] = r * g->npcol + cc;
        }
    g->sys = Csys2blacs_handle(g->comm);
    g->ctxt = g->sys;
    Cblacs_gridmap(&g->ctxt, map, g->nprow, g->nprow, g->npcol);
    for (int r = 0; r < P; r++)
        map[r] = r;
    g->ctxt_rows = g->sys;
    Cblacs_gridmap(&g->ctxt_rows, map, P, P, 1);
    free(map);

    int pr, pc, mr, mc, bad = 0;
    Cblacs_gridinfo(g->ctxt, &pr, &pc, &g->myrow, &g->mycol);
    bad |= pr != g->nprow || pc != g->npcol || g->myrow * g->npcol + g->mycol != g->rank;
    Cblacs_gridinfo(g->ctxt_rows, &pr, &pc, &mr, &mc);
    bad |= pr != P || pc != 1 || mr != g->rank || mc != 0;
    if (sl_max_int(g, bad)) {
        scalapack_grid_free(g);
        return kd_errf(err, "BLACS refused a %dx%d process grid over %d ranks (expected "
                       "every rank in the grid at its row-major cell)", pr, pc, P);
    }
    return 0;
}

void scalapack_grid_free(struct scalapack_grid *g)
{
    /* gridexit only on a real context: -1 marks a rank outside the grid */
    if (g->ctxt >= 0 && g->myrow >= 0)
        Cblacs_gridexit(g->ctxt);
    if (g->ctxt_rows >= 0)
        Cblacs_gridexit(g->ctxt_rows);
    if (g->rank_of)
        Cfree_blacs_system_handle(g->sys);
    g->ctxt = g->ctxt_rows = -1;
    free(g->rank_of);
    g->rank_of = NULL;
    if (g->comm != MPI_COMM_NULL && g->comm != 0)
        MPI_Comm_free(&g->comm);
    g->comm = MPI_COMM_NULL;
}
