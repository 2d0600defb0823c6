/* t_lr_schedule.c: learning-rate schedules (include/kd/model/lr_schedule.h).
 *
 *   - train20: the 20 rates stored by the PyTorch fixture
 *     (tests/fixtures/models/train20, steps.lr, F32) are reproduced exactly:
 *     (float)lr_schedule_at(t) equals the stored value (0 ulp), and the
 *     double equals the README formula 1e-3 * min((t+1)/4, (20-t)/16);
 *   - linear: warmup boundaries, the end of the decay, lr_min, no warmup,
 *     and equality with hi * min((t+1)/W, (T-t)/(T-W)) on random (W, T);
 *   - cosine: boundaries, the midpoint, the floor, strict decrease;
 *   - constant: warmup then flat, total_steps ignored;
 *   - validation messages, kind names, warmup from a fraction. */
#include "kd/model/lr_schedule.h"
#include "kd/model/safetensors.h"
#include "../tap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef KD_TOP_SRCDIR
#define KD_TOP_SRCDIR "."
#endif

/* Path under the source tree: $KD_SRCDIR under make check, else configure's. */
static void src_path(char *out, size_t cap, const char *rel)
{
    const char *top = getenv("KD_SRCDIR");
    snprintf(out, cap, "%s/%s", top && *top ? top : KD_TOP_SRCDIR, rel);
}

/* Distance in units in the last place between two finite floats. */
static long ulp_diff(float a, float b)
{
    int32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    if (ia < 0)
        ia = INT32_MIN - ia;
    if (ib < 0)
        ib = INT32_MIN - ib;
    return labs((long)ia - (long)ib);
}

static void test_train20(void)
{
    char path[4096];
    src_path(path, sizeof path, "tests/fixtures/models/train20/golden.safetensors");
    struct kd_err err;
    st_reader_t *r = NULL;
    if (st_reader_open_file(&r, path, &err)) {
        ok(0, "open train20 fixture: %s", err.msg);
        return;
    }
    const struct st_tensor_info *t = st_reader_find(r, "steps.lr");
    float lr[20];
    int64_t shape[1] = {20};
    int rc = t ? st_reader_read_f32(r, t, lr, 1, shape, &err) : -1;
    ok(rc == 0, "train20 steps.lr is F32 [20]%s%s", rc ? ": " : "", rc && t ? err.msg : "");
    if (rc == 0) {
        struct lr_schedule s = {.kind = LR_SCHEDULE_LINEAR, .lr_max = 1e-3, .lr_min = 0.0,
                                .warmup_steps = 4, .total_steps = 20};
        ok(lr_schedule_check(&s, &err) == 0, "train20 schedule is valid");
        long worst = 0;
        int formula = 1;
        for (int step = 0; step < 20; step++) {
            double got = lr_schedule_at(&s, step);
            long d = ulp_diff((float)got, lr[step]);
            if (d > worst)
                worst = d;
            double want = 1e-3 * fmin((step + 1) / 4.0, (20 - step) / 16.0);
            if (got != want) {
                formula = 0;
                diag("t=%d: got %.17g, formula %.17g", step, got, want);
            }
        }
        ok(worst == 0, "train20: (float)lr(t) equals the stored steps.lr for t = 0..19 "
           "(worst %ld ulp)", worst);
        ok(formula, "train20: lr(t) equals 1e-3 * min((t+1)/4, (20-t)/16) in double");
        ok(lr_schedule_at(&s, 0) == 0.25e-3 && lr_schedule_at(&s, 3) == 1e-3 &&
           lr_schedule_at(&s, 4) == 1e-3 && lr_schedule_at(&s, 19) == 0.0625e-3 &&
           lr_schedule_at(&s, 20) == 0.0,
           "train20: 0.25e-3 first, 1e-3 at t = 3 and 4, 0.0625e-3 last, 0 at t = 20");
    }
    st_reader_close(r);
}

