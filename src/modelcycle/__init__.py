"""modelcycle: the whole life of a machine-learning model."""
