"""What every layer may use: config, typed events and their bus, store, metrics, clock, task helpers."""
