/* bert.h: a Hugging Face compatible BERT encoder with its pooler,
 * sequence-classification and masked-LM heads: memory, forward with taps,
 * backward with injected tap gradients, task losses, checkpoints (model
 * layer; never calls MPI: parallel code hands it batches and reduces the
 * flat gradient block itself).
 *
 * Architecture (transformers' BertModel, post-LN, eval = no dropout):
 *   h_0     = dropout(LN(word[id] + pos[t] + type[tt]))           (B,T,C)
 *   layer l, NH_l heads of size HS, FFN width F_l (either may be 0):
 *     qkv   = h_l W_qkv^T + b_qkv                                  (B,T,3*NH*HS)
 *     ctx   = attention(qkv, padding mask)     probs P_l           (B,T,NH*HS)
 *     y     = LN(h_l + dropout(ctx W_o^T + b_o))                   (B,T,C)
 *     h_l+1 = LN(y + dropout(gelu(y W_1^T + b_1) W_2^T + b_2))     (B,T,C)
 *   pooled  = tanh(W_p h_L[:,0] + b_p)                             (B,C)
 *   logits  = dropout(pooled) W_c^T + b_c                          (B,K)
 *   mlm     = LN(gelu(h_L[pos] W_t^T + b_t)) E^T + bias            (B,P,V)
 * with E the word embeddings (tied decoder). A layer with NH_l = 0 reduces
 * its attention block to LN(h + b_o), one with F_l = 0 its FFN block to
 * LN(y + b_2).
 *
 * Memory (STYLE.md principle 1): five blocks, each one mmap'd arena sized
 * before allocation from the size tables of bert_params.h and of the
 * activations, for a maximum batch (B, T, P):
 *   parameters, gradients, optimizer (Adam m then v), activations (what the
 *   forward keeps for the backward, plus the attention scratch), activation
 *   gradients (the backward's working set, shared by all layers).
 * bert_memory_bound() runs the same sizing without allocating; `--dry-run`
 * prints it. Nothing is allocated after bert_init.
 *
 * Taps: after bert_forward, every hidden state h_0..h_L, every layer's
 * attention probabilities (pre-dropout), the pooled output, the logits and
 * the MLM logits are readable in place (bert_hidden() etc.), dense with the
 * batch's own B and T. The backward accepts extra gradients at each of them
 * (struct bert_grad_in) and leaves d loss / d h_0 readable, which attribution
 * methods need.
 *
 * Dropout uses the replayable counter RNG (kernels/dropout.h). Stream of a
 * site: step * 65536 + site, with site 0 = embeddings, 1 + 3l = attention
 * probabilities of layer l, 2 + 3l = attention output, 3 + 3l = FFN output,
 * 1 + 3L = classifier. Element index: the global example index of the
 * batch's first row (first_example) times the site's elements per example
 * (T*C, NH*T*T, or C) plus the position within the batch, so a batch split
 * over ranks drops exactly what one rank holding it all would drop (the
 * ranks must pad the global batch to the same T).
 *
 * Embedding gradients follow transformers' nn.Embedding(padding_idx =
 * pad_token_id): the input lookup adds nothing to the pad token's word row
 * (it still gets the tied MLM decoder's gradient); positions and token types
 * get every token's gradient, padding included.
 *
 * Slices (pipeline stages): a model may hold only the encoder layers
 * [layer_begin, layer_end) of its config (struct bert_opts). cfg stays the
 * FULL config and every layer index in this API is GLOBAL: m->p.layer[l],
 * bert_hidden(m, l), the dropout sites and the grads_ready calls all use the
 * numbers of the whole model, so a chain of slices computes exactly what the
 * whole model computes. A slice holds
 *   - the embeddings only when layer_begin == 0; a later slice takes its
 *     input h_begin (B,T,C) through batch.embedding_output;
 *   - the heads only when layer_end == L (bert_init refuses heads elsewhere);
 *     an MLM head on a slice with layer_begin > 0 keeps its own copy of
 *     embeddings.word_embeddings.weight for the tied decoder. That copy gets
 *     the decoder's gradient only; the pipeline sums it with the first
 *     stage's gradient of the same tensor before the update (both copies
 *     then take identical optimizer steps) and counts it once in the norm
 *     (parallel/pipeline.h);
 *   - hidden states h_begin..h_end and the probabilities of its own layers.
 * Memory (parameters, caches, working buffers) is sized for the slice only,
 * in bert_memory_bound as in bert_init. The backward of a slice starts from
 * the injected dhidden[layer_end] (plus the heads on the last slice) and
 * leaves d loss / d h_begin in m->d_embedding_output.
 *
 * Activation sets: a pipeline stage running 1F1B keeps the forwards of
 * several micro-batches alive until their backwards. opts.act_sets > 1
 * allocates that many activation blocks (caches + taps + the batch they
 * belong to); bert_use_acts selects the one the next forward fills, or the
 * next backward reads. The backward's working buffers stay shared. */
