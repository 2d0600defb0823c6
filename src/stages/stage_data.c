/* stage_data.c: vocabulary choice and cached, rank-0-first split loading. */
#include "kd/stages/stage_data.h"
#include "kd/core/atomic_file.h"
#include "kd/core/fsutil.h"
#include "kd/io/dataset_cache.h"
#include "kd/io/synthetic.h"
#include "kd/job/stage.h"

#include <stdlib.h>
#include <string.h>

char *stage_vocab_path(const struct job *job, const struct comm *comm, struct kd_err *err)
{
    if (job->data.task != DATA_TASK_TSV) {
        char *p = fs_path_join(job->job.output_dir, "vocab.txt");
        int rc = 0;
        if (comm->rank == 0) {
            char e[512];
            rc = fs_mkdir_p(job->job.output_dir, e, sizeof e);
            if (rc)
                kd_errf(err, "%s", e);
            else
                rc = synthetic_vocab_write(p, err);
        }
        if (comm_agree_max(comm, rc ? 1 : 0)) {
            if (comm->rank != 0)
                kd_errf(err, "rank 0 could not write the synthetic vocabulary %s", p);
            free(p);
            return NULL;
        }
        return p;
    }
    if (job->data.vocab[0])
        return strdup(job->data.vocab);
    if (job->teacher.checkpoint[0])
        return fs_path_join(job->teacher.checkpoint, "vocab.txt");
    kd_errf(err, "%s: data.vocab is empty and there is no teacher.checkpoint to take "
                 "vocab.txt from", job->path);
    return NULL;
}

const char *stage_data_file(const struct job *job, int split)
{
    if (job->data.task != DATA_TASK_TSV)
        return "";
    return split == DATASET_SPLIT_TRAIN ? job->data.train
           : split == DATASET_SPLIT_DEV ? job->data.dev
                                        : job->data.test;
}

static const char *const split_names[3] = {"train", "dev", "test"};

static int load_split(struct stage_data *sd, const struct job *job, const struct comm *comm,
                      int split, struct kd_err *err)
{
    struct dataset_spec spec = {
        .task = job->data.task, /* enum data_task equals enum dataset_task */
        .split = split,
        .path = stage_data_file(job, split),
        .tsv = {.text_a = job->data.text_a, .text_b = job->data.text_b,
                .label = job->data.label, .labels_optional = split == DATASET_SPLIT_TEST,
                .problem = job->data.problem, .num_labels = job->data.num_labels,
                .bad_rows = job->data.bad_rows},
        .synthetic_n = split == DATASET_SPLIT_TRAIN ? job->data.synthetic_train
                                                    : job->data.synthetic_dev,
        .synthetic_noise = split == DATASET_SPLIT_TRAIN ? job->data.synthetic_noise : 0.0,
        .seed = (uint64_t)job->job.seed,
        .max_seq_len = job->data.max_seq_len};
    if (job->data.task == DATA_TASK_TSV && !spec.path[0]) {
        kd_errf(err, "%s: data.%s is empty: this stage needs the %s split", job->path,
                split_names[split], split_names[split]);
        return -1;
    }
    const struct label_map *train_map =
        split == DATASET_SPLIT_TRAIN ? NULL : &sd->split[DATASET_SPLIT_TRAIN].map;
    char *cache = fs_path_join(job->job.output_dir, "cache");
    int rc = 0;
    /* rank 0 builds or checks the cache; the others then read it */
    if (comm->rank == 0)
        rc = dataset_cache_load(&sd->split[split], &spec, train_map, sd->tok, sd->vocab_path,
                                cache, NULL, err);
    if (comm_agree_max(comm, rc ? 1 : 0)) {
        if (comm->rank != 0)
            kd_errf(err, "rank 0 could not load the %s split", split_names[split]);
        else
            dataset_free(&sd->split[split]);
        free(cache);
        return -1;
    }
    if (comm->rank != 0)
        rc = dataset_cache_load(&sd->split[split], &spec, train_map, sd->tok, sd->vocab_path,
                                cache, NULL, err);
    free(cache);
    if (comm_agree_max(comm, rc ? 1 : 0)) {
        if (!rc) {
            dataset_free(&sd->split[split]);
            kd_errf(err, "another rank could not load the %s split", split_names[split]);
        }
        return -1;
    }
    sd->loaded[split] = 1;
    return 0;
}

int stage_data_open(struct stage_data *sd, const struct job *job, const struct comm *comm,
                    struct kd_err *err)
{
    memset(sd, 0, sizeof *sd);
    sd->vocab_path = stage_vocab_path(job, comm, err);
    if (!sd->vocab_path)
        return -1;
    int rc = tokenizer_load(&sd->tok, sd->vocab_path, job->data.lowercase, err);
    if (comm_agree_max(comm, rc ? 1 : 0)) {
        if (!rc)
            kd_errf(err, "another rank could not load the vocabulary %s", sd->vocab_path);
        stage_data_close(sd);
        return -1;
    }
    if (load_split(sd, job, comm, DATASET_SPLIT_TRAIN, err)) {
        stage_data_close(sd);
        return -1;
    }
    sd->num_labels = sd->split[DATASET_SPLIT_TRAIN].map.num_labels;
    if (sd->num_labels < 1)
        sd->num_labels = job->data.problem == DATA_PROBLEM_REGRESSION ? 1 : 2;
    return 0;
}

const struct dataset *stage_data_split(struct stage_data *sd, const struct job *job,
                                       const struct comm *comm, int split, struct kd_err *err)
{
    if (!sd->loaded[split] && load_split(sd, job, comm, split, err))
        return NULL;
    return &sd->split[split];
}

void stage_data_close(struct stage_data *sd)
{
    for (int i = 0; i < 3; i++)
        if (sd->loaded[i])
            dataset_free(&sd->split[i]);
    if (sd->tok)
        tokenizer_free(sd->tok);
    free(sd->vocab_path);
    memset(sd, 0, sizeof *sd);
}

int stage_dataset_sha256(const struct dataset *d, char hex[65], struct kd_err *err)
{
    const size_t nt = (size_t)(d->n * d->max_seq_len) * sizeof(int32_t);
    const void *parts[4] = {d->input_ids, d->token_type_ids, d->attention_mask,
                            d->labels ? (const void *)d->labels : (const void *)d->targets};
    const size_t sizes[4] = {nt, nt, nt, (size_t)d->n * 4};
    char all[4 * 65 + 1] = "";
    for (int i = 0; i < 4; i++) {
        char h[65] = "0";
        if (parts[i] && fs_buffer_sha256(parts[i], sizes[i], h, err) < 0)
            return -1;
        strcat(all, h);
        strcat(all, "\n");
    }
    return fs_buffer_sha256(all, strlen(all), hex, err) < 0 ? -1 : 0;
}

void stage_data_inputs(const struct job *job, struct stage_files *in)
{
    if (job->data.task != DATA_TASK_TSV)
        return;
    stage_files_add_user(in, job->data.train);
    if (job->data.dev[0])
        stage_files_add_user(in, job->data.dev);
    if (job->data.vocab[0])
        stage_files_add_user(in, job->data.vocab);
}
