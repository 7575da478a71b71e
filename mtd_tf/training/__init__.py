"""Training: the graph (infomax) step, the session steps and the loop that schedules them."""
