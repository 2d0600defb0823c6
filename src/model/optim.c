/* optim.c: AdamW / Adam over a flat parameter block (model layer; no MPI).
 * Contracts and formulas are in include/kd/model/optim.h; the gradient
 * helpers (clipping, accumulation, hooks) are in grad_util.c.
 *
 * Speed. The update is memory-bound: per element it reads p, g, m, v and
 * writes p, m, v (28 bytes), so it is one fused pass per segment. The build
 * uses -O2, where GCC 12 vectorises only loops whose trip count is a known
 * multiple of the vector width, so each segment runs in blocks of OPTIM_VL
 * elements with constant inner trip counts, then a scalar tail. sqrtf would
 * stop vectorisation (with errno semantics GCC guards every call with a
 * branch to the library), so the block's square roots go through
 * optim_sqrt_block, which uses the IEEE-exact vector instruction of the
 * target (the same correctly rounded result as sqrtf). Segment tails run
 * through the same block code on a padded copy.
 *
 * Threads (kd/kernels/threads.h): each segment is cut into one piece per
 * thread at multiples of OPTIM_VL, so every element goes through the same
 * block (and the tail through the same padded copy) as on one thread: the
 * update is bitwise the same for any team size. */
#include "kd/model/optim.h"
#include "kd/kernels/threads.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AVX512F__) || defined(__AVX__) || defined(__SSE2__)
#include <immintrin.h>
#elif defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#endif

/* Block width of the vectorised loops: two AVX2 or one AVX-512 register. */
#define OPTIM_VL 16

/* Elements per thread below which the update stays on one thread (~1 ns
 * per element, memory-bound). */
#define OPTIM_GRAIN 65536

/* a*b + c rounded once, where the target has FMA (as PyTorch's vectorised
 * add(alpha=) uses it); mul + add elsewhere, where fmaf would be a slow
 * library call. */
#if defined(__FMA__) || defined(__aarch64__)
#define OPTIM_FMA(a, b, c) fmaf((a), (b), (c))
#else
#define OPTIM_FMA(a, b, c) ((a) * (b) + (c))
#endif

/* out[k] = sqrt(in[k]) for k < OPTIM_VL, correctly rounded. */
static inline void optim_sqrt_block(float *restrict out, const float *restrict in)
{
#if defined(__AVX512F__)
    _mm512_storeu_ps(out, _mm512_sqrt_ps(_mm512_loadu_ps(in)));
#elif defined(__AVX__)
    _mm256_storeu_ps(out, _mm256_sqrt_ps(_mm256_loadu_ps(in)));
    _mm256_storeu_ps(out + 8, _mm256_sqrt_ps(_mm256_loadu_ps(in + 8)));
#elif defined(__SSE2__)
    for (int k = 0; k < OPTIM_VL; k += 4)
        _mm_storeu_ps(out + k, _mm_sqrt_ps(_mm_loadu_ps(in + k)));
#elif defined(__aarch64__) && defined(__ARM_NEON)
    for (int k = 0; k < OPTIM_VL; k += 4)
        vst1q_f32(out + k, vsqrtq_f32(vld1q_f32(in + k)));
#else
    for (int k = 0; k < OPTIM_VL; k++)
        out[k] = sqrtf(in[k]);
#endif
}

/* The fp32 coefficients of one segment's update (each computed in double
 * and rounded once, as PyTorch passes Python floats to fp32 kernels). */
struct adam_coef {
    float beta1, one_minus_beta1;
    float beta2, one_minus_beta2;
    float bc2_sqrt;   /* sqrt(1 - beta2^k) */
    float eps;
    float neg_step;   /* -lr / (1 - beta1^k) */
    float p_mul;      /* AdamW decoupled decay: 1 - lr*wd; else 1 */
    float l2;         /* Adam L2 term: wd; else 0 */
    float g_mul;      /* gradient multiplier (accumulation scale * clip) */
};

/* One block of OPTIM_VL elements, in place: the whole update. Every element
 * goes through this function (tails via a padded copy in adam_segment), so
 * a result never depends on the element's position in its segment.
 *   p (VL) parameters, updated    g (VL) raw gradients, read only
 *   m (VL), v (VL) moments, updated; none of the four may alias.
 * The decayed parameter p * p_mul is stored in the first loop and re-read
 * in the second, which keeps it rounded to fp32 (PyTorch's param.mul_ is a
 * separate op) instead of letting -ffp-contract fuse it into the final add. */
