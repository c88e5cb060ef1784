"""What `goldstone list` shows, known without importing torch or any experiment: each built-in
experiment with its summary and extras, each built-in observable with its summary. A test keeps
these equal to what the experiments and observables declare."""

EXPERIMENTS = {
    "copy_task": ("variable-delay copy task: equivariant RNN/GRU cells vs RNN, GRU, LSTM", ()),
    "conv_rnn_vortices": ("vortices in the phase of a U(1) 2-D conv RNN on the copy task: counts, tracks, lifetimes", ()),
    "deep_mlp": ("train a deep U(1)/O(k)/generic MLP; order parameter and protected Jacobian", ()),
    "neural_collapse": ("neural collapse NC1-NC4 of an MLP's last-layer features along training", ()),
    "noether": ("Noether charges of detected symmetry groups along SGD, against exact and continuous theory", ()),
    "ksb": ("kinetic symmetry breaking: BatchNorm MLP with free vs frozen weight norms (NLD Fig. 3)", ()),
    "lora_entanglement": ("entanglement profiles of MiniLM's fine-tuning updates: LoRA valley vs full fine-tuning",
                          ("hf",)),
    "mlm_syntax": ("pre-train a small BERT on EWT or a synthetic agreement language; loss, head UAS, minimal pairs; "
                   "SAS+/-", ("hf",)),
    "order_parameter": ("c* against sigma_W: random finite-width trunks vs mean-field quadrature", ()),
    "saddle_to_saddle": ("deep linear network: modes learned one by one (saddle to saddle), against theory", ()),
    "sgd_collapse": ("SGD noise collapses a scalar product net onto its symmetric state, against the stochastic "
                     "criterion", ()),
    "seq_pixels": ("(permuted) sequential pixels: equivariant RNN/GRU cells vs RNN, GRU, LSTM", ()),
    "single_node": ("what each head, node subset and node of a transformer has learned", ("hf",)),
    "syre": ("symmetric-init trap: identical neurons stay identical under GD; syre escapes", ()),
    "weight_decay_transition": ("weight decay restores rotation symmetry: rank of a deep linear net vs lambda, "
                                "against theory", ()),
}

OBSERVABLES = {
    "head_uas": "UAS of every attention head against gold dependency trees, per relation, with baselines",
    "jacobian_spectrum": "singular spectrum of J = dx^L/dx^0: mean spectrum, top value, effective rank",
    "minimal_pairs": "share of minimal pairs whose grammatical sentence has the higher pseudo-log-likelihood",
    "neuron_census": "dead, identical and independent neurons, ranks, rotation order and balance per hidden layer",
    "noether_charges": "Noether charges of symmetry groups every step, against exact and continuous SGD theory",
    "order_parameter": "c^l: mean squared block norm per layer (mean-field order parameter)",
    "overlap": "q_ab^l for input pairs: magnitude, correlation |q|/sqrt(c_a c_b), phase (U(1))",
    "protected_jacobian": "|J T x^0| / |T x^L| (1 for equivariant nets) and the gain |T x^L| / |T x^0|",
    "unit_activations": "the nodes of one site of one block, one row per example, with their labels",
    "unit_performance": "per head / node subset / node: label x output matrix, accuracy per label, clusters, noise, "
                        "SNR",
    "weight_norms": "|W| of selected parameters, and |W - W_ref| against a reference (e.g. the pre-trained start)",
}
