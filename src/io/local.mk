# io: files are added as the layer grows
