/* pipeline.h: the pipeline-parallel teacher (parallel layer): one BERT split
 * by layers over the S ranks of a pipeline replica, run over micro-batches
 * with activations travelling between neighbouring stages by
 * MPI_Isend/Irecv while the stages compute (DESIGN §3).
 *
 * Partition. Items are the L encoder layers; the embeddings' cost is added
 * to layer 0 and the heads' to layer L-1 (embeddings live on stage 0, heads
 * on stage S-1), and layout_partition cuts them into S contiguous runs that
 * minimise the most expensive run. Costs are the caller's measured seconds
 * or a model: the FLOPs of each layer from its own head count and FFN width
 * (pruned layers are cheaper), plus its pointwise work weighted as a few
 * FLOPs per element, so a fully pruned layer, the embeddings and the heads
 * are never free. Stage s holds the model slice [first[s], first[s+1])
 * (bert.h "Slices"): parameters, gradients and optimizer state of its own
 * layers only.
 *
 * Data. Every rank of a replica is handed the same micro-batch descriptors
 * (all ranks hold the dataset): stage 0 reads the input ids; every stage
 * takes the attention mask, dims, dropout step and first_example from its
 * own copy, so masks never travel; only hidden states (B,T,C) go forward
 * and their gradients backward. Dropout is replayed from (seed, step, global
 * layer, global example), so every stage drops exactly what one process
 * running the whole model would.
 *
 * Schedules.
 *   pipeline_forward: GPipe forward (inference, extraction). Stage s
 *     receives h_begin of micro-batch i while it computes i-1, computes its
 *     layers and sends h_end on. Requested taps (hidden states of global
 *     layers, 0 = embedding output, and attention probabilities) are sent
 *     straight from the stage that computed them to the last stage, which
 *     hands them with the model (logits, pooled) to a callback per
 *     micro-batch, in micro-batch order.
 *   pipeline_train: 1F1B forward + backward (PipeDream-flush): stage s runs
 *     min(S-s-1, m) warm-up forwards, then alternates one forward and one
 *     backward, then drains the backwards; it keeps at most S-s micro-batches'
 *     activations (activation sets of the slice). The loss callback runs on
 *     the last stage; parameter gradients accumulate (+=) in each stage's
 *     slice; stage 0 can receive d loss / d h_0 of each micro-batch
 *     (integrated gradients).
 * Both end with a small all-reduce over the replica (errors, summed loss),
 * and begin with one that checks every rank was given the same number of
 * micro-batches of the same shapes (a mismatch would otherwise hang).
 *
 * Gradients. pipeline_grad_sync fills an optim_grad_sync: reduce_grads sums
 * the gradient block over the replicas of the same stage (blocking
 * MPI_Allreduce), and when the MLM head's tied decoder is split from the
 * embeddings (S > 1), sums the two copies' word-embedding gradients between
 * stage 0 and stage S-1 so both copies take the same update; reduce_sumsq
 * sums the squared norm over the replica's stages (the last stage leaves
 * its copy of the word embeddings out), so clipping uses the global norm.
 *
 * Timers (core/timers.h): TIMER_COMPUTE around forward, backward and the
 * loss callback; TIMER_COMM_WAIT around every wait for a message;
 * TIMER_ALLREDUCE in the gradient hooks. The output callback is not timed
 * (it times its own I/O).
 *
 * Errors. Internal invariants are KD_ASSERT (the job ends through the abort
 * hook, so no rank waits forever for a dead neighbour). An output callback
 * that fails on the last stage stops calling it, drains the remaining
 * micro-batches and makes pipeline_forward return -1 on every rank of the
 * replica with the callback's message on the last stage. */
#ifndef KD_PARALLEL_PIPELINE_H
#define KD_PARALLEL_PIPELINE_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "kd/core/error.h"
#include "kd/model/bert.h"
#include "kd/model/optim.h"

/* Taps gathered to the last stage by pipeline_forward, fixed at init so
 * their buffers are sized once. Global numbers. */
struct pipeline_taps {
    const int64_t *hidden; /* [n_hidden] in 0..L (0 = embedding output) */
    int n_hidden;
    const int64_t *probs;  /* [n_probs] in 0..L-1 */
    int n_probs;
};

struct pipeline_opts {
    /* One micro-batch: B, T, P (maxima), heads (held by the last stage),
     * backward, param_grads, optimizer, seed (dropout). The layer range and
     * the activation sets are the pipeline's to set. */
    struct bert_opts model;
    const char *checkpoint_dir; /* Hugging Face directory, or NULL: random init */
    uint64_t init_seed;         /* random init (bert_init_random: tensor values depend
                                 * on (seed, name) only, so every stage draws what one
                                 * process would); also heads a checkpoint lacks */
    float init_std;             /* random init std; 0: 0.02 */
    const double *cost;         /* [L + 2] or NULL: measured cost of the embeddings,
                                 * layers 0..L-1 and the heads (any unit) */
    struct pipeline_taps taps;  /* gathered by pipeline_forward */
};

/* Message slots: two of each, so one can fill while the other travels. */
#define PIPELINE_SLOTS 2

