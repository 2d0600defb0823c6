# init/local.mk: files are added as the work lands
