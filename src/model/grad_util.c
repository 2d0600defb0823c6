/* grad_util.c: gradient accumulation helpers, global-norm clipping and the
 * hook points for data- and model-parallel reduction (model layer; never
 * calls MPI: parallel/ supplies the callbacks of struct optim_grad_sync).
 * Contracts are in include/kd/model/optim.h.
 *
 * The squared norm is accumulated in double (each fp32 square is exact in
 * double) with OPTIM_SUMSQ_VL partial sums in a fixed order, so the value
 * is deterministic and vectorises at -O2; its chunks run on the kernels'
 * thread team (kd/kernels/threads.h), with the same value on any team.
 * PyTorch's clip_grad_norm_ takes fp32 per-tensor norms and the fp32 norm
 * of those; the two agree to a few fp32 ulps, and the double value is the
 * better one. */
#include "kd/model/optim.h"
#include "kd/kernels/elementwise.h"
#include "kd/kernels/threads.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Partial sums of the squared norm: four AVX2 registers of doubles. */
#define OPTIM_SUMSQ_VL 16

/* The norm is summed in chunks of this many elements of a segment (a
 * multiple of OPTIM_SUMSQ_VL), each chunk in the order above, then the
 * chunks' sums in order: a fixed decomposition, so the value does not
 * depend on how many threads compute the chunks. */
#define OPTIM_SUMSQ_CHUNK 65536

/* Elements per thread below which the norm stays on one thread. */
#define OPTIM_SUMSQ_GRAIN 262144

/* clip_grad_norm_ adds this to the norm before dividing (torch 1.13). */
#define OPTIM_CLIP_NORM_EPS 1e-6

void optim_grad_zero(float *grads, size_t count)
{
    zero_floats(grads, (int64_t)count);
}

void optim_grad_scale(float *grads, size_t count, float scale)
{
    for (size_t i = 0; i < count; i++)
        grads[i] *= scale;
}

/* Squared norm of g[0, n): OPTIM_SUMSQ_VL partial sums, then the scalar
 * tail, added in that fixed order. */
static double sumsq_piece(const float *restrict g, size_t n)
{
    double acc[OPTIM_SUMSQ_VL] = {0};
    double sum = 0.0;
    size_t i = 0;
    for (; i + OPTIM_SUMSQ_VL <= n; i += OPTIM_SUMSQ_VL)
        for (int k = 0; k < OPTIM_SUMSQ_VL; k++)
            acc[k] += (double)g[i + k] * (double)g[i + k];
    for (; i < n; i++)
        sum += (double)g[i] * (double)g[i];
    for (int k = 0; k < OPTIM_SUMSQ_VL; k++)
        sum += acc[k];
    return sum;
}

static size_t chunks_of(size_t n)
{
    return (n + OPTIM_SUMSQ_CHUNK - 1) / OPTIM_SUMSQ_CHUNK;
}

double optim_grad_sumsq(const float *grads, const struct optim_segment *segs, size_t nseg)
{
    size_t nchunks = 0, total = 0;
    for (size_t s = 0; s < nseg; s++) {
        nchunks += chunks_of(segs[s].count);
        total += segs[s].count;
    }
    if (nchunks == 0)
        return 0.0;
    double local[256];
    double *part = nchunks <= 256 ? local : kd_malloc(nchunks * sizeof *part);
    const int nt = threads_team((int64_t)total, OPTIM_SUMSQ_GRAIN);
    KD_OMP_TEAM(nt, parallel)
    {
        /* chunk c (numbered over all segments in order) to thread c mod
         * team; its value does not depend on which thread computes it */
        const size_t parts = (size_t)threads_count(), me = (size_t)threads_id();
        size_t c = 0;
        for (size_t s = 0; s < nseg; s++) {
            const float *g = grads + segs[s].offset;
            const size_t n = segs[s].count;
            for (size_t at = 0; at < n; at += OPTIM_SUMSQ_CHUNK, c++) {
                if (c % parts != me)
                    continue;
                size_t len = n - at < OPTIM_SUMSQ_CHUNK ? n - at : OPTIM_SUMSQ_CHUNK;
                part[c] = sumsq_piece(g + at, len);
            }
        }
    }
    double sum = 0.0;
    for (size_t c = 0; c < nchunks; c++)
        sum += part[c];
    if (part != local)
        free(part);
    return sum;
}

double optim_grad_clip_coef(double norm, double max_norm)
{
    if (!(max_norm > 0.0) || !isfinite(norm))
        return 1.0;
    double c = max_norm / (norm + OPTIM_CLIP_NORM_EPS);
    return c < 1.0 ? c : 1.0;   /* torch.clamp(clip_coef, max=1.0) */
}

double optim_grad_clip(float *grads, const struct optim_segment *segs, size_t nseg,
                       double max_norm)
{
    double norm = sqrt(optim_grad_sumsq(grads, segs, nseg));
    double c = optim_grad_clip_coef(norm, max_norm);
    if (c < 1.0) {
        /* PyTorch multiplies every gradient by the fp32 coefficient */
        for (size_t s = 0; s < nseg; s++)
            optim_grad_scale(grads + segs[s].offset, segs[s].count, (float)c);
    }
    return norm;
}

int optim_grad_prepare(float *grads, size_t count, const struct optim_segment *segs,
                       size_t nseg, double scale, double max_norm,
                       const struct optim_grad_sync *sync, struct optim_grad_info *info,
                       struct kd_err *err)
{
    /* 1. data parallel: every replica now holds the sum of the gradients */
    if (sync && sync->reduce_grads &&
        sync->reduce_grads(sync->ctx, grads, count, err))
        return kd_err_prefix(err, "gradient reduction");
    /* 2. squared norm of this block; model-parallel stages add theirs */
    double sumsq = optim_grad_sumsq(grads, segs, nseg);
    if (sync && sync->reduce_sumsq && sync->reduce_sumsq(sync->ctx, &sumsq, err))
        return kd_err_prefix(err, "gradient norm reduction");
    /* 3. the norm of the scaled gradient, and one multiplier for the update */
    info->norm = fabs(scale) * sqrt(sumsq);
    info->clip_coef = optim_grad_clip_coef(info->norm, max_norm);
    info->grad_scale = (float)(scale * info->clip_coef);
    return 0;
}
