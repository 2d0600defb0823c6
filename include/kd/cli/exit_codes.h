/* exit_codes.h: the process exit codes of kd_hpc (documented in README and
 * `kd_hpc --help`). mpirun passes the code of a failing rank through. */
#ifndef KD_CLI_EXIT_CODES_H
#define KD_CLI_EXIT_CODES_H

enum kd_exit {
    KD_EXIT_OK = 0,          /* all requested stages finished */
    KD_EXIT_RUNTIME = 1,     /* a stage failed while running (I/O, numerics, MPI) */
    KD_EXIT_USAGE = 2,       /* bad command line */
    KD_EXIT_CONFIG = 3,      /* invalid job file or missing/invalid input files */
    KD_EXIT_INTERRUPTED = 4, /* SIGINT/SIGTERM/SIGUSR1: stopped at a safe point */
    KD_EXIT_INTERNAL = 70    /* internal error (assertion): a bug, please report */
};

#endif
