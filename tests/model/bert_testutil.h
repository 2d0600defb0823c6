/* bert_testutil.h: helpers shared by the BERT model tests: fixture paths,
 * reading golden tensors, the comparison metric, tiny random models. */
#ifndef KD_TESTS_BERT_TESTUTIL_H
#define KD_TESTS_BERT_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "kd/model/bert.h"
#include "kd/model/safetensors.h"

/* Path of tests/fixtures/models/<rel> (new string): from $KD_SRCDIR when
 * make check runs the test, else the configured source directory. */
char *bt_fixture(const char *rel);

/* A golden tensor as fp32 / int32 (new buffer, at least one element); bails
 * out of the test when absent. *n (may be NULL) receives the element count. */
float *bt_read_f32(const st_reader_t *r, const char *name, int64_t *n);
int32_t *bt_read_i32(const st_reader_t *r, const char *name, int64_t *n);
/* 1 if the golden file holds `name`. */
int bt_has(const st_reader_t *r, const char *name);

/* The golden metric: max_i |got_i - want_i| / max(|want_i|, floor) with
 * floor = 1e-3 * max_i |want_i| (0-tensors: exact match). One TAP point,
 * passing when <= tol; returns the error. */
double bt_compare(const char *what, const float *got, const float *want, int64_t n, double tol);

/* A small valid config: L layers of C = NH*HS, FFN F, vocabulary V, max
 * positions MP, K labels; unpruned. */
void bt_tiny_config(struct bert_config *cfg, int64_t L, int64_t NH, int64_t HS, int64_t F,
                    int64_t V, int64_t MP, int64_t K);

/* A fresh directory under $TMPDIR (or /tmp) and its recursive removal. */
char *bt_tmpdir(void);
void bt_rmtree(const char *dir);

#endif
