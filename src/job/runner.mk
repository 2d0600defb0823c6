# job/runner.mk: the stage runner's manifest (stage.c itself is listed in
# job/local.mk), training-state checkpoints (io layer) and docs/runner.md.
src_libkd_a_SOURCES += src/job/manifest.c src/job/manifest_fingerprint.c \
	src/job/manifest_files.c src/io/train_state.c
noinst_HEADERS += include/kd/job/manifest.h include/kd/io/train_state.h
dist_doc_DATA += docs/runner.md
