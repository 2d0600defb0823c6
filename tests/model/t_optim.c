/* t_optim.c: AdamW / Adam, clipping and accumulation helpers
 * (include/kd/model/optim.h).
 *
 *   1. PyTorch trajectories (tests/fixtures/optim/<case>.safetensors, from
 *      tests/gen/make_optim_cases.py with torch 1.13): 12 steps of
 *      torch.optim.AdamW / Adam on 7 tensors with decay and no-decay
 *      segments, per-step rates from the schedule, clip_grad_norm_ on.
 *      Metric: per step, max_i |got_i - want_i| / max(|want_i|, lr_max) over
 *      all parameters must be <= 1e-6. The floor is the size of one update:
 *      a rounding difference in the update (e.g. without FMA, where torch
 *      uses it) is an ulp of ~lr_max, which only a parameter near 0 would
 *      see magnified relative to itself. The pre-clip norm within 1e-6
 *      relative of torch's fp32 value; final m and v within 1e-6 normwise per
 *      segment (max |got - want| / max |want| over each tensor): m averages
 *      gradients of both signs, so its rounding error scales with the
 *      tensor's gradients, not with each m (torch's fp32 clip coefficient
 *      also differs from the double one by an ulp on some steps). The number
 *      of bit-identical parameters is printed (all of them, on this machine).
 *   2. The fused gradient multiplier (optim_grad_prepare -> optim_step) is
 *      bit-identical to clipping the gradients in place first.
 *   3. Resume: 10 steps equal 5 steps, state written to a safetensors file,
 *      read into fresh buffers, then 5 more steps, bitwise.
 *   4. AdamW and Adam coincide bitwise when weight decay is 0; an element's
 *      result does not depend on its offset (vector block or padded tail).
 *   5. Clipping: the norm against a sequential double reference, the
 *      clipped norm equals max_norm, no change below the threshold or when
 *      max_norm is 0, gaps between segments untouched.
 *   6. Accumulation and the reduction hooks of optim_grad_prepare.
 *   7. train20 (tests/fixtures/models/train20): the real BERT parameters,
 *      step-0 gradients, clipping at 1 and the first AdamW update land on
 *      the stored after1.* (and steps.grad_norm[0]).
 *   8. Validation messages. */
#include "kd/model/lr_schedule.h"
#include "kd/model/optim.h"
#include "kd/model/safetensors.h"
#include "../tap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef KD_TOP_SRCDIR
#define KD_TOP_SRCDIR "."
#endif

/* Tolerance of the trajectory comparison (metric above; floor lr_max). */
#define TRAJ_TOL 1e-6

static void src_path(char *out, size_t cap, const char *rel)
{
    const char *top = getenv("KD_SRCDIR");
    snprintf(out, cap, "%s/%s", top && *top ? top : KD_TOP_SRCDIR, rel);
}

/* Small deterministic normal generator (Box-Muller on an LCG). */
static uint64_t rng_state = 88172645463325252ull;
static double rng_uniform(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return ((double)(rng_state >> 11) + 0.5) / 9007199254740992.0;
}
static float rng_normal(float sd)
{
    double u = rng_uniform(), w = rng_uniform();
    return (float)(sd * sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * w));
}

/* max over segments of max_i |got_i - want_i| / max_i |want_i| (normwise
 * relative error per tensor); *where receives the segment index. */
static double seg_normwise_err(const float *got, const float *want,
                               const struct optim_segment *segs, size_t nseg, size_t *where)
{
    double worst = 0.0;
    *where = 0;
    for (size_t s = 0; s < nseg; s++) {
        double d = 0.0, mx = 0.0;
        for (size_t i = segs[s].offset; i < segs[s].offset + segs[s].count; i++) {
            double e = fabs((double)got[i] - (double)want[i]);
            d = e > d || isnan(e) ? e : d;
            mx = fabs((double)want[i]) > mx ? fabs((double)want[i]) : mx;
        }
        double r = mx > 0 ? d / mx : d;
        if (!(r <= worst)) {
            worst = isnan(r) ? INFINITY : r;
            *where = s;
        }
    }
    return worst;
}

static float *fdup(const float *x, size_t n)
{
    float *y = kd_malloc(n * sizeof *y);
    memcpy(y, x, n * sizeof *y);
    return y;
}

/* ---- fixture cases --------------------------------------------------- */

struct optim_case {
    char name[32];
    struct optim_config cfg;
    struct lr_schedule sched;
    double max_norm;
    size_t n, steps, nseg;
    struct optim_segment segs[16];
    char seg_names[512];
    float *init, *grads, *lr, *grad_norm, *params, *m, *v;
};

static void case_free(struct optim_case *c)
{
    free(c->init);
    free(c->grads);
    free(c->lr);
    free(c->grad_norm);
    free(c->params);
    free(c->m);
    free(c->v);
}

