"""The main screens, one per mode: tuning, benchmark, runs, and the guided setup over tuning."""
