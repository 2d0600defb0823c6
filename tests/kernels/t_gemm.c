/* t_gemm.c: the gemm wrapper against a naive double product, for every
 * transpose combination on strided sub-matrices (leading dimensions larger
 * than the operand), with alpha/beta, plus the degenerate sizes and the
 * beta == 0 write-only contract. Tolerance: max rel err 1e-5, abs floor 0.1
 * (operands are U(-1,1), outputs O(1); fp32 accumulation error ~K * 6e-8). */
#include "kd/kernels/gemm.h"
#include "../gradcheck.h"
#include "../tap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SENTINEL 12345.0f

/* Reference C = alpha op(A) op(B) + beta C in double, C (M,N) dense. */
static void ref_gemm(double *c, const float *a, int64_t lda, const float *b, int64_t ldb,
                     int ta, int tb, int64_t M, int64_t N, int64_t K, double alpha,
                     double beta, const float *c0, int64_t ldc)
{
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++) {
                double av = ta ? a[k * lda + i] : a[i * lda + k];
                double bv = tb ? b[j * ldb + k] : b[k * ldb + j];
                s += av * bv;
            }
            c[i * N + j] = alpha * s + beta * (double)c0[i * ldc + j];
        }
}

static void test_transposes(void)
{
    const int64_t M = 13, N = 17, K = 19, pad = 5;
    for (int ta = 0; ta <= 1; ta++)
        for (int tb = 0; tb <= 1; tb++) {
            /* stored shapes with extra columns: A (M,K) or (K,M), B (K,N) or (N,K) */
            int64_t ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
            int64_t lda = ac + pad, ldb = bc + pad + 2, ldc = N + pad + 1;
            float *a = malloc(ar * lda * sizeof *a), *b = malloc(br * ldb * sizeof *b);
            float *c = malloc(M * ldc * sizeof *c), *c0 = malloc(M * ldc * sizeof *c0);
            double *want = malloc(M * N * sizeof *want);
            gc_rand(a, ar * lda, -1, 1, 1 + ta);
            gc_rand(b, br * ldb, -1, 1, 3 + tb);
            gc_rand(c0, M * ldc, -1, 1, 5);
            for (int64_t i = 0; i < M; i++) /* padding columns must survive */
                for (int64_t j = N; j < ldc; j++)
                    c0[i * ldc + j] = SENTINEL;
            memcpy(c, c0, M * ldc * sizeof *c);
            ref_gemm(want, a, lda, b, ldb, ta, tb, M, N, K, 0.75, 0.5, c0, ldc);
            gemm(c, ldc, a, lda, b, ldb, ta ? GEMM_TRANS_T : GEMM_TRANS_N,
                 tb ? GEMM_TRANS_T : GEMM_TRANS_N, M, N, K, 0.75f, 0.5f);
            float *got = malloc(M * N * sizeof *got);
            int pad_ok = 1;
            for (int64_t i = 0; i < M; i++) {
                memcpy(got + i * N, c + i * ldc, N * sizeof *got);
                for (int64_t j = N; j < ldc; j++)
                    pad_ok &= c[i * ldc + j] == SENTINEL;
            }
            char what[64];
            snprintf(what, sizeof what, "gemm %c%c strided, alpha .75 beta .5", ta ? 'T' : 'N',
                     tb ? 'T' : 'N');
            gc_check_close(what, got, want, M * N, 1e-5, 0.1);
            ok(pad_ok, "gemm %c%c leaves columns beyond N untouched", ta ? 'T' : 'N',
               tb ? 'T' : 'N');
            free(a), free(b), free(c), free(c0), free(want), free(got);
        }
}

static void test_degenerate(void)
{
    float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 0, 0, 1, 1, 1};
    float c[4];
    /* beta == 0: C is write-only, NaN garbage must not leak */
    for (int i = 0; i < 4; i++)
        c[i] = NAN;
    gemm(c, 2, a, 3, b, 2, GEMM_TRANS_N, GEMM_TRANS_N, 2, 2, 3, 1.0f, 0.0f);
    /* [1 2 3; 4 5 6] @ [1 0; 0 1; 1 1] = [4 5; 10 11] */
    ok(c[0] == 4 && c[1] == 5 && c[2] == 10 && c[3] == 11,
       "beta 0 overwrites NaN garbage in C (got %g %g %g %g)", c[0], c[1], c[2], c[3]);
    /* K == 0: C = beta * C */
    float d[4] = {1, 2, 3, 4};
    gemm(d, 2, a, 1, b, 2, GEMM_TRANS_N, GEMM_TRANS_N, 2, 2, 0, 1.0f, 0.5f);
    ok(d[0] == 0.5f && d[3] == 2.0f, "K = 0 scales C by beta");
    for (int i = 0; i < 4; i++)
        d[i] = NAN;
    gemm(d, 2, a, 1, b, 2, GEMM_TRANS_N, GEMM_TRANS_N, 2, 2, 0, 1.0f, 0.0f);
    ok(d[0] == 0.0f && d[3] == 0.0f, "K = 0 with beta 0 zeroes C");
    /* M == 0 or N == 0: C is not touched, A and B are not read */
    float s[4] = {SENTINEL, SENTINEL, SENTINEL, SENTINEL};
    gemm(s, 2, NULL, 1, NULL, 1, GEMM_TRANS_N, GEMM_TRANS_N, 0, 2, 5, 1.0f, 0.0f);
    gemm(s, 2, NULL, 1, NULL, 1, GEMM_TRANS_N, GEMM_TRANS_T, 2, 0, 5, 1.0f, 0.0f);
    ok(s[0] == SENTINEL && s[3] == SENTINEL, "M = 0 and N = 0 leave C untouched");
    /* beta == 1 accumulates */
    float e[4] = {1, 1, 1, 1};
    gemm(e, 2, a, 3, b, 2, GEMM_TRANS_N, GEMM_TRANS_N, 2, 2, 3, 1.0f, 1.0f);
    ok(e[0] == 5 && e[3] == 12, "beta 1 accumulates onto C");
}

/* The packed-QKV addressing documented in gemm.h: head h of K for sequence
 * b is a strided (T,HS) view; Q K^T through gemm equals the copy-out way. */
static void test_qkv_head_view(void)
{
    const int64_t B = 2, T = 6, NH = 3, HS = 5, CH = NH * HS, C3 = 3 * CH;
    float *qkv = malloc(B * T * C3 * sizeof *qkv);
    gc_rand(qkv, B * T * C3, -1, 1, 11);
    int64_t b = 1, h = 2;
    const float *q = qkv + b * T * C3 + h * HS, *k = q + CH;
    float s[36];
    gemm(s, T, q, C3, k, C3, GEMM_TRANS_N, GEMM_TRANS_T, T, T, HS, 1.0f, 0.0f);
    double want[36];
    for (int64_t i = 0; i < T; i++)
        for (int64_t j = 0; j < T; j++) {
            double acc = 0;
            for (int64_t d = 0; d < HS; d++)
                acc += (double)qkv[(b * T + i) * C3 + h * HS + d] *
                       qkv[(b * T + j) * C3 + CH + h * HS + d];
            want[i * T + j] = acc;
        }
    gc_check_close("gemm on a head view inside packed QKV", s, want, T * T, 1e-5, 0.1);
    free(qkv);
}

int main(void)
{
    test_transposes();
    test_degenerate();
    test_qkv_head_view();
    return done_testing();
}
