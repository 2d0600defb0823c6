/* t_store_fixture.h: deterministic synthetic teacher outputs for the
 * teacher store tests and benchmark. Every value is a pure function of
 * (dataset, layer, example, index in the teacher's natural shape), so any
 * rank can build any batch and any reader can compute what it must get
 * back, whatever the rank count. */
#ifndef KD_TESTS_IO_STORE_FIXTURE_H
#define KD_TESTS_IO_STORE_FIXTURE_H

#include "kd/io/teacher_store.h"

/* Provenance used by the tests (created pinned so files compare equal). */
extern const struct store_provenance fx_prov;

/* A spec with every dataset, tiny sizes: T = seq_len, H = 8, NH = 4 heads
 * of which 3 stored, C = 3, V = 2, P = 3, k = 2, hidden layers 0, 2, 3,
 * attention layers 1, 3. lengths (n) is filled with 1..T in a fixed
 * pattern (the first example is full length). */
void fx_spec_full(struct store_spec *s, int32_t *lengths, int64_t n, int32_t seq_len,
                  enum h5_prec prec, enum store_tokens tokens, int labels_float);

/* Natural-shape value of a float dataset (hidden (T,H), attention
 * (NH,T,T), others as stored). Attention outside the L x L block is 7.0
 * (padding the store must drop). */
float fx_value(const struct store_spec *s, enum store_ds ds, int layer, int64_t ex,
               size_t index);
int32_t fx_int(const struct store_spec *s, enum store_ds ds, int64_t ex, size_t index);

/* Arrays of a batch in natural shapes; owns the buffers. */
struct fx_batch {
    struct store_batch b;
    void *mem[STORE_DS_COUNT];
    float **hidden;    /* [n_hidden] */
    float **attention; /* [n_attention] */
    int n_hidden, n_attention;
};
void fx_batch_fill(struct fx_batch *fb, const struct store_spec *s, int64_t first,
                   int64_t count);
void fx_batch_free(struct fx_batch *fb);

/* What store_read_f32 must return for example ex of ds/layer, before
 * rounding to the stored precision: store_example_elems(s, ds) values. */
void fx_expected(const struct store_spec *s, enum store_ds ds, int layer, int64_t ex,
                 float *out);

/* Writes the fixture's examples: each rank its layout_shard, in rounds of
 * at most `batch` examples (every rank the same number of rounds, some
 * with count 0). Returns store_finish's verdict. */
int fx_write(const char *path, const struct comm *c, const struct store_spec *s,
             int64_t batch, struct kd_err *err);
/* The same through a chosen writer path (store_create_io). */
int fx_write_io(const char *path, const struct comm *c, const struct store_spec *s,
                int64_t batch, enum store_writer_io io, struct kd_err *err);

/* Reads examples [first, first + count) of every dataset of the store back
 * and compares with fx_expected: fp32 and integers exactly, fp16 within a
 * relative 2^-11, bf16 within 2^-8. Returns the number of datasets that
 * differ (why names the first); *digest (may be NULL) accumulates a
 * FNV-1a hash of every value read, in a fixed order. */
int fx_verify(store_reader_t *r, int64_t first, int64_t count, uint64_t *digest,
              char *why, size_t len);

#endif
