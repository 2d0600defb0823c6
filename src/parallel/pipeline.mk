# parallel/pipeline.mk: files are added as the work lands