static const char *meta(const st_reader_t *r, const char *key)
{
    const char *s = st_reader_metadata(r, key);
    if (!s)
        bail_out("optim fixture: metadata key '%s' missing", key);
    return s;
}

/* Reads a whole F32 tensor into a new buffer of exactly `numel` floats. */
static float *read_f32(const st_reader_t *r, const char *name, size_t numel)
{
    struct kd_err err;
    const struct st_tensor_info *t = st_reader_find(r, name);
    if (!t || (size_t)t->numel != numel)
        bail_out("optim fixture: tensor '%s' missing or not %zu elements", name, numel);
    float *x = kd_malloc(numel * sizeof *x);
    if (st_reader_read_f32(r, t, x, -1, NULL, &err))
        bail_out("%s", err.msg);
    return x;
}

static void case_load(struct optim_case *c, const char *name)
{
    char path[4096], rel[128];
    struct kd_err err;
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    snprintf(rel, sizeof rel, "tests/fixtures/optim/%s.safetensors", name);
    src_path(path, sizeof path, rel);
    st_reader_t *r = NULL;
    if (st_reader_open_file(&r, path, &err))
        bail_out("%s", err.msg);
    /* hyperparameters: Python repr strings, so strtod gives the same double */
    const char *kind = meta(r, "optimizer");
    c->cfg.kind = strcmp(kind, "adam") == 0 ? OPTIM_KIND_ADAM : OPTIM_KIND_ADAMW;
    c->cfg.beta1 = strtod(meta(r, "beta1"), NULL);
    c->cfg.beta2 = strtod(meta(r, "beta2"), NULL);
    c->cfg.eps = strtod(meta(r, "eps"), NULL);
    c->cfg.weight_decay = strtod(meta(r, "weight_decay"), NULL);
    c->max_norm = strtod(meta(r, "max_norm"), NULL);
    if (lr_schedule_kind_parse(meta(r, "schedule"), &c->sched.kind, &err))
        bail_out("%s", err.msg);
    c->sched.lr_max = strtod(meta(r, "lr_max"), NULL);
    c->sched.lr_min = strtod(meta(r, "lr_min"), NULL);
    c->sched.warmup_steps = strtoll(meta(r, "warmup_steps"), NULL, 10);
    c->sched.total_steps = strtoll(meta(r, "total_steps"), NULL, 10);
    c->steps = (size_t)strtoll(meta(r, "steps"), NULL, 10);

    /* segment table: I64 [NSEG, 3] (offset, count, decay), names from metadata */
    const struct st_tensor_info *t = st_reader_find(r, "segments");
    if (!t || t->ndim != 2 || t->shape[1] != 3 || t->shape[0] > 16)
        bail_out("%s: bad segments tensor", path);
    int64_t seg[16 * 3];
    if (st_reader_read_i64(r, t, seg, -1, NULL, &err))
        bail_out("%s", err.msg);
    c->nseg = (size_t)t->shape[0];
    snprintf(c->seg_names, sizeof c->seg_names, "%s", meta(r, "segment_names"));
    char *save = NULL, *tok = strtok_r(c->seg_names, ",", &save);
    for (size_t i = 0; i < c->nseg; i++) {
        c->segs[i] = (struct optim_segment){(size_t)seg[3 * i], (size_t)seg[3 * i + 1],
                                            (int)seg[3 * i + 2], tok};
        c->n = c->segs[i].offset + c->segs[i].count;
        tok = strtok_r(NULL, ",", &save);
    }
    c->init = read_f32(r, "init", c->n);
    c->grads = read_f32(r, "grads", c->steps * c->n);
    c->lr = read_f32(r, "lr", c->steps);
    c->grad_norm = read_f32(r, "grad_norm", c->steps);
    c->params = read_f32(r, "params", c->steps * c->n);
    c->m = read_f32(r, "m", c->n);
    c->v = read_f32(r, "v", c->n);
    st_reader_close(r);
}

/* Runs `steps` updates from step `from` of the case on (p, opt), the way a
 * trainer does: prepare (clip coefficient) then one fused update. */
static void run_steps(const struct optim_case *c, struct optim *opt, float *p, size_t from,
                      size_t steps, double *norms)
{
    float *g = kd_malloc(c->n * sizeof *g);
    for (size_t t = from; t < from + steps; t++) {
        memcpy(g, c->grads + t * c->n, c->n * sizeof *g);
        struct optim_grad_info gi;
        struct kd_err err;
        if (optim_grad_prepare(g, c->n, c->segs, c->nseg, 1.0, c->max_norm, NULL, &gi, &err))
            bail_out("%s", err.msg);
        if (norms)
            norms[t] = gi.norm;
        optim_step(opt, p, g, lr_schedule_at(&c->sched, opt->step), gi.grad_scale);
    }
    free(g);
}

