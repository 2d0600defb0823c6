/* teacher_store.h: the teacher store, an HDF5 file of teacher outputs per
 * example (io layer; schema kd_hpc.teacher_store, version 1.0, documented in
 * hdf5-schemas/teacher_store.v1.md with its golden h5dump -H in
 * teacher_store.v1.ddl). Knows nothing of models' internals: it receives
 * plain arrays in the teacher's natural shapes.
 *
 * Writing (all calls collective over the communicator handed in):
 *   store_create -> store_write_batch (repeatedly, every rank the same number
 *   of times; a rank with nothing left passes count = 0) -> store_finish.
 * Each rank writes its own examples (normally its layout_shard) as the
 * teacher produces them; nothing holds the whole store in memory. The file
 * is written as "<path>.tmp.<pid of rank 0>" and renamed by rank 0 only
 * after every example was written and the collective close succeeded, so an
 * interrupted job never leaves a file at <path>. store_abort removes the
 * temporary file.
 *
 * Reading: store_open (serial with comm = NULL, or collective over a
 * communicator with independent reads afterwards) checks the schema major
 * version and the provenance hashes, then store_read_f32 / store_read_i32
 * read any example range of any dataset. store_epoch_shard gives a
 * data-parallel rank its examples of an epoch.
 *
 * Dimension letters: N examples, T sequence length, H hidden size, NH teacher
 * heads, A stored heads, C classes, V attribution views, P MLM positions,
 * k top-k. Shapes in comments are per call, row-major.
 */
#ifndef KD_IO_TEACHER_STORE_H
#define KD_IO_TEACHER_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "kd/core/error.h"
#include "kd/io/h5.h"
#include "kd/parallel/comm.h"

#define STORE_SCHEMA "kd_hpc.teacher_store"
#define STORE_SCHEMA_VERSION "1.0"
#define STORE_SCHEMA_MAJOR 1
#define STORE_MAX_LAYERS 100 /* layer numbers are two digits: 00..99 */
#define STORE_MAX_HEADS 256
#define STORE_CHUNK_BYTES ((size_t)1 << 20) /* target chunk size */
#define STORE_CHUNK_MAX_EXAMPLES 1024       /* cap for tiny rows */

/* Every dataset of the schema. HIDDEN and ATTENTION stand for all their
 * layer_NN datasets. */
enum store_ds {
    STORE_DS_INPUT_IDS = 0,      /* /examples/input_ids      [N,T]   int32 */
    STORE_DS_TOKEN_TYPE_IDS,     /* /examples/token_type_ids [N,T]   int32 */
    STORE_DS_ATTENTION_MASK,     /* /examples/attention_mask [N,T]   int32 */
    STORE_DS_LABELS,             /* /examples/labels         [N]     int32 or fp32 */
    STORE_DS_LENGTHS,            /* /examples/lengths        [N]     int32 (always) */
    STORE_DS_LOGITS,             /* /logits                  [N,C]   float */
    STORE_DS_HIDDEN,             /* /hidden/layer_NN   [N,T,H] or [N,H] (cls) float */
    STORE_DS_ATTENTION,          /* /attention/layer_NN ragged [sum_i A*L_i*L_i] float */
    STORE_DS_ATTRIBUTION,        /* /attribution             [N,V,T] float */
    STORE_DS_DECISION_TOP1,      /* /decision/top1           [N]     int32 */
    STORE_DS_DECISION_VOTES,     /* /decision/votes          [N,C]   float */
    STORE_DS_DECISION_LOGITS_EST,/* /decision/logits_est     [N,C]   float */
    STORE_DS_MLM_POSITIONS,      /* /mlm/positions           [N,P]   int32 */
    STORE_DS_MLM_TOPK_IDS,       /* /mlm/topk_ids            [N,P,k] int32 */
    STORE_DS_MLM_TOPK_LOGITS,    /* /mlm/topk_logits         [N,P,k] float */
    STORE_DS_COUNT
};

#define STORE_BIT(ds) (1u << (ds))

enum store_tokens {
    STORE_TOKENS_ALL = 0, /* hidden states of every position [N,T,H] */
    STORE_TOKENS_CLS = 1  /* position 0 only [N,H] */
};

/* What a store holds. The writer takes it from the caller; the reader fills
 * it from the file (lengths then points into the reader). */
