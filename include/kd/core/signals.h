/* signals.h: SIGINT, SIGTERM (batch-system preemption, mpirun forwarding)
 * and SIGUSR1 (Slurm's --signal) ask the job to stop at the next safe point:
 * long loops poll signals_interrupted(), write a checkpoint and return, and
 * kd_hpc exits with KD_EXIT_INTERRUPTED (core layer). */
#ifndef KD_CORE_SIGNALS_H
#define KD_CORE_SIGNALS_H

void signals_install(void);
/* The signal number received, or 0. */
int signals_interrupted(void);

#endif
