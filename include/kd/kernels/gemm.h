/* gemm.h: the project's single matrix-multiply entry point (kernels layer;
 * knows nothing of models). Every product in kd_hpc goes through gemm(), so
 * that the BLAS dependency, its integer width and its calling quirks live in
 * one file (src/kernels/gemm.c is the only cblas_sgemm call site).
 *
 * Layout: row-major, as every other tensor in the project. A matrix operand
 * is a pointer to its first element plus a leading dimension ld = distance
 * in floats between consecutive rows, so a sub-matrix of a larger buffer is
 * addressed without copying. Example: head h of the K part of a packed QKV
 * buffer (B,T,3*NH*HS) for sequence b is
 *     ptr = qkv + b*T*3*NH*HS + NH*HS + h*HS,  ld = 3*NH*HS,  shape (T,HS).
 */
#ifndef KD_KERNELS_GEMM_H
#define KD_KERNELS_GEMM_H

#include <stdint.h>

enum gemm_trans {
    GEMM_TRANS_N = 0, /* use the operand as stored */
    GEMM_TRANS_T = 1  /* use its transpose */
};

/* C = alpha * op(A) @ op(B) + beta * C
 *
 *   c   (M,N) with row stride ldc >= N                        in/out
 *   a   op(A) is (M,K): A stored (M,K), lda >= K if trans_a == N,
 *                       A stored (K,M), lda >= M if trans_a == T
 *   b   op(B) is (K,N): B stored (K,N), ldb >= N if trans_b == N,
 *                       B stored (N,K), ldb >= K if trans_b == T
 *
 * beta == 0 means C is write-only: whatever it held (even NaN) is ignored.
 * beta == 1 accumulates, which is how backward passes add into gradients.
 * M == 0 or N == 0 does nothing; K == 0 leaves C = beta * C.
 * C must not overlap A or B. Dimensions must fit the BLAS integer (checked).
 * Threads: only those OpenBLAS uses internally. */
void gemm(float *c, int64_t ldc, const float *a, int64_t lda, const float *b,
          int64_t ldb, enum gemm_trans trans_a, enum gemm_trans trans_b,
          int64_t M, int64_t N, int64_t K, float alpha, float beta);

#endif
