"""Each stage's work as plain functions; Prefect @task wrappers stay thin and live beside them."""
