/* comm.h: the process's communicators (parallel layer: the only place that
 * initialises MPI or names MPI_COMM_WORLD). Everything above receives a
 * struct comm. */
#ifndef KD_PARALLEL_COMM_H
#define KD_PARALLEL_COMM_H

#include <mpi.h>

struct comm {
    MPI_Comm world; /* duplicate of MPI_COMM_WORLD owned by kd_hpc */
    int rank;
    int size;
};

/* MPI_Init (thread level FUNNELED), dup the world, install the MPI_Abort
 * error hook and MPI_ERRORS_RETURN + checked calls. */
void comm_init(struct comm *c, int *argc, char ***argv);
/* For tests and sub-jobs: wrap an existing communicator (no MPI_Init). */
void comm_wrap(struct comm *c, MPI_Comm base);
void comm_finalize(struct comm *c);
/* A sub-communicator of a running job (e.g. the ranks that write a file):
 * duplicates base; logging and the abort hook stay the job's. Free with
 * comm_sub_free. */
void comm_sub(struct comm *c, MPI_Comm base);
void comm_sub_free(struct comm *c);

/* Collective agreement: returns the maximum of `code` over all ranks, so that
 * every rank takes the same exit path after validating its inputs. */
int comm_agree_max(const struct comm *c, int code);
void comm_barrier(const struct comm *c);
/* Broadcast a byte buffer from root (size known on all ranks). */
void comm_bcast_bytes(const struct comm *c, void *buf, size_t n, int root);

/* Checks an MPI return code and ends the job with MPI's own error text. */
#define MPI_CHECK(call)                                                       \
    do {                                                                      \
        int mpi_rc_ = (call);                                                 \
        if (mpi_rc_ != MPI_SUCCESS)                                           \
            comm_mpi_fail(mpi_rc_, #call, __FILE__, __LINE__);                \
    } while (0)

_Noreturn void comm_mpi_fail(int rc, const char *what, const char *file, int line);

#endif
