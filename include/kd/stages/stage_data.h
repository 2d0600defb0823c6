/* stage_data.h: the job's data as the stages see it (stages layer: above
 * job, parallel, model and io). One place decides which vocabulary file a
 * job tokenizes with and loads the tokenized splits through the dataset
 * cache, so every stage of a job sees the same token ids.
 *
 * Vocabulary: the synthetic tasks use their own (written to
 * <output_dir>/vocab.txt); TSV data uses data.vocab, or else the teacher
 * checkpoint's vocab.txt. Splits are cached in <output_dir>/cache: rank 0
 * tokenizes (or reads the cache) first, the other ranks read the finished
 * cache after a barrier. Every rank holds every split in memory (the
 * datasets are small next to the models); ranks take their shards by
 * index. */
#ifndef KD_STAGES_STAGE_DATA_H
#define KD_STAGES_STAGE_DATA_H

#include "kd/core/error.h"
#include "kd/io/dataset.h"
#include "kd/job/job.h"
#include "kd/model/tokenizer.h"
#include "kd/parallel/comm.h"

struct stage_data {
    char *vocab_path;         /* the file the tokenizer was loaded from */
    tokenizer_t *tok;
    struct dataset split[3];  /* by enum dataset_split, once loaded */
    int loaded[3];
    int32_t num_labels;       /* K of the training split (1: regression) */
};

/* The vocabulary file of the job (malloc'd path); writes the synthetic
 * vocabulary on rank 0 when the task is synthetic (collective). */
char *stage_vocab_path(const struct job *job, const struct comm *comm, struct kd_err *err);

/* Loads the tokenizer and the training split (which defines the labels).
 * Collective. Returns 0 or -1 with err (the same on every rank). */
int stage_data_open(struct stage_data *sd, const struct job *job, const struct comm *comm,
                    struct kd_err *err);
/* The split (enum dataset_split), loaded on first use. Collective on first
 * use. NULL with err when it cannot be loaded (e.g. data.dev is ""). */
const struct dataset *stage_data_split(struct stage_data *sd, const struct job *job,
                                       const struct comm *comm, int split,
                                       struct kd_err *err);
void stage_data_close(struct stage_data *sd);

/* The input files a stage reading split `split` depends on (data file or
 * "" for synthetic, and the vocabulary), for the manifest. */
const char *stage_data_file(const struct job *job, int split);

/* SHA-256 (hex) of a tokenized dataset's content (ids, token types, mask,
 * labels): the store's data provenance, independent of where the text came
 * from. */
int stage_dataset_sha256(const struct dataset *d, char hex[65], struct kd_err *err);

/* Adds the user files the job's data come from (TSV splits train and dev,
 * data.vocab) to a stage's inputs (the runner's manifest). The synthetic
 * task has none: its data are a function of the data.* keys. */
struct stage_files;
void stage_data_inputs(const struct job *job, struct stage_files *in);

#endif
