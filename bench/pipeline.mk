# Pipeline benchmark (not a test): built only on request with
# `make bench/pipeline_bench`; bench/pipeline_bench.sh runs it at S = 2 and
# S = 4 (oversubscribed on 2 cores) and prints the measured efficiency
# against the ideal m/(m+S-1) of the slowest stage.
EXTRA_PROGRAMS += bench/pipeline_bench
bench_pipeline_bench_SOURCES = bench/pipeline_bench.c
bench_pipeline_bench_LDADD = $(KD_LIBS)
EXTRA_DIST += bench/pipeline_bench.sh
