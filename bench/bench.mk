# Engine benchmark (not a test): built only on request with
# `make bench/engine_bench`; bench/engine_bench.sh runs it interleaved with
# the PyTorch / ONNX Runtime peer bench/torch_bert.py (docs/performance.md).
EXTRA_PROGRAMS += bench/engine_bench
bench_engine_bench_SOURCES = bench/engine_bench.c
bench_engine_bench_LDADD = $(KD_LIBS)
# time every product of the engine (see the file's header)
bench_engine_bench_LDFLAGS = -Wl,--wrap=cblas_sgemm
EXTRA_DIST += bench/engine_bench.sh bench/torch_bert.py
include bench/pipeline.mk
include bench/dp.mk
