"""A hospital asks a patient for consent; the patient grants (on chain), refuses, or lets it expire."""