static void test_trajectory(const char *name)
{
    struct optim_case c;
    struct kd_err err;
    case_load(&c, name);
    const char *kind = optim_kind_name(c.cfg.kind);

    /* the schedule's rates are the ones torch used */
    long lr_bad = 0;
    for (size_t t = 0; t < c.steps; t++)
        if ((float)lr_schedule_at(&c.sched, (int64_t)t) != c.lr[t])
            lr_bad++;
    ok(lr_bad == 0, "%s (%s, %s schedule): lr(t) equals the stored rates", name, kind,
       lr_schedule_kind_name(c.sched.kind));

    float *p = fdup(c.init, c.n);
    float *m = kd_malloc(c.n * sizeof *m), *v = kd_malloc(c.n * sizeof *v);
    struct optim opt;
    ok(optim_init(&opt, &c.cfg, c.segs, c.nseg, m, v, c.n, &err) == 0, "%s: init", name);
    double worst = 0, worst_norm = 0;
    size_t worst_step = 0, worst_at = 0, exact = 0, clipped = 0;
    double *norms = kd_calloc(c.steps, sizeof *norms);
    float *g = kd_malloc(c.n * sizeof *g);
    for (size_t t = 0; t < c.steps; t++) {
        run_steps(&c, &opt, p, t, 1, norms);
        size_t at;
        double e = max_rel_err(p, c.params + t * c.n, c.n, c.sched.lr_max, &at);
        if (!(e <= worst)) {
            worst = isnan(e) ? INFINITY : e;
            worst_step = t;
            worst_at = at;
        }
        for (size_t i = 0; i < c.n; i++)
            exact += p[i] == c.params[t * c.n + i];
        double en = fabs(norms[t] - c.grad_norm[t]) / c.grad_norm[t];
        if (!(en <= worst_norm))
            worst_norm = isnan(en) ? INFINITY : en;
        clipped += c.max_norm > 0 && norms[t] > c.max_norm;
    }
    ok(worst <= TRAJ_TOL, "%s: parameters after each of %zu steps within %g of torch "
       "(worst %.3g at step %zu, element %zu; %zu of %zu values bit-identical)", name,
       c.steps, TRAJ_TOL, worst, worst_step, worst_at, exact, c.steps * c.n);
    ok(worst_norm <= 1e-6, "%s: pre-clip norm within 1e-6 of torch's fp32 value "
       "(worst %.3g; %zu of %zu steps clipped)", name, worst_norm, clipped, c.steps);
    if (c.max_norm > 0)
        ok(clipped > 0 && clipped < c.steps, "%s: clipping was active on some steps only",
           name);
    size_t at_m, at_v;
    double em = seg_normwise_err(m, c.m, c.segs, c.nseg, &at_m);
    double ev = seg_normwise_err(v, c.v, c.segs, c.nseg, &at_v);
    ok(em <= TRAJ_TOL && ev <= TRAJ_TOL, "%s: final m and v within %g of torch, normwise per "
       "tensor (m %.3g in %s, v %.3g in %s)", name, TRAJ_TOL, em, c.segs[at_m].name, ev,
       c.segs[at_v].name);
    ok(opt.step == (int64_t)c.steps, "%s: step counter is %zu", name, c.steps);

    /* 2. in-place clipping then a step with multiplier 1: bit-identical */
    float *p2 = fdup(c.init, c.n);
    float *m2 = kd_malloc(c.n * sizeof *m2), *v2 = kd_malloc(c.n * sizeof *v2);
    struct optim opt2;
    optim_init(&opt2, &c.cfg, c.segs, c.nseg, m2, v2, c.n, &err);
    memcpy(p, c.init, c.n * sizeof *p);
    optim_init(&opt, &c.cfg, c.segs, c.nseg, m, v, c.n, &err);
    int same = 1;
    for (size_t t = 0; t < c.steps; t++) {
        run_steps(&c, &opt, p, t, 1, NULL);
        memcpy(g, c.grads + t * c.n, c.n * sizeof *g);
        optim_grad_clip(g, c.segs, c.nseg, c.max_norm);
        optim_step(&opt2, p2, g, lr_schedule_at(&c.sched, opt2.step), 1.0f);
        same &= memcmp(p, p2, c.n * 4) == 0 && memcmp(m, m2, c.n * 4) == 0 &&
                memcmp(v, v2, c.n * 4) == 0;
    }
    ok(same, "%s: fused clip multiplier equals clipping in place, bitwise", name);

    free(p);
    free(m);
    free(v);
    free(p2);
    free(m2);
    free(v2);
    free(g);
    free(norms);
    case_free(&c);
}

/* ---- 3. resume ------------------------------------------------------- */

