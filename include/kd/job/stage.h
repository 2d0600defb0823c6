/* stage.h: stage kinds as pluggable implementations and the runner that
 * executes a job's stages in order (job layer). A stage kind is one file
 * with a `const struct stage_impl` and one line in the registry (stage.c). */
#ifndef KD_JOB_STAGE_H
#define KD_JOB_STAGE_H

#include "kd/job/job.h"
#include "kd/job/plan.h"
#include "kd/parallel/comm.h"

struct stage_ctx {
    const struct job *job;
    const struct job_plan *plan;
    const struct comm *comm;
    const struct stage_cfg *stage;
    int resume, force;
};

struct stage_impl {
    int kind; /* enum stage_kind */
    /* Runs the stage; returns a kd_exit code (0 = finished). */
    int (*run)(const struct stage_ctx *ctx);
};

/* Runs every stage (or only `only`), in order; returns a kd_exit code. */
int stage_run_all(const struct job *job, const struct job_plan *plan, const struct comm *comm,
                  const char *only, int resume, int force);

#endif