static void test_linear(void)
{
    const double hi = 2e-3;
    struct lr_schedule s = {.kind = LR_SCHEDULE_LINEAR, .lr_max = hi, .lr_min = 0.0,
                            .warmup_steps = 5, .total_steps = 25};
    ok(lr_schedule_at(&s, 0) == hi * (1.0 / 5.0), "linear: first update at lr_max / W");
    ok(lr_schedule_at(&s, 4) == hi && lr_schedule_at(&s, 5) == hi,
       "linear: lr_max at t = W-1 (end of warmup) and t = W (start of decay)");
    ok_near(lr_schedule_at(&s, 24), hi / 20.0, 1e-15, 0, "linear: last update (t = T-1) at "
            "lr_max / (T-W)");
    ok(lr_schedule_at(&s, 25) == 0.0 && lr_schedule_at(&s, 1000) == 0.0,
       "linear: 0 at t = T and after");
    ok(lr_schedule_at(&s, -3) == lr_schedule_at(&s, 0), "linear: negative step counts as 0");
    int mono = 1;
    for (int t = 1; t <= 30; t++) {
        double a = lr_schedule_at(&s, t - 1), b = lr_schedule_at(&s, t);
        if (t < 5 ? !(b > a) : !(b <= a))
            mono = 0;
    }
    ok(mono, "linear: rises through warmup, never rises after");

    s.lr_min = 1e-4;
    ok(lr_schedule_at(&s, 25) == 1e-4 && lr_schedule_at(&s, 99) == 1e-4,
       "linear with lr_min: floor at t >= T");
    ok_near(lr_schedule_at(&s, 24), 1e-4 + (hi - 1e-4) / 20.0, 1e-15, 0,
            "linear with lr_min: t = T-1 one decay step above the floor");
    ok(lr_schedule_at(&s, 5) == hi, "linear with lr_min: decay starts at lr_max");

    struct lr_schedule n0 = {.kind = LR_SCHEDULE_LINEAR, .lr_max = hi, .warmup_steps = 0,
                             .total_steps = 10};
    ok(lr_schedule_at(&n0, 0) == hi && lr_schedule_at(&n0, 9) == hi * (1.0 / 10.0) &&
       lr_schedule_at(&n0, 10) == 0.0, "linear without warmup: lr_max, ..., lr_max/T, 0");

    struct lr_schedule all = {.kind = LR_SCHEDULE_LINEAR, .lr_max = hi, .warmup_steps = 8,
                              .total_steps = 8};
    ok(lr_schedule_at(&all, 7) == hi && lr_schedule_at(&all, 8) == 0.0,
       "linear with W = T: all warmup, then 0");

    /* the min() form of the fixture README, for random W < T, t in [0, T] */
    unsigned seed = 12345;
    int same = 1;
    for (int trial = 0; trial < 200 && same; trial++) {
        seed = seed * 1103515245u + 12345u;
        int64_t total = 1 + (seed >> 16) % 500;
        seed = seed * 1103515245u + 12345u;
        int64_t w = (int64_t)((seed >> 16) % (unsigned)total);
        struct lr_schedule q = {.kind = LR_SCHEDULE_LINEAR, .lr_max = 3e-4,
                                .warmup_steps = w, .total_steps = total};
        for (int64_t t = 0; t <= total; t++) {
            double want = w > 0 ? 3e-4 * fmin((double)(t + 1) / (double)w,
                                              (double)(total - t) / (double)(total - w))
                                : 3e-4 * ((double)(total - t) / (double)total);
            if (lr_schedule_at(&q, t) != want) {
                diag("W=%lld T=%lld t=%lld: got %.17g want %.17g", (long long)w,
                     (long long)total, (long long)t, lr_schedule_at(&q, t), want);
                same = 0;
                break;
            }
        }
    }
    ok(same, "linear equals lr_max * min((t+1)/W, (T-t)/(T-W)) exactly (200 random W < T)");
}

static void test_cosine(void)
{
    const double hi = 1e-3, lo = 1e-5;
    struct lr_schedule s = {.kind = LR_SCHEDULE_COSINE, .lr_max = hi, .lr_min = lo,
                            .warmup_steps = 10, .total_steps = 110};
    ok(lr_schedule_check(&s, NULL) == 0, "cosine schedule is valid");
    ok(lr_schedule_at(&s, 0) == hi * (1.0 / 10.0) && lr_schedule_at(&s, 9) == hi,
       "cosine: warmup from lr_max/W to lr_max at t = W-1");
    ok(lr_schedule_at(&s, 10) == hi, "cosine: lr_max at t = W");
    ok_near(lr_schedule_at(&s, 60), 0.5 * (hi + lo), 1e-14, 0,
            "cosine: halfway between lr_max and lr_min at t = (W+T)/2");
    ok_near(lr_schedule_at(&s, 109), lo + (hi - lo) * 0.5 * (1 + cos(M_PI * 0.99)), 1e-14, 0,
            "cosine: last update t = T-1");
    ok(lr_schedule_at(&s, 110) == lo && lr_schedule_at(&s, 5000) == lo,
       "cosine: lr_min at t = T and after");
    int dec = 1;
    for (int t = 11; t <= 110; t++)
        if (!(lr_schedule_at(&s, t) < lr_schedule_at(&s, t - 1)))
            dec = 0;
    ok(dec, "cosine: strictly decreasing on [W, T]");
}

