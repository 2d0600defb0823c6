/* plot.h: PNG plots of a training-curve CSV (curves.h) through gnuplot
 * (eval layer; no MPI: rank 0 calls it after training or evaluation).
 *
 * Two plots: every loss_* column (terms and total) over steps, on a log y
 * axis when all their values are positive; and the dev_* column over the
 * steps where it was evaluated. The data go inline into a generated gnuplot
 * script (a datablock), so no data file is left beside the PNGs.
 *
 * gnuplot is an optional run-time tool (Debian package gnuplot-nox, whose
 * build has the pngcairo terminal; the script falls back to the libgd "png"
 * terminal where pngcairo is absent). It is looked up as $KD_GNUPLOT, else
 * "gnuplot" on PATH. When it is missing the plots are skipped with a warning
 * naming the package; that is not an error. It runs as `gnuplot -d SCRIPT`
 * (-d: ignore the user's ~/.gnuplot, so plots look the same everywhere) via
 * posix_spawn, which is safe in an MPI process where fork() may not be.
 *
 * Each PNG is written under "<png>.tmp.<pid>.png", checked for the PNG
 * signature, and renamed over <png>; the script "<png>.tmp.<pid>.gp" is
 * removed on success and kept (and named in the error) on failure. */
#ifndef KD_EVAL_PLOT_H
#define KD_EVAL_PLOT_H

#include <stdbool.h>

#include "kd/core/error.h"

struct plot_outcome {
    bool gnuplot_missing; /* skipped with a warning */
    bool loss_png;        /* loss_png was written */
    bool dev_png;         /* dev_png was written (needs >= 1 dev value) */
};

/* Plots csv_path into loss_png and dev_png (either may be NULL to skip
 * it). title prefixes the plot titles (e.g. the stage name; may be NULL).
 * The dev plot is left out, with an info line, when the CSV has no dev
 * value; the loss plot when it has no row. out may be NULL. Returns 0 (also
 * when gnuplot is missing), or -1 with err naming the CSV, or gnuplot's exit
 * status and first lines of stderr. Plots are a by-product: callers log a
 * -1 as a warning rather than fail a stage. */
int plot_training_curves(const char *csv_path, const char *loss_png, const char *dev_png,
                         const char *title, struct plot_outcome *out, struct kd_err *err);

/* The gnuplot executable that plot_training_curves would run (a new
 * string, free()), or NULL if there is none. */
char *plot_find_gnuplot(void);

#endif
