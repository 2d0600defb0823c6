# Evaluation tests: metrics against hand-computed and scikit-learn/scipy
# values, the curve CSV across a resume, the report's exact text, and the
# gnuplot PNGs (the PNG point skips only where gnuplot is absent).
check_PROGRAMS += tests/eval/t_metrics
tests_eval_t_metrics_SOURCES = tests/eval/t_metrics.c
tests_eval_t_metrics_LDADD = $(TEST_LIBS)
TESTS += tests/eval/t_metrics

check_PROGRAMS += tests/eval/t_curves
tests_eval_t_curves_SOURCES = tests/eval/t_curves.c
tests_eval_t_curves_LDADD = $(TEST_LIBS)
TESTS += tests/eval/t_curves

check_PROGRAMS += tests/eval/t_report
tests_eval_t_report_SOURCES = tests/eval/t_report.c
tests_eval_t_report_LDADD = $(TEST_LIBS)
TESTS += tests/eval/t_report

check_PROGRAMS += tests/eval/t_plot
tests_eval_t_plot_SOURCES = tests/eval/t_plot.c
tests_eval_t_plot_LDADD = $(TEST_LIBS)
TESTS += tests/eval/t_plot
