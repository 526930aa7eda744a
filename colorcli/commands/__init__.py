"""One module per CLI command: options -> config -> one core call -> rich output."""