#ifndef KD_MODEL_BERT_H
#define KD_MODEL_BERT_H

#include <stddef.h>
#include <stdint.h>

#include "kd/core/arena.h"
#include "kd/core/error.h"
#include "kd/model/bert_config.h"
#include "kd/model/bert_params.h"
#include "kd/model/hf_config.h"

/* What to allocate. B, T, P are maxima: any batch up to them runs. */
struct bert_opts {
    int64_t B;           /* max sequences per batch */
    int64_t T;           /* max tokens per sequence (<= max_position_embeddings) */
    int64_t P;           /* max MLM positions per sequence (0 if unused) */
    unsigned heads;      /* BERT_HEAD_* bits (CLASSIFIER implies POOLER) */
    int backward;        /* 1: keep every layer's caches + activation gradients */
    int param_grads;     /* 1: gradient block (requires backward) */
    int optimizer;       /* 1: Adam m and v blocks */
    uint64_t seed;       /* dropout masks (the job's seed) */
    /* Slice (see the header comment): encoder layers [layer_begin,
     * layer_end) of the config; layer_end == 0 means L, so a zeroed struct
     * is the whole model. A slice holds at least one layer. */
    int64_t layer_begin, layer_end;
    int act_sets;        /* activation sets (1F1B in flight); 0 means 1 */
};

/* Bytes of each block for (cfg, opts), and their sum. */
struct bert_memory {
    size_t params;
    size_t grads;
    size_t optimizer;       /* m and v */
    size_t activations;
    size_t grad_activations;
    size_t total;
};

/* The sizing bert_init allocates, without allocating: the analytical bound
 * `--dry-run` prints. cfg must be valid. */
struct bert_memory bert_memory_bound(const struct bert_config *cfg,
                                     const struct bert_opts *opts);

/* Per-layer caches of the forward (pointers into the activation block;
 * with opts.backward == 0 all layers share one set). Dims are the batch's. */
struct bert_layer_acts {
    float *qkv;       /* (B,T,3*NH*HS) */
    float *probs;     /* (B,NH,T,T) pre-dropout attention probabilities (tap) */
    float *ctx;       /* (B,T,NH*HS) */
    float *attn_res;  /* (B,T,C) h_l + dropout(attention output): LN input */
    float *attn_mean; /* (B*T) */
    float *attn_rstd; /* (B*T) */
    float *attn_ln;   /* (B,T,C) y, the attention block's output */
    float *ffn_pre;   /* (B,T,F) pre-GELU */
    float *ffn_act;   /* (B,T,F) gelu(ffn_pre) */
    float *ffn_res;   /* (B,T,C) y + dropout(FFN output): LN input */
    float *ffn_mean;  /* (B*T) */
    float *ffn_rstd;  /* (B*T) */
};

