/* extract_common.c: padding buffers, provenance and size plan of extract. */
#include "kd/stages/extract_common.h"
#include "kd/core/fsutil.h"
#include "kd/core/log.h"
#include "kd/model/hf_config.h"
#include "kd/stages/stage_data.h"
#include "kd/stages/teacher_outputs.h"

#include <stdlib.h>
#include <string.h>

int extract_bufs_alloc(struct extract_bufs *eb, const struct store_spec *spec, int64_t B)
{
    memset(eb, 0, sizeof *eb);
    const int64_t T = spec->seq_len, H = spec->hidden_size, NH = spec->model_heads;
    int ok = 1;
    for (int i = 0; i < spec->n_hidden_layers; i++)
        ok &= (eb->hidden_ptrs[i] = eb->hidden[i] =
                   malloc((size_t)(B * T * H) * sizeof(float))) != NULL;
    for (int i = 0; i < spec->n_attention_layers; i++)
        ok &= (eb->probs_ptrs[i] = eb->probs[i] =
                   malloc((size_t)(B * NH * T * T) * sizeof(float))) != NULL;
    ok &= (eb->logits = malloc((size_t)(B * (spec->num_classes + 1)) * sizeof(float))) != NULL;
    ok &= (eb->targets = malloc((size_t)B * sizeof(float))) != NULL;
    if (!ok)
        extract_bufs_free(eb);
    return ok ? 0 : -1;
}

void extract_bufs_free(struct extract_bufs *eb)
{
    for (int i = 0; i < STORE_MAX_LAYERS; i++)
        free(eb->hidden[i]), free(eb->probs[i]);
    free(eb->logits), free(eb->targets);
    memset(eb, 0, sizeof *eb);
}

void extract_fill_from(struct extract_bufs *eb, const struct store_spec *spec,
                       const float *const *hidden, const float *const *probs,
                       const float *logits, int64_t K, const struct dataset *d,
                       int64_t first, int64_t n, int64_t t, struct store_batch *sb)
{
    const int64_t T = spec->seq_len, H = spec->hidden_size, NH = spec->model_heads;
    for (int i = 0; i < spec->n_hidden_layers; i++)
        teacher_pad_hidden(eb->hidden[i], hidden[i], n, t, T, H);
    for (int i = 0; i < spec->n_attention_layers; i++)
        teacher_pad_probs(eb->probs[i], probs[i], n, NH, t, T);
    memcpy(eb->logits, logits, (size_t)(n * K) * sizeof(float));
    *sb = (struct store_batch){.first = first, .count = n,
                               .input_ids = d->input_ids + first * T,
                               .token_type_ids = d->token_type_ids + first * T,
                               .attention_mask = d->attention_mask + first * T,
                               .labels_i32 = d->labels ? d->labels + first : NULL,
                               .labels_f32 = d->targets ? d->targets + first : NULL,
                               .logits = eb->logits,
                               .hidden = eb->hidden_ptrs,
                               .attention = eb->probs_ptrs};
}

void extract_fill(struct extract_bufs *eb, const struct store_spec *spec,
                  const struct bert_model *m, const struct dataset *d, int64_t first,
                  int64_t n, int64_t t, struct store_batch *sb)
{
    const float *hidden[STORE_MAX_LAYERS], *probs[STORE_MAX_LAYERS];
    for (int i = 0; i < spec->n_hidden_layers; i++)
        hidden[i] = bert_hidden(m, spec->hidden_layers[i]);
    for (int i = 0; i < spec->n_attention_layers; i++)
        probs[i] = bert_probs(m, spec->attention_layers[i] - 1);
    extract_fill_from(eb, spec, hidden, probs, bert_logits(m), m->cfg.num_labels, d, first, n,
                      t, sb);
}

int extract_teacher_sha256(const char *teacher_dir, char hex[65], struct kd_err *err)
{
    char *p = fs_path_join(teacher_dir, "model.safetensors");
    if (!fs_file_exists(p)) {
        free(p);
        p = fs_path_join(teacher_dir, "model.safetensors.index.json");
    }
    int rc = fs_file_sha256(p, hex, err) < 0 ? -1 : 0;
    free(p);
    return rc;
}

int extract_provenance(struct extract_prov *ep, const char *teacher_dir,
                       const struct bert_config *cfg, const char *vocab_path,
                       const struct dataset *d, struct kd_err *err)
{
    memset(ep, 0, sizeof *ep);
    if (extract_teacher_sha256(teacher_dir, ep->teacher_sha256, err) ||
        fs_file_sha256(vocab_path, ep->vocab_sha256, err) < 0 ||
        stage_dataset_sha256(d, ep->data_sha256, err))
        return -1;
    ep->config_json = hf_config_to_json(cfg, NULL, NULL, err);
    if (!ep->config_json)
        return -1;
    ep->p = (struct store_provenance){ep->config_json, ep->teacher_sha256, ep->vocab_sha256,
                                      ep->data_sha256, NULL};
    return 0;
}

void extract_provenance_free(struct extract_prov *ep)
{
    free(ep->config_json);
    ep->config_json = NULL;
}

void extract_log_plan(const char *stage, const struct store_spec *spec, const char *path)
{
    struct store_size sz;
    struct kd_err err;
    if (store_plan_size(spec, &sz, &err))
        return;
    log_info0("stage \"%s\": writing %s, %lld examples, planned %.1f MB:", stage, path,
              (long long)spec->n_examples, (double)sz.total / 1e6);
    for (int ds = 0; ds < STORE_DS_COUNT; ds++)
        if (sz.bytes[ds])
            log_info0("  %-24s %10.2f MB%s%s", store_ds_path((enum store_ds)ds),
                      (double)sz.bytes[ds] / 1e6, store_ds_is_float((enum store_ds)ds) ? " " : "",
                      store_ds_is_float((enum store_ds)ds)
                          ? h5_prec_name(spec->precision[ds])
                          : "");
}
