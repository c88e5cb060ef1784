"""Training objectives and helpers: masked-LM masking, the syntactic-attention regulariser."""
