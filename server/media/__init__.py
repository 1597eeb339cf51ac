"""Media: encode once, convert, latest-value slots, incoming video."""
