/* gemm.c: thin wrapper over cblas_sgemm, the only BLAS call site of kd_hpc
 * (kernels layer). It validates shapes once, handles the degenerate sizes
 * BLAS implementations treat inconsistently, and narrows int64_t dimensions
 * to the BLAS integer. It also owns the BLAS's thread count
 * (gemm_serial_begin/_end), the other half of talking to the BLAS, and
 * shares large products over the engine's threads (see gemm.h). */
#include "kd/kernels/gemm.h"
#include "kd/core/error.h"
#include "kd/kernels/threads.h"

#include <cblas.h>
#include <limits.h>

/* OpenBLAS's threading controls, declared weak: with another CBLAS (BLIS,
 * a reference build) they resolve to NULL and gemm_serial_begin does
 * nothing, instead of the link failing. */
#pragma weak openblas_get_parallel
#pragma weak openblas_get_num_threads
#pragma weak openblas_set_num_threads
int openblas_get_parallel(void);
int openblas_get_num_threads(void);
void openblas_set_num_threads(int num_threads);

/* openblas_get_parallel(): 0 sequential build, 1 pthreads, 2 OpenMP */
#define GEMM_OPENBLAS_PTHREADS 1
#define GEMM_OPENBLAS_OPENMP 2

/* OpenBLAS is built with 32-bit integers (blasint) in Debian's default
 * package; refuse sizes that would wrap instead of computing garbage. */
#define GEMM_INT_MAX ((int64_t)INT_MAX)

/* C = beta * C for the K == 0 case, where some BLAS builds return without
 * touching C and others scale it. */
static void scale_c(float *c, int64_t ldc, int64_t M, int64_t N, float beta)
{
    for (int64_t i = 0; i < M; i++) {
        float *row = c + i * ldc;
        if (beta == 0.0f)
            for (int64_t j = 0; j < N; j++)
                row[j] = 0.0f; /* write-only contract: drop NaN garbage */
        else if (beta != 1.0f)
            for (int64_t j = 0; j < N; j++)
                row[j] *= beta;
    }
}

