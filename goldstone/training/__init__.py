"""Training: the step loop and optimiser factory, the copy task's training run, the syntactic
regulariser (ours and the Hugging Face `Trainer`'s), the syre optimiser."""
