# safetensors / config.json / checkpoints: files added here
