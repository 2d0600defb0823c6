/* bert_params.h: the parameter layout of a BERT model, its size table and
 * the named pointers into it (model layer; no MPI).
 *
 * One size table lists every parameter tensor in Hugging Face's canonical
 * naming (no "bert." prefix, see safetensors.h), with its shape, its offset
 * in the flat parameter block and whether AdamW weight decay applies. The
 * parameter, gradient and Adam m / v blocks all share this layout, so an
 * optimizer can walk flat float arrays with the table as its segment list,
 * and checkpoint I/O maps file tensors to offsets by name.
 *
 * Layout rules:
 *   - every tensor starts on an ARENA_ALIGN boundary (16 floats), so the
 *     block holds a few padding floats that stay 0 in every array;
 *   - a layer's query, key and value weights are stored back to back without
 *     padding, which IS the packed (3*NH*HS, C) matrix of attention.h; the
 *     three biases likewise form one (3*NH*HS) vector. The table still lists
 *     them under their three HF names;
 *   - pruned layers keep zero-sized tensors (e.g. query.weight (0, C)) in the
 *     table with their real shapes, as transformers stores them.
 *
 * Weight decay (the AdamW convention of BERT fine-tuning): none for names
 * ending in ".bias" or containing "LayerNorm", decay for everything else. */
#ifndef KD_MODEL_BERT_PARAMS_H
#define KD_MODEL_BERT_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "kd/model/bert_config.h"

/* Longest canonical tensor name, NUL included. */
#define BERT_NAME_MAX 96
#define BERT_TENSOR_MAX_DIMS 4

/* Optional heads on top of the encoder (bit set of the model). */
enum bert_head {
    BERT_HEAD_POOLER = 1u,     /* pooler.dense: tanh(W h[CLS] + b) */
    BERT_HEAD_CLASSIFIER = 2u, /* classifier on the pooled output (needs the pooler) */
    BERT_HEAD_MLM = 4u         /* cls.predictions: transform + tied decoder + bias */
};

/* One entry of a size table (parameters or activations). */
struct bert_tensor {
    char name[BERT_NAME_MAX];             /* canonical HF name, or an activation name */
    int ndim;                             /* 0..BERT_TENSOR_MAX_DIMS */
    int64_t shape[BERT_TENSOR_MAX_DIMS];  /* shape[0..ndim) */
    int64_t numel;                        /* product of the shape */
    size_t offset;                        /* in floats from the start of the block */
    int decay;                            /* parameters: 1 if weight decay applies */
    unsigned head;                        /* parameters: 0 = encoder, else the BERT_HEAD_* owning it */
};

/* A size table: every tensor of one block, in block order. */
struct bert_table {
    struct bert_tensor *t; /* (n) */
    int n, cap;
    size_t floats;         /* block size in floats, padding included */
};

void bert_table_free(struct bert_table *tab);

/* Index of a tensor by exact name, or -1. */
int bert_table_find(const struct bert_table *tab, const char *name);

/* Pointers of one layer into a parameter-shaped block (parameters,
 * gradients, or Adam moments). NH = heads of the layer, HS = head size,
 * CH = NH*HS, F = the layer's FFN width. */
struct bert_layer_params {
    float *qkv_w;      /* (3*CH, C) query rows, then key, then value */
    float *qkv_b;      /* (3*CH) */
    float *attn_out_w; /* (C, CH) attention.output.dense */
    float *attn_out_b; /* (C) */
    float *attn_ln_w;  /* (C) attention.output.LayerNorm */
    float *attn_ln_b;  /* (C) */
    float *ffn_in_w;   /* (F, C) intermediate.dense */
    float *ffn_in_b;   /* (F) */
    float *ffn_out_w;  /* (C, F) output.dense */
    float *ffn_out_b;  /* (C) */
    float *ffn_ln_w;   /* (C) output.LayerNorm */
    float *ffn_ln_b;   /* (C) */
};

/* Every tensor of the model in one parameter-shaped block. Head pointers
 * are NULL when the model has no such head. */
struct bert_params {
    float *word_emb;   /* (V, C) also the tied MLM decoder weight */
    float *pos_emb;    /* (max_position_embeddings, C) */
    float *type_emb;   /* (type_vocab_size, C) */
    float *emb_ln_w;   /* (C) */
    float *emb_ln_b;   /* (C) */
    struct bert_layer_params *layer; /* [L] */
    float *pool_w;     /* (C, C) pooler.dense */
    float *pool_b;     /* (C) */
    float *cls_w;      /* (K, C) classifier */
    float *cls_b;      /* (K) */
    float *mlm_w;      /* (C, C) cls.predictions.transform.dense */
    float *mlm_b;      /* (C) */
    float *mlm_ln_w;   /* (C) cls.predictions.transform.LayerNorm */
    float *mlm_ln_b;   /* (C) */
    float *mlm_bias;   /* (V) cls.predictions.bias (decoder bias) */
};

/* Builds the parameter size table of cfg with the given heads
 * (BERT_HEAD_CLASSIFIER implies BERT_HEAD_POOLER). The caller frees it with
 * bert_table_free. The config must be valid (hf_config_validate). */
void bert_param_table(struct bert_table *tab, const struct bert_config *cfg, unsigned heads);
/* The same for the slice of encoder layers [begin, end) (bert.h): the
 * embeddings when begin == 0, the heads only when end == L (heads must be 0
 * otherwise), and for an MLM head on a slice with begin > 0 its copy of
 * embeddings.word_embeddings.weight. Names and shapes are the whole
 * model's; only the offsets differ. */
void bert_param_table_slice(struct bert_table *tab, const struct bert_config *cfg,
                            unsigned heads, int64_t begin, int64_t end);

/* Points p at the tensors of a parameter-shaped block `base` laid out by
 * the table tab (of a model with L layers). p->layer must have room for L
 * entries. Tensors tab lacks (absent heads) get NULL. */
void bert_params_bind(struct bert_params *p, float *base, const struct bert_table *tab,
                      int64_t L);

/* Hugging Face's initialisation of one tensor (BertPreTrainedModel
 * _init_weights): weights and embeddings ~ N(0, std) (std is
 * initializer_range, 0.02 by default), the pad_token_id row of the word
 * embeddings 0, biases 0, LayerNorm weights 1. Values come from the
 * counter RNG with the stream derived from the tensor's name, so a tensor's
 * values depend only on (seed, name, shape), not on which other tensors
 * exist. data holds t->numel floats. */
void bert_tensor_init(float *data, const struct bert_tensor *t, const struct bert_config *cfg,
                      uint64_t seed, float std);

#endif