struct bert_acts {
    float *emb_sum;    /* (B,T,C) word + position + type, LN input */
    float *emb_mean;   /* (B*T) */
    float *emb_rstd;   /* (B*T) */
    float **hidden;    /* [L+1] each (B,T,C): h_0 (embedding output) .. h_L */
    struct bert_layer_acts *layer; /* [L] */
    /* attention dropout / backward workspace: (2T^2+T) floats for each
     * thread of the kernels' budget (attention_scratch_floats) */
    float *attn_scratch;
    float *cls_in;     /* (B,C) h_L[:,0] */
    float *pooled;     /* (B,C) tap */
    float *cls_drop;   /* (B,C) dropout(pooled), classifier input in training */
    float *logits;     /* (B,K) */
    float *mlm_in;     /* (B,P,C) h_L at the positions */
    float *mlm_pre;    /* (B,P,C) transform pre-GELU */
    float *mlm_act;    /* (B,P,C) */
    float *mlm_ln;     /* (B,P,C) transform output */
    float *mlm_mean;   /* (B*P) */
    float *mlm_rstd;   /* (B*P) */
    float *mlm_logits; /* (B,P,V) */
};

/* The backward's working buffers (one set for all layers). */
struct bert_grad_acts {
    float *dh[2];      /* (B,T,C) gradient of the current hidden state, ping-pong */
    float *dy;         /* (B,T,C) gradient of the attention block output */
    float *dproj;      /* (B,T,C) gradient before a dropout (training only) */
    float *dact;       /* (B,T,Fmax) */
    float *dpre;       /* (B,T,Fmax) */
    float *dctx;       /* (B,T,NHmax*HS) */
    float *dqkv;       /* (B,T,3*NHmax*HS) */
    float *dcls;       /* (B,C) classifier input */
    float *dpool;      /* (B,C) pooled output */
    float *dpool_pre;  /* (B,C) */
    float *dcls_in;    /* (B,C) */
    float *dmlm_ln;    /* (B,P,C) */
    float *dmlm_act;   /* (B,P,C) */
    float *dmlm_pre;   /* (B,P,C) */
    float *dmlm_in;    /* (B,P,C) */
    float *dlogits;    /* (B,K) for the loss helpers' output */
    float *dmlm_logits;/* (B,P,V) for the loss helpers' output */
};

/* One batch. Arrays are borrowed and must stay valid until bert_backward
 * has run (the backward replays masks and reads the ids). */
struct bert_batch {
    int64_t B, T;                  /* <= opts.B, opts.T */
    const int32_t *input_ids;      /* (B,T) */
    const int32_t *token_type_ids; /* (B,T) or NULL: all type 0 */
    const int32_t *attention_mask; /* (B,T) 1 = token, 0 = padding; NULL: none */
    int64_t P;                     /* MLM positions per sequence, <= opts.P */
    const int32_t *mlm_positions;  /* (B,P) in [0,T); a negative entry is an
                                    * unused slot: its logits come from a zero
                                    * row and nothing flows back to h_L from
                                    * it (label it -100 so the loss ignores it) */
    const float *embedding_output; /* (B,T,C) or NULL: used as the input
                                    * h_begin of the model's first layer: h_0
                                    * instead of the embeddings (integrated
                                    * gradients) on a model holding them,
                                    * required on a slice with layer_begin >
                                    * 0; input_ids may then be NULL */
    int train;                     /* 1: dropout on */
    uint64_t first_example;        /* global index of row 0 (dropout) */
    uint64_t step;                 /* dropout counter, unique per forward pass */
};