struct store_spec {
    int64_t n_examples;       /* N >= 1 */
    int32_t seq_len;          /* T >= 1 */
    int32_t hidden_size;      /* H (hidden) */
    int32_t model_heads;      /* NH, heads per layer of the teacher (attention) */
    int32_t num_classes;      /* C (logits, decision votes / logits_est) */
    int32_t attribution_views;/* V (attribution) */
    int32_t mlm_positions;    /* P (mlm) */
    int32_t mlm_topk;         /* k (mlm) */
    uint32_t datasets;        /* OR of STORE_BIT(STORE_DS_...); LENGTHS is implied */
    enum store_tokens tokens; /* hidden: all positions or CLS only */
    int32_t n_hidden_layers;  /* hidden layers stored, ascending, 0 = embeddings */
    int32_t hidden_layers[STORE_MAX_LAYERS];
    int32_t n_attention_layers; /* attention layers stored, ascending, 1..99 */
    int32_t attention_layers[STORE_MAX_LAYERS];
    int32_t n_heads;          /* A: heads stored per attention layer */
    int32_t heads[STORE_MAX_HEADS]; /* ascending teacher head indices < NH */
    int labels_float;         /* 1: regression labels stored as fp32 */
    enum h5_prec precision[STORE_DS_COUNT]; /* per float dataset; ignored for int */
    int deflate;              /* 0 = off (default); 1..9 = shuffle + deflate level */
    const int32_t *lengths;   /* (N) real token count per example, 1..T */
};

/* Provenance recorded at the root (strings are copied). The hashes are 64
 * lower-case hex digits (fs_file_sha256). */
struct store_provenance {
    const char *teacher_config; /* JSON text of the teacher's config */
    const char *teacher_sha256;
    const char *vocab_sha256;
    const char *data_sha256;
    const char *created;        /* ISO-8601 UTC; NULL = now (tests pin it) */
};

/* One batch of examples [first, first + count) in the teacher's natural
 * shapes, n = count. Pointers of datasets not stored are ignored and may be
 * NULL; so may all of them when count = 0. */
struct store_batch {
    int64_t first;
    int64_t count;
    const int32_t *input_ids;         /* (n,T) */
    const int32_t *token_type_ids;    /* (n,T) */
    const int32_t *attention_mask;    /* (n,T) */
    const int32_t *labels_i32;        /* (n) classification */
    const float *labels_f32;          /* (n) regression (labels_float) */
    const float *logits;              /* (n,C) */
    const float *const *hidden;       /* [n_hidden_layers] of (n,T,H); cls keeps t = 0 */
    const float *const *attention;    /* [n_attention_layers] of (n,NH,T,T) probabilities;
                                         the store keeps heads[] and the L_i x L_i blocks */
    const float *attribution;         /* (n,V,T) */
    const int32_t *decision_top1;     /* (n) */
    const float *decision_votes;      /* (n,C) */
    const float *decision_logits_est; /* (n,C) */
    const int32_t *mlm_positions;     /* (n,P) */
    const int32_t *mlm_topk_ids;      /* (n,P,k) */
    const float *mlm_topk_logits;     /* (n,P,k) */
};

typedef struct store_writer store_writer_t;
typedef struct store_reader store_reader_t;

/* ---- spec helpers ------------------------------------------------------ */

/* A spec with everything empty and every float dataset fp32. */
void store_spec_init(struct store_spec *s);
/* Checks sizes, layer/head lists, lengths; the message names the field. */
int store_spec_check(const struct store_spec *s, struct kd_err *err);
/* Dataset path without layer ("/logits", "/hidden", ...). */
const char *store_ds_path(enum store_ds ds);
/* 1 for datasets stored as fp32/fp16/bf16 under spec->precision. */
int store_ds_is_float(enum store_ds ds);
/* Values per example of the read buffer of ds (attention padded to A*T*T,
 * hidden T*H or H in cls mode). */
size_t store_example_elems(const struct store_spec *s, enum store_ds ds);

/* Planned file size: bytes per dataset (summed over layers) and the total,
 * including Fletcher32 words and an estimate of HDF5 metadata. If
 * s->lengths is NULL, attention is planned for L_i = T (upper bound). */
struct store_size {
    uint64_t bytes[STORE_DS_COUNT];
    uint64_t data;     /* sum of bytes[] */
    uint64_t metadata; /* estimate: headers, attributes, chunk index, offsets */
    uint64_t total;    /* data + metadata */
};
int store_plan_size(const struct store_spec *s, struct store_size *out,
                    struct kd_err *err);

/* ---- writer (collective) ----------------------------------------------- */

