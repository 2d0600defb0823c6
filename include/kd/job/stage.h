/* stage.h: stage kinds as pluggable implementations and the runner that
 * executes a job's stages in order (job layer). A stage kind is one file
 * in src/stages/ with a `const struct stage_impl` and one line in the
 * registry (stage.c). Runner semantics and the manifest are described in
 * docs/runner.md; the manifest format is in kd/job/manifest.h.
 *
 * What a stage implementation must do:
 *   - declare, through `files`, every file it reads and writes, so the
 *     runner can fingerprint its inputs, tell when it is up to date, order
 *     dependants and refuse `--stage NAME` when an input does not exist;
 *   - in `run`, poll signals_interrupted() at safe points; when it is set,
 *     save a training-state checkpoint (kd/io/train_state.h, tagged with
 *     ctx->fingerprint) and return KD_EXIT_INTERRUPTED;
 *   - when ctx->resume is set, load that checkpoint and continue from it
 *     (the runner only sets resume when the manifest shows an interrupted
 *     run of the same fingerprint; if it was interrupted before its first
 *     checkpoint, there is none: start from the beginning);
 *   - write every output atomically (temp name + rename), so a file that
 *     exists is complete. */
#ifndef KD_JOB_STAGE_H
#define KD_JOB_STAGE_H

#include <stddef.h>

#include "kd/core/error.h"
#include "kd/job/job.h"
#include "kd/job/plan.h"
#include "kd/parallel/comm.h"

struct stage_ctx {
    const struct job *job;
    const struct job_plan *plan;
    const struct comm *comm;
    const struct stage_cfg *stage;
    int resume, force;
    const char *output_dir;  /* job->job.output_dir */
    int index;               /* of the stage in job->stages */
    /* SHA-256 (hex) of this run's configuration and input contents; store
     * it in training-state checkpoints so a resume can check it. "" in the
     * `files` callback (it is computed from what that callback returns). */
    const char *fingerprint;
};

/* Files a stage reads or writes. `name` is relative to the job's output
 * directory (products of stages: "teacher.h5", "student/model.safetensors")
 * unless `user` is set: then it is a path as the user wrote it in the job
 * (data.train, files of teacher.checkpoint), relative to the working
 * directory. Products are matched between stages by name. */
struct stage_file {
    char *name;
    int user;
};

struct stage_files {
    int n, cap;
    struct stage_file *v;
};

/* Appends a file in the output directory / a user file. */
void stage_files_add(struct stage_files *l, const char *name);
void stage_files_add_user(struct stage_files *l, const char *path);
/* Appends every regular file directly inside a user directory (e.g. the
 * teacher checkpoint: config.json, model.safetensors, vocab.txt), sorted by
 * name. Returns 0, or -1 if the directory cannot be read. */
int stage_files_add_user_dir(struct stage_files *l, const char *dir, struct kd_err *err);
void stage_files_free(struct stage_files *l);

struct stage_impl {
    int kind; /* enum stage_kind */
    /* Runs the stage on every rank; returns a kd_exit code (0 = finished,
     * KD_EXIT_INTERRUPTED = stopped at a safe point, checkpoint saved). */
    int (*run)(const struct stage_ctx *ctx);
    /* Declares inputs and outputs (see struct stage_file). Called on rank 0
     * only, before the run and when another stage looks for the producer
     * of a file; it must not communicate and should not read big files.
     * NULL: the stage reads and writes nothing the runner tracks. Returns 0
     * or -1 with a message. */
    int (*files)(const struct stage_ctx *ctx, struct stage_files *inputs,
                 struct stage_files *outputs, struct kd_err *err);
    /* Job-level keys that change what the stage computes, as prefixes
     * ("data." = the whole section) or exact paths, NULL-terminated.
     * NULL: job.seed, data.*, teacher.*, student.* (manifest.h). */
    const char *const *job_keys;
    /* Canonical "key = value\n" lines the fingerprint also covers: other
     * stages' settings that change what this stage writes (malloc'd; NULL
     * or "" = none). NULL: nothing beyond its own keys. */
    char *(*config_extra)(const struct job *job, int index);
};

/* What the runner did with one stage (for callers and tests). */
enum stage_outcome {
    STAGE_OUTCOME_NOT_SELECTED, /* --stage named another stage */
    STAGE_OUTCOME_UNAVAILABLE,  /* no implementation in this build */
    STAGE_OUTCOME_UP_TO_DATE,   /* skipped: manifest matches, outputs intact */
    STAGE_OUTCOME_RAN,          /* ran to the end and was recorded */
    STAGE_OUTCOME_INTERRUPTED,  /* stopped by a signal; recorded as interrupted */
    STAGE_OUTCOME_FAILED,       /* returned an error, or the runner refused it */
    STAGE_OUTCOME_NOT_REACHED   /* an earlier stage stopped the job */
};

struct stage_result {
    int outcome;   /* enum stage_outcome */
    int resumed;   /* ran with ctx->resume = 1 */
    char why[512]; /* the reason given in the log ("up to date", "input ... changed") */
};

struct stage_run_args {
    /* Implementations to use; NULL: the built-in registry. */
    const struct stage_impl *const *registry;
    size_t n_registry;
    const char *only; /* --stage NAME, or NULL */
    int resume, force;
    /* Optional: job->n_stages entries, filled on every rank. */
    struct stage_result *results;
};

/* Runs the job's stages in order under the manifest rules (docs/runner.md).
 * Collective over comm: rank 0 reads the manifest, probes and hashes files
 * and decides; every rank receives the same decision. Returns a kd_exit
 * code; on failure the reason is in *err on every rank (and was logged on
 * rank 0). */
int stage_runner_run(const struct job *job, const struct job_plan *plan,
                     const struct comm *comm, const struct stage_run_args *args,
                     struct kd_err *err);

/* The command-line entry: the built-in registry; logs errors. */
int stage_run_all(const struct job *job, const struct job_plan *plan, const struct comm *comm,
                  const char *only, int resume, int force);

/* Implementations (src/stages/); each is listed in stage.c's registry once
 * it exists. */
extern const struct stage_impl stage_finetune, stage_prune, stage_extract, stage_distill,
    stage_evaluate, stage_export;

#endif
