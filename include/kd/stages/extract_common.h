/* extract_common.h: what the extract stage's data-parallel and pipeline
 * paths share (stages layer): buffers that pad the teacher's taps of a
 * length-cut batch to the store's full T, the store batch they make, the
 * provenance of the store and the size plan it logs. */
#ifndef KD_STAGES_EXTRACT_COMMON_H
#define KD_STAGES_EXTRACT_COMMON_H

#include "kd/io/dataset.h"
#include "kd/io/teacher_store.h"
#include "kd/job/stage.h"
#include "kd/model/bert.h"

struct extract_bufs {
    float *hidden[STORE_MAX_LAYERS];    /* (B,T,H) per stored layer */
    const float *hidden_ptrs[STORE_MAX_LAYERS];
    float *probs[STORE_MAX_LAYERS];     /* (B,NH,T,T) per stored layer */
    const float *probs_ptrs[STORE_MAX_LAYERS];
    float *logits;                      /* (B,K) */
    float *targets;                     /* (B) */
};

int extract_bufs_alloc(struct extract_bufs *eb, const struct store_spec *spec, int64_t B);
void extract_bufs_free(struct extract_bufs *eb);

/* The taps (hidden[l], probs[l], logits) of a batch of n rows cut to t,
 * rows [first, first + n) of d, as a store batch. hidden/probs/logits of
 * the model's last forward; ids and labels straight from d. */
void extract_fill(struct extract_bufs *eb, const struct store_spec *spec,
                  const struct bert_model *m, const struct dataset *d, int64_t first,
                  int64_t n, int64_t t, struct store_batch *sb);
/* The same from plain arrays: hidden[i] (n,t,H) for spec->hidden_layers[i],
 * probs[i] (n,NH,t,t) for spec->attention_layers[i], logits (n,K). */
void extract_fill_from(struct extract_bufs *eb, const struct store_spec *spec,
                       const float *const *hidden, const float *const *probs,
                       const float *logits, int64_t K, const struct dataset *d,
                       int64_t first, int64_t n, int64_t t, struct store_batch *sb);

/* Provenance: the teacher's config JSON, sha256 of its weights, of the
 * vocabulary and of the tokenized data. */
struct extract_prov {
    struct store_provenance p;
    char teacher_sha256[65], vocab_sha256[65], data_sha256[65];
    char *config_json;
};
int extract_provenance(struct extract_prov *ep, const char *teacher_dir,
                       const struct bert_config *cfg, const char *vocab_path,
                       const struct dataset *d, struct kd_err *err);
void extract_provenance_free(struct extract_prov *ep);

/* The sha256 of a teacher directory's weights (model.safetensors, or the
 * index of a sharded checkpoint). */
int extract_teacher_sha256(const char *teacher_dir, char hex[65], struct kd_err *err);

/* Logs (rank 0) the planned size per component. */
void extract_log_plan(const char *stage, const struct store_spec *spec, const char *path);

/* Pipeline path (extract_pipeline.c); returns a kd_exit code. */
int extract_pipeline(const struct stage_ctx *ctx, const struct dataset *d,
                     const struct bert_config *cfg, const char *teacher_dir,
                     const struct store_spec *spec, const struct store_provenance *prov,
                     const char *path);

#endif
