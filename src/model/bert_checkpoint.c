/* bert_checkpoint.c: a BERT model from and to a Hugging Face directory
 * (config.json + model.safetensors or a sharded index + vocab.txt) through
 * the safetensors and hf_config APIs (model layer; no MPI).
 *
 * Loading walks the model's own size table and asks the checkpoint for each
 * canonical name, so every spelling st_reader_find_bert accepts works
 * (BertModel names, task-model names with "bert.", TF-era LayerNorm
 * gamma/beta), and whatever else the file holds (position_ids buffers,
 * cls.seq_relationship of a pre-training checkpoint, a tied decoder copy)
 * is ignored. The packed Q/K/V layout needs no conversion: query, key and
 * value are separate table entries that happen to be adjacent.
 *
 * Saving writes task-model names (st_bert_name_for_file) and leaves the
 * tied decoder out, exactly as transformers' save_pretrained does. */
#include "bert_internal.h"

#include "kd/core/atomic_file.h"
#include "kd/core/fsutil.h"
#include "kd/core/log.h"
#include "kd/model/hf_config.h"
#include "kd/model/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Default initializer_range of BertConfig (config.json's value is not kept
 * in struct bert_config). */
#define BERT_INIT_STD 0.02f

static const char *head_name(unsigned head)
{
    switch (head) {
    case BERT_HEAD_POOLER: return "pooler";
    case BERT_HEAD_CLASSIFIER: return "classifier";
    case BERT_HEAD_MLM: return "masked-LM";
    default: return "encoder";
    }
}

/* "[d0, d1]" */
static void shape_str(char *buf, size_t cap, const struct bert_tensor *t)
{
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < t->ndim && n < cap; d++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    if (n < cap)
        snprintf(buf + n, cap - n, "]");
}

/* Open shard files for reading tensor data with pread. */
struct shard_fds {
    int *fd; /* (n), -1 until opened */
    int n;
};

/* Reads one tensor into dst (t->numel floats), checking its shape first.
 *
 * Why not st_reader_read_f32 on its own: the reader maps the checkpoint, and
 * every mapped page a read touches stays in this process's resident set
 * until the reader is closed, so loading BERT-base would peak at the
 * parameters plus the whole file (measured 1.46x the model's memory bound
 * for an inference model). pread into the parameter block touches only the
 * block; the file's pages stay in the page cache, where they are not RSS.
 * The reader is still used for the index, the shape check with its message
 * (it compares shapes before reading anything) and rare dtypes (F64). */
