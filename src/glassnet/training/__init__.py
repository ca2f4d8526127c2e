"""The training loop: compile, fit, evaluate, predict (mixed into Model)."""
