/* loss_term.h: one distillation loss term as a pluggable strategy, the
 * registry of terms, what the terms need from the teacher, and the plain
 * views of student and teacher outputs the terms read (kd layer; knows
 * nothing of MPI; the job's struct loss_cfg is read as plain data).
 *
 * A term is a `const struct kd_term_ops` in its own file (loss_hard.c,
 * loss_soft.c, loss_hidden.c, loss_attention.c) plus one name in the
 * registry's list (loss_registry.c). The loss set (loss_set.h) is the only
 * caller of the ops; extract planning calls kd_needs_of(). Forward and
 * backward of a term are one `compute`: the gradient of every term needs
 * the row quantities of its value (softmaxes, norms, projected rows), and
 * a training step always wants both, so one pass serves both and nothing
 * is cached between calls.
 *
 * Dimension letters: B examples, T tokens, K labels, C student hidden
 * size, Ct teacher hidden size, NH heads, L layers.
 *
 * Normalisation. Every term is a mean over examples of a per-example loss,
 * written as (sum over the local examples) / N with N given by the caller
 * (struct kd_step): data-parallel ranks pass the GLOBAL counts, so that
 * summing the ranks' gradients gives the gradient of the global-batch mean,
 * and one rank holding the whole batch computes the same numbers. Two
 * normalisers exist because the hard loss, like PyTorch's ignore_index,
 * averages over labelled examples only:
 *   norm_examples  soft, hidden, attention: examples with >= 1 real token
 *   norm_labelled  hard: of those, examples whose label is not -100
 * An example whose attention mask is all zero is batch padding: it adds
 * nothing to any term (kd_batch_counts counts the local ones). */
#ifndef KD_KD_LOSS_TERM_H
#define KD_KD_LOSS_TERM_H

#include <stddef.h>
#include <stdint.h>

#include "kd/core/error.h"
#include "kd/job/job.h"
#include "kd/kd/layer_map.h"
#include "kd/model/bert.h"
#include "kd/model/optim.h"

/* ---- per-term options (job keys losses.[].form and losses.[].rows) ------ */

/* Soft-label loss form. Both are scaled by T^2 (Hinton et al.), so they
 * have the same gradient and differ by T^2 * H(p_T), the teacher's entropy
 * at temperature T, which does not depend on the student:
 *   KL  T^2 * sum_k p_T log(p_T / p_S)   (torch KLDivLoss, "batchmean")
 *   CE  T^2 * -sum_k p_T log p_S          (Aguilar et al.'s L_soft as in
 *                                         METHODS.md 2(b), at T = 1) */
enum kd_soft_form { KD_SOFT_KL = 0, KD_SOFT_CE = 1 };

/* Attention query rows averaged over (METHODS.md 2(b)): the real rows of
 * each example (default), or all T rows, pad rows included (GLMKD). */
enum kd_attn_rows { KD_ATTN_ROWS_REAL = 0, KD_ATTN_ROWS_ALL = 1 };

struct kd_term_opts {
    int soft_form;      /* enum kd_soft_form (soft terms) */
    int attention_rows; /* enum kd_attn_rows (attention terms) */
};

/* The options a job entry chooses (loss_cfg form and rows; the job's enums
 * have the same values). kd_term_setup uses them when it is given no
 * explicit options, so the job's choice reaches the term through every
 * caller that passes NULL. */
void kd_term_opts_of(struct kd_term_opts *o, const struct loss_cfg *cfg);

/* ---- shapes -------------------------------------------------------------- */

struct kd_teacher_dims {
    int64_t layers;     /* L_t */
    int64_t hidden;     /* Ct */
    int64_t heads;      /* NH of every teacher layer */
    int64_t num_labels; /* K_t */
};

/* Everything a term may check itself against. */
struct kd_model_dims {
    struct bert_config student; /* copy: layers, hidden, per-layer heads, K */
    struct kd_teacher_dims teacher;
    int64_t B, T;               /* maximum batch */
};

/* ---- what the teacher must provide ------------------------------------- */

/* The union over a stage's terms; the extract stage stores exactly this.
 * Layer numbers as in layer_map.h. */