static void test_constant(void)
{
    struct lr_schedule s = {.kind = LR_SCHEDULE_CONSTANT, .lr_max = 5e-5, .warmup_steps = 3,
                            .total_steps = 0};
    ok(lr_schedule_check(&s, NULL) == 0, "constant: total_steps 0 is valid (ignored)");
    ok(lr_schedule_at(&s, 0) == 5e-5 * (1.0 / 3.0) && lr_schedule_at(&s, 2) == 5e-5,
       "constant: warmup from lr_max/W to lr_max at t = W-1");
    ok(lr_schedule_at(&s, 3) == 5e-5 && lr_schedule_at(&s, 1000000000) == 5e-5,
       "constant: lr_max from t = W on, forever");
    s.warmup_steps = 0;
    ok(lr_schedule_at(&s, 0) == 5e-5, "constant without warmup: lr_max from the start");
}

static void test_check(void)
{
    struct kd_err err;
    struct lr_schedule s = {.kind = LR_SCHEDULE_LINEAR, .lr_max = 1e-3, .warmup_steps = 2,
                            .total_steps = 0};
    ok(lr_schedule_check(&s, &err) == -1 && strstr(err.msg, "total_steps"),
       "linear needs total_steps > 0: %s", err.msg);
    s.total_steps = 10;
    s.lr_min = 2e-3;
    ok(lr_schedule_check(&s, &err) == -1 && strstr(err.msg, "lr_min"),
       "lr_min above lr_max is refused: %s", err.msg);
    s.lr_min = 0;
    s.warmup_steps = -1;
    ok(lr_schedule_check(&s, &err) == -1 && strstr(err.msg, "warmup_steps"),
       "negative warmup is refused: %s", err.msg);
    s.warmup_steps = 0;
    s.lr_max = NAN;
    ok(lr_schedule_check(&s, &err) == -1 && strstr(err.msg, "lr_max"),
       "NaN lr_max is refused: %s", err.msg);
    s.lr_max = 1e-3;
    s.kind = (enum lr_schedule_kind)7;
    ok(lr_schedule_check(&s, &err) == -1, "unknown kind is refused: %s", err.msg);

    enum lr_schedule_kind k;
    ok(lr_schedule_kind_parse("cosine", &k, &err) == 0 && k == LR_SCHEDULE_COSINE &&
       strcmp(lr_schedule_kind_name(k), "cosine") == 0, "kind names round-trip");
    ok(lr_schedule_kind_parse("exp", &k, &err) == -1 &&
       strstr(err.msg, "got \"exp\"") != NULL, "unknown kind name: %s", err.msg);
}

static void test_warmup_fraction(void)
{
    ok(lr_schedule_warmup_from_fraction(0.1, 20) == 2, "warmup 0.1 of 20 = 2");
    ok(lr_schedule_warmup_from_fraction(0.1, 30) == 3, "warmup 0.1 of 30 = 3 (not 4)");
    ok(lr_schedule_warmup_from_fraction(0.1, 25) == 3, "warmup 0.1 of 25 = ceil(2.5) = 3");
    ok(lr_schedule_warmup_from_fraction(0.06, 100) == 6, "warmup 0.06 of 100 = 6");
    ok(lr_schedule_warmup_from_fraction(0.0, 100) == 0 &&
       lr_schedule_warmup_from_fraction(1.0, 50) == 50 &&
       lr_schedule_warmup_from_fraction(1.5, 10) == 10 &&
       lr_schedule_warmup_from_fraction(0.5, 0) == 0, "warmup fraction 0, 1, > 1, T = 0");
}

int main(void)
{
    test_train20();
    test_linear();
    test_cosine();
    test_constant();
    test_check();
    test_warmup_fraction();
    return done_testing();
}
