/* h5.h: helpers every HDF5 file of kd_hpc uses (io layer; knows nothing of
 * models' internals).
 *
 * - Errors: HDF5's automatic stack printing is switched off (h5_init) and
 *   every call goes through H5_CHECK, which walks the HDF5 error stack into
 *   the kd_err message and jumps to the function's single `done:` label, so
 *   every hid_t is closed on every path (STYLE 8, 12).
 * - Property lists: MPI-IO file access with collective metadata for writers,
 *   MPI-IO without collective metadata for readers that read independently,
 *   and a collective transfer list. The communicator always comes from the
 *   caller (struct comm, parallel/); nothing here names MPI_COMM_WORLD.
 * - Attributes: scalar variable-length UTF-8 strings (so `h5dump -H` output
 *   does not depend on the value), JSON text, int32/int64 and float64.
 * - Reduced floats: HDF5 1.10 has no native half type, so fp16 and bf16 are
 *   built from H5T_IEEE_F32LE (DESIGN 4). Conversion is done here (round to
 *   nearest even) and the file type is passed as the memory type, because a
 *   parallel write through filters fails when HDF5 has to convert.
 *
 * Functions return 0 (or a valid hid_t) on success and -1 (or H5I_INVALID_HID)
 * with a message in *err on failure.
 */
#ifndef KD_IO_H5_H
#define KD_IO_H5_H

#include <hdf5.h>
#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "kd/core/error.h"

/* Switches off HDF5's automatic error printing for this thread (our
 * messages carry the decoded stack instead) and, once, runs
 * h5_fletcher32_selftest. Idempotent and cheap: every entry point that
 * opens or creates a file calls it. */
void h5_init(void);

/* HDF5's Fletcher32 checksum of a buffer (the value the library's
 * H5_checksum_fletcher32 gives), vectorised when the CPU has AVX2. Linking
 * h5_fletcher.c also makes the library's Fletcher32 filter use it (see
 * there). */
uint32_t h5_fletcher32(const void *data, size_t len);
/* Known-answer check of h5_fletcher32 against values of HDF5's own
 * function; 0 if it agrees. h5_init ends the job if it does not (a wrong
 * checksum would make every file unreadable elsewhere). */
int h5_fletcher32_selftest(void);

/* Formats "context: <func>: <decoded HDF5 error stack>" into *err, clears
 * the stack and returns -1. `call` is the text of the failed expression; the
 * name of the HDF5 function is taken from it. */
