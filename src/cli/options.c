/* options.c: command-line parsing and --help. The option table below is
 * the one place options are defined; --help is printed from it. */
#include "kd/cli/options.h"
#include "kd/cli/exit_codes.h"
#include "kd/core/error.h"
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OPT_VALIDATE = 256, OPT_DRY_RUN, OPT_STAGE, OPT_SET, OPT_RESUME, OPT_FORCE,
       OPT_RANKS, OPT_VERSION, OPT_HELP_KEYS };

struct option_doc {
    struct option opt;
    const char *arg;
    const char *doc;
};

static const struct option_doc option_docs[] = {
    {{"validate", no_argument, NULL, OPT_VALIDATE}, NULL,
     "check the job file (every error, with FILE:LINE) and exit"},
    {{"dry-run", no_argument, NULL, OPT_DRY_RUN}, NULL,
     "print the resolved configuration, rank layout and stage plan; compute nothing"},
    {{"stage", required_argument, NULL, OPT_STAGE}, "NAME", "run only the stage NAME"},
    {{"set", required_argument, NULL, OPT_SET}, "PATH=VALUE",
     "override a setting, e.g. --set stages.[1].lr=1e-4 or --set stages.distill.lr=1e-4 "
     "(repeatable)"},
    {{"resume", no_argument, NULL, OPT_RESUME}, NULL,
     "skip finished stages; continue an interrupted stage from its last checkpoint"},
    {{"force", no_argument, NULL, OPT_FORCE}, NULL,
     "re-run stages the manifest lists as finished and replace their outputs"},
    {{"ranks", required_argument, NULL, OPT_RANKS}, "N",
     "plan for N ranks (--dry-run, --validate); default job.ranks or the MPI size"},
    {{"quiet", no_argument, NULL, 'q'}, NULL, "print only warnings and errors"},
    {{"verbose", no_argument, NULL, 'v'}, NULL,
     "debug messages; every rank prints, prefixed with [rank N]"},
    {{"help-keys", optional_argument, NULL, OPT_HELP_KEYS}, "[markdown]",
     "print every job-file key with type, default and meaning"},
    {{"version", no_argument, NULL, OPT_VERSION}, NULL, "print the version and exit"},
    {{"help", no_argument, NULL, 'h'}, NULL, "print this help and exit"},
};
#define N_OPTIONS (sizeof option_docs / sizeof option_docs[0])

void cli_print_help(void)
{
    printf("usage: kd_hpc [options] JOB.cfg\n"
           "       mpirun -np N kd_hpc [options] JOB.cfg\n\n"
           "Knowledge distillation of BERT models on CPU clusters: runs the stages of a\n"
           "libconfig job file (finetune, prune, extract, distill, evaluate, export).\n\n"
           "options:\n");
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const struct option_doc *d = &option_docs[i];
        char left[64];
        int shortopt = d->opt.val < 256;
        snprintf(left, sizeof left, "%s%c%s--%s%s%s", shortopt ? "-" : "",
                 shortopt ? d->opt.val : ' ', shortopt ? ", " : "  ", d->opt.name,
                 d->arg ? (d->opt.has_arg == optional_argument ? "" : " ") : "",
                 d->arg ? (d->opt.has_arg == optional_argument ? "[=markdown]" : d->arg) : "");
        printf("  %-26s %s\n", shortopt ? left : left + 1, d->doc);
    }
    printf("\nexit codes:\n"
           "  %d  success\n  %d  runtime failure (I/O, numerics, MPI)\n"
           "  %d  usage error (bad command line)\n"
           "  %d  invalid job (job file, rank layout or input files)\n"
           "  %d  interrupted (SIGINT/SIGTERM/SIGUSR1); resume with --resume\n"
           "  %d  internal error\n\n"
           "Job-file keys: kd_hpc --help-keys (also docs/job-config.md).\n",
           KD_EXIT_OK, KD_EXIT_RUNTIME, KD_EXIT_USAGE, KD_EXIT_CONFIG, KD_EXIT_INTERRUPTED,
           KD_EXIT_INTERNAL);
}

int cli_parse(struct cli_options *o, int argc, char **argv)
{
    memset(o, 0, sizeof *o);
    struct option longopts[N_OPTIONS + 1];
    for (size_t i = 0; i < N_OPTIONS; i++)
        longopts[i] = option_docs[i].opt;
    memset(&longopts[N_OPTIONS], 0, sizeof longopts[N_OPTIONS]);
    o->sets = kd_calloc((size_t)argc + 1, sizeof *o->sets);
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":qvh", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_VALIDATE: o->validate = 1; break;
        case OPT_DRY_RUN: o->dry_run = 1; break;
        case OPT_STAGE: o->stage = optarg; break;
        case OPT_SET: o->sets[o->n_sets++] = optarg; break;
        case OPT_RESUME: o->resume = 1; break;
        case OPT_FORCE: o->force = 1; break;
        case OPT_RANKS: {
            char *end;
            long n = strtol(optarg, &end, 10);
            if (*end || n < 1 || n > 1048576) {
                fprintf(stderr, "kd_hpc: --ranks: expected an integer in [1, 1048576], "
                                "got \"%s\"\n", optarg);
                return -1;
            }
            o->ranks = (int)n;
            break;
        }
        case 'q': o->quiet = 1; break;
        case 'v': o->verbose = 1; break;
        case OPT_HELP_KEYS:
            if (optarg && strcmp(optarg, "markdown") != 0) {
                fprintf(stderr, "kd_hpc: --help-keys: expected nothing or =markdown, got "
                                "\"%s\"\n", optarg);
                return -1;
            }
            o->help_keys = optarg ? 2 : 1;
            break;
        case OPT_VERSION: o->version = 1; break;
        case 'h': o->help = 1; break;
        case ':':
            fprintf(stderr, "kd_hpc: option %s needs an argument\n", argv[optind - 1]);
            return -1;
        default:
            fprintf(stderr, "kd_hpc: unknown option %s (see kd_hpc --help)\n",
                    argv[optind - 1]);
            return -1;
        }
    }
    if (o->help || o->version || o->help_keys)
        return 0;
    if (optind != argc - 1) {
        fprintf(stderr, optind >= argc ? "kd_hpc: no job file given\n"
                                       : "kd_hpc: expected one job file, got %d arguments\n",
                argc - optind);
        fprintf(stderr, "usage: kd_hpc [options] JOB.cfg (see kd_hpc --help)\n");
        return -1;
    }
    o->job_path = argv[optind];
    if (o->quiet && o->verbose) {
        fprintf(stderr, "kd_hpc: --quiet and --verbose exclude each other\n");
        return -1;
    }
    if (o->resume && o->force) {
        fprintf(stderr, "kd_hpc: --resume and --force exclude each other\n");
        return -1;
    }
    return 0;
}

void cli_free(struct cli_options *o)
{
    free(o->sets);
    o->sets = NULL;
}
