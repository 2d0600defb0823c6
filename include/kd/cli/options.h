/* options.h: the kd_hpc command line (cli layer). */
#ifndef KD_CLI_OPTIONS_H
#define KD_CLI_OPTIONS_H

struct cli_options {
    const char *job_path;
    int validate;
    int dry_run;
    const char *stage;  /* --stage NAME or NULL */
    const char **sets;  /* --set PATH=VALUE, in order */
    int n_sets;
    int resume;
    int force;
    int quiet;
    int verbose;
    int ranks;          /* --ranks N for planning; 0 = not given */
    int help, version, help_keys; /* help_keys: 1 text, 2 markdown */
};

/* Parses argv; on a usage error prints the message and returns -1. */
int cli_parse(struct cli_options *o, int argc, char **argv);
void cli_free(struct cli_options *o);
void cli_print_help(void);

#endif