/* Extra gradients injected at the taps, each optional (NULL). */
struct bert_grad_in {
    const float *dlogits;     /* (B,K) */
    const float *dpooled;     /* (B,C) */
    const float *dmlm_logits; /* (B,P,V) */
    const float *dhidden[BERT_MAX_LAYERS + 1]; /* [l] (B,T,C), l = 0..L */
    const float *dprobs[BERT_MAX_LAYERS];      /* [l] (B,NH_l,T,T) pre-dropout probs */
    const float *dscores[BERT_MAX_LAYERS];     /* [l] (B,NH_l,T,T) pre-softmax scores */
    int skip_param_grads;     /* 1: only d h_0 (no parameter gradients) */
    /* Optional: told as parameter gradients become final during the
     * backward, so data-parallel code can start reducing them while the
     * backward continues. Called with layer = L once the heads' gradients
     * are final, with l after layer l's, and with -1 after the embeddings'
     * (the last call). Parameters of a part are the size-table tensors whose
     * names start with "encoder.layer.<l>.", or "embeddings.", or that
     * belong to a head (bert_tensor.head != 0). A slice reports only the
     * parts it holds, with global layer numbers: L if it holds the heads
     * (the MLM copy of the word embeddings on a later slice is final then
     * too), its layers from layer_end - 1 down to layer_begin, and -1 if it
     * holds the embeddings. */
    void (*grads_ready)(void *ctx, int64_t layer);
    void *grads_ready_ctx;
};

struct bert_model {
    struct bert_config cfg;
    struct bert_opts opts;
    int64_t HS;                /* head size = C / num_attention_heads */
    int64_t max_heads, max_ffn;/* over layers */
    struct bert_table ptab;    /* parameter size table (also grads, m, v) */
    struct arena params_arena, grads_arena, optim_arena, acts_arena, gacts_arena;
    struct bert_params p;      /* into params_arena */
    struct bert_params g;      /* into grads_arena (pointers NULL without it) */
    float *adam_m, *adam_v;    /* (ptab.floats) each, or NULL */
    struct bert_acts a;
    struct bert_grad_acts ga;
    struct bert_batch batch;   /* of the last forward */
    int have_forward;
    float *d_embedding_output; /* (B,T,C) after bert_backward: d loss / d h_begin */
    int64_t layer_begin, layer_end; /* the slice [begin, end) (0, L for a whole model) */
    /* activation sets: a, batch and have_forward above are the current
     * one's; the others are parked here (bert_use_acts) */
    int n_act_sets, cur_act_set;
    struct bert_acts *act_set;    /* [n_act_sets] */
    struct bert_batch *act_batch; /* [n_act_sets] */
    int *act_forward;             /* [n_act_sets] */
};

/* Allocates every block for cfg and opts, parameters zero (load or
 * initialise them next). Returns -1 with a message for an invalid config or
 * options (e.g. T > max_position_embeddings). */
int bert_init(struct bert_model *m, const struct bert_config *cfg, const struct bert_opts *opts,
              struct kd_err *err);
void bert_free(struct bert_model *m);

/* Makes activation set k (0 <= k < n_act_sets) current: the next forward
 * fills it and the next backward reads the forward that last filled it. */
void bert_use_acts(struct bert_model *m, int k);

/* 1 if the model holds the embeddings (a slice starting at layer 0). */
static inline int bert_has_embeddings(const struct bert_model *m) { return m->layer_begin == 0; }
/* 1 if the model holds the last layer (and so may hold heads). */
static inline int bert_is_last_slice(const struct bert_model *m)
{
    return m->layer_end == m->cfg.num_hidden_layers;
}

/* Hugging Face's random initialisation (bert_tensor_init) of every tensor;
 * std = initializer_range (0.02 in BERT configs). */
void bert_init_random(struct bert_model *m, uint64_t seed, float std);

/* Zeroes the gradient block (once per optimizer step; backward adds). */
void bert_zero_grads(struct bert_model *m);

/* Forward pass over one batch; fills the taps. */
void bert_forward(struct bert_model *m, const struct bert_batch *batch);