static void test_resume(const char *name)
{
    struct optim_case c;
    struct kd_err err;
    case_load(&c, name);
    const size_t total = 10, half = 5;

    /* straight run */
    float *p = fdup(c.init, c.n);
    float *m = kd_malloc(c.n * 4), *v = kd_malloc(c.n * 4);
    struct optim opt;
    optim_init(&opt, &c.cfg, c.segs, c.nseg, m, v, c.n, &err);
    run_steps(&c, &opt, p, 0, total, NULL);

    /* 5 steps, then save parameters and state as a trainer's checkpoint would */
    float *pa = fdup(c.init, c.n);
    float *ma = kd_malloc(c.n * 4), *va = kd_malloc(c.n * 4);
    struct optim oa;
    optim_init(&oa, &c.cfg, c.segs, c.nseg, ma, va, c.n, &err);
    run_steps(&c, &oa, pa, 0, half, NULL);
    char dir[4096], path[4200];
    const char *base = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/t_optim_XXXXXX", base && *base ? base : "/tmp");
    const char *tmp = mkdtemp(dir);
    if (!tmp)
        bail_out("mkdtemp failed");
    snprintf(path, sizeof path, "%s/state.safetensors", tmp);
    st_writer_t *w = st_writer_new();
    int64_t shape[1] = {(int64_t)c.n}, step = oa.step;
    int rc = st_writer_add_f32(w, "params", pa, 1, shape, ST_DTYPE_F32, &err) ||
             st_writer_add_f32(w, "optim.m", oa.m, 1, shape, ST_DTYPE_F32, &err) ||
             st_writer_add_f32(w, "optim.v", oa.v, 1, shape, ST_DTYPE_F32, &err) ||
             st_writer_add_i64(w, "optim.step", &step, 0, NULL, ST_DTYPE_I64, &err) ||
             st_writer_write(w, path, &err);
    st_writer_free(w);
    ok(rc == 0, "%s: optimizer state written%s%s", name, rc ? ": " : "", rc ? err.msg : "");
    /* scribble over the first run's buffers so nothing leaks through */
    memset(pa, 0x7f, c.n * 4);
    memset(ma, 0x7f, c.n * 4);
    memset(va, 0x7f, c.n * 4);
    free(pa);
    free(ma);
    free(va);

    /* fresh buffers, restore, 5 more steps */
    float *pb = kd_calloc(c.n, 4), *mb = kd_calloc(c.n, 4), *vb = kd_calloc(c.n, 4);
    struct optim ob;
    st_reader_t *r = NULL;
    int64_t saved_step = -1;
    rc = optim_init(&ob, &c.cfg, c.segs, c.nseg, mb, vb, c.n, &err) ||
         st_reader_open_file(&r, path, &err) ||
         st_reader_read_f32(r, st_reader_find(r, "params"), pb, 1, shape, &err) ||
         st_reader_read_f32(r, st_reader_find(r, "optim.m"), ob.m, 1, shape, &err) ||
         st_reader_read_f32(r, st_reader_find(r, "optim.v"), ob.v, 1, shape, &err) ||
         st_reader_read_i64(r, st_reader_find(r, "optim.step"), &saved_step, 0, NULL, &err) ||
         optim_state_restore(&ob, saved_step, &err);
    st_reader_close(r);
    unlink(path);
    rmdir(tmp);
    ok(rc == 0 && ob.step == (int64_t)half, "%s: state restored at step %lld%s%s", name,
       (long long)ob.step, rc ? ": " : "", rc ? err.msg : "");
    run_steps(&c, &ob, pb, half, total - half, NULL);
    ok(ob.step == opt.step && memcmp(pb, p, c.n * 4) == 0 && memcmp(mb, m, c.n * 4) == 0 &&
       memcmp(vb, v, c.n * 4) == 0,
       "%s: 5 steps + save + restore + 5 steps equals 10 steps, bitwise", name);
    free(p);
    free(m);
    free(v);
    free(pb);
    free(mb);
    free(vb);
    case_free(&c);
}

/* ---- 4. AdamW == Adam without weight decay ---------------------------- */

