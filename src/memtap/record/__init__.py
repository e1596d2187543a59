"""Recording: finding a QEMU that can load the plugin, and running the user's command line under it."""
