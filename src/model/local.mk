# model: files are added as the layer grows
noinst_HEADERS += include/kd/model/bert_config.h
include src/model/tokenizer.mk
include src/model/checkpoint.mk
include src/model/optim.mk
include src/model/bert.mk
