/* gemm.c: thin wrapper over cblas_sgemm, the only BLAS call site of kd_hpc
 * (kernels layer). It validates shapes once, handles the degenerate sizes
 * BLAS implementations treat inconsistently, and narrows int64_t dimensions
 * to the BLAS integer. */
#include "kd/kernels/gemm.h"
#include "kd/core/error.h"

#include <cblas.h>
#include <limits.h>

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
    cblas_sgemm(CblasRowMajor, trans_a == GEMM_TRANS_T ? CblasTrans : CblasNoTrans,
                trans_b == GEMM_TRANS_T ? CblasTrans : CblasNoTrans, (int)M, (int)N,
                (int)K, alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}
