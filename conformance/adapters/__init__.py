"""Adapters shipped with the suite (registered in the entry-point group
``conv_conformance.adapters``): reference, keras, tf-keras, torch, jax."""