struct kd_needs {
    int logits;          /* /logits (B,K) */
    int labels;          /* gold labels (always in the store's /examples) */
    int hidden_tokens;   /* enum token_sel: TOKEN_SEL_ALL if any hidden term
                          * compares every token, else TOKEN_SEL_CLS */
    int n_hidden;        /* teacher hidden layers, ascending, 0 = embeddings */
    int32_t hidden_layers[BERT_MAX_LAYERS + 1];
    int n_attention;     /* teacher attention layers, ascending, >= 1 */
    int32_t attention_layers[BERT_MAX_LAYERS];
};

/* The union of needs of losses[0..n) for a student of student_layers and a
 * teacher of teacher_layers layers. Resolves every layer map, so every
 * layer-map error of the stage is reported here (the first one). Head
 * counts and widths are checked later, by kd_loss_set_init. */
int kd_needs_of(struct kd_needs *out, const struct loss_cfg *losses, int n,
                int64_t student_layers, int64_t teacher_layers, struct kd_err *err);

/* ---- views: plain arrays, dense with the batch's own B and T ------------ */

struct kd_student_view {
    int64_t B, T;
    const float *logits;                      /* (B,K) or NULL */
    const float *hidden[BERT_MAX_LAYERS + 1]; /* [l] (B,T,C), l = 0..L */
    const float *probs[BERT_MAX_LAYERS];      /* [l-1] (B,NH_l,T,T) attention layer l,
                                               * pre-dropout probabilities */
};

struct kd_teacher_view {
    int64_t B, T;                             /* equal to the student's */
    const int32_t *attention_mask;            /* (B,T) 1 = token; NULL = all real */
    const int32_t *labels;                    /* (B) classification, -100 = none */
    const float *labels_f32;                  /* (B) regression (K = 1) */
    const float *logits;                      /* (B,K) */
    int hidden_tokens;                        /* enum token_sel: layout of hidden[] */
    const float *hidden[BERT_MAX_LAYERS + 1]; /* [l] (B,T,Ct), or (B,Ct) with
                                               * TOKEN_SEL_CLS; NULL if not needed */
    const float *probs[BERT_MAX_LAYERS];      /* [l-1] (B,NH,T,T) attention layer l */
};

/* The taps of the model's last forward. m holds the whole model (not a
 * pipeline slice: a pipelined teacher's taps arrive as plain arrays). */
void kd_student_view_from_bert(struct kd_student_view *v, const struct bert_model *m);
/* The same for a whole teacher run online (all tokens); mask and labels are
 * borrowed from the arguments (labels may be NULL). */
void kd_teacher_view_from_bert(struct kd_teacher_view *v, const struct bert_model *m,
                               const int32_t *attention_mask, const int32_t *labels,
                               const float *labels_f32);

/* Local counts for the normalisers: examples with a real token, and those
 * of them with a label (every one for regression, labels != -100 otherwise).
 * Data-parallel code sums these over ranks and passes them in kd_step. */
void kd_batch_counts(const struct kd_teacher_view *v, int regression, double *examples,
                     double *labelled);

/* ---- the strategy ---------------------------------------------------------- */

struct kd_term;
struct kd_term_ctx;

/* A learned tensor of a term, in the loss set's flat parameter block. */
struct kd_param_decl {
    char name[64];
    size_t count;
    int decay; /* optim_segment.decay */
};

#define KD_TERM_MAX_TENSORS (2 * KD_MAX_PAIRS)

/* Student taps a term writes gradients to (kd_term_ops.taps). */
enum kd_tap {
    KD_TAP_LOGITS = 1u << 0, /* dlogits */
    KD_TAP_HIDDEN = 1u << 1, /* dhidden of its mapped student layers */
    KD_TAP_SCORES = 1u << 2  /* dscores of its mapped student layers */
};