/* Backward of the last forward: accumulates (+=) every parameter gradient
 * and points m->d_embedding_output at d loss / d h_begin (B,T,C) (h_0 for a
 * whole model), valid until the next backward. Needs opts.backward (and opts.param_grads unless
 * g->skip_param_grads). With batch.embedding_output the embedding tables
 * get no gradient (they took no part). Gradients start from g's tensors
 * only: compute d loss / d logits first (bert_loss_* below). */
void bert_backward(struct bert_model *m, const struct bert_grad_in *g);

/* Taps of the last forward (dense, the batch's B, T, P); l is global and
 * must be one the model holds (hidden: begin..end, probs: begin..end-1). */
static inline float *bert_hidden(const struct bert_model *m, int64_t l) { return m->a.hidden[l]; }
static inline float *bert_probs(const struct bert_model *m, int64_t l) { return m->a.layer[l].probs; }
static inline float *bert_pooled(const struct bert_model *m) { return m->a.pooled; }
static inline float *bert_logits(const struct bert_model *m) { return m->a.logits; }
static inline float *bert_mlm_logits(const struct bert_model *m) { return m->a.mlm_logits; }

/* ---- task losses (mean over the batch, as PyTorch) --------------------
 * Each returns the loss of the last forward and, if dlogits is not NULL,
 * OVERWRITES it with weight * d loss / d logits (m->ga.dlogits and
 * m->ga.dmlm_logits are buffers of the right size). */

/* Cross-entropy on logits (B,K), labels (B) in [0,K) or -100 (ignored). */
double bert_loss_classification(const struct bert_model *m, const int32_t *labels,
                                float *dlogits, float weight);
/* MSE on logits (B,1) against labels (B) (num_labels == 1). */
double bert_loss_regression(const struct bert_model *m, const float *labels, float *dlogits,
                            float weight);
/* Cross-entropy on mlm logits (B,P,V), labels (B,P) in [0,V) or -100. */
double bert_loss_mlm(const struct bert_model *m, const int32_t *labels, float *dmlm_logits,
                     float weight);

/* The optimizer's segment table (optim.h) of the model's parameter block:
 * one segment per size-table tensor, with its weight-decay flag (malloc'd,
 * m->ptab.n entries; names borrowed from the table). NULL when out of
 * memory. */
struct optim_segment;
struct optim_segment *bert_optim_segments(const struct bert_model *m);

/* ---- checkpoints (bert_checkpoint.c) ----------------------------------- */

/* Reads dir/config.json, calls bert_init and bert_load_params. labels may
 * be NULL; else it receives id2label (free with hf_labels_free). */
int bert_load_dir(struct bert_model *m, const char *dir, const struct bert_opts *opts,
                  struct hf_labels *labels, struct kd_err *err);

/* Loads every tensor of the model from dir's model.safetensors (or sharded
 * index), whichever spelling the file uses (BertModel, task models, "bert."
 * prefix or not, LayerNorm gamma/beta). A missing encoder or embedding
 * tensor, or any shape mismatch, is an error naming the tensor and the
 * expected and found shapes. A head the file lacks (e.g. a BertModel
 * checkpoint used for classification) is initialised with bert_tensor_init
 * (seed, std 0.02) and a warning. */
int bert_load_params(struct bert_model *m, const char *dir, uint64_t seed, struct kd_err *err);

/* A slice loads only its own tensors (global names): the same rules. */

/* Writes dir/config.json, dir/model.safetensors (F32, task-model names with
 * the "bert." prefix, no tied decoder) and copies vocab_path (if not NULL)
 * to dir/vocab.txt: a directory transformers loads unchanged
 * (BertForSequenceClassification with a classifier, else BertForMaskedLM
 * with an MLM head, else BertModel). labels may be NULL (LABEL_i). A slice
 * is refused (it is not a loadable model on its own). */
int bert_save_dir(const struct bert_model *m, const char *dir, const char *vocab_path,
                  const struct hf_labels *labels, struct kd_err *err);

#endif