static int read_tensor(const st_reader_t *r, struct shard_fds *fds,
                       const struct st_tensor_info *info, const struct bert_tensor *t,
                       float *dst, struct kd_err *err)
{
    int same = info->ndim == t->ndim && info->numel == t->numel;
    for (int d = 0; same && d < t->ndim; d++)
        same = info->shape[d] == t->shape[d];
    const int narrow = info->dtype == ST_DTYPE_F16 || info->dtype == ST_DTYPE_BF16;
    if (!same || !(info->dtype == ST_DTYPE_F32 || narrow))
        return st_reader_read_f32(r, info, dst, t->ndim, t->shape, err);
    if (t->numel == 0)
        return 0;
    const char *path = st_reader_shard_path(r, info->shard);
    int *fd = &fds->fd[info->shard];
    if (*fd < 0 && (*fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return kd_errf(err, "%s: cannot open for reading: %s", path, strerror(errno));
    /* files are little-endian, as this host (x86-64, aarch64) */
    const size_t esize = narrow ? 2 : 4;
    uint16_t buf[8192];
    size_t done = 0, total = (size_t)info->numel * esize;
    while (done < total) {
        char *to = narrow ? (char *)buf : (char *)dst + done;
        size_t want = narrow ? (total - done < sizeof buf ? total - done : sizeof buf)
                             : total - done;
        ssize_t got = pread(*fd, to, want, (off_t)(info->offset + done));
        if (got <= 0)
            return kd_errf(err, "%s: tensor '%s': read failed at byte %zu of %zu: %s", path,
                           info->name, done, total, got < 0 ? strerror(errno) : "end of file");
        if (narrow) {
            size_t first = done / 2, cnt = (size_t)got / 2;
            KD_ASSERT((got & 1) == 0, "odd read of a 16-bit tensor");
            for (size_t i = 0; i < cnt; i++)
                dst[first + i] = info->dtype == ST_DTYPE_F16 ? st_f16_to_f32(buf[i])
                                                             : st_bf16_to_f32(buf[i]);
        }
        done += (size_t)got;
    }
    return 0;
}

int bert_load_params(struct bert_model *m, const char *dir, uint64_t seed, struct kd_err *err)
{
    st_reader_t *r;
    if (st_reader_open_dir(&r, dir, err) != 0)
        return -1;
    struct shard_fds fds = {NULL, st_reader_shard_count(r)};
    fds.fd = kd_malloc((size_t)(fds.n > 0 ? fds.n : 1) * sizeof(int));
    for (int i = 0; i < fds.n; i++)
        fds.fd[i] = -1;
    float *base = (float *)(void *)m->params_arena.base;
    unsigned warned = 0;
    int rc = 0;
    for (int i = 0; i < m->ptab.n && rc == 0; i++) {
        const struct bert_tensor *t = &m->ptab.t[i];
        const struct st_tensor_info *info = NULL;
        int found = st_reader_find_bert(r, t->name, &info, err);
        /* older MLM checkpoints may carry the decoder bias under its
         * module name only */
        if (found == 0 && strcmp(t->name, "cls.predictions.bias") == 0)
            found = st_reader_find_bert(r, "cls.predictions.decoder.bias", &info, err);
        if (found < 0) {
            rc = -1;
        } else if (found == 1) {
            rc = read_tensor(r, &fds, info, t, base + t->offset, err);
        } else if (t->numel == 0) {
            /* a fully pruned tensor has no values: absent is as good as empty */
        } else if (t->head) {
            bert_tensor_init(base + t->offset, t, &m->cfg, seed, BERT_INIT_STD);
            if (!(warned & t->head))
                log_warn("%s: the checkpoint has no %s head ('%s' and the rest of the head are "
                         "initialised randomly, N(0, %.2g))",
                         dir, head_name(t->head), t->name, (double)BERT_INIT_STD);
            warned |= t->head;
        } else {
            char shp[96];
            shape_str(shp, sizeof shp, t);
            rc = kd_errf(err, "%s: tensor '%s': expected in the checkpoint with shape %s "
                              "(spelled with or without \"bert.\"), got no such tensor",
                         dir, t->name, shp);
        }
    }
    for (int i = 0; i < fds.n; i++)
        if (fds.fd[i] >= 0)
            close(fds.fd[i]);
    free(fds.fd);
    st_reader_close(r);
    return rc;
}

int bert_load_dir(struct bert_model *m, const char *dir, const struct bert_opts *opts,
                  struct hf_labels *labels, struct kd_err *err)
{
    struct bert_config cfg;
    char *path = fs_path_join(dir, "config.json");
    int rc = hf_config_read(path, &cfg, labels, err);
    free(path);
    if (rc != 0)
        return -1;
    if (bert_init(m, &cfg, opts, err) != 0 || bert_load_params(m, dir, opts->seed, err) != 0) {
        bert_free(m);
        if (labels)
            hf_labels_free(labels);
        return -1;
    }
    return 0;
}

/* The transformers class whose state dict matches the model's heads. */
static const char *architecture(unsigned heads)
{
    if (heads & BERT_HEAD_CLASSIFIER)
        return "BertForSequenceClassification";
    if (heads & BERT_HEAD_MLM)
        return "BertForMaskedLM";
    return "BertModel";
}

static int write_weights(const struct bert_model *m, const char *path, struct kd_err *err)
{
    const float *base = (const float *)(const void *)m->params_arena.base;
    st_writer_t *w = st_writer_new();
    int rc = st_writer_set_metadata(w, "format", "pt", err);
    char name[BERT_NAME_MAX + 8];
    for (int i = 0; i < m->ptab.n && rc == 0; i++) {
        const struct bert_tensor *t = &m->ptab.t[i];
        if (st_bert_name_for_file(t->name, name, sizeof name) != 0) {
            rc = kd_errf(err, "%s: tensor name '%s' too long", path, t->name);
            break;
        }
        rc = st_writer_add_f32(w, name, base + t->offset, t->ndim, t->shape, ST_DTYPE_F32, err);
    }
    if (rc == 0)
        rc = st_writer_write(w, path, err);
    st_writer_free(w);
    return rc;
}

int bert_save_dir(const struct bert_model *m, const char *dir, const char *vocab_path,
                  const struct hf_labels *labels, struct kd_err *err)
{
    char msg[512];
    if (m->layer_begin != 0 || m->layer_end != m->cfg.num_hidden_layers)
        return kd_errf(err, "%s: cannot save layers [%lld, %lld) of a %lld-layer model as a "
                            "model directory (a slice is not a model on its own)",
                       dir, (long long)m->layer_begin, (long long)m->layer_end,
                       (long long)m->cfg.num_hidden_layers);
    if (fs_mkdir_p(dir, msg, sizeof msg) != 0)
        return kd_errf(err, "%s: cannot create the model directory: %s", dir, msg);
    char *path = fs_path_join(dir, "model.safetensors");
    int rc = write_weights(m, path, err);
    free(path);
    if (rc == 0) {
        path = fs_path_join(dir, "config.json");
        rc = hf_config_write(path, &m->cfg, architecture(m->opts.heads), labels, err);
        free(path);
    }
    if (rc == 0 && vocab_path) {
        char *data = NULL;
        size_t len = 0;
        rc = fs_file_read(vocab_path, &data, &len, err);
        if (rc == 0) {
            path = fs_path_join(dir, "vocab.txt");
            rc = fs_file_write_atomic(path, data, len, err);
            free(path);
        }
        free(data);
    }
    return rc;
}
