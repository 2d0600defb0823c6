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
 * Threads (kernels/threads.h): with a configured team of one thread the
 * call is a plain cblas_sgemm on the BLAS's own threads, as it always was.
 * With more, the BLAS runs single-threaded (gemm_serial_begin) and a
 * product of at least 2^22 multiply-adds per thread is cut into one piece
 * of rows of C (or columns, when N > M) per thread of the team, each an
 * ordinary sgemm: one thread pool serves the whole engine (OpenBLAS's
 * spinning pool and libgomp's do not share two cores well), and the result
 * is bitwise the single-threaded one. Inside a parallel region gemm is a
 * plain call; several threads may call it at once on disjoint outputs. */
void gemm(float *c, int64_t ldc, const float *a, int64_t lda, const float *b,
          int64_t ldb, enum gemm_trans trans_a, enum gemm_trans trans_b,
          int64_t M, int64_t N, int64_t K, float alpha, float beta);

/* Single-threaded BLAS from here to gemm_serial_end, for a team of `team`
 * threads of the engine's own that each run their own products (attention's
 * per-(batch, head) products, the pieces of a split product; gemm() does
 * this itself). Call both on the thread that opens the region, outside it:
 *     int saved = gemm_serial_begin(team);
 *     ... parallel region calling gemm() ...
 *     gemm_serial_end(saved);
 * What it does depends on the OpenBLAS build found at run time (Debian
 * switches between them with update-alternatives, so it cannot be fixed
 * at configure time):
 *   pthreads (libopenblas0-pthread, Debian's default): its thread pool is
 *     process-wide, so its count is set to 1 and restored by _end;
 *   openmp (libopenblas0-openmp): it sizes its team by
 *     omp_get_max_threads() alone (openblas_set_num_threads just sets that),
 *     and runs one thread inside an active region; so the OpenMP thread
 *     count is set to 1 and restored by _end. Regions opened in between must
 *     name their team size (the engine's all do);
 *   serial builds, team <= 1, and other BLAS libraries: nothing is done.
 * Returns the value to hand to gemm_serial_end. Why single-threaded: a
 * product's value must not depend on how many threads computed it, and
 * OpenBLAS's multi-threaded sgemm blocks K differently for some shapes
 * (e.g. M = 192, N = 312, K = 1200 differs in the last bits); its M and N
 * pieces computed one by one are bitwise the whole product, which
 * tests/kernels/t_threads checks. */
int gemm_serial_begin(int team);
void gemm_serial_end(int saved);

#endif