struct kd_term_ops {
    const char *name;     /* the job file's kind, e.g. "hidden" */
    int kind;             /* enum loss_kind */
    int internal;         /* 1: layer-wise term, scheduled per layer by PID/SID;
                           * 0: output term (hard, soft) */
    int uses_map;         /* 1: has a layer map */
    int map_embeddings;   /* 1: layer 0 may be mapped */
    unsigned taps;        /* KD_TAP_* bits: the gradient buffers it needs */
    /* Adds what the term reads from the teacher to *n. */
    void (*needs)(const struct kd_term *t, struct kd_needs *n);
    /* Checks the term against both models; -1 with a message. */
    int (*check)(const struct kd_term *t, const struct kd_model_dims *d, struct kd_err *err);
    /* Learned tensors: fills decl[0..k) (if decl is not NULL) and returns k
     * (<= KD_TERM_MAX_TENSORS). NULL: none. */
    int (*params)(const struct kd_term *t, const struct kd_model_dims *d,
                  struct kd_param_decl *decl);
    /* Deterministic initial values of the term's tensors. NULL: none. */
    void (*init_params)(struct kd_term *t, uint64_t seed);
    /* Scratch floats for the maximum batch. NULL: none. */
    size_t (*scratch_floats)(const struct kd_term *t, const struct kd_model_dims *d);
    /* Returns the term's (unweighted) value and accumulates ctx->weight
     * times its gradient into the tap buffers (kd_tap_*) and its parameter
     * gradients. Internal terms compute only the pairs whose student layer
     * is on in ctx->layer_on. */
    double (*compute)(struct kd_term *t, struct kd_term_ctx *c);
};

/* The registered term of a loss kind, or NULL. */
const struct kd_term_ops *kd_term_ops_of(int kind);

/* One configured term. */
struct kd_term {
    const struct kd_term_ops *ops;
    int index;                 /* in the stage's loss list */
    struct loss_cfg cfg;       /* copy; its int lists are not kept (NULL) */
    struct kd_term_opts opts;
    struct kd_layer_map map;   /* resolved (uses_map terms) */
    int n_tensors;             /* learned tensors */
    size_t seg0;               /* its first segment in the set's table */
    const struct optim_segment *segs; /* the set's table */
    float *params, *grads;     /* the set's blocks (tensor i at segs[seg0+i].offset) */
    float *scratch;            /* scratch_floats of its own */
};

/* Fills t from cfg (ops, copy, opts, map) without sizes; -1 for an unknown
 * kind or a bad map. opts NULL: kd_term_opts_of(cfg). Shared by
 * kd_needs_of and kd_loss_set_init. */
int kd_term_setup(struct kd_term *t, const struct loss_cfg *cfg, int index,
                  const struct kd_term_opts *opts, int64_t student_layers,
                  int64_t teacher_layers, struct kd_err *err);

/* Tensor i of a term: values and gradients. */
static inline float *kd_term_param(const struct kd_term *t, int i)
{
    return t->params + t->segs[t->seg0 + (size_t)i].offset;
}
static inline float *kd_term_grad(const struct kd_term *t, int i)
{
    return t->grads + t->segs[t->seg0 + (size_t)i].offset;
}

/* What compute sees. Owned by the loss set; valid during one compute. */
struct kd_term_ctx {
    const struct kd_student_view *s;
    const struct kd_teacher_view *t;
    const struct kd_model_dims *d;
    int64_t B, T;
    const int64_t *n_real;   /* (B) real tokens per example (0: batch padding) */
    const uint8_t *layer_on; /* [BERT_MAX_LAYERS + 1] student layers whose pairs are on */
    int64_t step;            /* the stage's step, 0-based */
    int64_t total_steps;     /* the stage's steps */
    double norm_examples;    /* N of soft, hidden, attention (> 0) */
    double norm_labelled;    /* N of hard (> 0) */
    float weight;            /* the term's weight: scale of every gradient */
    void *set;               /* the loss set, for the tap buffers */
};

/* The tap gradient buffers of the set, dense with the batch's B and T;
 * zeroed at their first use in a compute, then accumulated into:
 *   dlogits (B,K); dhidden of student layer l (B,T,C); dscores of student
 *   attention layer l >= 1 (B,NH_l,T,T), the pre-softmax scores. */
float *kd_tap_dlogits(struct kd_term_ctx *c);
float *kd_tap_dhidden(struct kd_term_ctx *c, int32_t layer);
float *kd_tap_dscores(struct kd_term_ctx *c, int32_t layer);

/* Soft-label temperature at a step of the stage (loss_cfg temperature,
 * temperature_end, temperature_schedule), linear schedule:
 *   T(s) = T0 + (T1 - T0) * min(s, S - 1) / (S - 1)    for S > 1,
 * so the first step runs at T0 and the last (s = S - 1) at T1; T0 when
 * S <= 1 or the schedule is constant. */
double kd_soft_temperature(const struct loss_cfg *cfg, int64_t step, int64_t total_steps);

#endif
