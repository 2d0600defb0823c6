/* p_abort.c: the last rank fails while the others wait in a collective.
 * The job must end (non-zero exit, message on stderr) instead of hanging;
 * mpi_tests.sh checks the exit status and the time it took. */
#include "kd/cli/exit_codes.h"
#include "kd/core/error.h"
#include "kd/parallel/comm.h"

int main(int argc, char **argv)
{
    struct comm c;
    comm_init(&c, &argc, &argv);
    if (c.rank == c.size - 1)
        kd_die(KD_EXIT_RUNTIME, "p_abort: deliberate failure on rank %d", c.rank);
    comm_barrier(&c); /* never completes: the failing rank aborts the job */
    comm_finalize(&c);
    return 0;
}
