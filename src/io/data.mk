# TSV reader and synthetic task: files added here
