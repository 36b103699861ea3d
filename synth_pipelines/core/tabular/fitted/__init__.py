"""Tables fitted to a real sample: infer, fit, sample, report."""
