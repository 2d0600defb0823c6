/* t_kd_schedule.c: the ALL / PID / SID phase sequences (kd/schedule.h).
 *   equal split: S = 100, n = 3 switches exactly at 25, 50, 75 (the step
 *     the state machine reports a new phase, fed NaN losses); S = 10,
 *     n = 2 at 4 and 7; S = 2 < P = 4 skips phases; ALL never switches;
 *     kd_sched_phase_begin agrees with kd_sched_phase_at at every step;
 *   active sets: PID phase k = internal terms of mapped layer k only, SID
 *     phase k = mapped layers 0..k, final phase = output terms only, ALL =
 *     everything;
 *   threshold (0.5, S = 100, n = 3): a loss below it in step s moves the
 *     phase at s + 1; a low loss measured in the phase just left does not
 *     move again; the equal split still forces the phase at its boundary;
 *     the final phase never advances; the same inputs give the same
 *     sequence (what keeps ranks in lock-step);
 *   init errors: unknown method, PID/SID without mapped layers, 0 steps,
 *     negative threshold. */
#include "kd/kd/schedule.h"
#include "kd/job/job.h"
#include "../tap.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Runs S steps feeding losses (or NaN); records each step's phase. */
static void run(int method, int n, int64_t S, double thr, const double *losses, int *phase)
{
    struct kd_sched s;
    struct kd_err err;
    if (kd_sched_init(&s, method, n, S, thr, &err))
        bail_out("%s", err.msg);
    for (int64_t k = 0; k < S; k++)
        phase[k] = kd_sched_update(&s, k, k == 0 || !losses ? NAN : losses[k - 1]);
}

/* The steps at which the phase changes, as a string "25,50,75". */
static void switches(const int *phase, int64_t S, char *buf, size_t n)
{
    buf[0] = '\0';
    size_t len = 0;
    for (int64_t k = 1; k < S; k++)
        if (phase[k] != phase[k - 1])
            len += (size_t)snprintf(buf + len, n - len, "%s%lld:%d", len ? "," : "",
                                    (long long)k, phase[k]);
}

static void equal_split(void)
{
    int ph[100];
    char buf[256];
    run(DISTILL_METHOD_PID, 3, 100, 0, NULL, ph);
    switches(ph, 100, buf, sizeof buf);
    ok_str(buf, "25:1,50:2,75:3", "PID equal split, 100 steps, 3 layers: step:phase");
    ok(ph[0] == 0 && ph[24] == 0 && ph[99] == 3, "first step phase 0, step 24 phase 0, last 3");
    run(DISTILL_METHOD_SID, 3, 100, 0, NULL, ph);
    switches(ph, 100, buf, sizeof buf);
    ok_str(buf, "25:1,50:2,75:3", "SID equal split, 100 steps, 3 layers");
    run(DISTILL_METHOD_ALL, 3, 100, 0, NULL, ph);
    switches(ph, 100, buf, sizeof buf);
    ok(buf[0] == '\0' && ph[99] == 0 && kd_sched_phases(DISTILL_METHOD_ALL, 3) == 1,
       "ALL: one phase, never switches");
    run(DISTILL_METHOD_PID, 2, 10, 0, NULL, ph);
    switches(ph, 10, buf, sizeof buf);
    ok_str(buf, "4:1,7:2", "PID, 10 steps, 2 layers: phases of 4, 3, 3 steps");
    run(DISTILL_METHOD_SID, 3, 2, 0, NULL, ph);
    ok(ph[0] == 0 && ph[1] == 2, "2 steps for 4 phases: step 1 is phase floor(1*4/2) = 2");
    int agree = 1;
    for (int n = 1; n <= 5; n++)
        for (int64_t S = 1; S <= 40; S++)
            for (int64_t k = 0; k < S; k++) {
                int p = kd_sched_phase_at(DISTILL_METHOD_PID, n, S, k);
                agree &= kd_sched_phase_begin(DISTILL_METHOD_PID, n, S, p) <= k &&
                         kd_sched_phase_begin(DISTILL_METHOD_PID, n, S, p + 1) > k;
            }
    ok(agree, "phase_begin(p) <= s < phase_begin(p+1) for p = phase_at(s), n 1..5, S 1..40");
    ok(kd_sched_phase_begin(DISTILL_METHOD_PID, 3, 100, 4) == 100 &&
       kd_sched_phase_begin(DISTILL_METHOD_PID, 3, 100, 3) == 75,
       "phase_begin: 75 for the final phase, S past it");
}

static int layers_on(const struct kd_active *a, char *buf, size_t n)
{
    size_t len = 0;
    buf[0] = '\0';
    int count = 0;
    for (int l = 0; l <= BERT_MAX_LAYERS; l++)
        if (a->layer[l]) {
            count++;
            if (len < n)
                len += (size_t)snprintf(buf + len, n - len, "%s%d", len ? "," : "", l);
        }
    return count;
}