static void test_adam_adamw_no_decay(void)
{
    enum { N = 101 };
    struct optim_segment segs[2] = {{0, 60, 1, "w"}, {60, 41, 0, "b"}};
    float p0[N], g[3][N];
    for (int i = 0; i < N; i++)
        p0[i] = rng_normal(1.0f);
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < N; i++)
            g[s][i] = rng_normal(0.1f);
    float pa[N], pb[N], ma[N], va[N], mb[N], vb[N];
    memcpy(pa, p0, sizeof pa);
    memcpy(pb, p0, sizeof pb);
    struct optim_config ca, cb;
    optim_config_default(&ca, OPTIM_KIND_ADAMW);
    optim_config_default(&cb, OPTIM_KIND_ADAM);
    ca.weight_decay = cb.weight_decay = 0.0;
    struct optim oa, ob;
    optim_init(&oa, &ca, segs, 2, ma, va, N, NULL);
    optim_init(&ob, &cb, segs, 2, mb, vb, N, NULL);
    for (int s = 0; s < 3; s++) {
        optim_step(&oa, pa, g[s], 1e-3, 1.0f);
        optim_step(&ob, pb, g[s], 1e-3, 1.0f);
    }
    ok(memcmp(pa, pb, sizeof pa) == 0 && memcmp(va, vb, sizeof va) == 0,
       "AdamW and Adam coincide bitwise when weight_decay = 0");
    /* and with decay, the no-decay segment still coincides */
    ca.weight_decay = cb.weight_decay = 0.1;
    memcpy(pa, p0, sizeof pa);
    memcpy(pb, p0, sizeof pb);
    optim_init(&oa, &ca, segs, 2, ma, va, N, NULL);
    optim_init(&ob, &cb, segs, 2, mb, vb, N, NULL);
    optim_step(&oa, pa, g[0], 1e-3, 1.0f);
    optim_step(&ob, pb, g[0], 1e-3, 1.0f);
    ok(memcmp(pa + 60, pb + 60, 41 * 4) == 0 && memcmp(pa, pb, 60 * 4) != 0,
       "with weight decay only the decay segment differs between AdamW and Adam");
}

/* An element's update does not depend on where it falls in the blocks of
 * the vectorised loop (full block or padded tail). */
static void test_position_independence(void)
{
    enum { N = 37, SHIFT = 5 };
    float p0[N], g0[N];
    for (int i = 0; i < N; i++) {
        p0[i] = rng_normal(1.0f);
        g0[i] = rng_normal(0.1f);
    }
    struct optim_segment sa = {0, N, 1, "a"}, sb = {SHIFT, N, 1, "b"};
    float pa[N], ma[N], va[N], pb[N + SHIFT], gb[N + SHIFT], mb[N + SHIFT], vb[N + SHIFT];
    memcpy(pa, p0, sizeof pa);
    memcpy(pb + SHIFT, p0, sizeof p0);
    memcpy(gb + SHIFT, g0, sizeof g0);
    struct optim_config cfg;
    optim_config_default(&cfg, OPTIM_KIND_ADAMW);
    struct optim oa, ob;
    optim_init(&oa, &cfg, &sa, 1, ma, va, N, NULL);
    optim_init(&ob, &cfg, &sb, 1, mb, vb, N + SHIFT, NULL);
    for (int s = 0; s < 3; s++) {
        optim_step(&oa, pa, g0, 1e-2, 0.5f);
        optim_step(&ob, pb, gb, 1e-2, 0.5f);
    }
    ok(memcmp(pa, pb + SHIFT, sizeof pa) == 0 && memcmp(va, vb + SHIFT, sizeof va) == 0,
       "results do not depend on the segment's offset (block versus tail elements)");
}

/* ---- 5. clipping ---------------------------------------------------- */

static void test_clip(void)
{
    enum { N = 1000 };
    /* three segments with gaps [300, 310) and [990, 1000) left out */
    struct optim_segment segs[3] = {{0, 300, 1, "a"}, {310, 17, 0, "b"}, {327, 663, 1, "c"}};
    float *g = kd_malloc(N * 4), *g0 = kd_malloc(N * 4);
    for (int i = 0; i < N; i++)
        g0[i] = rng_normal(0.3f);
    double ref = 0.0; /* sequential double reference over the segments */
    for (int s = 0; s < 3; s++)
        for (size_t i = segs[s].offset; i < segs[s].offset + segs[s].count; i++)
            ref += (double)g0[i] * (double)g0[i];
    ref = sqrt(ref);

    memcpy(g, g0, N * 4);
    double norm = optim_grad_clip(g, segs, 3, 1.0);
    ok_near(norm, ref, 1e-13, 0, "clip returns the pre-clip norm (double reference %.6f)",
            ref);
    double after = sqrt(optim_grad_sumsq(g, segs, 3));
    ok_near(after, 1.0, 1e-6, 0, "clipped norm equals max_norm = 1 (got %.9f)", after);
    ok(memcmp(g + 300, g0 + 300, 10 * 4) == 0 && memcmp(g + 990, g0 + 990, 10 * 4) == 0,
       "gradients outside the segments are neither counted nor scaled");
    float c = (float)(1.0 / (ref + 1e-6));
    int exact = 1;
    for (int i = 0; i < 300; i++)
        exact &= g[i] == g0[i] * c;
    ok(exact, "each gradient is multiplied by the fp32 coefficient max_norm/(norm+1e-6)");

    memcpy(g, g0, N * 4);
    norm = optim_grad_clip(g, segs, 3, 0.0);
    ok(memcmp(g, g0, N * 4) == 0 && fabs(norm - ref) <= 1e-13 * ref,
       "max_norm 0: clipping off, gradients unchanged, norm still returned");
    memcpy(g, g0, N * 4);
    optim_grad_clip(g, segs, 3, ref * 1.01);
    ok(memcmp(g, g0, N * 4) == 0, "norm below max_norm: gradients unchanged");

    ok(optim_grad_clip_coef(NAN, 1.0) == 1.0 && optim_grad_clip_coef(INFINITY, 1.0) == 1.0,
       "non-finite norm: coefficient 1 (the caller skips the step)");
    ok(optim_grad_clip_coef(3.0, 1.0) == 1.0 / (3.0 + 1e-6) &&
       optim_grad_clip_coef(0.5, 1.0) == 1.0 && optim_grad_clip_coef(3.0, 0.0) == 1.0,
       "coefficient min(1, max_norm/(norm+1e-6)); 1 when off");
    free(g);
    free(g0);
}