static inline void adam_block(const struct adam_coef *c, float *restrict p,
                              const float *restrict g, float *restrict m,
                              float *restrict v)
{
    /* coefficients in locals: with restrict pointers GCC then keeps them in
     * registers instead of reloading them through c */
    const float beta1 = c->beta1, omb1 = c->one_minus_beta1;
    const float beta2 = c->beta2, omb2 = c->one_minus_beta2;
    const float bc2s = c->bc2_sqrt, eps = c->eps, neg_step = c->neg_step;
    const float p_mul = c->p_mul, l2 = c->l2, g_mul = c->g_mul;
    float s[OPTIM_VL]; /* sqrt(v) of the block */
    /* pass 1: gradient (Adam: + wd * p), decoupled decay, both moments */
    for (int k = 0; k < OPTIM_VL; k++) {
        float gk = OPTIM_FMA(p[k], l2, g[k] * g_mul);
        p[k] = p[k] * p_mul;
        m[k] = OPTIM_FMA(gk, omb1, m[k] * beta1);
        v[k] = OPTIM_FMA(omb2 * gk, gk, v[k] * beta2);
    }
    optim_sqrt_block(s, v);
    /* pass 2: torch's addcdiv_, p + (-step * m) / denom, in that order */
    for (int k = 0; k < OPTIM_VL; k++) {
        float d = s[k] / bc2s + eps;
        p[k] = p[k] + (neg_step * m[k]) / d;
    }
}

/* Updates the n elements of one segment in place (shapes as adam_block,
 * with n for VL): whole blocks directly, the tail of fewer than OPTIM_VL
 * elements through a zero-padded copy (zeros stay finite: v = 0 gives
 * denom = eps and a zero update). */
static void adam_segment(const struct adam_coef *c, float *restrict p,
                         const float *restrict g, float *restrict m, float *restrict v,
                         size_t n)
{
    size_t i = 0;
    for (; i + OPTIM_VL <= n; i += OPTIM_VL)
        adam_block(c, p + i, g + i, m + i, v + i);
    size_t rest = n - i;
    if (rest > 0) {
        float tp[OPTIM_VL] = {0}, tg[OPTIM_VL] = {0}, tm[OPTIM_VL] = {0}, tv[OPTIM_VL] = {0};
        memcpy(tp, p + i, rest * sizeof *tp);
        memcpy(tg, g + i, rest * sizeof *tg);
        memcpy(tm, m + i, rest * sizeof *tm);
        memcpy(tv, v + i, rest * sizeof *tv);
        adam_block(c, tp, tg, tm, tv);
        memcpy(p + i, tp, rest * sizeof *tp);
        memcpy(m + i, tm, rest * sizeof *tm);
        memcpy(v + i, tv, rest * sizeof *tv);
    }
}

/* ---- configuration and segments ---------------------------------------- */

const char *optim_kind_name(enum optim_kind kind)
{
    switch (kind) {
    case OPTIM_KIND_ADAMW: return "adamw";
    case OPTIM_KIND_ADAM: return "adam";
    default: return "?";
    }
}

void optim_config_default(struct optim_config *cfg, enum optim_kind kind)
{
    /* torch.optim.AdamW / torch.optim.Adam defaults */
    cfg->kind = kind;
    cfg->beta1 = 0.9;
    cfg->beta2 = 0.999;
    cfg->eps = 1e-8;
    cfg->weight_decay = kind == OPTIM_KIND_ADAMW ? 0.01 : 0.0;
}

