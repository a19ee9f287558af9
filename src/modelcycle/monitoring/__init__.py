"""How the production models do after training: batch scores, evaluations, drift, reports."""
