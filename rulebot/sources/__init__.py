"""Where the library lives: one module per backend (local, Pocket, Karakeep, ...)."""
