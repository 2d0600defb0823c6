# job/runner.mk: files are added as the work lands
