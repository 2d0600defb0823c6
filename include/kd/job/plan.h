/* plan.h: what a job will do on W ranks, computed without touching the
 * model or the data: rank layout, per-rank roles and memory, stage plan,
 * missing inputs (job layer). Used by --dry-run, --validate and start-up. */
#ifndef KD_JOB_PLAN_H
#define KD_JOB_PLAN_H

#include "kd/job/job.h"
#include "kd/parallel/layout.h"

#include <stdint.h>

struct model_shape {
    int64_t layers, hidden, heads, intermediate, vocab, positions, labels;
};

struct job_plan {
    int world;                 /* ranks planned for */
    struct rank_layout layout; /* teacher pipelines */
    struct model_shape teacher, student;
    const char *teacher_source; /* where the teacher shape came from */
    char teacher_source_buf[4096];
    int teacher_first[129];    /* first layer unit of each pipeline stage (0 = embeddings) */
    int64_t n_train;           /* training examples (-1: unknown until read) */
};

/* Fills the plan for `world` ranks; layout problems are added to errs with
 * the numbers involved. Returns 0 or -1. */
int job_plan_make(const struct job *job, int world, struct job_plan *plan,
                  struct job_errors *errs);
/* Prints the layout table, the stage plan and per-rank memory estimates. */
void job_plan_print(const struct job *job, const struct job_plan *plan);
/* Warns (rank 0) about every input file the job needs that is not there;
 * returns how many are missing. */
int job_plan_missing_inputs(const struct job *job);

int64_t model_param_count(const struct model_shape *m);

#endif
