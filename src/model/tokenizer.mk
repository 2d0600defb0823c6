# tokenizer: BERT WordPiece tokenizer (include/kd/model/tokenizer.h)
src_libkd_a_SOURCES += src/model/tokenizer_vocab.c src/model/tokenizer_basic.c \
	src/model/wordpiece.c src/model/tokenizer_encode.c
noinst_HEADERS += include/kd/model/tokenizer.h src/model/tokenizer_internal.h
