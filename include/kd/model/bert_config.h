/* bert_config.h: the architecture of a BERT model, named as in Hugging
 * Face's config.json so the file maps 1:1 (model layer, no MPI).
 *
 * Pruned models: every layer has its own head count and FFN width, either of
 * which may be 0 (the layer's attention or FFN block is then skipped and only
 * its residual + LayerNorm remain). Head size stays hidden_size /
 * num_attention_heads as in transformers' prune_heads. */
#ifndef KD_MODEL_BERT_CONFIG_H
#define KD_MODEL_BERT_CONFIG_H

#include <stdint.h>

#define BERT_MAX_LAYERS 128

enum bert_problem {
    BERT_PROBLEM_CLASSIFICATION = 0, /* single_label_classification */
    BERT_PROBLEM_REGRESSION = 1      /* num_labels == 1 */
};

struct bert_config {
    int64_t vocab_size;              /* V */
    int64_t hidden_size;             /* C */
    int64_t num_hidden_layers;       /* L */
    int64_t num_attention_heads;     /* heads before pruning; HS = C / this */
    int64_t intermediate_size;       /* F before pruning */
    int64_t max_position_embeddings;
    int64_t type_vocab_size;
    int64_t pad_token_id;
    double layer_norm_eps;
    double hidden_dropout_prob;
    double attention_probs_dropout_prob;
    double classifier_dropout;       /* < 0: use hidden_dropout_prob */
    int64_t num_labels;              /* K; 1 means regression */
    enum bert_problem problem;
    /* per-layer sizes after pruning (equal to the totals when unpruned) */
    int64_t layer_heads[BERT_MAX_LAYERS];        /* NH of layer l */
    int64_t layer_intermediate[BERT_MAX_LAYERS]; /* F of layer l */
    /* which original heads of layer l survive (bit h set = kept), so that
     * config.json's "pruned_heads" can be written back */
    uint64_t layer_head_mask[BERT_MAX_LAYERS];
};

#endif
