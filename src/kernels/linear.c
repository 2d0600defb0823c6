/* linear.c: nn.Linear forward and backward on top of gemm (kernels layer).
 * All three products are single gemm calls over the whole (BT, .) matrix,
 * which is the shape OpenBLAS runs fastest; gemm() shares them over the
 * threads (gemm.h). The passes around them use the kernels' team
 * (threads.h): the bias seeding splits rows, the bias gradient (a sum over
 * rows) splits columns so that each column is summed in row order as on one
 * thread. */
#include "kd/kernels/linear.h"
#include "kd/kernels/gemm.h"
#include "kd/kernels/threads.h"
#include "kd/kernels/vecmath.h"

#include <string.h>

/* Elements per thread below which a pass stays on one thread (memory-bound
 * copies and adds). */
#define LINEAR_GRAIN 32768

void linear_forward(float *out, const float *inp, const float *weight,
                    const float *bias, int64_t BT, int64_t IC, int64_t OC)
{
    if (BT <= 0 || OC <= 0)
        return;
    float beta = 0.0f;
    if (bias) {
        /* seed every row with the bias and let gemm accumulate onto it:
         * saves a second pass over out after the product */
        const int nt = threads_team(BT * OC, LINEAR_GRAIN);
        KD_OMP_TEAM(nt, parallel for schedule(static))
        for (int64_t r = 0; r < BT; r++)
            memcpy(out + r * OC, bias, (size_t)OC * sizeof(float));
        beta = 1.0f;
    }
    /* out(BT,OC) = inp(BT,IC) @ weight(OC,IC)^T */
    gemm(out, OC, inp, IC, weight, IC, GEMM_TRANS_N, GEMM_TRANS_T, BT, OC, IC, 1.0f,
         beta);
}

void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, int64_t BT, int64_t IC,
                     int64_t OC)
{
    if (BT <= 0 || OC <= 0)
        return; /* no output, so no gradient flows anywhere */
    /* dinp(BT,IC) += dout(BT,OC) @ weight(OC,IC) */
    if (dinp)
        gemm(dinp, IC, dout, OC, weight, IC, GEMM_TRANS_N, GEMM_TRANS_N, BT, IC, OC,
             1.0f, 1.0f);
    /* dweight(OC,IC) += dout(BT,OC)^T @ inp(BT,IC) */
    if (dweight)
        gemm(dweight, IC, dout, OC, inp, IC, GEMM_TRANS_T, GEMM_TRANS_N, OC, IC, BT,
             1.0f, 1.0f);
    /* dbias(OC) += column sums of dout, row by row so the inner loop is
     * contiguous and vectorises */
    if (dbias) {
        const int nt = threads_team(BT * OC, LINEAR_GRAIN);
        KD_OMP_TEAM(nt, parallel)
        {
            int64_t j0, j1;
            threads_split(OC, threads_count(), threads_id(), KD_VL, &j0, &j1);
            for (int64_t r = 0; j1 > j0 && r < BT; r++)
                kd_add_inplace(dbias + j0, dout + r * OC + j0, j1 - j0);
        }
    }
}
