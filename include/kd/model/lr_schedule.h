/* lr_schedule.h: learning-rate schedules as pure functions of the step
 * (model layer; knows nothing of MPI, of the job file or of the optimizer's
 * state). A schedule holds no state, so resuming needs only the optimizer's
 * step counter.
 *
 * Step indexing. `step` is the number of optimizer updates already made
 * (struct optim's `step` before optim_step increments it), so
 * lr_schedule_at(s, t) is the rate of the update that takes the model from
 * t to t + 1 updates; the first update uses t = 0. With W = warmup_steps,
 * T = total_steps, hi = lr_max, lo = lr_min:
 *
 *   warmup    t <  W            hi * ((t + 1) / W)          (hi/W, ..., hi at t = W-1)
 *   constant  t >= W            hi
 *   linear    W <= t < T        lo + (hi - lo) * ((T - t) / (T - W))
 *   cosine    W <= t < T        lo + (hi - lo) * (0.5 * (1 + cos(pi (t - W) / (T - W))))
 *   linear, cosine  t >= T      lo   (the decay reaches lo at t = T, which is
 *                                     one past the last update of a T-step run)
 *
 * Neither end wastes an update at rate 0: the first update runs at hi/W and
 * the last (t = T-1) at lo + (hi - lo)/(T - W). With lo = 0 the linear form
 * equals hi * min((t + 1)/W, (T - t)/(T - W)) for W < T, which is how the
 * train20 fixture (tests/fixtures/models/README.md, W = 4, T = 20,
 * hi = 1e-3) computes its rates; the ratios are evaluated in double exactly
 * as written there, so the values agree bit for bit. W = 0 means no warmup
 * (linear then starts at hi). W >= T is allowed: the run is all warmup.
 *
 * Compared with transformers' get_linear_schedule_with_warmup (which the
 * scheduler calls with the count of scheduler.step() calls, so its first
 * update runs at rate 0), warmup here is shifted by one step. */
#ifndef KD_MODEL_LR_SCHEDULE_H
#define KD_MODEL_LR_SCHEDULE_H

#include <stdint.h>

#include "kd/core/error.h"

/* Decay after warmup. Spelled "linear", "cosine", "constant" in job files. */
enum lr_schedule_kind {
    LR_SCHEDULE_LINEAR = 0,
    LR_SCHEDULE_COSINE,
    LR_SCHEDULE_CONSTANT,
    LR_SCHEDULE_COUNT
};

struct lr_schedule {
    enum lr_schedule_kind kind;
    double lr_max;          /* peak rate, reached at t = W-1 (>= 0) */
    double lr_min;          /* floor of linear/cosine decay, in [0, lr_max] */
    int64_t warmup_steps;   /* W >= 0 */
    int64_t total_steps;    /* T: updates in the run (> 0 for linear/cosine;
                               ignored by constant) */
};

/* "linear", "cosine", "constant"; "?" when out of range. */
const char *lr_schedule_kind_name(enum lr_schedule_kind kind);
/* Parses a kind name; returns 0, or -1 with "expected one of ... got ...". */
int lr_schedule_kind_parse(const char *name, enum lr_schedule_kind *out,
                           struct kd_err *err);

/* Validates the fields (finite, ranges above); returns 0 or -1 with a
 * message naming the field, what was expected and what was found. */
int lr_schedule_check(const struct lr_schedule *s, struct kd_err *err);

/* The rate of the update made when `step` updates are done (see the table
 * above). Pure; step < 0 is treated as 0. The result is double: the
 * optimizer rounds its per-step coefficients to fp32 itself. */
double lr_schedule_at(const struct lr_schedule *s, int64_t step);

/* Warmup steps from a fraction of the run (the job key `warmup`):
 * ceil(fraction * total_steps), except that a product within a relative 1e-9
 * above an integer counts as that integer (0.1 * 30 is 3.0000000000000004;
 * transformers' math.ceil would make it 4). fraction is clamped to [0, 1]. */
int64_t lr_schedule_warmup_from_fraction(double fraction, int64_t total_steps);

#endif
