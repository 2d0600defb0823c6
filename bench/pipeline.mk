# pipeline.mk: benchmarks built on request (EXTRA_PROGRAMS)
