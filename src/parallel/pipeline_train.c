/* pipeline_train.c: the 1F1B forward + backward schedule (parallel layer).
 *
 * Stage s of S over m micro-batches (PipeDream-flush, Narayanan et al.
 * 2021, "1F1B"): w = min(S-s-1, m) warm-up forwards, then m-w rounds of one
 * forward and one backward, then the w remaining backwards. Micro-batch i
 * lives in activation set i % (S-s) of the slice from its forward to its
 * backward: at most w+1 <= S-s are alive at once, so a set is never
 * overwritten before its backward ran.
 *
 * Messages (slot i % 2, receives posted one micro-batch ahead):
 *   forward i:   h_begin from s-1 -> forward -> h_end to s+1
 *   backward j:  d h_end from s+1 (the last stage calls the loss instead)
 *                -> backward -> d h_begin to s-1 (stage 0: input_grad)
 * Sends are non-blocking and every wait's matching send is issued by a
 * neighbour without waiting on this rank's future, so the schedule cannot
 * deadlock; a dead rank ends the job through the abort hook. */
#include "pipeline_internal.h"

#include "kd/core/timers.h"
#include "kd/parallel/comm.h"

#include <limits.h>
#include <string.h>

struct run {
    struct pipeline *pp;
    const struct bert_batch *micro;
    int n;
    const struct pipeline_step *step;
    MPI_Request act_recv[PIPELINE_SLOTS], act_send[PIPELINE_SLOTS];
    MPI_Request grad_recv[PIPELINE_SLOTS], grad_send[PIPELINE_SLOTS];
    double loss; /* summed on the last stage */
};

static int floats_of(const struct run *r, int i)
{
    const int64_t n = r->micro[i].B * r->micro[i].T * r->pp->model.cfg.hidden_size;
    KD_ASSERT(n <= INT_MAX, "pipeline message of %lld floats exceeds MPI's int count",
              (long long)n);
    return (int)n;
}

static void post_act_recv(struct run *r, int i)
{
    struct pipeline *pp = r->pp;
    const int k = i % PIPELINE_SLOTS;
    if (pp->stage > 0 && i < r->n)
        MPI_CHECK(MPI_Irecv(pp->act_recv[k], floats_of(r, i), MPI_FLOAT, pp->stage - 1,
                            PIPELINE_TAG_ACT, pp->comm, &r->act_recv[k]));
}

static void post_grad_recv(struct run *r, int j)
{
    struct pipeline *pp = r->pp;
    const int k = j % PIPELINE_SLOTS;
    if (!pipeline_is_last(pp) && j < r->n)
        MPI_CHECK(MPI_Irecv(pp->grad_recv[k], floats_of(r, j), MPI_FLOAT, pp->stage + 1,
                            PIPELINE_TAG_GRAD, pp->comm, &r->grad_recv[k]));
}

static void forward_one(struct run *r, int i)
{
    struct pipeline *pp = r->pp;
    struct bert_model *m = &pp->model;
    const int k = i % PIPELINE_SLOTS;
    post_act_recv(r, i + 1);
    struct bert_batch b = r->micro[i];
    if (pp->stage > 0) {
        pipeline_wait(&r->act_recv[k]);
        b.embedding_output = pp->act_recv[k];
    }
    bert_use_acts(m, i % m->n_act_sets);
    timer_start(TIMER_COMPUTE);
    bert_forward(m, &b);
    timer_stop(TIMER_COMPUTE);
    if (pipeline_is_last(pp))
        return;
    pipeline_wait(&r->act_send[k]);
    memcpy(pp->act_send[k], bert_hidden(m, m->layer_end),
           (size_t)floats_of(r, i) * sizeof(float));
    MPI_CHECK(MPI_Isend(pp->act_send[k], floats_of(r, i), MPI_FLOAT, pp->stage + 1,
                        PIPELINE_TAG_ACT, pp->comm, &r->act_send[k]));
}

static void backward_one(struct run *r, int j)
{
    struct pipeline *pp = r->pp;
    struct bert_model *m = &pp->model;
    const int k = j % PIPELINE_SLOTS;
    bert_use_acts(m, j % m->n_act_sets);
    struct bert_grad_in in;
    memset(&in, 0, sizeof in);
    in.skip_param_grads = r->step->skip_param_grads;
    if (pipeline_is_last(pp)) {
        timer_start(TIMER_COMPUTE);
        r->loss += r->step->loss(r->step->ctx, m, j, &in);
        timer_stop(TIMER_COMPUTE);
    } else {
        post_grad_recv(r, j + 1);
        pipeline_wait(&r->grad_recv[k]);
        in.dhidden[m->layer_end] = pp->grad_recv[k];
    }
    timer_start(TIMER_COMPUTE);
    bert_backward(m, &in);
    timer_stop(TIMER_COMPUTE);
    if (pp->stage > 0) {
        pipeline_wait(&r->grad_send[k]);
        memcpy(pp->grad_send[k], m->d_embedding_output,
               (size_t)floats_of(r, j) * sizeof(float));
        MPI_CHECK(MPI_Isend(pp->grad_send[k], floats_of(r, j), MPI_FLOAT, pp->stage - 1,
                            PIPELINE_TAG_GRAD, pp->comm, &r->grad_send[k]));
    } else if (r->step->input_grad) {
        r->step->input_grad(r->step->ctx, j, m->d_embedding_output);
    }
}

double pipeline_train(struct pipeline *pp, const struct bert_batch *micro, int n_micro,
                      const struct pipeline_step *step)
{
    KD_ASSERT(pp->model.opts.backward, "pipeline_train on a stage built without backward");
    KD_ASSERT(step->loss, "pipeline_train needs a loss callback");
    pipeline_check_micro(pp, micro, n_micro);
    struct run r = {.pp = pp, .micro = micro, .n = n_micro, .step = step, .loss = 0.0};
    for (int k = 0; k < PIPELINE_SLOTS; k++)
        r.act_recv[k] = r.act_send[k] = r.grad_recv[k] = r.grad_send[k] = MPI_REQUEST_NULL;
    const int S = pp->n_stages, s = pp->stage;
    const int warm = S - s - 1 < n_micro ? S - s - 1 : n_micro;
    post_act_recv(&r, 0);
    post_grad_recv(&r, 0);
    int f = 0, b = 0;
    for (; f < warm; f++)
        forward_one(&r, f);
    for (; f < n_micro; f++, b++) {
        forward_one(&r, f);
        backward_one(&r, b);
    }
    for (; b < n_micro; b++)
        backward_one(&r, b);
    pipeline_wait_all(r.act_send, PIPELINE_SLOTS);
    pipeline_wait_all(r.grad_send, PIPELINE_SLOTS);
    /* the loss to every stage (the others add 0) */
    double loss = pipeline_is_last(pp) ? r.loss : 0.0;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &loss, 1, MPI_DOUBLE, MPI_SUM, pp->comm));
    return loss;
}