/* The BLAS call; sizes are validated and fit the BLAS integer. */
static void sgemm(float *c, int64_t ldc, const float *a, int64_t lda, const float *b,
                  int64_t ldb, enum gemm_trans trans_a, enum gemm_trans trans_b, int64_t M,
                  int64_t N, int64_t K, float alpha, float beta)
{
    cblas_sgemm(CblasRowMajor, trans_a == GEMM_TRANS_T ? CblasTrans : CblasNoTrans,
                trans_b == GEMM_TRANS_T ? CblasTrans : CblasNoTrans, (int)M, (int)N,
                (int)K, alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

/* Multiply-adds per thread below which a product is not split (~50 us of
 * sgemm on one core). Attention's per-pair products never reach it. */
#define GEMM_SPLIT_GRAIN ((int64_t)1 << 22)
/* Piece boundaries: a multiple of the SGEMM register tiles (16 x 4 on
 * AVX-512, 16 x 6 / 8 x 8 on Haswell/Zen). */
#define GEMM_SPLIT_ALIGN 64

/* Pieces of a product: one per thread of a team that gives each at least
 * GEMM_SPLIT_GRAIN multiply-adds, and at most one per GEMM_SPLIT_ALIGN rows
 * (or columns) of C. */
static int split_pieces(int64_t M, int64_t N, int64_t K)
{
    const int64_t longest = M >= N ? M : N;
    const double macs = (double)M * (double)N * (double)K; /* may exceed int64 */
    const int64_t work = macs < 0x1p62 ? (int64_t)macs : (int64_t)1 << 62;
    int64_t n = threads_team(work, GEMM_SPLIT_GRAIN);
    if (n > longest / GEMM_SPLIT_ALIGN)
        n = longest / GEMM_SPLIT_ALIGN;
    return n < 1 ? 1 : (int)n;
}

void gemm(float *c, int64_t ldc, const float *a, int64_t lda, const float *b,
          int64_t ldb, enum gemm_trans trans_a, enum gemm_trans trans_b,
          int64_t M, int64_t N, int64_t K, float alpha, float beta)
{
    KD_ASSERT(M >= 0 && N >= 0 && K >= 0, "negative size M=%lld N=%lld K=%lld",
              (long long)M, (long long)N, (long long)K);
    if (M == 0 || N == 0)
        return;
    KD_ASSERT(ldc >= N, "ldc %lld < N %lld", (long long)ldc, (long long)N);
    if (K == 0) {
        scale_c(c, ldc, M, N, beta);
        return;
    }
    /* stored shapes: A is (M,K) or (K,M), B is (K,N) or (N,K) */
    int64_t a_cols = trans_a == GEMM_TRANS_N ? K : M;
    int64_t b_cols = trans_b == GEMM_TRANS_N ? N : K;
    KD_ASSERT(lda >= a_cols, "lda %lld < %lld columns of A", (long long)lda,
              (long long)a_cols);
    KD_ASSERT(ldb >= b_cols, "ldb %lld < %lld columns of B", (long long)ldb,
              (long long)b_cols);
    KD_ASSERT(M <= GEMM_INT_MAX && N <= GEMM_INT_MAX && K <= GEMM_INT_MAX &&
                  lda <= GEMM_INT_MAX && ldb <= GEMM_INT_MAX && ldc <= GEMM_INT_MAX,
              "dimension exceeds the BLAS integer (M=%lld N=%lld K=%lld)",
              (long long)M, (long long)N, (long long)K);
    /* the configured team, whatever the load: 1 on one thread and inside a
     * region (attention's pairs), where the BLAS call is exactly as it
     * always was */
    const int team = threads_now();
    if (team <= 1) {
        sgemm(c, ldc, a, lda, b, ldb, trans_a, trans_b, M, N, K, alpha, beta);
        return;
    }
    /* the pieces first: with an OpenMP OpenBLAS, gemm_serial_begin sets the
     * OpenMP thread count to 1 until gemm_serial_end */
    const int nt = split_pieces(M, N, K);
    const int saved = gemm_serial_begin(team);
    if (nt <= 1) {
        sgemm(c, ldc, a, lda, b, ldb, trans_a, trans_b, M, N, K, alpha, beta);
    } else {
        /* one piece of C per thread: rows when M >= N, else columns */
        const int by_rows = M >= N;
        KD_OMP_TEAM(nt, parallel)
        {
            int64_t lo, hi;
            threads_split(by_rows ? M : N, threads_count(), threads_id(), GEMM_SPLIT_ALIGN,
                          &lo, &hi);
            if (hi > lo && by_rows) /* rows lo..hi of op(A) and of C */
                sgemm(c + lo * ldc, ldc, trans_a == GEMM_TRANS_N ? a + lo * lda : a + lo, lda,
                      b, ldb, trans_a, trans_b, hi - lo, N, K, alpha, beta);
            else if (hi > lo) /* columns lo..hi of op(B) and of C */
                sgemm(c + lo, ldc, a, lda, trans_b == GEMM_TRANS_N ? b + lo : b + lo * ldb,
                      ldb, trans_a, trans_b, M, hi - lo, K, alpha, beta);
        }
    }
    gemm_serial_end(saved);
}

int gemm_serial_begin(int team)
{
    if (team <= 1 || !openblas_get_parallel || !openblas_get_num_threads ||
        !openblas_set_num_threads)
        return 0;
    switch (openblas_get_parallel()) {
    case GEMM_OPENBLAS_PTHREADS: {
        const int n = openblas_get_num_threads();
        if (n <= 1)
            return 0;
        openblas_set_num_threads(1);
        return n;
    }
#ifdef _OPENMP
    case GEMM_OPENBLAS_OPENMP: {
        /* this build sizes its team by omp_get_max_threads() alone, outside
         * an active region (openblas_set_num_threads would only set that
         * too), so the ICV itself goes to 1; the engine's regions name their
         * team size and are not affected */
        const int n = omp_get_max_threads();
        if (n <= 1)
            return 0;
        omp_set_num_threads(1);
        return n;
    }
#endif
    default: /* sequential build */
        return 0;
    }
}

void gemm_serial_end(int saved)
{
    if (saved <= 1)
        return; /* nothing was changed */
#ifdef _OPENMP
    if (openblas_get_parallel() == GEMM_OPENBLAS_OPENMP) {
        omp_set_num_threads(saved);
        return;
    }
#endif
    openblas_set_num_threads(saved);
}
