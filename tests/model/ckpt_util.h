/* ckpt_util.h: helpers shared by the checkpoint tests (safetensors,
 * config.json, fuzzing): fixture paths, temporary directories, the value
 * formula of the generated fixtures, and error-message checks. */
#ifndef KD_TESTS_CKPT_UTIL_H
#define KD_TESTS_CKPT_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "kd/core/error.h"

/* Path of a fixture under tests/fixtures/checkpoint/ (new string): from
 * $KD_SRCDIR when make check runs the test, else the configured source dir. */
char *ckpt_fixture(const char *rel);

/* Path under the top of the source tree (new string). */
char *ckpt_srcpath(const char *rel);

/* A fresh private directory under $TMPDIR (or /tmp); remove with
 * ckpt_rmtree. Bails out of the test if it cannot be made. */
char *ckpt_tmpdir(void);
void ckpt_rmtree(const char *dir);

/* Writes bytes to dir/name (plain write, for crafted inputs). Returns the
 * new path. */
char *ckpt_write_bytes(const char *dir, const char *name, const void *data, size_t len);

/* The generator's value formula (tests/gen/make_checkpoint_cases.py):
 * seed = sum of the canonical name's bytes mod 101,
 * value[i] = (((i*37 + seed*11) mod 101) - 50) / 64. */
float ckpt_formula(const char *canonical, int64_t i);

/* One TAP point: rc must be -1 and err->msg must contain every string of
 * the NULL-terminated list. Prints the message on failure (and always when
 * KD_SHOW_ERRORS is set, to review the wording). */
int ok_err(int rc, const struct kd_err *err, const char *what, ...)
    __attribute__((sentinel));

#endif