int optim_config_check(const struct optim_config *cfg, struct kd_err *err)
{
    if (cfg->kind != OPTIM_KIND_ADAMW && cfg->kind != OPTIM_KIND_ADAM)
        return kd_errf(err, "optimizer: expected kind adamw or adam, got %d", (int)cfg->kind);
    /* written as !(in range) so that NaN fails too */
    if (!(cfg->beta1 >= 0.0 && cfg->beta1 < 1.0))
        return kd_errf(err, "optimizer %s: beta1: expected a number in [0, 1), got %g",
                       optim_kind_name(cfg->kind), cfg->beta1);
    if (!(cfg->beta2 >= 0.0 && cfg->beta2 < 1.0))
        return kd_errf(err, "optimizer %s: beta2: expected a number in [0, 1), got %g",
                       optim_kind_name(cfg->kind), cfg->beta2);
    if (!(cfg->eps > 0.0 && isfinite(cfg->eps)))
        return kd_errf(err, "optimizer %s: eps: expected a finite number > 0, got %g",
                       optim_kind_name(cfg->kind), cfg->eps);
    if (!(cfg->weight_decay >= 0.0 && isfinite(cfg->weight_decay)))
        return kd_errf(err, "optimizer %s: weight_decay: expected a finite number >= 0, got %g",
                       optim_kind_name(cfg->kind), cfg->weight_decay);
    return 0;
}

static const char *seg_name(const struct optim_segment *s)
{
    return s->name ? s->name : "(unnamed)";
}

/* A segment's range with its index, sorted by offset to find overlaps. */
struct seg_range {
    size_t offset, count, index;
};

static int seg_range_cmp(const void *a, const void *b)
{
    const struct seg_range *x = a, *y = b;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    if (x->count != y->count)
        return x->count < y->count ? -1 : 1;
    return 0;
}

int optim_segments_check(const struct optim_segment *segs, size_t nseg, size_t count,
                         struct kd_err *err)
{
    for (size_t i = 0; i < nseg; i++) {
        const struct optim_segment *s = &segs[i];
        if (s->offset > count || s->count > count - s->offset)
            return kd_errf(err, "optimizer segment %zu '%s': expected a range inside the "
                           "parameter block of %zu elements, got offset %zu count %zu",
                           i, seg_name(s), count, s->offset, s->count);
    }
    if (nseg < 2)
        return 0;
    /* sorted by offset, a segment overlaps an earlier one iff it starts
     * before the furthest end seen so far (zero-sized ones overlap nothing) */
    struct seg_range *r = kd_malloc(nseg * sizeof *r);
    for (size_t i = 0; i < nseg; i++)
        r[i] = (struct seg_range){segs[i].offset, segs[i].count, i};
    qsort(r, nseg, sizeof *r, seg_range_cmp);
    int rc = 0;
    size_t end = 0, owner = 0; /* furthest end so far and the segment that has it */
    for (size_t j = 0; j < nseg && rc == 0; j++) {
        if (r[j].count == 0)
            continue;
        if (r[j].offset < end) {
            const struct optim_segment *o = &segs[owner], *s = &segs[r[j].index];
            rc = kd_errf(err, "optimizer segments %zu '%s' [%zu, %zu) and %zu '%s' "
                         "[%zu, %zu) overlap: expected disjoint ranges",
                         owner, seg_name(o), o->offset, o->offset + o->count, r[j].index,
                         seg_name(s), s->offset, s->offset + s->count);
        }
        if (r[j].offset + r[j].count > end) {
            end = r[j].offset + r[j].count;
            owner = r[j].index;
        }
    }
    free(r);
    return rc;
}

int optim_segment_decay_default(const char *name)
{
    /* transformers' examples: no_decay = ["bias", "LayerNorm.weight"]; the
     * train20 fixture's rule (".bias" suffix or "LayerNorm" anywhere) is
     * the same on BERT names and also covers old "LayerNorm.gamma/beta" */
    size_t n = strlen(name);
    if (n >= 5 && strcmp(name + n - 5, ".bias") == 0)
        return 0;
    if (strstr(name, "LayerNorm") || strstr(name, "layer_norm"))
        return 0;
    return 1;
}

/* ---- optimizer ------------------------------------------------------- */

