/* online_student.c: the student side of online.h: grants steps to the
 * teacher replica, posts the receives of granted steps and hands the
 * arrived outputs to the loss terms. */
#include "kd/stages/online.h"
#include "kd/core/log.h"
#include "kd/core/timers.h"
#include "kd/parallel/comm.h"

#include <stdlib.h>
#include <string.h>

enum { TAG_TOKEN = 1, TAG_OUTPUT = 2 };

int online_student_open(struct online_student *os, MPI_Comm comm, const struct online_layout *l,
                        const struct online_dims *dims, const struct stage_cfg *st,
                        const struct dataset *train, uint64_t seed, int depth,
                        struct kd_err *err)
{
    memset(os, 0, sizeof *os);
    os->comm = comm;
    os->l = *l;
    os->dims = *dims;
    MPI_CHECK(MPI_Comm_rank(comm, &os->me));
    const int replica = os->me % l->R;
    os->lead = os->me == replica;
    os->first_teacher = l->students + replica * l->S;
    os->depth = depth > 0 ? depth : ONLINE_DEFAULT_DEPTH;
    os->per_step = st->accumulate;
    os->slot_floats = online_msg_floats(dims, dims->B, dims->T);
    const size_t slots = (size_t)os->depth * (size_t)os->per_step;
    if (batch_plan_init(&os->plan, st, train, seed, l->students)) {
        kd_errf(err, "out of memory for the online plan");
        return -1;
    }
    os->total = os->plan.total;
    os->buf = malloc(slots * os->slot_floats * sizeof *os->buf);
    os->req = malloc(slots * sizeof *os->req);
    os->slot_step = malloc((size_t)os->depth * sizeof *os->slot_step);
    os->slot_count = calloc((size_t)os->depth, sizeof *os->slot_count);
    if (!os->buf || !os->req || !os->slot_step || !os->slot_count) {
        kd_errf(err, "out of memory for %zu online receive buffers of %.1f MB", slots,
                (double)os->slot_floats * 4e-6);
        online_student_close(os);
        return -1;
    }
    for (size_t i = 0; i < slots; i++)
        os->req[i] = MPI_REQUEST_NULL;
    for (int i = 0; i < os->depth; i++)
        os->slot_step[i] = -1;
    os->next_grant = -1;
    return 0;
}

static void send_token(struct online_student *os, int64_t token)
{
    for (int s = 0; s < os->l.S; s++)
        MPI_CHECK(MPI_Send(&token, 1, MPI_INT64_T, os->first_teacher + s, TAG_TOKEN,
                           os->comm));
}

/* Posts the receives of `step` in its slot (free: its last step is done)
 * and, on the lead, lets the teacher compute it. */
static void grant(struct online_student *os, int64_t step)
{
    const int slot = (int)(step % os->depth);
    const int64_t count = batch_plan_micro_count(&os->plan, step, os->me);
    const int teacher_last = os->first_teacher + os->l.S - 1;
    for (int64_t j = 0; j < count; j++) {
        const size_t k = (size_t)slot * (size_t)os->per_step + (size_t)j;
        KD_ASSERT(os->req[k] == MPI_REQUEST_NULL, "online slot %d reused before its wait",
                  slot);
        MPI_CHECK(MPI_Irecv(os->buf + k * os->slot_floats, (int)os->slot_floats, MPI_FLOAT,
                            teacher_last, TAG_OUTPUT, os->comm, &os->req[k]));
    }
    os->slot_step[slot] = step;
    os->slot_count[slot] = count;
    if (os->lead)
        send_token(os, step);
}

void online_student_begin(struct online_student *os, int64_t step)
{
    if (os->next_grant < 0)
        os->next_grant = step;
    while (os->next_grant < os->total && os->next_grant < step + os->depth)
        grant(os, os->next_grant++);
}

int online_student_view(struct online_student *os, int64_t step, int64_t j,
                        const struct batch_rows *b, struct kd_teacher_view *v,
                        struct kd_err *err)
{
    const int slot = (int)(step % os->depth);
    KD_ASSERT(os->slot_step[slot] == step && j < os->slot_count[slot],
              "online micro-batch %lld of step %lld was not granted", (long long)j,
              (long long)step);
    const size_t k = (size_t)slot * (size_t)os->per_step + (size_t)j;
    timer_start(TIMER_COMM_WAIT);
    MPI_CHECK(MPI_Wait(&os->req[k], MPI_STATUS_IGNORE));
    timer_stop(TIMER_COMM_WAIT);
    return online_msg_view(&os->dims, os->buf + k * os->slot_floats, step, j, b, v, err);
}

void online_student_close(struct online_student *os)
{
    if (os->req) {
        /* everything granted arrives (the teacher computes it regardless),
         * so the teacher never waits on a receive that will not come */
        const int n = os->depth * (int)os->per_step;
        MPI_CHECK(MPI_Waitall(n, os->req, MPI_STATUSES_IGNORE));
        if (os->lead)
            send_token(os, -1);
    }
    batch_plan_free(&os->plan);
    free(os->buf), free(os->req), free(os->slot_step), free(os->slot_count);
    memset(os, 0, sizeof *os);
}
