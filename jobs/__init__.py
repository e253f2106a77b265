"""Background work: thin RQ entry points over the billing rules, one module per subject."""
