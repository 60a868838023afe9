"""Engine of the Liara Temporal Agency: workflows, activities, workers, client and records."""
