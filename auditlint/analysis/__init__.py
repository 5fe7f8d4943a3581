"""Small reusable analyses over one module or one function body (no LibCST metadata providers)."""
