"""The reader study's logic: arms and washout, case sampling, analysis tables, simulated readers."""
