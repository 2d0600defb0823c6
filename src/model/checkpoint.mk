# Checkpoint I/O: safetensors (single, sharded, writer), config.json, and the
# core file helpers they use (atomic writes, whole-file reads, SHA-256).
src_libkd_a_SOURCES += src/core/fsutil.c src/model/safetensors.c src/model/hf_config.c
noinst_HEADERS += include/kd/core/fsutil.h include/kd/model/safetensors.h \
	include/kd/model/hf_config.h