/* ---- 6. accumulation and hooks ---------------------------------------- */

struct fake_comm {
    int grads_calls, sumsq_calls, fail;
    double other_stage_sumsq;
};

/* two replicas holding the same gradient: the all-reduce sum doubles it */
static int fake_reduce_grads(void *ctx, float *grads, size_t count, struct kd_err *err)
{
    struct fake_comm *f = ctx;
    f->grads_calls++;
    if (f->fail)
        return kd_errf(err, "rank 1: MPI_ERR_TRUNCATE");
    for (size_t i = 0; i < count; i++)
        grads[i] *= 2.0f;
    return 0;
}

/* a second pipeline stage contributes its part of the squared norm */
static int fake_reduce_sumsq(void *ctx, double *sumsq, struct kd_err *err)
{
    struct fake_comm *f = ctx;
    f->sumsq_calls++;
    *sumsq += f->other_stage_sumsq;
    return 0;
}

static void test_accumulate(void)
{
    enum { N = 77 };
    struct optim_segment segs[2] = {{0, 50, 1, "w"}, {50, 27, 0, "b"}};
    float micro[2][N], acc[N], avg[N], p0[N];
    for (int i = 0; i < N; i++) {
        micro[0][i] = rng_normal(1.0f);
        micro[1][i] = rng_normal(1.0f);
        p0[i] = rng_normal(0.5f);
    }
    for (int i = 0; i < N; i++)
        acc[i] = 1.0f;
    optim_grad_zero(acc, N);
    int zero = 1;
    for (int i = 0; i < N; i++)
        zero &= acc[i] == 0.0f;
    ok(zero, "optim_grad_zero clears the block");
    /* two micro-steps accumulate (backward's += contract) */
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < N; i++)
            acc[i] += micro[s][i];
    memcpy(avg, acc, sizeof avg);
    optim_grad_scale(avg, N, 0.5f);

    struct optim_grad_info gi;
    struct kd_err err;
    ok(optim_grad_prepare(acc, N, segs, 2, 0.5, 0.0, NULL, &gi, &err) == 0 &&
       gi.grad_scale == 0.5f && gi.clip_coef == 1.0,
       "prepare with scale 1/2, no clipping: multiplier 0.5");
    ok_near(gi.norm, sqrt(optim_grad_sumsq(avg, segs, 2)), 1e-14, 0,
            "prepare reports the norm of the averaged gradient");
    struct optim_config cfg;
    optim_config_default(&cfg, OPTIM_KIND_ADAMW);
    float pa[N], pb[N], ma[N], va[N], mb[N], vb[N];
    memcpy(pa, p0, sizeof pa);
    memcpy(pb, p0, sizeof pb);
    struct optim oa, ob;
    optim_init(&oa, &cfg, segs, 2, ma, va, N, NULL);
    optim_init(&ob, &cfg, segs, 2, mb, vb, N, NULL);
    optim_step(&oa, pa, acc, 1e-3, gi.grad_scale);
    optim_step(&ob, pb, avg, 1e-3, 1.0f);
    ok(memcmp(pa, pb, sizeof pa) == 0 && memcmp(ma, mb, sizeof ma) == 0,
       "scale inside the update equals averaging the gradients first, bitwise");

    /* hooks: data-parallel sum (x2) and another stage's squared norm */
    struct fake_comm f = {.other_stage_sumsq = 9.0};
    struct optim_grad_sync sync = {fake_reduce_grads, fake_reduce_sumsq, &f};
    float g[N];
    memcpy(g, acc, sizeof g);
    double own = optim_grad_sumsq(acc, segs, 2);
    ok(optim_grad_prepare(g, N, segs, 2, 0.25, 1.0, &sync, &gi, &err) == 0 &&
       f.grads_calls == 1 && f.sumsq_calls == 1, "prepare calls each hook once");
    double want = 0.25 * sqrt(4.0 * own + 9.0);
    ok_near(gi.norm, want, 1e-14, 0, "norm covers the reduced gradients and every stage");
    ok_near(gi.grad_scale, (float)(0.25 / (want + 1e-6)), 0, 0,
            "multiplier = scale * clip coefficient");
    f.fail = 1;
    ok(optim_grad_prepare(g, N, segs, 2, 1.0, 1.0, &sync, &gi, &err) == -1 &&
       strstr(err.msg, "gradient reduction: rank 1: MPI_ERR_TRUNCATE") != NULL,
       "a failing hook is reported with context: %s", err.msg);
}

