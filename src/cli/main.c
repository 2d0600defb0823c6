/* main.c: kd_hpc's entry point: parse the command line, start MPI, read and
 * validate the job on every rank (deterministic, so all ranks agree), then
 * validate, plan or run it. The only code outside the library. */
#include "config.h"
#include "kd/cli/exit_codes.h"
#include "kd/cli/options.h"
#include "kd/core/atomic_file.h"
#include "kd/core/log.h"
#include "kd/core/signals.h"
#include "kd/job/job.h"
#include "kd/job/keys.h"
#include "kd/job/plan.h"
#include "kd/job/stage.h"
#include "kd/parallel/comm.h"

#include <stdio.h>
#include <string.h>

static int report_errors(const struct comm *comm, const char *path, struct job_errors *errs)
{
    if (comm->rank == 0) {
        for (int i = 0; i < errs->n; i++)
            fprintf(stderr, "%s\n", errs->msgs[i]);
        fprintf(stderr, "kd_hpc: %s: %d error%s; nothing was run\n", path, errs->n,
                errs->n == 1 ? "" : "s");
    }
    return KD_EXIT_CONFIG;
}

static int prepare_output(const struct comm *comm, const struct job *job)
{
    char err[1024] = "";
    int bad = 0;
    if (comm->rank == 0) {
        char path[4096];
        snprintf(path, sizeof path, "%s/job.resolved.cfg", job->job.output_dir);
        bad = fs_mkdir_p(job->job.output_dir, err, sizeof err) ||
              job_write_resolved(job, path, err, sizeof err);
        if (bad)
            log_error("%s", err);
        else
            log_info0("resolved configuration written to %s", path);
    }
    return comm_agree_max(comm, bad) ? KD_EXIT_RUNTIME : KD_EXIT_OK;
}

static int run(const struct cli_options *o, const struct comm *comm)
{
    struct job job;
    struct job_errors errs = {0};
    int rc = KD_EXIT_OK;
    if (job_load(&job, o->job_path, o->sets, o->n_sets, &errs)) {
        rc = report_errors(comm, o->job_path, &errs);
        goto done;
    }
    if (!o->quiet && !o->verbose)
        log_set_level((enum log_level)job.job.log_level);

    int planning = o->validate || o->dry_run;
    /* Planning from one process: plan for --ranks, else job.ranks, else the
     * smallest layout that fits (one pipeline replica). */
    int world = o->ranks ? o->ranks
                : planning && comm->size == 1 && job.job.ranks ? (int)job.job.ranks
                : planning && comm->size == 1 ? (int)job.teacher.pipeline_stages
                : comm->size;
    if (!planning && job.job.ranks && job.job.ranks != comm->size) {
        job_errors_add(&errs, "%s: job.ranks = %lld but kd_hpc was started on %d rank%s "
                       "(start it with mpirun -np %lld, or set job.ranks = 0)", o->job_path,
                       (long long)job.job.ranks, comm->size, comm->size == 1 ? "" : "s",
                       (long long)job.job.ranks);
        rc = report_errors(comm, o->job_path, &errs);
        goto done;
    }
    if (o->stage && !job_find_stage(&job, o->stage)) {
        job_errors_add(&errs, "%s: --stage %s: the job has no stage of that name", o->job_path,
                       o->stage);
        rc = report_errors(comm, o->job_path, &errs);
        goto done;
    }
    struct job_plan plan;
    if (job_plan_make(&job, world, &plan, &errs)) {
        rc = report_errors(comm, o->job_path, &errs);
        goto done;
    }
    if (o->validate) {
        if (comm->rank == 0)
            printf("%s: valid (%d stage%s, planned for %d rank%s)\n", o->job_path,
                   job.n_stages, job.n_stages == 1 ? "" : "s", world, world == 1 ? "" : "s");
        goto done;
    }
    if (o->dry_run) {
        job_echo(&job);
        job_plan_print(&job, &plan);
        int n = comm->rank == 0 ? job_plan_missing_inputs(&job) : 0;
        if (n)
            log_warn0("%d input%s missing: a real run would stop here", n, n == 1 ? "" : "s");
        log_info0("dry run: nothing computed");
        goto done;
    }
    log_info0("kd_hpc %s: job \"%s\" on %d rank%s", PACKAGE_VERSION, job.job.name, comm->size,
              comm->size == 1 ? "" : "s");
    if (comm_agree_max(comm, comm->rank == 0 ? job_plan_missing_inputs(&job) : 0)) {
        if (comm->rank == 0)
            fprintf(stderr, "kd_hpc: %s: input files are missing (listed above)\n",
                    o->job_path);
        rc = KD_EXIT_CONFIG;
        goto done;
    }
    job_echo(&job);
    job_plan_print(&job, &plan);
    rc = prepare_output(comm, &job);
    if (rc == KD_EXIT_OK)
        rc = stage_run_all(&job, &plan, comm, o->stage, o->resume, o->force);
done:
    job_errors_free(&errs);
    job_free(&job);
    return rc;
}

int main(int argc, char **argv)
{
    struct cli_options o;
    if (cli_parse(&o, argc, argv)) {
        cli_free(&o);
        return KD_EXIT_USAGE;
    }
    int rc = KD_EXIT_OK;
    if (o.help)
        cli_print_help();
    else if (o.version)
        printf("kd_hpc %s\n", PACKAGE_VERSION);
    else if (o.help_keys)
        keys_print_reference(stdout, o.help_keys == 2);
    if (o.help || o.version || o.help_keys) {
        cli_free(&o);
        return rc;
    }
    struct comm comm;
    comm_init(&comm, &argc, &argv);
    signals_install();
    log_set_level(o.quiet ? LOG_LEVEL_WARN : o.verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
    log_set_verbose(o.verbose);
    rc = run(&o, &comm);
    comm_finalize(&comm);
    cli_free(&o);
    return rc;
}
