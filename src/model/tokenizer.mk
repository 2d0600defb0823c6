# tokenizer: files added here