/* ---- 7. train20 first update ------------------------------------------ */

static void test_train20(void)
{
    char dir[4096], path[4200];
    struct kd_err err;
    src_path(dir, sizeof dir, "tests/fixtures/models/train20");
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    st_reader_t *model = NULL, *gold = NULL;
    if (st_reader_open_file(&model, path, &err)) {
        ok(0, "train20: %s", err.msg);
        return;
    }
    snprintf(path, sizeof path, "%s/golden.safetensors", dir);
    if (st_reader_open_file(&gold, path, &err)) {
        ok(0, "train20: %s", err.msg);
        st_reader_close(model);
        return;
    }
    /* the flat block in file order, decay by the fixture's rule */
    size_t nseg = st_reader_count(model), n = 0;
    struct optim_segment *segs = kd_calloc(nseg, sizeof *segs);
    for (size_t i = 0; i < nseg; i++) {
        const struct st_tensor_info *t = st_reader_at(model, i);
        segs[i] = (struct optim_segment){n, (size_t)t->numel,
                                         optim_segment_decay_default(t->name), t->name};
        n += (size_t)t->numel;
    }
    float *p = kd_malloc(n * 4), *g = kd_malloc(n * 4), *want = kd_malloc(n * 4);
    float *m = kd_malloc(n * 4), *v = kd_malloc(n * 4);
    int rc = 0;
    for (size_t i = 0; i < nseg && rc == 0; i++) {
        const struct st_tensor_info *t = st_reader_at(model, i);
        char name[512];
        rc = st_reader_read_f32(model, t, p + segs[i].offset, -1, NULL, &err);
        snprintf(name, sizeof name, "grad.%s", t->name);
        const struct st_tensor_info *tg = st_reader_find(gold, name);
        snprintf(name, sizeof name, "after1.%s", t->name);
        const struct st_tensor_info *ta = st_reader_find(gold, name);
        if (!rc && (!tg || !ta))
            rc = kd_errf(&err, "golden lacks grad./after1. of %s", t->name);
        if (!rc)
            rc = st_reader_read_f32(gold, tg, g + segs[i].offset, t->ndim, t->shape, &err);
        if (!rc)
            rc = st_reader_read_f32(gold, ta, want + segs[i].offset, t->ndim, t->shape, &err);
    }
    float norms[20];
    int64_t nshape[1] = {20};
    if (!rc)
        rc = st_reader_read_f32(gold, st_reader_find(gold, "steps.grad_norm"), norms, 1,
                                nshape, &err);
    ok(rc == 0, "train20: %zu tensors, %zu parameters loaded%s%s", nseg, n, rc ? ": " : "",
       rc ? err.msg : "");
    if (rc == 0) {
        int nodecay = 0;
        for (size_t i = 0; i < nseg; i++)
            nodecay += !segs[i].decay;
        struct optim_config cfg = {OPTIM_KIND_ADAMW, 0.9, 0.999, 1e-8, 0.01};
        struct lr_schedule sched = {LR_SCHEDULE_LINEAR, 1e-3, 0.0, 4, 20};
        struct optim opt;
        struct optim_grad_info gi;
        rc = optim_init(&opt, &cfg, segs, nseg, m, v, n, &err) ||
             optim_grad_prepare(g, n, segs, nseg, 1.0, 1.0, NULL, &gi, &err);
        ok(rc == 0, "train20: optimizer set up (%d no-decay segments)", nodecay);
        ok_near(gi.norm, norms[0], 1e-6, 0, "train20: step-0 norm %.7f vs steps.grad_norm[0] "
                "%.7f (clipped: %s)", gi.norm, (double)norms[0], gi.clip_coef < 1 ? "yes" : "no");
        optim_step(&opt, p, g, lr_schedule_at(&sched, opt.step), gi.grad_scale);
        /* same metric as the trajectories (floor lr_max = 1e-3); the key
         * biases need no exception here: their noise gradients are the
         * stored values, so Adam normalises the same numbers torch did */
        double worst = 0;
        size_t worst_seg = 0, worst_at = 0, exact = 0;
        for (size_t i = 0; i < nseg; i++) {
            size_t at;
            double e = max_rel_err(p + segs[i].offset, want + segs[i].offset, segs[i].count,
                                   sched.lr_max, &at);
            if (e > worst) {
                worst = e;
                worst_seg = i;
                worst_at = at;
            }
        }
        for (size_t i = 0; i < n; i++)
            exact += p[i] == want[i];
        ok(worst <= TRAJ_TOL, "train20: after the first AdamW update every parameter is within "
           "%g of after1.* (worst %.3g in %s[%zu]; %zu of %zu bit-identical)", TRAJ_TOL, worst,
           segs[worst_seg].name, worst_at, exact, n);
    }
    free(p);
    free(g);
    free(want);
    free(m);
    free(v);
    free(segs);
    st_reader_close(model);
    st_reader_close(gold);
}