int h5_fail(struct kd_err *err, const char *call, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Appends the decoded current error stack to buf (at most len bytes with the
 * NUL) without clearing it; returns the number of entries. */
int h5_stack_text(char *buf, size_t len);

/* H5_CHECK(err, call, context...): evaluates `call` (an HDF5 call or an
 * assignment of one); a negative result fills *err with the context, the
 * HDF5 function's name and the decoded stack, and jumps to the function's
 * single `done:` cleanup label. The function sets its own result after the
 * last check (`rc = 0; done: ...close everything...; return rc;`). */
#define H5_CHECK(err, call, ...)                                              \
    do {                                                                      \
        if ((call) < 0) {                                                     \
            h5_fail((err), #call, __VA_ARGS__);                               \
            goto done;                                                        \
        }                                                                     \
    } while (0)

/* Closes an id if valid and resets it; safe in cleanup paths. Errors while
 * closing are ignored here (the caller has already failed or is about to
 * check H5Fclose itself). */
void h5_close_any(hid_t *id);

/* ---- property lists ---------------------------------------------------- */

/* File access through MPI-IO on `comm`. collective_metadata = 1 makes
 * metadata reads and writes collective (writers: every rank makes the same
 * calls); readers whose ranks read at different times pass 0. */
hid_t h5_fapl_mpio(MPI_Comm comm, int collective_metadata, struct kd_err *err);
/* Serial file access (sec2 driver, no MPI). */
hid_t h5_fapl_serial(struct kd_err *err);
/* Data transfer list with collective MPI-IO (required for filtered parallel
 * writes). */
hid_t h5_dxpl_collective(struct kd_err *err);

/* 1 if the link path exists below loc (every intermediate group checked),
 * 0 if not, -1 on error. */
int h5_exists(hid_t loc, const char *path, struct kd_err *err);

/* ---- attributes -------------------------------------------------------- */
/* Writers overwrite an existing attribute of the same name. Readers name the
 * attribute and the expected kind in their messages. */

int h5_attr_write_str(hid_t loc, const char *name, const char *value,
                      struct kd_err *err);
/* *value receives a malloc'd copy (free()). Accepts fixed and variable
 * length strings. */
int h5_attr_read_str(hid_t loc, const char *name, char **value, struct kd_err *err);

/* JSON text: checked to parse (cJSON) and stored as given. */
int h5_attr_write_json(hid_t loc, const char *name, const char *json,
                       struct kd_err *err);
/* Reads the text and checks that it parses; *json is malloc'd. */
int h5_attr_read_json(hid_t loc, const char *name, char **json, struct kd_err *err);

/* Scalar integers (stored little-endian, int32 or int64) and a 1-D int32
 * array (n >= 1). */
int h5_attr_write_i32(hid_t loc, const char *name, int32_t v, struct kd_err *err);
int h5_attr_write_i64(hid_t loc, const char *name, int64_t v, struct kd_err *err);
int h5_attr_write_i32s(hid_t loc, const char *name, const int32_t *v, size_t n,
                       struct kd_err *err);
/* Reads a scalar integer attribute of any integer type. */
int h5_attr_read_i64(hid_t loc, const char *name, int64_t *v, struct kd_err *err);
/* Reads a 1-D integer array of at most max elements; *n gets the count. */
int h5_attr_read_i32s(hid_t loc, const char *name, int32_t *v, size_t max,
                      size_t *n, struct kd_err *err);

int h5_attr_write_f64(hid_t loc, const char *name, double v, struct kd_err *err);
int h5_attr_read_f64(hid_t loc, const char *name, double *v, struct kd_err *err);

/* ---- reduced-precision floats ------------------------------------------ */

enum h5_prec {
    H5_PREC_F32 = 0,  /* IEEE binary32 */
    H5_PREC_F16 = 1,  /* IEEE binary16: 1 sign, 5 exponent (bias 15), 10 mantissa */
    H5_PREC_BF16 = 2  /* bfloat16: 1 sign, 8 exponent (bias 127), 7 mantissa */
};

const char *h5_prec_name(enum h5_prec p); /* "fp32", "fp16", "bf16" */
/* Parses "fp32"/"fp16"/"bf16"; -1 (message lists the choices) otherwise. */
int h5_prec_parse(const char *name, enum h5_prec *p, struct kd_err *err);
size_t h5_prec_size(enum h5_prec p); /* bytes per element: 4 or 2 */

/* New HDF5 float type for p (caller closes it):
 *   fp32: copy of H5T_IEEE_F32LE
 *   fp16: H5T_IEEE_F32LE with fields (sign 15, exponent 10 + 5 bits,
 *         mantissa 0 + 10 bits), size 2, exponent bias 15
 *   bf16: fields (15, 7, 8, 0, 7), size 2, exponent bias 127 */
hid_t h5_prec_type(enum h5_prec p, struct kd_err *err);
/* Recognises one of the three types in a dataset's type; -1 if it is none
 * of them (the message describes what was found). */
int h5_prec_of_type(hid_t type, enum h5_prec *p, struct kd_err *err);

/* Conversions, round to nearest even; NaN stays NaN (quiet), overflow goes
 * to +-Inf, fp16 subnormals are produced and read exactly. n may be 0. */
void h5_f32_to_f16(uint16_t *dst, const float *src, size_t n);
void h5_f16_to_f32(float *dst, const uint16_t *src, size_t n);
void h5_f32_to_bf16(uint16_t *dst, const float *src, size_t n);
void h5_bf16_to_f32(float *dst, const uint16_t *src, size_t n);
/* dst holds n elements of precision p (for fp32 a plain copy). */
void h5_f32_to_prec(enum h5_prec p, void *dst, const float *src, size_t n);
void h5_prec_to_f32(enum h5_prec p, float *dst, const void *src, size_t n);

#endif
