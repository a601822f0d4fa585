"""What every layer may use: config, typed events, the bus, store, metrics, clock, tasks."""
