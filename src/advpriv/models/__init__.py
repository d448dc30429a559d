"""Face models beyond the built-in ones: a registry of public models to fetch, and the user's own added models."""
