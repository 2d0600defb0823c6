/* job_read.h: internals shared by the files that read a job (job layer).
 * Not for use outside src/job/. */
#ifndef KD_JOB_JOB_READ_H
#define KD_JOB_JOB_READ_H

#include "kd/job/job.h"
#include "kd/job/keys.h"

#include <libconfig.h>

/* Where a setting came from: "FILE:LINE" or "--set PATH=VALUE". */
void setting_location(const config_setting_t *s, const char *job_path, char *buf, size_t n);
/* "integer 3", "string \"abc\"", "a group { ... }" */
void setting_describe(const config_setting_t *s, char *buf, size_t n);

/* Converts setting `s` into the field of `base` that key `k` names, checking
 * type and range. Errors are added to errs with `path` (the concrete path,
 * e.g. "stages.[1].lr"). Returns 0 or -1. */
int key_read_value(const struct key_def *k, const config_setting_t *s, void *base,
                   const char *path, const char *job_path, struct job_errors *errs);

/* Fills every key of `scope` with its default. */
void keys_apply_defaults(enum key_scope scope, void *base);

/* Applies one "--set PATH=VALUE" to the configuration tree. */
int job_apply_override(config_t *cfg, const char *text, struct job_errors *errs);

/* Cross-field validation once every key is read. */
void job_check(const struct job *job, const config_t *cfg, struct job_errors *errs);

/* Frees what key_read_value allocated for the fields of `scope` in base. */
void keys_free_fields(enum key_scope scope, void *base);

#endif