static void active_sets(void)
{
    const int32_t mapped[3] = {2, 4, 6};
    struct kd_active a;
    char buf[64];
    kd_sched_active(&a, DISTILL_METHOD_PID, 1, 3, mapped);
    layers_on(&a, buf, sizeof buf);
    ok(a.internal && !a.output, "PID phase 1: internal terms only");
    ok_str(buf, "4", "PID phase 1: mapped layer 1 (student layer 4) only");
    kd_sched_active(&a, DISTILL_METHOD_SID, 1, 3, mapped);
    layers_on(&a, buf, sizeof buf);
    ok(a.internal && !a.output, "SID phase 1: internal terms only");
    ok_str(buf, "2,4", "SID phase 1: student layers 2 and 4 (stacked)");
    kd_sched_active(&a, DISTILL_METHOD_SID, 2, 3, mapped);
    layers_on(&a, buf, sizeof buf);
    ok_str(buf, "2,4,6", "SID phase 2: every mapped layer");
    kd_sched_active(&a, DISTILL_METHOD_PID, 3, 3, mapped);
    ok(a.output && !a.internal && layers_on(&a, buf, sizeof buf) == 0,
       "PID final phase: output terms (soft, hard) only, no layer");
    kd_sched_active(&a, DISTILL_METHOD_SID, 3, 3, mapped);
    ok(a.output && !a.internal, "SID final phase: output terms only");
    kd_sched_active(&a, DISTILL_METHOD_ALL, 0, 3, mapped);
    ok(a.output && a.internal && layers_on(&a, buf, sizeof buf) == BERT_MAX_LAYERS + 1,
       "ALL: every term and every layer");
}

static void threshold(void)
{
    enum { S = 100 };
    double loss[S];
    int ph[S], ph2[S];
    char buf[256];
    /* phase 0: high until step 10 (0.4); phase 1: step 11 is 0.3; phase 2
     * stays high, so the equal split moves it at 75; the final phase sees
     * low losses and stays */
    for (int k = 0; k < S; k++)
        loss[k] = k == 10 ? 0.4 : k == 11 ? 0.3 : k >= 80 ? 0.1 : 1.0;
    run(DISTILL_METHOD_SID, 3, S, 0.5, loss, ph);
    switches(ph, S, buf, sizeof buf);
    ok_str(buf, "11:1,12:2,75:3", "threshold 0.5: early moves at 11 and 12, forced at 75");
    ok(ph[99] == 3, "the final phase never advances (low losses from step 80)");
    run(DISTILL_METHOD_SID, 3, S, 0.5, loss, ph2);
    ok(memcmp(ph, ph2, sizeof ph) == 0, "same losses, same sequence (ranks in lock-step)");
    /* phase 0 is forced out at 25 while step 24's loss is low: that loss
     * belongs to phase 0, so phase 1 does not advance again at 25 or 26
     * unless its own loss is low */
    for (int k = 0; k < S; k++)
        loss[k] = k == 24 ? 0.1 : k == 30 ? 0.2 : 1.0;
    run(DISTILL_METHOD_PID, 3, S, 0.5, loss, ph);
    switches(ph, S, buf, sizeof buf);
    ok_str(buf, "25:1,31:2,75:3",
           "a low loss of step 24 moves phase 0 only once (at 25); phase 1's own low "
           "loss at 30 moves it at 31");
    /* a threshold of 0 is the equal split */
    for (int k = 0; k < S; k++)
        loss[k] = 0.0;
    run(DISTILL_METHOD_PID, 3, S, 0.0, loss, ph);
    switches(ph, S, buf, sizeof buf);
    ok_str(buf, "25:1,50:2,75:3", "threshold 0 ignores the losses (equal split)");
    /* resume: restoring (phase, phase_start) continues identically */
    for (int k = 0; k < S; k++)
        loss[k] = (k % 7 == 3) ? 0.2 : 1.0;
    run(DISTILL_METHOD_SID, 3, S, 0.5, loss, ph);
    struct kd_sched a, b;
    struct kd_err err;
    kd_sched_init(&a, DISTILL_METHOD_SID, 3, S, 0.5, &err);
    int same = 1;
    for (int k = 0; k < S; k++) {
        if (k == 40) { /* checkpoint and resume: only the two state fields */
            kd_sched_init(&b, DISTILL_METHOD_SID, 3, S, 0.5, &err);
            b.phase = a.phase, b.phase_start = a.phase_start;
            a = b;
        }
        same &= kd_sched_update(&a, k, k ? loss[k - 1] : NAN) == ph[k];
    }
    ok(same, "resume at step 40 from (phase, phase_start) gives the same sequence");
}

static void init_errors(void)
{
    struct kd_sched s;
    struct kd_err err;
    ok(kd_sched_init(&s, 7, 3, 100, 0, &err) == -1, "unknown method refused");
    ok_str(err.msg, "distill schedule: unknown method 7", "message");
    ok(kd_sched_init(&s, DISTILL_METHOD_PID, 0, 100, 0, &err) == -1, "PID without layers");
    ok_str(err.msg, "distill schedule: method \"pid\" needs at least one layer mapped by a "
           "hidden or attention loss, got none", "message");
    ok(kd_sched_init(&s, DISTILL_METHOD_SID, 2, 0, 0, &err) == -1, "0 steps refused");
    ok_str(err.msg, "distill schedule: expected at least 1 step, got 0", "message");
    ok(kd_sched_init(&s, DISTILL_METHOD_SID, 2, 10, -1, &err) == -1, "negative threshold");
    ok_str(err.msg, "distill schedule: expected a finite switch_threshold >= 0, got -1",
           "message");
    ok(kd_sched_init(&s, DISTILL_METHOD_ALL, 0, 10, 0, &err) == 0,
       "ALL needs no mapped layer (soft-only stage)");
}

int main(void)
{
    equal_split();
    active_sets();
    threshold();
    init_errors();
    return done_testing();
}
