/* comm.c: MPI start-up and shutdown, the job-wide abort hook, and the few
 * collective helpers the upper layers use to agree on errors. */
#include "kd/parallel/comm.h"
#include "kd/core/error.h"
#include "kd/core/log.h"
#include "kd/cli/exit_codes.h"

#include <stdio.h>
#include <stdlib.h>

static _Noreturn void abort_world(int code)
{
    int inited = 0, finalized = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (inited && !finalized)
        MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}

_Noreturn void comm_mpi_fail(int rc, const char *what, const char *file, int line)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, text, &len);
    kd_fatal_at(file, line, "MPI", "%s failed: %s", what, text);
}

void comm_wrap(struct comm *c, MPI_Comm base)
{
    MPI_CHECK(MPI_Comm_dup(base, &c->world));
    MPI_CHECK(MPI_Comm_set_errhandler(c->world, MPI_ERRORS_RETURN));
    MPI_CHECK(MPI_Comm_rank(c->world, &c->rank));
    MPI_CHECK(MPI_Comm_size(c->world, &c->size));
    kd_set_abort_hook(abort_world);
    log_init(c->rank, c->size);
}

void comm_sub(struct comm *c, MPI_Comm base)
{
    MPI_CHECK(MPI_Comm_dup(base, &c->world));
    MPI_CHECK(MPI_Comm_set_errhandler(c->world, MPI_ERRORS_RETURN));
    MPI_CHECK(MPI_Comm_rank(c->world, &c->rank));
    MPI_CHECK(MPI_Comm_size(c->world, &c->size));
}

void comm_sub_free(struct comm *c)
{
    MPI_Comm_free(&c->world);
}

void comm_init(struct comm *c, int *argc, char ***argv)
{
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "kd_hpc: error: MPI_Init failed\n");
        exit(KD_EXIT_RUNTIME);
    }
    /* Errors in MPI calls come back to MPI_CHECK, which aborts the whole job
     * with MPI's message rather than leaving peers blocked. */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    comm_wrap(c, MPI_COMM_WORLD);
}

void comm_finalize(struct comm *c)
{
    log_flush();
    if (c->world != MPI_COMM_NULL)
        MPI_Comm_free(&c->world);
    MPI_Finalize();
}

int comm_agree_max(const struct comm *c, int code)
{
    int out = code;
    MPI_CHECK(MPI_Allreduce(&code, &out, 1, MPI_INT, MPI_MAX, c->world));
    return out;
}

void comm_barrier(const struct comm *c) { MPI_CHECK(MPI_Barrier(c->world)); }

void comm_bcast_bytes(const struct comm *c, void *buf, size_t n, int root)
{
    /* MPI counts are int: send in chunks so large buffers work. */
    char *p = buf;
    while (n > 0) {
        int chunk = n > (size_t)1 << 30 ? 1 << 30 : (int)n;
        MPI_CHECK(MPI_Bcast(p, chunk, MPI_BYTE, root, c->world));
        p += chunk;
        n -= (size_t)chunk;
    }
}
