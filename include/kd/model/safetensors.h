/* safetensors.h: reading and writing Hugging Face safetensors checkpoints,
 * single files and sharded sets (model layer; knows nothing of MPI or of the
 * BERT parameter layout, which belongs to the model code).
 *
 * File format (https://huggingface.co/docs/safetensors, all little-endian):
 *
 *   bytes [0, 8)        u64 N: length of the JSON header
 *   bytes [8, 8+N)      JSON object, UTF-8, may be padded with trailing spaces
 *                       (writers pad so that the data section is 8-aligned):
 *                         { "__metadata__": {"format": "pt", ...},   optional
 *                           "<tensor name>": { "dtype": "F32",
 *                                              "shape": [d0, d1, ...],
 *                                              "data_offsets": [begin, end] },
 *                           ... }
 *   bytes [8+N, EOF)    data section; a tensor's bytes are [begin, end)
 *                       relative to its start, row-major (C order)
 *
 * The reader validates everything before any tensor is read: header length
 * within the file, header is a JSON object, known dtypes, integer dims in
 * [0, 2^40] with at most ST_MAX_DIMS dims, end - begin == numel * dtype size,
 * offsets within the data section, no two non-empty tensors overlapping, no
 * duplicate names (within a file or across shards). Each failure is reported
 * as "<file>: tensor '<name>': <what>: expected ..., got ...". The data
 * section is mapped with mmap (read-only, shared page cache across ranks on
 * one node); tensors are converted into caller buffers on request.
 *
 * Sharded checkpoints ("model.safetensors.index.json" with a "weight_map"
 * {name: shard file}) open every shard behind the same lookup API.
 *
 * BERT name normalisation: files spell the same parameter in several ways
 * ("bert.encoder.layer.0..." or "encoder.layer.0...", old TF-converted
 * "LayerNorm.gamma"/"LayerNorm.beta" for ".weight"/".bias"). The canonical
 * name used by the model code is the transformers name without the "bert."
 * prefix, e.g. "embeddings.word_embeddings.weight",
 * "encoder.layer.0.attention.self.query.weight", "pooler.dense.weight",
 * "classifier.weight", "cls.predictions.bias",
 * "cls.predictions.transform.LayerNorm.weight". st_reader_find_bert() finds a
 * canonical name whichever way the file spells it. */
#ifndef KD_MODEL_SAFETENSORS_H
#define KD_MODEL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "kd/core/error.h"

#define ST_MAX_DIMS 8
/* Largest accepted dimension (2^40): anything larger is a corrupt header. */
#define ST_MAX_DIM ((int64_t)1 << 40)
/* Largest accepted JSON header (the Python library's own limit). */
#define ST_MAX_HEADER_BYTES ((uint64_t)100 * 1000 * 1000)

/* Element types of the format. All are recognised when a file is opened;
 * st_reader_read_f32 converts F32, F16, BF16 and F64, st_reader_read_i64
 * the integer types and BOOL; the writer stores F32, F16, BF16, I64, I32. */
enum st_dtype {
    ST_DTYPE_F32 = 0,
    ST_DTYPE_F16,
    ST_DTYPE_BF16,
    ST_DTYPE_F64,
    ST_DTYPE_I64,
    ST_DTYPE_I32,
    ST_DTYPE_I16,
    ST_DTYPE_I8,
    ST_DTYPE_U64,
    ST_DTYPE_U32,
    ST_DTYPE_U16,
    ST_DTYPE_U8,
    ST_DTYPE_BOOL,
    ST_DTYPE_F8_E4M3,
    ST_DTYPE_F8_E5M2,
    ST_DTYPE_COUNT
};

/* "F32", "BF16", ... as spelled in the header; "?" for out-of-range values. */
const char *st_dtype_name(enum st_dtype dt);
/* Bytes per element. */
size_t st_dtype_size(enum st_dtype dt);
/* Parses a header spelling; returns 0 and sets *dt, or -1 if unknown. */
int st_dtype_parse(const char *s, enum st_dtype *dt);

/* Scalar conversions used by the reader and the writer (exposed for tests).
 * f16/bf16 -> f32 are exact (subnormals, infinities, NaN payload kept);
 * f32 -> f16/bf16 round to nearest, ties to even; overflow gives infinity,
 * NaN stays a (quiet) NaN of the same sign. */
float st_f16_to_f32(uint16_t h);
float st_bf16_to_f32(uint16_t b);
uint16_t st_f32_to_f16(float f);
uint16_t st_f32_to_bf16(float f);

/* One tensor of an opened checkpoint. Owned by the reader. */
struct st_tensor_info {
    const char *name;              /* as spelled in the file */
    enum st_dtype dtype;
    int ndim;                      /* 0 for a scalar */
    int64_t shape[ST_MAX_DIMS];    /* shape[0..ndim) */
    int64_t numel;                 /* product of shape (1 for a scalar) */
    uint64_t nbytes;               /* numel * dtype size */
    uint64_t offset;               /* absolute byte offset in its shard file */
    int shard;                     /* index into the reader's shard list */
};

/* An opened checkpoint: one file, or every shard of an index. */
typedef struct st_reader st_reader_t;

/* Opens one .safetensors file: maps it and validates its header.
 * On success *out owns the mapping; close it with st_reader_close. */
int st_reader_open_file(st_reader_t **out, const char *path, struct kd_err *err);

/* Validates a safetensors image already in memory (data[0..size)); the
 * buffer is borrowed and must outlive the reader. `label` names the image
 * in error messages (e.g. a file name). Used by tests and fuzzing. */
