/* dataset.h: a tokenized in-memory dataset, its rank shards and per-epoch
 * shuffles (io layer; uses the model layer's tokenizer, knows nothing of MPI
 * or the job layer).
 *
 * A dataset holds N examples of T = max_seq_len tokens each, encoded as BERT
 * expects them:
 *   single: [CLS] a [SEP] [PAD]...      token_type_ids 0 everywhere
 *   pair:   [CLS] a [SEP] b [SEP] [PAD]...   1 on b and its [SEP], else 0
 *   attention_mask 1 on the lengths[i] real tokens, 0 on padding.
 * Inputs longer than T are truncated longest-first (one token at a time from
 * the end of the longer text, from b on a tie: transformers'
 * truncation="longest_first"); they are counted in n_truncated and a warning
 * names the source. Tokenizing goes through the tokenizer's public API only,
 * so real and synthetic data take exactly the same path.
 *
 * Sharding and shuffling (data-parallel training):
 * - dataset_epoch_order gives a permutation of 0..N-1 that depends only on
 *   (seed, epoch, N): every rank computes the same one, whatever the number
 *   of ranks, so the global order of examples is rank-count independent.
 * - dataset_shard gives rank r of R the contiguous range [begin, end) of
 *   positions (sizes differ by at most one, nothing lost or repeated); a rank
 *   processes order[begin..end).
 */
#ifndef KD_IO_DATASET_H
#define KD_IO_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "kd/core/error.h"
#include "kd/io/synthetic.h"
#include "kd/io/tsv.h"
#include "kd/model/tokenizer.h"

/* Values equal the job layer's enum data_task. */
enum dataset_task {
    DATASET_TASK_TSV = 0,
    DATASET_TASK_SYNTHETIC = 1,
    DATASET_TASK_SYNTHETIC_PAIR = 2
};
/* Values equal enum synthetic_split. */
enum dataset_split { DATASET_SPLIT_TRAIN = 0, DATASET_SPLIT_DEV = 1, DATASET_SPLIT_TEST = 2 };

struct dataset {
    char *name;              /* the TSV path, or "synthetic:train" etc. */
    int64_t n;               /* N */
    int64_t max_seq_len;     /* T */
    int pair;                /* 1: two texts per example */
    int32_t *input_ids;      /* (N,T) */
    int32_t *token_type_ids; /* (N,T) */
    int32_t *attention_mask; /* (N,T) */
    int32_t *lengths;        /* (N) real tokens, specials included */
    int32_t *labels;         /* (N) class ids (classification), else NULL */
    float *targets;          /* (N) regression targets, else NULL */
    int64_t *source_lines;   /* (N) TSV line of each example; NULL for synthetic */
    struct label_map map;    /* class names; kind LABEL_KIND_NONE without labels */
    int64_t n_truncated;     /* examples cut to T */
    int64_t n_unk;           /* [UNK] tokens among the kept tokens */
    int64_t n_skipped;       /* malformed TSV rows skipped by the reader */
};

/* What to load: the `data` section of a job, for one split. */
struct dataset_spec {
    int task;                /* enum dataset_task */
    int split;               /* enum dataset_split */
    const char *path;        /* TSV file of this split (task tsv) */
    struct tsv_options tsv;  /* columns, problem, num_labels, bad_rows; for the
                              * synthetic tasks only problem/num_labels are
                              * checked (classification, 0 or 2) */
    int64_t synthetic_n;     /* synthetic examples of this split */
    double synthetic_noise;  /* fraction of flipped synthetic labels */
    uint64_t seed;           /* job.seed */
    int64_t max_seq_len;     /* T */
};

/* Tokenizes a TSV table / a synthetic set into *d (no initialisation needed).
 * The label mapping is copied from the source. Returns 0, or -1 with err set
 * when max_seq_len is too small for the special tokens. */
int dataset_from_tsv(struct dataset *d, const struct tsv_table *t, tokenizer_t *tok,
                     int64_t max_seq_len, struct kd_err *err);
int dataset_from_synthetic(struct dataset *d, const struct synthetic_set *s,
                           tokenizer_t *tok, int64_t max_seq_len, struct kd_err *err);

/* Reads or generates, then tokenizes, one split. train_map: NULL for the
 * split that defines the label mapping (train), else the training dataset's
 * map (dev and test TSV files are read against it; a test file may lack the
 * label column). Returns 0 or -1 with err ("FILE:LINE: expected ... got ..."
 * for TSV input). */
int dataset_load(struct dataset *d, const struct dataset_spec *spec,
                 const struct label_map *train_map, tokenizer_t *tok, struct kd_err *err);
/* Releases everything; a zeroed dataset is allowed. */
void dataset_free(struct dataset *d);

/* Positions [begin, end) of rank `rank` of `nranks` over n examples. */
void dataset_shard(int64_t n, int rank, int nranks, int64_t *begin, int64_t *end);

/* order (n) receives the epoch's permutation of 0..n-1: Fisher-Yates driven
 * by the counter-based generator of core/rng.h with (seed, epoch), identical
 * on every rank and for every rank count. */
void dataset_epoch_order(int64_t *order, int64_t n, uint64_t seed, int64_t epoch);

#endif