int optim_init(struct optim *opt, const struct optim_config *cfg,
               const struct optim_segment *segs, size_t nseg,
               float *m, float *v, size_t count, struct kd_err *err)
{
    /* validated once here, so optim_step has no checks in the hot path */
    memset(opt, 0, sizeof *opt);
    if (optim_config_check(cfg, err) || optim_segments_check(segs, nseg, count, err))
        return -1;
    if (count > 0 && (!m || !v))
        return kd_errf(err, "optimizer: expected moment buffers of %zu floats, got NULL",
                       count);
    opt->cfg = *cfg;
    opt->segs = segs;
    opt->nseg = nseg;
    opt->count = count;
    opt->m = m;
    opt->v = v;
    opt->step = 0;
    if (count > 0) {
        memset(m, 0, count * sizeof *m);
        memset(v, 0, count * sizeof *v);
    }
    return 0;
}

void optim_step(struct optim *opt, float *params, const float *grads, double lr,
                float grad_scale)
{
    const struct optim_config *cfg = &opt->cfg;
    /* torch increments its step before computing the bias corrections, so
     * the first update uses k = 1 */
    opt->step += 1;
    /* bias corrections of step k (PyTorch: Python floats, beta ** step) */
    double k = (double)opt->step;
    double bc1 = 1.0 - pow(cfg->beta1, k);
    double bc2 = 1.0 - pow(cfg->beta2, k);
    struct adam_coef c = {
        .beta1 = (float)cfg->beta1,
        .one_minus_beta1 = (float)(1.0 - cfg->beta1),
        .beta2 = (float)cfg->beta2,
        .one_minus_beta2 = (float)(1.0 - cfg->beta2),
        .bc2_sqrt = (float)sqrt(bc2),
        .eps = (float)cfg->eps,
        .neg_step = (float)(-(lr / bc1)),
        .g_mul = grad_scale,
    };
    /* the segments differ only in their decay terms; a no-decay segment
     * gets p_mul = 1 and l2 = 0, which leave p and g bit-for-bit unchanged
     * (torch multiplies by 1 - lr * 0 = 1 too) */
    const float p_mul_decay = (float)(1.0 - lr * cfg->weight_decay);
    const float l2_decay = (float)cfg->weight_decay;
    const int nt = threads_team((int64_t)opt->count, OPTIM_GRAIN);
    KD_OMP_TEAM(nt, parallel firstprivate(c))
    {
        const int parts = threads_count(), part = threads_id();
        for (size_t s = 0; s < opt->nseg; s++) {
            const struct optim_segment *seg = &opt->segs[s];
            int decayed = seg->decay && cfg->weight_decay != 0.0;
            /* torch: param.mul_(1 - lr * weight_decay), or grad + wd * param */
            c.p_mul = (decayed && cfg->kind == OPTIM_KIND_ADAMW) ? p_mul_decay : 1.0f;
            c.l2 = (decayed && cfg->kind == OPTIM_KIND_ADAM) ? l2_decay : 0.0f;
            int64_t lo, hi;
            threads_split((int64_t)seg->count, parts, part, OPTIM_VL, &lo, &hi);
            size_t o = seg->offset + (size_t)lo;
            if (hi > lo)
                adam_segment(&c, params + o, grads + o, opt->m + o, opt->v + o,
                             (size_t)(hi - lo));
        }
    }
}

int optim_state_restore(struct optim *opt, int64_t step, struct kd_err *err)
{
    /* A corrupt or mismatched checkpoint shows up as garbage moments; a
     * negative or NaN v would turn into NaN parameters on the first step,
     * far from the cause. The scan costs one read of m and v per resume.
     * Only segment elements are checked: gaps are not optimizer state. */
    if (step < 0)
        return kd_errf(err, "optimizer state: step: expected >= 0, got %lld", (long long)step);
    for (size_t s = 0; s < opt->nseg; s++) {
        const struct optim_segment *seg = &opt->segs[s];
        for (size_t i = seg->offset; i < seg->offset + seg->count; i++) {
            if (!isfinite(opt->m[i]))
                return kd_errf(err, "optimizer state: m of '%s' element %zu: expected a "
                               "finite value, got %g", seg_name(seg), i - seg->offset,
                               (double)opt->m[i]);
            if (!(opt->v[i] >= 0.0f && isfinite(opt->v[i])))
                return kd_errf(err, "optimizer state: v of '%s' element %zu: expected a "
                               "finite value >= 0, got %g", seg_name(seg), i - seg->offset,
                               (double)opt->v[i]);
        }
    }
    opt->step = step;
    return 0;
}