/* Creates "<path>.tmp.<pid of rank 0>" with every dataset of the spec,
 * writes lengths (and attention offsets) and the root attributes. The spec
 * and provenance must be the same on every rank. */
int store_create(store_writer_t **out, const char *path, const struct comm *comm,
                 const struct store_spec *spec, const struct store_provenance *prov,
                 struct kd_err *err);
/* How the file gets written; the contents are the same either way.
 * AUTO: one rank writes a serial (sec2) file; several ranks on one node
 * send their finished chunks to rank 0, which writes a serial file; ranks
 * on several nodes write with parallel HDF5 (MPI-IO, collective
 * transfers). A serial file allocates chunks as they are written, where
 * parallel HDF5 1.10 first writes every filtered chunk as zeros
 * (docs/store-performance.md). ONE_WRITER and MPIIO force a path (tests
 * compare them). */
enum store_writer_io {
    STORE_WRITER_AUTO = 0,
    STORE_WRITER_ONE_WRITER = 1,
    STORE_WRITER_MPIIO = 2
};
/* store_create with the path chosen by `io` (store_create: AUTO). */
int store_create_io(store_writer_t **out, const char *path, const struct comm *comm,
                    const struct store_spec *spec, const struct store_provenance *prov,
                    enum store_writer_io io, struct kd_err *err);
/* Takes this rank's batch; collective. Data are converted at once (the
 * caller may reuse its arrays on return); what fills whole chunks is
 * written now, the rest waits for this rank's next batch or store_finish,
 * so that every chunk is written once. Sequential batches are the fast
 * path; any order works. Validation failures on any rank are agreed, so
 * every rank returns -1 together. */
int store_write_batch(store_writer_t *w, const struct store_batch *b,
                      struct kd_err *err);
/* Writes what is still pending, checks that every example was written by
 * exactly one rank, closes, fsyncs and renames to <path>; on failure
 * removes the temporary file. Frees w in both cases. Collective. */
int store_finish(store_writer_t *w, struct kd_err *err);
/* Gives up: closes and removes the temporary file; frees w. Collective. */
void store_abort(store_writer_t *w);
/* Name of the temporary file being written (for messages and tests). */
const char *store_writer_tmp_path(const store_writer_t *w);

/* ---- reader -------------------------------------------------------------- */

/* What the reader requires; NULL hashes are not checked. */
struct store_expect {
    const char *teacher_sha256;
    const char *vocab_sha256;
    const char *data_sha256;
    int schema_major; /* 0 = STORE_SCHEMA_MAJOR */
};

/* Opens read-only. comm = NULL: serial (no MPI); otherwise collective over
 * comm (and store_close too), reads independent. Refuses another schema or
 * major version, and any provenance mismatch, naming both values. */
int store_open(store_reader_t **out, const char *path, const struct comm *comm,
               const struct store_expect *expect, struct kd_err *err);
const struct store_spec *store_reader_spec(const store_reader_t *r);
const struct store_provenance *store_reader_provenance(const store_reader_t *r);
/* Examples [first, first + count) of ds (layer: the layer number NN for
 * hidden/attention, ignored otherwise) as fp32: out holds
 * count * store_example_elems(spec, ds) values. Ragged attention comes back
 * padded to (count,A,T,T) with zeros outside each L_i x L_i block. Integer
 * datasets are converted exactly (|v| < 2^24). A checksum failure names the
 * dataset and the example range. */
int store_read_f32(store_reader_t *r, enum store_ds ds, int layer, int64_t first,
                   int64_t count, float *out, struct kd_err *err);
/* Same for the int32 datasets (input_ids, token_type_ids, attention_mask,
 * labels when not float, lengths, decision top1, mlm positions and ids). */
int store_read_i32(store_reader_t *r, enum store_ds ds, int64_t first, int64_t count,
                   int32_t *out, struct kd_err *err);
void store_close(store_reader_t *r);

/* ---- epoch shuffling ----------------------------------------------------- */

/* Fills idx (n values) with the global permutation of epoch `epoch` for
 * `seed` (Fisher-Yates driven by core/rng, stream derived from the epoch),
 * then returns in begin and end the slice [begin, end) of it that belongs to
 * `rank` of `nranks` (layout_shard). The permutation does not depend on the
 * rank count, so the same seed gives the same global order on any W. */
void store_epoch_order(int64_t *idx, int64_t n, uint64_t seed, int64_t epoch);
void store_epoch_shard(int64_t *idx, int64_t n, uint64_t seed, int64_t epoch,
                       int rank, int nranks, int64_t *begin, int64_t *end);

#endif
