/* hf_config.h: Hugging Face config.json <-> struct bert_config (model layer;
 * no MPI). Reads the BertConfig keys of transformers 4.40 and writes files
 * that transformers loads unchanged, unless FFN widths were pruned (below).
 *
 * Reading. Required keys: vocab_size, hidden_size, num_hidden_layers,
 * num_attention_heads, intermediate_size (positive integers). Optional keys
 * take transformers' BertConfig defaults when absent:
 *   max_position_embeddings 512, type_vocab_size 2, layer_norm_eps 1e-12,
 *   hidden_dropout_prob 0.1, attention_probs_dropout_prob 0.1,
 *   classifier_dropout null (stored as -1: use hidden_dropout_prob),
 *   pad_token_id 0 (null is stored as -1: no padding index),
 *   hidden_act "gelu" (the only accepted value: exact erf GELU),
 *   position_embedding_type "absolute" (the only accepted value),
 *   num_labels 2.
 * model_type must be "bert"; when absent a warning is logged.
 * num_labels comes from "num_labels", else from the size of "id2label"
 * (keys "0".."K-1"); both present and different is an error. problem_type
 * "regression", or num_labels == 1, selects BERT_PROBLEM_REGRESSION;
 * "multi_label_classification" is not implemented and is an error.
 * "pruned_heads": {"<layer>": [original head indices]} fills layer_heads and
 * layer_head_mask. The extension key "kd_hpc_intermediate_sizes": [F per
 * layer] fills layer_intermediate for FFN-pruned models.
 * Unknown keys (architectures, torch_dtype, initializer_range, ...) are
 * ignored. Every bad value is an error "<file>: key '<key>': expected ...,
 * got ...".
 *
 * Writing. The inverse, laid out byte for byte as transformers writes it
 * (json.dumps(indent=2, sort_keys=True)), with torch_dtype "float32",
 * transformers_version "4.40.2", id2label/label2id and pruned_heads,
 * atomically (temp name + rename). kd_hpc_intermediate_sizes is written only when some
 * layer's FFN width differs from intermediate_size: transformers cannot load
 * such a model (its BertIntermediate has one width for all layers, so
 * from_pretrained fails on the shape mismatch); kd_hpc reads it back. */
#ifndef KD_MODEL_HF_CONFIG_H
#define KD_MODEL_HF_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "kd/core/error.h"
#include "kd/model/bert_config.h"

/* Most heads a layer may have: layer_head_mask is a 64-bit set. */
#define HF_CONFIG_MAX_HEADS 64

/* Class names of a sequence-classification head (id2label). */
struct hf_labels {
    int64_t count;  /* == num_labels */
    char **names;   /* names[i] for label id i (owned) */
    int from_file;  /* 1: config.json had id2label; 0: generated LABEL_i */
};

void hf_labels_free(struct hf_labels *labels);

/* transformers' BertConfig defaults for every optional field; the five
 * required sizes are set to 0 and the per-layer arrays to "unpruned" for
 * whatever sizes are set later (see hf_config_init_layers). */
void hf_config_defaults(struct bert_config *cfg);

/* Sets layer_heads = num_attention_heads, layer_intermediate =
 * intermediate_size and all heads kept, for every layer: an unpruned model
 * of the configured sizes. */
void hf_config_init_layers(struct bert_config *cfg);

/* Checks internal consistency (sizes positive, hidden_size divisible by
 * num_attention_heads, layer counts and head masks consistent, ...).
 * `what` names the source in messages (a file name or "student config"). */
int hf_config_validate(const struct bert_config *cfg, const char *what, struct kd_err *err);

/* Parses config.json text (len bytes, need not be NUL-terminated); `path`
 * names it in messages. labels may be NULL; if not, it receives the label
 * names (free with hf_labels_free). On error cfg is unspecified and labels
 * is empty. */
int hf_config_parse(const char *text, size_t len, const char *path, struct bert_config *cfg,
                    struct hf_labels *labels, struct kd_err *err);

/* Reads and parses a config.json file. */
int hf_config_read(const char *path, struct bert_config *cfg, struct hf_labels *labels,
                   struct kd_err *err);

/* The config.json text for cfg (caller frees with free()), or NULL with a
 * message. architecture (e.g. "BertForSequenceClassification") may be NULL
 * to omit "architectures"; labels may be NULL for LABEL_0..LABEL_{K-1}. */
char *hf_config_to_json(const struct bert_config *cfg, const char *architecture,
                        const struct hf_labels *labels, struct kd_err *err);

/* Writes hf_config_to_json's text to path atomically. */
int hf_config_write(const char *path, const struct bert_config *cfg,
                    const char *architecture, const struct hf_labels *labels,
                    struct kd_err *err);

#endif