int st_reader_open_buffer(st_reader_t **out, const void *data, size_t size,
                          const char *label, struct kd_err *err);

/* Opens a sharded checkpoint from its index JSON. Shard names are taken
 * relative to the index's directory and must be plain file names. Every
 * name in weight_map must be in the shard it names, and every tensor of a
 * shard must be listed in weight_map with that shard. */
int st_reader_open_index(st_reader_t **out, const char *index_path, struct kd_err *err);

/* Opens a Hugging Face model directory: "model.safetensors" if present,
 * else "model.safetensors.index.json"; an error naming the directory and
 * both names if neither exists. */
int st_reader_open_dir(st_reader_t **out, const char *dir, struct kd_err *err);

void st_reader_close(st_reader_t *r);

/* Number of tensors (over all shards) and the i-th in name order. */
size_t st_reader_count(const st_reader_t *r);
const struct st_tensor_info *st_reader_at(const st_reader_t *r, size_t i);

/* Exact-name lookup; NULL if absent. */
const struct st_tensor_info *st_reader_find(const st_reader_t *r, const char *name);

/* Path (or label) of shard i, and the number of shards. */
int st_reader_shard_count(const st_reader_t *r);
const char *st_reader_shard_path(const st_reader_t *r, int shard);

/* A string value of the first shard's "__metadata__" (e.g. "format"), or
 * NULL. Non-string metadata values are ignored. */
const char *st_reader_metadata(const st_reader_t *r, const char *key);

/* Converts a tensor to fp32 into dst, which must hold t->numel floats.
 * expect_shape[0..expect_ndim) is compared with the file's shape first;
 * a mismatch is an error "<file>: tensor '<name>': expected shape [..],
 * got [..]". Pass expect_ndim < 0 to skip the shape check. Readable dtypes:
 * F32, F16, BF16, F64; others are an error naming the dtype. */
int st_reader_read_f32(const st_reader_t *r, const struct st_tensor_info *t, float *dst,
                       int expect_ndim, const int64_t *expect_shape, struct kd_err *err);

/* Same for integer tensors into int64 (I64, I32, I16, I8, U32, U16, U8,
 * BOOL; U64 values above INT64_MAX are an error). */
int st_reader_read_i64(const st_reader_t *r, const struct st_tensor_info *t, int64_t *dst,
                       int expect_ndim, const int64_t *expect_shape, struct kd_err *err);

/* ---- BERT name normalisation ------------------------------------------ */

/* Canonical form of a file's tensor name: drops one leading "bert.", maps a
 * final "LayerNorm.gamma"/"LayerNorm.beta" to "LayerNorm.weight"/".bias".
 * Writes at most cap bytes (NUL included); returns -1 if it did not fit. */
int st_bert_name_canonical(const char *file_name, char *out, size_t cap);

/* Spelling of a canonical name in files that transformers' task models
 * (BertForSequenceClassification, BertForMaskedLM, ...) write: "bert." is
 * prepended to names under embeddings., encoder. and pooler.; head names
 * (classifier., cls.) are unchanged. Returns -1 if it did not fit. */
int st_bert_name_for_file(const char *canonical, char *out, size_t cap);

/* Finds the tensor whose canonical name is `canonical` (which may itself be
 * spelled in any of the accepted ways). Returns 1 and sets *out when found,
 * 0 when absent (*out = NULL, no message), -1 with a message naming both
 * spellings when the file holds two tensors with the same canonical name. */
int st_reader_find_bert(const st_reader_t *r, const char *canonical,
                        const struct st_tensor_info **out, struct kd_err *err);

/* find_bert + read_f32: a missing tensor is an error naming the checkpoint
 * and the canonical name. */
int st_reader_load_bert_f32(const st_reader_t *r, const char *canonical, float *dst,
                            int expect_ndim, const int64_t *expect_shape,
                            struct kd_err *err);

/* ---- writer ------------------------------------------------------------ */

/* Collects tensors, then writes one file atomically. Data pointers are
 * borrowed: they must stay valid until st_writer_write returns. */
typedef struct st_writer st_writer_t;

st_writer_t *st_writer_new(void);
void st_writer_free(st_writer_t *w);

/* Adds a "__metadata__" string entry (later values replace earlier ones).
 * Use ("format", "pt") for files that transformers loads. */
int st_writer_set_metadata(st_writer_t *w, const char *key, const char *value,
                           struct kd_err *err);

/* Adds an fp32 tensor to be stored as store_as (F32, F16 or BF16; the
 * narrow types are rounded to nearest even at write time). ndim may be 0
 * (scalar); dims may be 0. Duplicate or empty names are errors. */
int st_writer_add_f32(st_writer_t *w, const char *name, const float *data, int ndim,
                      const int64_t *shape, enum st_dtype store_as, struct kd_err *err);

/* Adds an int64 tensor stored as I64, or as I32 (values outside the int32
 * range are an error at write time). */
int st_writer_add_i64(st_writer_t *w, const char *name, const int64_t *data, int ndim,
                      const int64_t *shape, enum st_dtype store_as, struct kd_err *err);

/* Writes the file: header keys "__metadata__" first, then tensors ordered by
 * element size (largest first) and name, which is also their data order, so
 * every tensor starts at a multiple of its element size; the header is
 * padded with spaces to a multiple of 8 bytes. Output is written to a
 * temporary name and renamed into place. */
int st_writer_write(const st_writer_t *w, const char *path, struct kd_err *err);

#endif