/* ---- 8. validation --------------------------------------------------- */

static void test_validation(void)
{
    struct kd_err err;
    struct optim_segment over[3] = {{0, 10, 1, "a"}, {20, 5, 0, "c"}, {8, 4, 1, "b"}};
    ok(optim_segments_check(over, 3, 30, &err) == -1 && strstr(err.msg, "'a' [0, 10)") &&
       strstr(err.msg, "'b' [8, 12)") && strstr(err.msg, "overlap"),
       "overlapping segments are refused: %s", err.msg);
    struct optim_segment out[2] = {{0, 10, 1, "a"}, {10, 21, 0, "tail"}};
    ok(optim_segments_check(out, 2, 30, &err) == -1 && strstr(err.msg, "'tail'"),
       "a segment past the block is refused: %s", err.msg);
    struct optim_segment okseg[4] = {{10, 5, 1, "x"}, {0, 10, 0, "y"}, {15, 0, 1, "empty"},
                                     {20, 10, 1, "z"}};
    ok(optim_segments_check(okseg, 4, 30, &err) == 0,
       "unordered, gapped segments with an empty one are accepted");

    struct optim_config cfg;
    optim_config_default(&cfg, OPTIM_KIND_ADAMW);
    ok(cfg.beta1 == 0.9 && cfg.beta2 == 0.999 && cfg.eps == 1e-8 && cfg.weight_decay == 0.01,
       "AdamW defaults are torch's");
    cfg.beta2 = 1.0;
    ok(optim_config_check(&cfg, &err) == -1 && strstr(err.msg, "beta2"),
       "beta2 = 1 is refused: %s", err.msg);
    cfg.beta2 = 0.98;
    cfg.eps = 0.0;
    ok(optim_config_check(&cfg, &err) == -1 && strstr(err.msg, "eps"),
       "eps = 0 is refused: %s", err.msg);
    cfg.eps = 1e-6;
    cfg.weight_decay = NAN;
    ok(optim_config_check(&cfg, &err) == -1 && strstr(err.msg, "weight_decay"),
       "NaN weight decay is refused: %s", err.msg);

    ok(optim_segment_decay_default("bert.encoder.layer.0.attention.output.LayerNorm.weight") ==
       0 && optim_segment_decay_default("classifier.bias") == 0 &&
       optim_segment_decay_default("bert.embeddings.word_embeddings.weight") == 1,
       "default decay rule: no decay for biases and LayerNorm");

    optim_config_default(&cfg, OPTIM_KIND_ADAM);
    float m[30], v[30];
    struct optim opt;
    ok(optim_init(&opt, &cfg, okseg, 4, m, v, 30, &err) == 0 && opt.step == 0,
       "init: step 0");
    ok(optim_state_restore(&opt, -1, &err) == -1 && strstr(err.msg, "step"),
       "restore refuses a negative step: %s", err.msg);
    v[22] = -1e-9f;
    ok(optim_state_restore(&opt, 7, &err) == -1 && strstr(err.msg, "'z' element 2") &&
       opt.step == 0, "restore refuses a negative v and names it: %s", err.msg);
    v[22] = 0.0f;
    m[3] = NAN;
    ok(optim_state_restore(&opt, 7, &err) == -1 && strstr(err.msg, "m of 'y'"),
       "restore refuses a NaN m: %s", err.msg);
    m[3] = 0.0f;
    ok(optim_state_restore(&opt, 7, &err) == 0 && opt.step == 7, "restore sets the step");
}

int main(void)
{
    test_trajectory("adamw");
    test_trajectory("adam");
    test_trajectory("adamw_noclip");
    test_resume("adamw");
    test_resume("adam");
    test_adam_adamw_no_decay();
    test_position_independence();
    test_clip();
    test_accumulate();
    test_train20();
    test_validation();
    return done_testing();
}
