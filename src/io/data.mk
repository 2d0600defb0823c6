# TSV reader, synthetic task and tokenized datasets (include/kd/io/{tsv,synthetic,dataset}.h)
src_libkd_a_SOURCES += src/io/tsv.c src/io/synthetic.c src/io/dataset.c
noinst_HEADERS += include/kd/io/tsv.h include/kd/io/synthetic.h include/kd/io/dataset.h
