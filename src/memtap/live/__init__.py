"""The live shared-memory ring: a client for co-simulators and the expansion of its fetch runs."""
