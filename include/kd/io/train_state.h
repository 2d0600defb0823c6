/* train_state.h: training-state checkpoints, everything a training stage
 * needs to continue bitwise-exactly after an interruption (io layer; serial
 * HDF5, no MPI, knows nothing of models' internals: parameters and optimizer
 * moments are flat float blocks).
 *
 * Who writes: data-parallel replicas hold identical parameters, so rank 0
 * writes one file; a pipeline-parallel stage writes one file per pipeline
 * stage. The caller chooses the path (train_state_path gives the usual
 * names); this module never communicates.
 *
 * The same struct describes the state for both directions: the caller fills
 * names, counts and buffers, train_state_save writes them, and
 * train_state_load checks the file against that description (every dataset
 * present with the expected element count, the stage name and the
 * fingerprint equal) and fills the buffers and counters. Nothing is
 * allocated for the caller.
 *
 * File layout (schema kd_hpc.train_state, version 1.0; format version 1.8
 * objects so superblock and object headers are checksummed):
 *   root attributes  schema, schema_version, kd_hpc_version, created (UTC),
 *                    stage (string), fingerprint (64 hex, the runner's
 *                    fingerprint of the stage run this state belongs to),
 *                    global_step, epoch, epoch_pos, opt_step (int64),
 *                    n_params (int64)
 *   /params, /adam_m, /adam_v           float32 [n_params]
 *   /blocks/<name>                      float32 [n], one per extra block
 *   /scalars  group; int64 attributes (ints) and float64 attributes (reals)
 * Float datasets are chunked (at most 1 Mi elements per chunk), without
 * compression, with Fletcher32 checksums, so a flipped byte is reported on
 * load instead of resuming from damaged weights.
 *
 * Atomicity: the file is written under "<path>.tmp.<pid>" and renamed over
 * <path> only once complete and fsynced; the previous checkpoint stays in
 * place until then, so an interruption while saving loses nothing. */
#ifndef KD_IO_TRAIN_STATE_H
#define KD_IO_TRAIN_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "kd/core/error.h"

#define TRAIN_STATE_SCHEMA "kd_hpc.train_state"
#define TRAIN_STATE_SCHEMA_VERSION "1.0"
#define TRAIN_STATE_SCHEMA_MAJOR 1

/* An extra float block (e.g. a hidden-state projection and its Adam
 * moments). Names: letters, digits, '_', '.', '-' (an HDF5 link name). */
struct train_state_block {
    const char *name;
    float *data; /* save: read from; load: filled */
    size_t n;    /* element count */
};

/* Named scalars: phase of a PID/SID schedule, temperature, RNG counters
 * (uint64 counters are stored as their int64 bit pattern). Same name rules
 * as blocks; int and real names share one namespace. */
struct train_state_int {
    const char *name;
    int64_t value;
};
struct train_state_real {
    const char *name;
    double value;
};

struct train_state {
    const char *stage;       /* stage name; load: must match the file */
    const char *fingerprint; /* 64 hex; load: must match the file */
    /* counters: save writes them, load fills them */
    int64_t global_step;     /* optimizer updates done so far in the stage */
    int64_t epoch;           /* current epoch, from 0 */
    int64_t epoch_pos;       /* examples of the current epoch already consumed */
    int64_t opt_step;        /* the optimizer's own step (Adam bias correction) */
    /* flat parameter block and Adam moments, n_params floats each */
    size_t n_params;
    float *params, *adam_m, *adam_v;
    size_t n_blocks;
    struct train_state_block *blocks;
    size_t n_ints;
    struct train_state_int *ints;
    size_t n_reals;
    struct train_state_real *reals;
};

/* The usual checkpoint name in a stage's output directory:
 * "<dir>/<stage>.state.h5", or "<dir>/<stage>.state.pNN.h5" for pipeline
 * stage pipe_stage >= 0 (two digits at least). New string (free()). */
char *train_state_path(const char *dir, const char *stage, int pipe_stage);

/* Writes s to path atomically (see above). Every buffer must hold its
 * count; names are checked. Returns 0, or -1 with a message naming the path
 * (and the dataset) in *err; the previous file at path is then untouched
 * and no temporary file is left. */
int train_state_save(const char *path, const struct train_state *s, struct kd_err *err);

/* Reads path into s. Checked, each with a message naming the path and the
 * dataset or attribute with "expected ... found ...": schema and major
 * version, stage name, fingerprint, n_params, every dataset's presence,
 * type class (float), rank 1 and element count, every scalar's presence.
 * Data or metadata damage (checksums, truncation) is refused with HDF5's
 * decoded reason. Datasets and scalars in the file that s does not name are
 * ignored (a later minor version may add some). On error the buffers may
 * be partly overwritten; counters are only set on success. */
int train_state_load(const char *path, struct train_state *s, struct kd_err *err);

#endif