struct pipeline {
    MPI_Comm comm;          /* duplicate of the replica's stage communicator */
    MPI_Comm replicas;      /* duplicate of the same-stage communicator, or MPI_COMM_NULL */
    int stage, n_stages;    /* this rank's stage s and S */
    int n_replicas;         /* R (1 without a replica communicator) */
    int *first;             /* [S + 1] first layer of each stage; first[S] = L */
    double *stage_cost;     /* [S] share of the partitioned cost */
    struct bert_model model;/* this stage's slice */
    struct pipeline_taps taps;   /* copy of the request (arrays owned) */
    int64_t BTC;            /* max floats of one hidden state (B*T*C) */
    /* buffers, each (B,T,C) unless noted; NULL where the stage has no use */
    float *act_recv[PIPELINE_SLOTS], *act_send[PIPELINE_SLOTS];
    float *grad_recv[PIPELINE_SLOTS], *grad_send[PIPELINE_SLOTS];
    float *tap_send[PIPELINE_SLOTS];  /* this stage's taps, packed */
    float **tap_recv[PIPELINE_SLOTS]; /* [S] per source stage, on the last stage */
    size_t *tap_floats;               /* [S] max packed floats of each stage's taps */
    int tied_copy;          /* 1: stages 0 and S-1 both hold the word embeddings */
};

/* Collective over stages (the replica's S ranks, rank r = stage r) and
 * replicas (ranks holding the same stage in every replica; MPI_COMM_NULL or
 * a size-1 communicator when R = 1). Partitions cfg's layers, logs the
 * partition (world rank 0), builds this stage's slice and loads its tensors
 * from opts->checkpoint_dir (only those) or initialises them randomly.
 * Returns 0, or -1 on every rank when any rank failed (its own message, or
 * "failed on another rank" elsewhere). */
int pipeline_init(struct pipeline *pp, const struct bert_config *cfg, MPI_Comm stages,
                  MPI_Comm replicas, const struct pipeline_opts *opts, struct kd_err *err);
void pipeline_free(struct pipeline *pp);

/* The modelled cost (arbitrary units, proportional to time) of the
 * embeddings, each layer and the heads for micro-batches of B x T with P MLM
 * positions: cost[L + 2] as struct pipeline_opts.cost takes it. */
void pipeline_model_cost(const struct bert_config *cfg, unsigned heads, int64_t B, int64_t T,
                         int64_t P, double *cost);

/* 1 if this rank is the replica's first / last stage. */
static inline int pipeline_is_first(const struct pipeline *pp) { return pp->stage == 0; }
static inline int pipeline_is_last(const struct pipeline *pp)
{
    return pp->stage == pp->n_stages - 1;
}

/* Taps of one micro-batch on the last stage, in the order requested,
 * dense with the micro-batch's own B and T; valid during the callback. */
struct pipeline_tap_view {
    const float *const *hidden; /* [n_hidden] (B,T,C) */
    const float *const *probs;  /* [n_probs] (B,NH_l,T,T) */
};

/* Called on the last stage for every micro-batch, in order. m's logits,
 * pooled output and MLM logits are the micro-batch's. Returns 0, or -1
 * with a message (the pipeline then drains and fails). */
typedef int (*pipeline_output_fn)(void *ctx, const struct bert_model *m, int micro,
                                  const struct pipeline_tap_view *taps, struct kd_err *err);

/* GPipe forward of n_micro micro-batches (the same descriptors on every
 * rank of the replica; see "Data"). out is called on the last stage only.
 * Returns 0, or -1 on every rank of the replica if the callback failed. */
int pipeline_forward(struct pipeline *pp, const struct bert_batch *micro, int n_micro,
                     pipeline_output_fn out, void *ctx, struct kd_err *err);

/* The loss of one micro-batch on the last stage, after its forward: returns
 * the loss and sets the head gradients in g (e.g. bert_loss_classification
 * into m->ga.dlogits, then g->dlogits = m->ga.dlogits). It must not fail
 * (bad labels are an internal error). */
typedef double (*pipeline_loss_fn)(void *ctx, struct bert_model *m, int micro,
                                   struct bert_grad_in *g);
/* d loss / d h_0 (B,T,C) of one micro-batch on stage 0, valid during the
 * call. */
typedef void (*pipeline_input_grad_fn)(void *ctx, int micro, const float *d_h0);

struct pipeline_step {
    pipeline_loss_fn loss;             /* required */
    pipeline_input_grad_fn input_grad; /* optional */
    void *ctx;
    int skip_param_grads;              /* 1: only d h_0 (attributions) */
};

/* 1F1B forward + backward of n_micro micro-batches (model built with
 * backward = 1). Parameter gradients accumulate: zero them
 * (bert_zero_grads(&pp->model)) once per optimizer step. Returns the summed
 * loss of the micro-batches on every rank of the replica. */
double pipeline_train(struct pipeline *pp, const struct bert_batch *micro, int n_micro,
                      const struct pipeline_step *step);

/* The optimizer's hooks for this stage (see "Gradients"); sync->ctx = pp. */
void pipeline_grad_sync(struct pipeline *pp, struct optim_grad_sync *sync);

#endif
