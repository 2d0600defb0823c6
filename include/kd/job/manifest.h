/* manifest.h: the job's manifest, <output_dir>/manifest.json, which records
 * every stage that ran: its fingerprint, status, the files it read and
 * wrote, and timings (job layer). The runner (stage.c) decides from it what
 * is up to date; docs/runner.md describes the format for users.
 *
 * Fingerprint of a stage run = SHA-256 over a canonical text made of
 *   - a format tag and the stage kind,
 *   - the stage's resolved configuration: every key of the stage (and of its
 *     losses) that applies to its kind, and the job-level keys it depends on
 *     (by default job.seed, data.*, teacher.*, student.*), one "key = value"
 *     line each in key-table order, values printed exactly (%.17g),
 *   - one "input NAME SHA256" line per input file, sorted by name.
 * Outputs of earlier stages are inputs of later ones, so a re-run whose
 * outputs differ changes the fingerprint of every stage that reads them.
 *
 * Files are recorded with SHA-256, size and modification time (ns). The
 * digest is what identifies content; size and mtime let the runner trust a
 * recorded digest without reading the file again when neither changed (a
 * teacher store of 100 GB is hashed once, when extract finishes, instead of
 * at every start of the job).
 *
 * Written on rank 0 only, as a whole, through a temporary name and a rename
 * (core/fsutil.h), so the file is always either the previous or the new
 * complete manifest. */
#ifndef KD_JOB_MANIFEST_H
#define KD_JOB_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "kd/core/error.h"
#include "kd/core/fsutil.h"
#include "kd/job/job.h"

#define MANIFEST_FILE "manifest.json"
#define MANIFEST_SCHEMA "kd_hpc.manifest"
#define MANIFEST_SCHEMA_VERSION "1.0"
#define MANIFEST_SCHEMA_MAJOR 1

enum manifest_status {
    MANIFEST_STATUS_RUNNING,     /* started; the process ended without saying more */
    MANIFEST_STATUS_INTERRUPTED, /* stopped at a safe point by a signal */
    MANIFEST_STATUS_FAILED,      /* returned an error */
    MANIFEST_STATUS_FINISHED,
    MANIFEST_STATUS_COUNT
};

/* A file a stage read or wrote, as recorded. */
struct manifest_file {
    char *name;    /* relative to the output directory, or a user path */
    int user;      /* 1: a user file (path as written in the job), 0: in output_dir */
    char sha256[FS_SHA256_HEX_LEN];
    int64_t size;
    int64_t mtime_ns;
};

struct manifest_entry {
    char *name;               /* stage name */
    char *kind;               /* stage kind name */
    int status;               /* enum manifest_status */
    char fingerprint[FS_SHA256_HEX_LEN];
    char *config;             /* canonical configuration text (lines "key = value") */
    int n_inputs, n_outputs;
    struct manifest_file *inputs, *outputs;
    char started[32], finished[32]; /* UTC, ISO 8601; "" if not yet */
    double seconds;           /* wall time of the last run */
    int ranks;                /* ranks it ran on */
    char *kd_hpc_version;     /* of the run that wrote the entry */
};

struct manifest {
    int n;
    struct manifest_entry *entries; /* in the order stages first ran */
};

/* Reads a manifest. A missing file gives an empty manifest and 0. A file
 * that is not a manifest of this major version, or is not valid JSON, is an
 * error naming the path and what was found (the runner refuses to guess
 * which stages finished). */
int manifest_load(struct manifest *m, const char *path, struct kd_err *err);
/* Writes m to path atomically (temp name + fsync + rename). */
int manifest_save(const struct manifest *m, const char *path, const char *job_name,
                  struct kd_err *err);
/* The JSON text manifest_save writes (malloc'd). */
char *manifest_to_json(const struct manifest *m, const char *job_name);
void manifest_free(struct manifest *m);

struct manifest_entry *manifest_find(const struct manifest *m, const char *name);
/* The entry of that stage, created empty (status RUNNING) if absent. */
struct manifest_entry *manifest_put(struct manifest *m, const char *name);
/* Frees what an entry owns and resets it, keeping its name. */
void manifest_entry_reset(struct manifest_entry *e);

const char *manifest_status_name(int status);
/* Index of a status name, or -1. */
int manifest_status_parse(const char *name);

/* Deep copies and frees of file records. */
void manifest_files_copy(struct manifest_file **dst, int *n_dst,
                         const struct manifest_file *src, int n_src);
void manifest_files_free(struct manifest_file *f, int n);

/* ---- fingerprints (manifest_fingerprint.c) ------------------------------ */

/* Default job-level key prefixes a stage depends on. A prefix ending in
 * '.' matches a section; otherwise the key must be equal. */
extern const char *const manifest_default_job_keys[];

/* The canonical configuration text of stage st: its own keys (and its
 * losses'), then the job-level keys matched by job_keys (NULL = the
 * defaults). New string (free()). */
char *manifest_stage_config(const struct job *job, const struct stage_cfg *st,
                            const char *const *job_keys);

/* SHA-256 (hex) of the canonical text of (kind, config, inputs); the inputs'
 * sha256 fields must be filled. */
int manifest_fingerprint(const char *kind, const char *config,
                         const struct manifest_file *inputs, int n_inputs,
                         char hex[FS_SHA256_HEX_LEN], struct kd_err *err);

/* The file's path on disk: name joined to output_dir unless f->user. */
char *manifest_file_path(const char *output_dir, const struct manifest_file *f);

/* Fills size, mtime_ns and sha256 of f from disk. When `known` (a record
 * of the same file, may be NULL) has the same size and mtime, its digest is
 * taken instead of reading the file. Returns 0, 1 if the file does not
 * exist, -1 on another error. */
int manifest_file_probe(const char *output_dir, struct manifest_file *f,
                        const struct manifest_file *known, struct kd_err *err);

/* Explains in one line (into why) how a recorded entry differs from the
 * current configuration and inputs: the first changed key with old and new
 * values, or the first changed/added/removed input. */
void manifest_explain_change(const struct manifest_entry *e, const char *config,
                             const struct manifest_file *inputs, int n_inputs, char *why,
                             size_t len);

/* UTC now as "YYYY-MM-DDTHH:MM:SSZ". */
void manifest_now(char buf[32]);

#endif
