# dp.mk: data-parallel weak-scaling benchmark (not a test): built only on
# request with `make bench/dp_bench`; bench/dp_bench.sh runs it at 1 and 2
# ranks and prints the efficiency and the share of time in the all-reduce.
EXTRA_PROGRAMS += bench/dp_bench
bench_dp_bench_SOURCES = bench/dp_bench.c
bench_dp_bench_LDADD = $(KD_LIBS)
EXTRA_DIST += bench/dp_bench.sh
